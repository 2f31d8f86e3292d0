"""Generic CSV columns: header names recognised, files without a header, `--columns` mappings.

`micro.data.formats` reads the rows; this module decides which column holds which field.
"""

from __future__ import annotations

import re
from pathlib import Path

from micro.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
FIELDS = ("time", "date", "open", "high", "low", "close", "volume")

# Header names recognised in generic CSV, normalised (lower case, letters and digits only),
# in order of preference.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "datetime", "timestamp", "gmttime", "localtime", "timeutc", "datetimeutc"),
    "date": ("date", "day"),
    "open": ("open", "o", "openprice", "openmid", "first"),
    "high": ("high", "h", "highprice", "highmid", "max"),
    "low": ("low", "l", "lowprice", "lowmid", "min"),
    "close": ("close", "c", "closeprice", "closemid", "last"),
    "volume": ("volume", "tickvol", "tickvolume", "vol", "v", "volumes", "ticks"),
}

_HEADERLESS_LINE = re.compile(r"^\d{4}[-./]?\d{2}[-./]?\d{2}")  # a data row, not a header


def column_mapping(path: Path, headers: list[str], columns: str | None) -> dict[str, int]:
    """Field -> header index, from `--columns time=Date,...` or recognised header names."""
    mapping: dict[str, int] = {}
    if columns:
        lookup = {h.strip().lower(): i for i, h in enumerate(headers)}
        for item in columns.split(","):
            key, sep, header = item.partition("=")
            key, header = key.strip().lower(), header.strip()
            if not sep or key not in FIELDS:
                raise DataError(
                    f"--columns {item.strip()!r}: expected FIELD=HEADER with FIELD one of "
                    f"{', '.join(FIELDS)}, e.g. --columns time=Date,open=O,high=H,low=L,close=C"
                )
            if header.lower() not in lookup:
                raise DataError(
                    f"--columns {key}={header}: {path} has no column {header!r} (its header: "
                    f"{', '.join(headers)})"
                )
            mapping[key] = lookup[header.lower()]
    names = [normalise_header(h) for h in headers]
    for key in FIELDS:
        if key not in mapping and (found := find_field(names, key)) is not None:
            if found not in mapping.values():
                mapping[key] = found
    if "time" not in mapping and "date" not in mapping:
        missing = ["time"]
    else:
        missing = [k for k in PRICE_COLUMNS if k not in mapping]
    if missing:
        raise DataError(
            f"{path}, line 1: no column for {', '.join(missing)} in the header "
            f"({', '.join(headers)}); map them, e.g. --columns time=Date,open=O,high=H,low=L,"
            "close=C,volume=V"
        )
    return mapping


_HEADERLESS_COLUMNS = {
    7: ("date", "time", "open", "high", "low", "close", "volume"),
    6: ("time", "open", "high", "low", "close", "volume"),
    5: ("time", "open", "high", "low", "close"),
}


def is_headerless(line: str, sep: str) -> bool:
    """True when line 1 is already a data row: a date first and at least four numbers after."""
    fields = split_header(line, sep)
    numbers = sum(re.fullmatch(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?", f) is not None for f in fields)
    return bool(_HEADERLESS_LINE.match(fields[0])) and numbers >= 4


def headerless_mapping(
    path: Path, numbers: list[str], columns: str | None, second_is_clock: bool
) -> dict[str, int]:
    """Field -> column index of a file without a header: by `--columns` or its field count."""
    if columns:
        return column_mapping(path, numbers, columns)
    known = _HEADERLESS_COLUMNS.get(len(numbers))
    if second_is_clock and len(numbers) in (6, 7):  # date, time, prices (and volume)
        known = ("date", "time", "open", "high", "low", "close", "volume")[: len(numbers)]
    if known is None:
        raise DataError(
            f"{path}, line 1: no header and {len(numbers)} fields; map them by column number, "
            "e.g. --columns date=1,time=2,open=3,high=4,low=5,close=6,volume=7"
        )
    return {key: i for i, key in enumerate(known)}


def find_field(names: list[str], key: str) -> int | None:
    for alias in HEADER_ALIASES[key]:
        if alias in names:
            return names.index(alias)
    return None


def normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def header_fields(line: str) -> tuple[str, ...]:
    sep = sniff_delimiter(line) or ","
    return tuple(h.strip().lower() for h in split_header(line, sep))


def split_header(line: str, sep: str) -> list[str]:
    return [h.strip().strip('"').strip("'").strip() for h in line.split(sep)]


def unique_names(headers: list[str]) -> list[str]:
    """Column names for read_csv: the headers, made unique and never empty."""
    seen: dict[str, int] = {}
    out = []
    for i, h in enumerate(headers):
        name = h or f"column{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def sniff_delimiter(line: str, candidates: tuple[str, ...] = (",", ";", "\t")) -> str | None:
    counts = {c: line.count(c) for c in candidates}
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] > 0 else None
