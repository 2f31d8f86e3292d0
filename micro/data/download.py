"""`micro data download`: OANDA M1 mid candles into the store, paginated and incremental.

Pages are `from` + `count=5000` (OANDA's maximum), each starting just after the last candle the
previous page returned; the last page asks for `from`..`to` instead. Only `complete` candles are
kept. Each page is written in its own transaction, so an interrupted download keeps every page
it finished, and the next run resumes after the newest stored bar (within `--from`..`--to`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from micro import instruments
from micro.data import store
from micro.data.oanda_client import MAX_CANDLES_PER_REQUEST, OandaClient, token_from_env
from micro.errors import DataError, UserError
from micro.runtime import Context

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = logging.getLogger("micro.data")

ONE_MINUTE = pd.Timedelta(minutes=1)
PAGE_WINDOW = ONE_MINUTE * MAX_CANDLES_PER_REQUEST
"""A page never covers more than this span, so `from`..`to` stays within 5000 candles."""
LOG_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class Page:
    """One answer of the candles endpoint, reduced to what the store takes."""

    candles: pd.DataFrame
    """Complete bars in [start, end): ts (naive UTC), open, high, low, close, volume."""
    cursor: pd.Timestamp
    """Where the next page starts (UTC): just after the last candle returned."""
    incomplete: int
    """Candles skipped because they were still forming."""


def run_download(ctx: Context) -> int:
    """The `micro data download` handler: resume or start, page through, write each page."""
    ctx.start_logging("data")
    args = ctx.args
    instrument = instruments.instrument(args.instrument or ctx.config.data.instrument).name
    token = token_from_env()
    start_arg = parse_utc(args.start, "--from")
    end_arg = parse_utc(args.end, "--to")
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("min")
    end = min(end_arg, now) if end_arg is not None else now
    if start_arg is not None and end_arg is not None and end_arg <= start_arg:
        raise UserError(f"--to {args.end} is not after --from {args.start}; swap or fix them")
    writer = _StoreWriter(ctx.home.store, instrument)
    try:
        resume = writer.last_stored(start_arg, end)
        if start_arg is None and resume is None:
            raise DataError(
                f"no {instrument} bars stored in {ctx.home.store} to resume from; pass --from "
                "YYYY-MM-DD for the first download"
            )
        start = resume + ONE_MINUTE if resume is not None else start_arg
        assert start is not None
        if start >= end and resume is None:
            raise UserError(
                f"--from {args.start} is not before {_minute(end)} UTC (--to or now); "
                "nothing to download"
            )
        if start >= end:
            log.info(
                "%s: already up to date (last stored bar %s UTC)",
                instrument,
                _minute(start - ONE_MINUTE),
            )
            return 0
        if resume is not None:
            log.info("%s: resuming after the last stored bar, %s UTC", instrument, _minute(resume))
        with OandaClient(ctx.config.live.oanda, token) as client, _Progress(start, end) as bar:
            incomplete = 0
            for page in fetch_pages(client, instrument, start, end):
                writer.write(page.candles)
                incomplete += page.incomplete
                bar.update(page.cursor, writer.inserted)
            requests = client.requests_sent
    finally:
        writer.close()
    if incomplete:
        log.info("%s: skipped %d candle(s) still forming", instrument, incomplete)
    log.info(
        "%s: downloaded M1 mid candles %s to %s UTC in %d request(s): %d new bars, %d already "
        "stored",
        instrument,
        _minute(start),
        _minute(end),
        requests,
        writer.inserted,
        writer.unchanged,
    )
    return 0


def fetch_pages(
    client: OandaClient, instrument: str, start: pd.Timestamp, end: pd.Timestamp
) -> Iterator[Page]:
    """Pages of complete M1 mid candles covering [start, end) (naive UTC), oldest first."""
    cursor = start
    while cursor < end:
        last_page = end - cursor <= PAGE_WINDOW
        if last_page:
            frame = client.candles(instrument, start=cursor, end=end)
        else:
            frame = client.candles(instrument, start=cursor, count=MAX_CANDLES_PER_REQUEST)
        reached_present = last_page or len(frame) < MAX_CANDLES_PER_REQUEST
        in_range = frame[(frame["ts"] >= cursor) & (frame["ts"] < end)]
        complete = in_range[in_range["complete"]]
        candles = (
            complete.drop(columns="complete")
            .sort_values("ts")
            .drop_duplicates("ts", keep="last")
            .reset_index(drop=True)
        )
        if len(frame):
            cursor = max(cursor, frame["ts"].max() + ONE_MINUTE)
        else:
            cursor = cursor + PAGE_WINDOW  # nothing in the window (weekend, holiday)
        if reached_present:
            cursor = max(cursor, end)
        yield Page(candles, min(cursor, end), int((~in_range["complete"]).sum()))


def parse_utc(text: str | None, option: str) -> pd.Timestamp | None:
    """A `--from`/`--to` value (YYYY-MM-DD or ISO time; naive means UTC) as naive UTC."""
    if text is None:
        return None
    try:
        moment = pd.Timestamp(text)
    except ValueError:
        moment = None
    if moment is None or pd.isna(moment):
        raise UserError(f"{option} {text}: not a date; use YYYY-MM-DD (UTC), e.g. 2022-01-01")
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return moment.floor("min")


def _minute(moment: pd.Timestamp) -> str:
    return str(moment.strftime("%Y-%m-%d %H:%M"))


class _StoreWriter:
    """Writes pages to the store, opening it only once there is something to write."""

    def __init__(self, path: Path, instrument: str) -> None:
        self.path = path
        self.instrument = instrument
        self.inserted = 0
        self.unchanged = 0
        self._con: duckdb.DuckDBPyConnection | None = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = store.connect(self.path)
        return self._con

    def last_stored(self, lower: pd.Timestamp | None, upper: pd.Timestamp) -> pd.Timestamp | None:
        """The newest stored bar in [lower, upper), or the newest at all without `lower`."""
        if not self.path.exists():
            return None
        con = self._connection()
        if lower is None:
            return store.last_candle_time(con, self.instrument)
        row = con.execute(
            "SELECT max(ts) FROM candles WHERE instrument = ? AND ts >= ? AND ts < ?",
            [self.instrument, lower.to_pydatetime(), upper.to_pydatetime()],
        ).fetchone()
        return None if row is None or row[0] is None else pd.Timestamp(row[0])

    def write(self, candles: pd.DataFrame) -> None:
        if candles.empty:
            return
        result = store.write_candles(self._connection(), self.instrument, candles)
        self.inserted += result.inserted
        self.unchanged += result.unchanged

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class _Progress:
    """Days covered so far: a transient rich bar on a terminal, else a log line every few s."""

    def __init__(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        self.start = start
        self.total_days = (end - start) / pd.Timedelta(days=1)
        self.interactive = sys.stderr.isatty()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_log = 0.0

    def __enter__(self) -> _Progress:
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]download[/bold] {task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.1f}/{task.total:.1f} days"),
                TextColumn("{task.fields[bars]} new bars"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                f"from {_minute(self.start)} UTC", total=self.total_days, bars=0
            )
        return self

    def update(self, cursor: pd.Timestamp, new_bars: int) -> None:
        days = (cursor - self.start) / pd.Timedelta(days=1)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=days, bars=new_bars)
            return
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_SECONDS or days >= self.total_days:
            self._last_log = now
            log.info(
                "download: reached %s UTC, %.1f of %.1f days, %d new bars",
                _minute(cursor),
                days,
                self.total_days,
                new_bars,
            )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
