"""`micro data import FILE`: read a candle file, validate every row, write it all or nothing.

The parsers live in `micro.data.formats`; this module checks what they read (vectorised, so a
file of millions of rows costs seconds) and writes through `micro.data.store`. Nothing is
written when any check fails: the store is opened only after the whole file has passed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from micro import instruments
from micro.data import formats, store, weeks
from micro.data.columns import PRICE_COLUMNS
from micro.data.formats import RawCandles
from micro.errors import DataError
from micro.logs import setup_logging
from micro.runtime import Context

log = logging.getLogger("micro.data")


@dataclass(frozen=True)
class CheckedCandles:
    """Candles that passed every check: unique, sorted, UTC minute bars ready for the store."""

    frame: pd.DataFrame
    """Columns ts (naive UTC), open, high, low, close, volume; unique and sorted by ts."""
    rows_read: int
    duplicates_dropped: int
    first_duplicate_line: int | None


def run_import(ctx: Context) -> int:
    """The `micro data import` handler: parse, check, write; a one-line summary at the end.

    Logs go to the console until every check has passed: a refused file leaves no log file.
    """
    setup_logging(None, verbose=ctx.verbose)
    args = ctx.args
    path = Path(args.file).expanduser()
    name = args.instrument or ctx.config.data.instrument
    instrument = instruments.instrument(name)
    raw = formats.parse(path, args.format, tz=args.tz, columns=args.columns)
    if args.tz and raw.zone == "offsets in file":
        log.warning("%s: timestamps carry their own UTC offset; --tz %s is ignored", path, args.tz)
    checked = check_candles(raw, path, instrument)
    zone_level, zone_note = check_zone(raw, checked, path, explicit=args.tz)
    ctx.start_logging("data")
    with store.connect(ctx.home.store) as con:
        written = store.write_candles(con, instrument.name, checked.frame, replace=args.replace)
    if checked.duplicates_dropped:
        log.info(
            "%s: dropped %d identical duplicate row(s), the first at %s %d",
            path,
            checked.duplicates_dropped,
            raw.unit,
            checked.first_duplicate_line,
        )
    if raw.skipped_incomplete:
        log.info("%s: skipped %d incomplete candle(s)", path, raw.skipped_incomplete)
    log.log(zone_level, "%s", zone_note)
    span = checked.frame["ts"]
    log.info(
        "%s: read %d bars from %s (%s, source zone %s): %d new bars, %d already stored, "
        "%d replaced, %d identical duplicates dropped; span %s to %s UTC",
        instrument.name,
        checked.rows_read,
        path.name,
        raw.format,
        raw.zone,
        written.inserted,
        written.unchanged,
        written.replaced,
        checked.duplicates_dropped,
        span.iloc[0].strftime("%Y-%m-%d %H:%M"),
        span.iloc[-1].strftime("%Y-%m-%d %H:%M"),
    )
    return 0


def check_zone(
    raw: RawCandles, checked: CheckedCandles, path: Path, explicit: str | None
) -> tuple[int, str]:
    """Refuse a file whose weeks do not sit on the FX week in UTC, naming the `--tz` that fits.

    With `--tz` given the user's zone wins: a misfit is a warning, not a refusal. Returns the
    log level and line to print once the import has succeeded.
    """
    fit = weeks.week_fit(checked.frame["ts"])
    shift = fit.shift_hours
    if not fit.edges:
        return logging.INFO, f"{path}: no weekend in the file; its time zone was not checked"
    if shift == 0:
        return logging.INFO, f"{path}: {fit.describe()}, as the FX week in UTC"
    zone = raw.zone if raw.zone != "offsets in file" else "UTC"
    offsets = {e.at: formats.zone_offset_hours(zone, e.at) for e in fit.edges}
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


def check_candles(
    raw: RawCandles, path: Path, instrument: instruments.Instrument
) -> CheckedCandles:
    """Every check of an import, vectorised; the first failure is a DataError naming its line."""
    frame = raw.frame
    where = _Where(path, raw)
    if frame.empty:
        raise DataError(f"{path}: no candles in the file; check that it is the right file")
    prices = frame.loc[:, list(PRICE_COLUMNS)].to_numpy(dtype=np.float64)  # [N, 4]
    volume = frame["volume"].to_numpy(dtype=np.float64)  # [N]
    ts = frame["ts"]

    unreadable = ts.isna().to_numpy() | np.isnan(prices).any(axis=1) | np.isnan(volume)
    where.fail_if(unreadable, "cannot read the row", f"expected {raw.layout}; fix or delete it")

    not_positive = ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1)
    where.fail_if(
        not_positive,
        "a price is zero, negative or infinite",
        "fix or delete the row (prices must be positive)",
        lambda i: (
            f" (open {prices[i, 0]:g}, high {prices[i, 1]:g}, low {prices[i, 2]:g}, "
            f"close {prices[i, 3]:g})"
        ),
    )
    where.fail_if(
        ~np.isfinite(volume) | (volume < 0),
        "volume is negative or infinite",
        "fix or delete the row",
    )
    open_, high, low, close = prices.T
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    where.fail_if(
        high < top,
        "high is below max(open, close)",
        "the row is corrupt or its columns are in the wrong order (expected open, high, low, "
        "close)",
        lambda i: f" (high {high[i]:g}, open {open_[i]:g}, close {close[i]:g})",
    )
    where.fail_if(
        low > bottom,
        "low is above min(open, close)",
        "the row is corrupt or its columns are in the wrong order (expected open, high, low, "
        "close)",
        lambda i: f" (low {low[i]:g}, open {open_[i]:g}, close {close[i]:g})",
    )

    stamps = ts.to_numpy(dtype="datetime64[ns]")  # [N] naive UTC
    off_minute = (stamps - stamps.astype("datetime64[m]")) != np.timedelta64(0, "ns")
    where.fail_if(
        off_minute,
        "timestamp is not on a minute boundary (1-minute bars open at :00 seconds)",
        "this importer takes 1-minute bars only",
        lambda i: f" ({pd.Timestamp(stamps[i])} UTC)",
    )
    step = np.diff(stamps)  # [N-1]
    backwards = np.concatenate([[False], step < np.timedelta64(0, "ns")])
    where.fail_if(
        backwards,
        "timestamp goes backwards",
        "sort the file by time (oldest first) or remove the stray row",
        lambda i: f" ({pd.Timestamp(stamps[i])} UTC after {pd.Timestamp(stamps[i - 1])} UTC)",
    )
    repeated = np.concatenate([[False], step == np.timedelta64(0, "ns")])
    values = np.column_stack([prices, volume])  # [N, 5]
    same_values = np.concatenate([[False], (values[1:] == values[:-1]).all(axis=1)])
    where.fail_if(
        repeated & ~same_values,
        "duplicate timestamp with different values (a conflict)",
        "keep one of the two rows",
        lambda i: f" ({pd.Timestamp(stamps[i])} UTC; close {close[i - 1]:g} then {close[i]:g})",
    )
    dropped = repeated & same_values
    kept = frame.loc[~dropped, ["ts", *PRICE_COLUMNS, "volume"]].reset_index(drop=True)
    _check_price_scale(path, instrument, float(np.median(close)))
    first_duplicate = int(frame["line"].to_numpy()[np.argmax(dropped)]) if dropped.any() else None
    return CheckedCandles(
        frame=kept,
        rows_read=len(frame),
        duplicates_dropped=int(dropped.sum()),
        first_duplicate_line=first_duplicate,
    )


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


class _Where:
    """Turns a mask of bad rows into one DataError: file, first line, what, count, the fix."""

    def __init__(self, path: Path, raw: RawCandles) -> None:
        self.path = path
        self.raw = raw
        self.lines = raw.frame["line"].to_numpy()

    def fail_if(
        self,
        bad: np.ndarray,
        what: str,
        fix: str,
        detail: Callable[[int], str] | None = None,
    ) -> None:
        if not bad.any():
            return
        first = int(np.argmax(bad))
        count = int(bad.sum())
        line = int(self.lines[first])
        shown = detail(first) if detail is not None else self._text(line)
        more = f"; {count - 1} more row(s) like it" if count > 1 else ""
        raise DataError(
            f"{self.path}, {self.raw.unit} {line}: {what}{shown}{more}; {fix} "
            "(nothing was imported)"
        )

    def _text(self, line: int) -> str:
        if self.raw.unit != "line":
            return ""
        text = _line_text(self.path, line)
        return f" {text[:80]!r}" if text is not None else ""


def _line_text(path: Path, line: int) -> str | None:
    """Line `line` (1-based) of `path` as text, for error messages only."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for number, text in enumerate(fh, start=1):
            if number == line:
                return text.rstrip("\r\n")
    return None
