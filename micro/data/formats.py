"""Candle file formats: one parser per format, and auto-detection from the first lines.

Every parser returns `RawCandles`: one row per data row of the file, times already in UTC, and
NaN/NaT where a field could not be read, so that `micro.data.importers` can report the first bad
line and the count in one vectorised pass. Parsing is pandas `read_csv` with typed columns (the
string fallback only runs when a price field is not a number); there are no per-row Python loops
except over OANDA JSON, which `json` has already turned into Python objects. Text files stream:
`read_chunks` yields `CHUNK_ROWS` rows at a time, so memory does not grow with the file (the
timestamp layout of a generic CSV is chosen on the first chunk and kept; a daylight-saving hour
cut by a chunk's end waits for the next chunk). OANDA JSON is read whole (a response holds at
most 5000 candles).

Formats and the zone their naive timestamps are read in unless `--tz` says otherwise:

- `mt4`: MT4/MT5 export `YYYY.MM.DD,HH:MM,open,high,low,close,volume` (no header; `HH:MM:SS`
  and tab separators accepted), or the MT5 variant with a `<DATE>\\t<TIME>\\t<OPEN>…` header.
  Default zone UTC; pass the broker's server time, e.g. `--tz America/New_York+7` (New York
  + 7 h: UTC+2 in winter, UTC+3 in summer, as MT4 brokers run) or `--tz Etc/GMT-2` (UTC+2).
  `micro.data.weeks` refuses a file whose weeks do not sit on the FX week in UTC.
- `histdata`: HistData.com generic ASCII `YYYYMMDD HHMMSS;open;high;low;close;volume`, with
  `;` or `,` between the fields.
  Default zone EST without daylight saving, a fixed UTC−5 (`Etc/GMT+5`).
- `oanda`: v20 candles JSON exactly as `GET /v3/instruments/{i}/candles` returns it (`mid`
  prices, or the average of `bid` and `ask`; `complete: false` candles are skipped), or OANDA CSV
  with the header `time,open,high,low,close,volume` (or `time,o,h,l,c,volume`). RFC3339 carries
  its zone; naive times are read as UTC.
- `csv`: generic delimited text (comma, semicolon or tab) with a header row, or without one
  (`date,time,o,h,l,c,v`, `datetime,o,h,l,c,v` or `datetime,o,h,l,c` by field count, or
  `--columns date=1,time=2,...` by column number); columns of a header found by common names
  (time/date/datetime/timestamp, open/o, high/h, low/l, close/c, volume/v/tickvol,
  or a date + time pair) or mapped with `--columns time=Date,open=O,...`. Timestamps with an
  offset are honoured; naive ones are in `--tz`, default UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from micro.data.columns import (
    PRICE_COLUMNS,
    column_mapping,
    find_field,
    header_fields,
    headerless_mapping,
    is_headerless,
    normalise_header,
    sniff_delimiter,
    split_header,
    unique_names,
)
from micro.data.lines import check_line_lengths, head_lines
from micro.data.zones import in_utc, parse_zone, to_naive_utc
from micro.errors import DataError

FORMATS = ("mt4", "histdata", "oanda", "csv")

DEFAULT_ZONES = {"mt4": "UTC", "histdata": "Etc/GMT+5", "oanda": "UTC", "csv": "UTC"}
"""Zone of each format's naive timestamps when no `--tz` is given."""

# Timestamp layouts tried on generic CSV, first match wins ("ISO8601" is pandas' lenient ISO
# parser: it also reads 2022.01.03 00:00 and 20220103 170000). Day-first before month-first.
TIME_LAYOUTS = (
    "ISO8601",
    "%d.%m.%Y %H:%M:%S.%f GMT%z",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
)

_MT4_LINE = re.compile(r"^\d{4}\.\d{2}\.\d{2}[,\t ]\d{2}:\d{2}(:\d{2})?[,\t]")
_HISTDATA_LINE = re.compile(r"^\d{8} \d{6}[;,]")
_OANDA_CSV_HEADERS = (
    ("time", "open", "high", "low", "close", "volume"),
    ("time", "o", "h", "l", "c", "volume"),
)
# An IANA zone's wall clock moved by whole hours: America/New_York+7 is MT4 broker server time.
_SAMPLE_ROWS = 2000
CHUNK_ROWS = 250_000
"""Rows read, converted and checked at a time: an import holds one chunk of a file, never all."""


@dataclass(frozen=True)
class RawCandles:
    """Candles as read from one file, before validation: one row per data row, times in UTC.

    `frame` has columns ts (naive datetime64, UTC; NaT where unreadable), open, high, low,
    close, volume (float64; NaN where unreadable) and `line`: where the row is in the file (a
    1-based line number, or the 1-based index in the `candles` array for OANDA JSON).
    """

    frame: pd.DataFrame
    format: str
    zone: str
    """Zone the naive timestamps were read in, or 'offsets in file' when they carry one."""
    unit: str = "line"
    """What `line` counts: 'line' (text files) or 'candle' (OANDA JSON)."""
    layout: str = ""
    """The expected row layout, for error messages."""
    skipped_incomplete: int = 0
    """OANDA candles dropped because `complete` was false (the bar was still forming)."""


# ---------------------------------------------------------------- detection and dispatch


def detect_format(path: Path) -> str:
    """The format of `path` from its first lines; a DataError listing the formats if unknown."""
    lines = head_lines(path)
    if not lines:
        raise DataError(f"{path}: the file is empty; nothing to import")
    first = lines[0].lstrip()
    if first.startswith(("{", "[")):
        return "oanda"
    if first.upper().startswith("<DATE>") or _MT4_LINE.match(first):
        return "mt4"
    if _HISTDATA_LINE.match(first):
        return "histdata"
    if header_fields(first) in _OANDA_CSV_HEADERS:
        return "oanda"
    sep = sniff_delimiter(first)
    if sep is not None and is_headerless(first, sep):
        return "csv"
    if any(ch.isalpha() for ch in first) and sep is not None:
        names = [normalise_header(h) for h in split_header(first, sniff_delimiter(first) or ",")]
        if find_field(names, "open") is not None and (
            find_field(names, "time") is not None or find_field(names, "date") is not None
        ):
            return "csv"
    raise DataError(
        f"{path}: cannot tell the format from line 1 ({first[:60]!r}); pass --format: mt4 "
        "(YYYY.MM.DD,HH:MM,o,h,l,c,v), histdata (YYYYMMDD HHMMSS;o;h;l;c;v, or commas), oanda "
        "(v20 JSON or time,open,high,low,close,volume CSV) or csv (with or without a header, "
        "see --columns)"
    )


def parse(path: Path, fmt: str, tz: str | None = None, columns: str | None = None) -> RawCandles:
    """Read all of `path` in format `fmt` ('auto' detects it); naive times in `tz` or the default.

    For small files and tests; `micro data import` streams with `read_chunks`.
    """
    chunks = list(read_chunks(path, fmt, tz=tz, columns=columns))
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    skipped = sum(c.skipped_incomplete for c in chunks)
    return dataclasses.replace(chunks[-1], frame=frame, skipped_incomplete=skipped)


def read_chunks(
    path: Path,
    fmt: str,
    tz: str | None = None,
    columns: str | None = None,
    rows: int = CHUNK_ROWS,
) -> Iterator[RawCandles]:
    """`path` in format `fmt` ('auto' detects it), about `rows` rows at a time, in file order.

    Naive times are in `tz` or the format's default zone. Every chunk carries the file's format,
    zone and layout; a file without rows yields one empty chunk. A DataError (unreadable file,
    a row with too many fields, a time the zone skips) is raised when its chunk is read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    check_line_lengths(path)
    if not head_lines(path, 1):
        raise DataError(f"{path}: the file is empty; nothing to import")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt}: unknown; use one of auto, {', '.join(FORMATS)}")
    if columns and fmt != "csv":
        raise DataError(f"--columns applies to --format csv only (this file reads as {fmt})")
    zone_name = tz or DEFAULT_ZONES[fmt]
    zone = parse_zone(zone_name)
    if fmt == "mt4":
        yield from mt4_chunks(path, zone, zone_name, rows)
    elif fmt == "histdata":
        yield from histdata_chunks(path, zone, zone_name, rows)
    elif fmt == "oanda" and (head_lines(path, 1) or [""])[0].lstrip().startswith(("{", "[")):
        yield parse_oanda_json(path, zone, zone_name)
    else:
        yield from csv_chunks(path, zone, zone_name, columns=columns, fmt=fmt, rows=rows)


# ---------------------------------------------------------------- the formats


def mt4_chunks(path: Path, zone: dt.tzinfo, zone_name: str, rows: int) -> Iterator[RawCandles]:
    """MT4/MT5 export: headerless `YYYY.MM.DD,HH:MM[:SS],o,h,l,c,v`, or MT5's `<DATE>` header."""
    first = head_lines(path, 1)[0]
    if first.lstrip().upper().startswith("<DATE>"):
        yield from csv_chunks(path, zone, zone_name, columns=None, fmt="mt4", rows=rows)
        return
    sep = sniff_delimiter(first, candidates=(",", "\t", ";")) or ","
    layout = "YYYY.MM.DD,HH:MM,open,high,low,close,volume"
    date_and_time_in_one = " " in first.split(sep)[0].strip()
    names = ["datetime"] if date_and_time_in_one else ["date", "time"]
    names += ["open", "high", "low", "close", "volume"]

    def naive_times(table: pd.DataFrame) -> pd.Series:
        if date_and_time_in_one:
            return _first_layout(table["datetime"], ("%Y.%m.%d %H:%M", "%Y.%m.%d %H:%M:%S"))
        day = _to_datetime_by_value(table["date"], "%Y.%m.%d")
        clock = _first_layout(table["time"], ("%H:%M", "%H:%M:%S"))
        return day + (clock - pd.Timestamp("1900-01-01"))

    tables = _read_tables(path, sep, names, False, names[: len(names) - 5], None, rows)
    for table, ts in in_utc(tables, naive_times, zone, zone_name, path):
        yield RawCandles(_assemble(table, ts), "mt4", zone_name, layout=layout)


def histdata_chunks(path: Path, zone: dt.tzinfo, zone_name: str, rows: int) -> Iterator[RawCandles]:
    """HistData.com generic ASCII M1: `YYYYMMDD HHMMSS;open;high;low;close;volume` (or `,`)."""
    names = ["datetime", "open", "high", "low", "close", "volume"]
    first = head_lines(path, 1)[0]
    sep = "," if "," in first and ";" not in first else ";"
    layout = sep.join(["YYYYMMDD HHMMSS", "open", "high", "low", "close", "volume"])

    def naive_times(table: pd.DataFrame) -> pd.Series:
        return pd.to_datetime(table["datetime"], format="%Y%m%d %H%M%S", errors="coerce")

    tables = _read_tables(path, sep, names, False, ["datetime"], None, rows)
    for table, ts in in_utc(tables, naive_times, zone, zone_name, path):
        yield RawCandles(_assemble(table, ts), "histdata", zone_name, layout=layout)


def parse_oanda_json(path: Path, zone: dt.tzinfo, zone_name: str) -> RawCandles:
    """OANDA v20 candles JSON (one response, a list of them, or one response per line)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        documents: Any = json.loads(text)
    except json.JSONDecodeError as first_error:
        documents = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line))
            except json.JSONDecodeError:
                raise DataError(
                    f"{path}, line {first_error.lineno}: not valid JSON ({first_error.msg}); "
                    "save the v20 candles response unmodified"
                ) from None
    if isinstance(documents, dict):
        documents = [documents]
    candles: list[Any] = []
    for document in documents:
        if not isinstance(document, dict) or not isinstance(document.get("candles"), list):
            raise DataError(
                f"{path}: not an OANDA candles response (no 'candles' list); expected the JSON "
                "of GET /v3/instruments/{instrument}/candles"
            )
        candles.extend(document["candles"])
    frame = oanda_candles_frame(candles, zone)
    frame["line"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    complete = frame.pop("complete").to_numpy()
    kept = frame.loc[complete].reset_index(drop=True)
    layout = '{"time": RFC3339, "mid": {"o","h","l","c"}, "volume", "complete"}'
    return RawCandles(
        kept,
        "oanda",
        zone_name,
        unit="candle",
        layout=layout,
        skipped_incomplete=int((~complete).sum()),
    )


def oanda_candles_frame(candles: Sequence[Any], zone: dt.tzinfo = dt.UTC) -> pd.DataFrame:
    """v20 candle objects -> ts (naive UTC), open, high, low, close, volume, complete.

    Prices are `mid`, or the average of `bid` and `ask` when only those are present; fields
    that cannot be read become NaN/NaT (the caller decides). Naive times are read in `zone`.
    """
    entries = [c if isinstance(c, dict) else {} for c in candles]
    times = pd.Series([c.get("time") for c in entries], dtype=object)
    columns: dict[str, Any] = {"ts": parse_oanda_times(times, zone)}
    for key, name in zip("ohlc", PRICE_COLUMNS, strict=True):
        mid = _oanda_price(entries, "mid", key)
        both = (_oanda_price(entries, "bid", key) + _oanda_price(entries, "ask", key)) / 2.0
        columns[name] = mid.where(mid.notna(), both).to_numpy(dtype=np.float64)
    columns["volume"] = pd.to_numeric(
        pd.Series([c.get("volume") for c in entries], dtype=object), errors="coerce"
    ).to_numpy(dtype=np.float64)
    columns["complete"] = np.array([c.get("complete", True) is not False for c in entries], bool)
    return pd.DataFrame(columns)


def _oanda_price(entries: list[dict[str, Any]], side: str, key: str) -> pd.Series:
    """One price field ('o', 'h', 'l', 'c') of one side ('mid', 'bid', 'ask'); NaN if absent."""
    values = [c[side].get(key) if isinstance(c.get(side), dict) else None for c in entries]
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype(np.float64)


def parse_oanda_times(times: pd.Series, zone: dt.tzinfo = dt.UTC) -> pd.Series:
    """RFC3339 (nanoseconds, Z) or UNIX seconds ('1641168000.000000000') -> naive UTC."""
    text = times.astype("string")
    numeric = pd.to_numeric(text, errors="coerce")
    stamps = text.where(numeric.isna())
    parsed = _try_layout(stamps, "ISO8601")
    if parsed is None:
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    out = to_naive_utc(parsed, zone).dt.floor("s")
    if numeric.notna().any():
        unix = pd.to_datetime(numeric, unit="s", errors="coerce")
        out = out.where(numeric.isna(), unix.astype(out.dtype))
    return out


def csv_chunks(
    path: Path,
    zone: dt.tzinfo,
    zone_name: str,
    columns: str | None,
    fmt: str = "csv",
    rows: int = CHUNK_ROWS,
) -> Iterator[RawCandles]:
    """Delimited text, with a header row or without one (`date,time,o,h,l,c,v`).

    Columns come from `--columns` (header names, or 1-based column numbers in a file without a
    header) or from common header names; a file without a header is read by its field count.
    The timestamp layout is chosen on the first chunk and kept for the rest.
    """
    header = head_lines(path, 1)[0]
    sep = sniff_delimiter(header)
    if sep is None:
        raise DataError(
            f"{path}, line 1: no comma, semicolon or tab in {header[:60]!r}; a CSV needs "
            "delimited fields such as time,open,high,low,close,volume"
        )
    has_header = not is_headerless(header, sep)
    if has_header:
        headers = split_header(header, sep)
        mapping = column_mapping(path, headers, columns)
    else:
        headers = [str(i + 1) for i in range(len(header.split(sep)))]
        clock = re.match(r"^\d{1,2}:\d{2}", split_header(header, sep)[1]) is not None
        mapping = headerless_mapping(path, headers, columns, clock)
    text_columns = [headers[i] for key, i in mapping.items() if key in ("time", "date")]
    names = unique_names(headers)
    text_columns = [names[headers.index(h)] for h in text_columns]
    price_columns = [
        names[mapping[k]] for k in ("open", "high", "low", "close", "volume") if k in mapping
    ]
    if has_header:
        layout = sep.replace("\t", "<tab>").join(headers) + " (header of line 1)"
    else:
        order = sorted(mapping, key=lambda k: mapping[k])
        layout = sep.replace("\t", "<tab>").join(order) + " (no header)"
    chosen: list[str] = []  # the timestamp layout, chosen on the first chunk
    offsets: list[bool] = []  # whether the first chunk's times carried a UTC offset

    def times(table: pd.DataFrame) -> pd.Series:
        if "date" in mapping and "time" in mapping:
            stamp = table[names[mapping["date"]]].str.cat(table[names[mapping["time"]]], sep=" ")
        else:
            stamp = table[names[mapping.get("time", mapping.get("date", 0))]]
        if not len(stamp):
            return pd.Series(pd.NaT, index=stamp.index, dtype="datetime64[ns]")
        if not chosen:
            chosen.append(_choose_time_layout(stamp, path, table["line"]))
        parsed = _read_times(stamp, chosen[0])
        if not offsets:
            offsets.append(isinstance(parsed.dtype, pd.DatetimeTZDtype))
        return parsed

    tables = _read_tables(path, sep, names, has_header, text_columns, price_columns, rows)
    renames = {names[mapping[k]]: k for k in PRICE_COLUMNS + ("volume",) if k in mapping}
    for table, ts in in_utc(tables, times, zone, zone_name, path):
        renamed = table.rename(columns=renames)
        if "volume" not in mapping:
            renamed["volume"] = 0.0
        zone_read = "offsets in file" if offsets and offsets[0] else zone_name
        yield RawCandles(_assemble(renamed, ts), fmt, zone_read, layout=layout)


# ---------------------------------------------------------------- shared pieces


def _read_tables(
    path: Path,
    sep: str,
    names: list[str],
    header: bool,
    text_columns: list[str],
    number_columns: list[str] | None,
    rows: int,
) -> Iterator[pd.DataFrame]:
    """`read_csv` `rows` rows at a time, typed columns and a `line` column per row.

    A chunk whose price field is not a number is read again as text from its first row on (the
    rest of the file too), with NaN for what is not a number. Blank lines are dropped (their
    numbers are kept).
    """
    numbers = (
        number_columns
        if number_columns is not None
        else [n for n in names if n not in text_columns]
    )
    options: dict[str, Any] = dict(
        sep=sep,
        header=None,
        names=names,
        index_col=False,
        skip_blank_lines=False,
        skipinitialspace=True,
        encoding="utf-8-sig",
        engine="c",
        chunksize=rows,
    )
    typed = {n: (np.float64 if n in numbers else str) for n in names}
    first_line = 2 if header else 1
    consumed = 0  # rows (lines) read so far, blank ones included
    as_text = False
    yielded = False
    while True:
        skip = first_line - 1 + consumed
        try:
            with pd.read_csv(
                path, dtype=str if as_text else typed, skiprows=skip, **options
            ) as reader:
                for table in reader:
                    if as_text:
                        for name in numbers:
                            table[name] = pd.to_numeric(table[name].str.strip(), errors="coerce")
                    table["line"] = np.arange(len(table), dtype=np.int64) + first_line + consumed
                    consumed += len(table)
                    blank = table[names].isna().all(axis=1).to_numpy()
                    yield table.loc[~blank].reset_index(drop=True) if blank.any() else table
                    yielded = True
            if not yielded:  # no rows at all (a header alone): one empty chunk
                empty = pd.DataFrame({n: pd.Series(dtype=typed[n]) for n in names})
                empty["line"] = pd.Series(dtype=np.int64)
                yield empty
            return
        except pd.errors.ParserError as exc:
            found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if found:
                expected, line, saw = found.groups()
                raise DataError(
                    f"{path}, line {line}: "
                    f"{saw} fields where {expected} were expected (separator {sep!r}); fix or "
                    "delete that line"
                ) from None
            raise DataError(
                f"{path}: cannot be read as delimited text ({exc}); check the format"
            ) from None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a UTF-8 text file; export the candles as text") from None
        except ValueError:
            if as_text:
                raise
            as_text = True  # a price is not a number: read this chunk and the rest as text


def _first_layout(text: pd.Series, layouts: tuple[str, ...]) -> pd.Series:
    """Times in the layout the first value has; the other layouts fill the rows it misses."""
    parsed = _to_datetime_by_value(text, layouts[0])
    for layout in layouts[1:]:
        missing = (parsed.isna() & text.notna()).to_numpy()
        if not missing.any():
            break
        parsed[missing] = pd.to_datetime(text[missing], format=layout, errors="coerce")
    return parsed


def _to_datetime_by_value(text: pd.Series, layout: str) -> pd.Series:
    """`to_datetime` over the distinct values only: dates and clock times repeat a lot."""
    codes, uniques = pd.factorize(text)  # codes -1 where missing
    parsed = pd.to_datetime(pd.Series(uniques), format=layout, errors="coerce").to_numpy()
    out = np.full(len(codes), np.datetime64("NaT"), dtype=parsed.dtype)
    present = codes >= 0
    out[present] = parsed[codes[present]]
    return pd.Series(out, index=text.index)


def _assemble(table: pd.DataFrame, ts: pd.Series) -> pd.DataFrame:
    """The RawCandles frame: ts, prices and volume as float64, and line."""
    frame = pd.DataFrame({"ts": ts.to_numpy()})
    for name in PRICE_COLUMNS + ("volume",):
        frame[name] = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
    frame["line"] = table["line"].to_numpy(dtype=np.int64)
    return frame


def _choose_time_layout(stamp: pd.Series, path: Path, lines: pd.Series) -> str:
    """The layout of a generic CSV's timestamps (a TIME_LAYOUTS entry, 'unix-s' or 'unix-ms').

    Tried on a sample; between two that fit (day-first, month-first) the one that reads more of
    `stamp` in time order wins.
    """
    sample = stamp.dropna().iloc[:_SAMPLE_ROWS]
    numeric = pd.to_numeric(sample, errors="coerce")
    if len(sample) and numeric.notna().all():
        return "unix-ms" if float(numeric.median()) > 1e11 else "unix-s"
    viable: list[str] = []
    for layout in TIME_LAYOUTS:
        parsed = _try_layout(sample, layout)
        if parsed is not None and parsed.notna().mean() >= 0.9:
            viable.append(layout)
            if layout == "ISO8601" or len(viable) == 2:
                break
    if not viable:
        first = int(lines.iloc[0]) if len(lines) else 2
        example = sample.iloc[0] if len(sample) else ""
        raise DataError(
            f"{path}, line {first}: timestamp {example!r} is in no layout I know; use ISO 8601 "
            "(2022-01-03 00:00:00) or pass --format mt4/histdata if the file is one of those"
        )

    def badness(layout: str) -> tuple[int, bool]:
        series = _read_times(stamp, layout)
        return int(series.isna().sum()), not series.dropna().is_monotonic_increasing

    return min(viable, key=badness)  # fewer failures, then in time order, then listed first


def _read_times(stamp: pd.Series, layout: str) -> pd.Series:
    """`stamp` read in `layout`: naive, or tz-aware where the times carry an offset (or unix)."""
    if layout.startswith("unix-"):
        values = pd.to_numeric(stamp, errors="coerce")
        return pd.to_datetime(values, unit=layout[5:], errors="coerce", utc=True)
    parsed = _try_layout(stamp, layout)
    if parsed is None:
        return pd.Series(pd.NaT, index=stamp.index, dtype="datetime64[ns]")
    return parsed


def _try_layout(text: pd.Series, layout: str) -> pd.Series | None:
    try:
        return pd.to_datetime(text, format=layout, errors="coerce")
    except ValueError:  # mixed offsets: read every one into UTC
        try:
            return pd.to_datetime(text, format=layout, errors="coerce", utc=True)
        except ValueError:
            return None
