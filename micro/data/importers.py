"""`micro data import FILE`: read a candle file, validate every row, write it all or nothing.

The parsers live in `micro.data.formats`; this module checks what they read and writes through
`micro.data.store`. The file streams: each chunk of `formats.CHUNK_ROWS` rows is checked
(vectorised, so millions of rows cost seconds) and staged in a DuckDB file in a temporary folder,
so memory does not grow with the file. Nothing is written when any check fails: the store is
opened only after the whole file has passed, and the staged bars go in in one transaction.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from micro import instruments
from micro.data import formats, store, weeks, zones
from micro.data.columns import PRICE_COLUMNS
from micro.data.formats import RawCandles
from micro.errors import DataError
from micro.logs import setup_logging
from micro.runtime import Context

log = logging.getLogger("micro.data")

STAGING_MEMORY = "512MB"
"""DuckDB's memory limit while staging a file (it spills to disk beyond it). The merge into the
store has none: the store's primary-key index of a 10-million-bar import needs about 1.3 GB."""


def run_import(ctx: Context) -> int:
    """The `micro data import` handler: parse, check, write; a one-line summary at the end.

    Logs go to the console until every check has passed: a refused file leaves no log file.
    """
    setup_logging(None, verbose=ctx.verbose)
    args = ctx.args
    path = Path(args.file).expanduser()
    name = args.instrument or ctx.config.data.instrument
    instrument = instruments.instrument(name)
    with tempfile.TemporaryDirectory(prefix="micro-import-") as folder:
        staged = Path(folder) / "staged.duckdb"
        checks, raw = stage_file(path, staged, args.format, args.tz, args.columns)
        if args.tz and raw.zone == "offsets in file":
            log.warning(
                "%s: timestamps carry their own UTC offset; --tz %s is ignored", path, args.tz
            )
        with duckdb.connect(str(staged), read_only=True) as con:
            median, first, last = store.one_row(
                con, "SELECT median(close), min(ts), max(ts) FROM candles"
            )
        _check_price_scale(path, instrument, float(median))
        zone_level, zone_note = check_zone(raw, checks.weekends.fit(), path, explicit=args.tz)
        ctx.start_logging("data")
        with store.connect(ctx.home.store) as con:
            written = store.write_staged_candles(con, instrument.name, staged, args.replace)
    if checks.duplicates_dropped:
        log.info(
            "%s: dropped %d identical duplicate row(s), the first at %s %d",
            path,
            checks.duplicates_dropped,
            raw.unit,
            checks.first_duplicate_line,
        )
    if checks.skipped_incomplete:
        log.info("%s: skipped %d incomplete candle(s)", path, checks.skipped_incomplete)
    log.log(zone_level, "%s", zone_note)
    log.info(
        "%s: read %d bars from %s (%s, source zone %s): %d new bars, %d already stored, "
        "%d replaced, %d identical duplicates dropped; span %s to %s UTC",
        instrument.name,
        checks.rows_read,
        path.name,
        raw.format,
        raw.zone,
        written.inserted,
        written.unchanged,
        written.replaced,
        checks.duplicates_dropped,
        pd.Timestamp(first).strftime("%Y-%m-%d %H:%M"),
        pd.Timestamp(last).strftime("%Y-%m-%d %H:%M"),
    )
    return 0


def stage_file(
    path: Path,
    staged: Path,
    fmt: str,
    tz: str | None,
    columns: str | None,
    rows: int = formats.CHUNK_ROWS,
) -> tuple[CandleChecks, RawCandles]:
    """Read and check `path` a chunk at a time into the `candles` table of the new file `staged`.

    Returns the checks' tallies and the last chunk (the file's format, zone and layout). The
    first failed check is a DataError naming its line and how many rows fail it in the file.
    """
    checks = CandleChecks(path)
    raw: RawCandles | None = None
    with duckdb.connect(str(staged)) as con:
        con.execute(f"SET memory_limit = '{STAGING_MEMORY}'")
        con.execute(
            "CREATE TABLE candles (ts TIMESTAMP, open DOUBLE, high DOUBLE, low DOUBLE, "
            "close DOUBLE, volume DOUBLE)"
        )
        try:
            for raw in formats.read_chunks(path, fmt, tz, columns, rows):
                kept = checks.check(raw)
                if len(kept):
                    con.register("chunk", kept)
                    con.execute(
                        f"INSERT INTO candles SELECT {', '.join(store.CANDLE_COLUMNS)} FROM chunk"
                    )
                    con.unregister("chunk")
        except DataError:
            if checks.failure is None:
                raise  # a read error before any failed check; else the earlier row is reported
        checks.raise_failure()
    if raw is None or checks.rows_read == 0:
        raise DataError(f"{path}: no candles in the file; check that it is the right file")
    return checks, raw


def check_zone(
    raw: RawCandles, fit: weeks.WeekFit, path: Path, explicit: str | None
) -> tuple[int, str]:
    """Refuse a file whose weeks do not sit on the FX week in UTC, naming the `--tz` that fits.

    With `--tz` given the user's zone wins: a misfit is a warning, not a refusal. Returns the
    log level and line to print once the import has succeeded.
    """
    shift = fit.shift_hours
    if not fit.edges:
        return logging.INFO, f"{path}: no weekend in the file; its time zone was not checked"
    if shift == 0:
        return logging.INFO, f"{path}: {fit.describe()}, as the FX week in UTC"
    zone = raw.zone if raw.zone != "offsets in file" else "UTC"
    offsets = {e.at: zones.zone_offset_hours(zone, e.at) for e in fit.edges}
    likely = weeks.likely_zone(fit, offsets)
    seen = (
        f"{path}: read in {raw.zone}, its {fit.describe()} sit {abs(shift)} h "
        f"{'late' if shift > 0 else 'early'} of the FX week (Sun ~21:00/22:00 -> Fri "
        "~21:00/22:00 UTC)"
    )
    if explicit or raw.zone == "offsets in file":
        return logging.WARNING, f"{seen}; imported as asked (the likely zone is --tz {likely})"
    raise DataError(
        f"{seen}: the file is probably in {likely}; pass --tz {likely} (or --tz "
        f"{raw.zone} to import it as it is); nothing was imported"
    )


@dataclass
class _Failure:
    """The first failed check of a file: where, what, the fix, and the rows failing it so far."""

    check: str
    where: str
    fix: str
    count: int


class CandleChecks:
    """Every row check of an import, a chunk at a time, vectorised within each chunk.

    The first chunk with a failing row decides (its first failing check, in the order below, at
    its first failing row); the later chunks are only counted for that same check, so the
    message gives the whole file's count. Order and time checks see the last row of the
    previous chunk. Also tallies the rows, the identical duplicates dropped and the weekends.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows_read = 0
        self.duplicates_dropped = 0
        self.first_duplicate_line: int | None = None
        self.skipped_incomplete = 0
        self.failure: _Failure | None = None
        self.weekends = weeks.Weekends()
        self._last: tuple[np.datetime64, np.ndarray] | None = None  # ts [ns], values [5]

    def check(self, raw: RawCandles) -> pd.DataFrame:
        """The chunk's rows that passed (identical duplicates dropped); none once any failed."""
        frame = raw.frame
        self.rows_read += len(frame)
        self.skipped_incomplete += raw.skipped_incomplete
        empty = frame.iloc[:0].loc[:, list(store.CANDLE_COLUMNS)]
        if frame.empty:
            return empty
        prices = frame.loc[:, list(PRICE_COLUMNS)].to_numpy(dtype=np.float64)  # [N, 4]
        volume = frame["volume"].to_numpy(dtype=np.float64)  # [N]
        stamps = frame["ts"].to_numpy(dtype="datetime64[ns]")  # [N] naive UTC
        values = np.column_stack([prices, volume])  # [N, 5]
        # The previous chunk's last row ahead of this chunk's, for the checks of order.
        known = self._last is not None
        before_ts = np.array([self._last[0] if self._last else "NaT"], dtype="datetime64[ns]")
        before_values = self._last[1] if self._last else np.full(5, np.nan)
        previous_ts = np.concatenate([before_ts, stamps[:-1]])  # [N]: the row before each
        previous_values = np.vstack([before_values, values[:-1]])  # [N, 5]
        step = stamps - previous_ts  # [N]; NaT for a file's first row
        first_row = np.zeros(len(stamps), dtype=bool)
        first_row[0] = not known
        backwards = ~first_row & (step < np.timedelta64(0, "ns"))
        repeated = ~first_row & (step == np.timedelta64(0, "ns"))
        same_values = (values == previous_values).all(axis=1)
        open_, high, low, close = prices.T
        top, bottom = np.maximum(open_, close), np.minimum(open_, close)
        off_minute = (stamps - stamps.astype("datetime64[m]")) != np.timedelta64(0, "ns")

        def shown_prices(i: int) -> str:
            return (
                f" (open {prices[i, 0]:g}, high {prices[i, 1]:g}, low {prices[i, 2]:g}, "
                f"close {prices[i, 3]:g})"
            )

        wrong_order = (
            "the row is corrupt or its columns are in the wrong order (expected open, high, "
            "low, close)"
        )
        checks: list[tuple[str, Callable[[], np.ndarray], str, Callable[[int], str] | None]] = [
            (
                "cannot read the row",
                lambda: (
                    frame["ts"].isna().to_numpy() | np.isnan(prices).any(axis=1) | np.isnan(volume)
                ),
                f"expected {raw.layout}; fix or delete it",
                None,
            ),
            (
                "a price is zero, negative or infinite",
                lambda: ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1),
                "fix or delete the row (prices must be positive)",
                shown_prices,
            ),
            (
                "volume is negative or infinite",
                lambda: ~np.isfinite(volume) | (volume < 0),
                "fix or delete the row",
                None,
            ),
            (
                "high is below max(open, close)",
                lambda: high < top,
                wrong_order,
                lambda i: f" (high {high[i]:g}, open {open_[i]:g}, close {close[i]:g})",
            ),
            (
                "low is above min(open, close)",
                lambda: low > bottom,
                wrong_order,
                lambda i: f" (low {low[i]:g}, open {open_[i]:g}, close {close[i]:g})",
            ),
            (
                "timestamp is not on a minute boundary (1-minute bars open at :00 seconds)",
                lambda: off_minute,
                "this importer takes 1-minute bars only",
                lambda i: f" ({pd.Timestamp(stamps[i])} UTC)",
            ),
            (
                "timestamp goes backwards",
                lambda: backwards,
                "sort the file by time (oldest first) or remove the stray row",
                lambda i: (
                    f" ({pd.Timestamp(stamps[i])} UTC after {pd.Timestamp(previous_ts[i])} UTC)"
                ),
            ),
            (
                "duplicate timestamp with different values (a conflict)",
                lambda: repeated & ~same_values,
                "keep one of the two rows",
                lambda i: (
                    f" ({pd.Timestamp(stamps[i])} UTC; close {previous_values[i, 3]:g} "
                    f"then {close[i]:g})"
                ),
            ),
        ]
        lines = frame["line"].to_numpy()
        for what, bad_rows, fix, detail in checks:
            if self.failure is not None and self.failure.check != what:
                continue
            bad = bad_rows()
            if not bad.any():
                continue
            if self.failure is not None:
                self.failure.count += int(bad.sum())
                return empty
            first = int(np.argmax(bad))
            shown = detail(first) if detail is not None else self._text(raw, int(lines[first]))
            where = f"{self.path}, {raw.unit} {int(lines[first])}: {what}{shown}"
            self.failure = _Failure(what, where, fix, int(bad.sum()))
            return empty
        if self.failure is not None:
            return empty
        dropped = repeated & same_values
        if dropped.any() and self.first_duplicate_line is None:
            self.first_duplicate_line = int(lines[np.argmax(dropped)])
        self.duplicates_dropped += int(dropped.sum())
        self._last = (stamps[-1], values[-1])
        kept = frame.loc[~dropped, list(store.CANDLE_COLUMNS)]
        self.weekends.add(kept["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
        return kept

    def raise_failure(self) -> None:
        """The first failed check as one DataError: file, line, what, count, the fix."""
        failure = self.failure
        if failure is None:
            return
        more = f"; {failure.count - 1} more row(s) like it" if failure.count > 1 else ""
        raise DataError(f"{failure.where}{more}; {failure.fix} (nothing was imported)")

    def _text(self, raw: RawCandles, line: int) -> str:
        if raw.unit != "line":
            return ""
        text = _line_text(self.path, line)
        return f" {text[:80]!r}" if text is not None else ""


def _check_price_scale(path: Path, instrument: instruments.Instrument, median: float) -> None:
    """Refuse prices a power of ten away from the instrument's typical level."""
    if instrument.typical_price is None:
        log.warning(
            "%s: no typical price known for %s; skipping the price-scale check",
            path,
            instrument.name,
        )
        return
    power = round(math.log10(median / instrument.typical_price))
    if abs(power) >= 1:
        raise DataError(
            f"{path}: prices look like {median:.6g} but {instrument.name} trades near "
            f"{instrument.typical_price:g}: wrong --instrument or a price scale off by "
            f"10^{power}"
        )


def _line_text(path: Path, line: int) -> str | None:
    """Line `line` (1-based) of `path` as text, for error messages only."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for number, text in enumerate(fh, start=1):
            if number == line:
                return text.rstrip("\r\n")
    return None
