"""The bar clock and the trading schedule: the trader's time comes from the broker's candles.

The clock polls the broker for completed M1 candles (every `live.poll_seconds` while nothing is
new, at once again while it is catching up), so a replaying server or the sim broker drives the
trader at any speed; the wall clock only says that the candle clock has stalled. Each candle is
handed out exactly once and in time order: duplicates and candles older than the last one are
dropped, gaps are counted and reported.

The schedule says what the trader does on a bar (`Schedule.plan`): `decide` (act),
`session_end` (close any position at this close, no decision, like the env's terminal bar) or
`idle` (outside the replayed sessions: features only). Live trading decides on every bar; the
schedule of a replay owns the session-end close, so the trader has no replay branch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from micro.live.broker import Broker, Candle

log = logging.getLogger("micro.live")

BAR_SECONDS = 60
Role = Literal["decide", "session_end", "idle"]


class BarClock:
    """Hands out each completed candle of the broker once, oldest first."""

    def __init__(
        self,
        broker: Broker,
        last_ts: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.last_ts = last_ts  # open time of the newest candle handed out (s UTC)
        self.gaps = 0  # times the clock skipped at least one minute
        self.duplicates = 0  # candles dropped because they were already handed out
        self._monotonic = monotonic
        self._last_new = monotonic()

    def prime(self, candles: list[Candle]) -> list[Candle]:
        """The warm-up candles in order, once each; later polls start after the newest."""
        return self._accept(candles)

    def poll(self) -> list[Candle]:
        """New completed candles since the last one (may raise BrokerError)."""
        since = self.last_ts if self.last_ts is not None else 0
        return self._accept(self.broker.candles_since(since))

    def seconds_without_bar(self) -> float:
        """Wall seconds since a new candle last arrived: a stalled clock means a closed market."""
        return self._monotonic() - self._last_new

    def _accept(self, candles: list[Candle]) -> list[Candle]:
        fresh = []
        for candle in sorted(candles, key=lambda c: c.ts):
            if self.last_ts is not None and candle.ts <= self.last_ts:
                self.duplicates += 1
                continue
            if not _finite_bar(candle):
                log.warning("candle at %d has a missing or non-positive price; skipped", candle.ts)
                continue
            if self.last_ts is not None and candle.ts - self.last_ts > BAR_SECONDS:
                self.gaps += 1
            self.last_ts = candle.ts
            fresh.append(candle)
        if fresh:
            self._last_new = self._monotonic()
        return fresh


def _finite_bar(candle: Candle) -> bool:
    values = np.array([candle.open, candle.high, candle.low, candle.close], dtype=np.float64)
    return bool(np.isfinite(values).all() and (values > 0).all())


@dataclass(frozen=True)
class BarPlan:
    """What the trader does on one completed bar."""

    role: Role
    decide: bool  # ask the agent (when the features are ready and the book reconciled)
    close: str | None = None  # flatten at this bar's close first, with this exit reason


@dataclass(frozen=True)
class Schedule:
    """Which bars are decisions: every bar (live), or those inside replayed sessions."""

    session_first_ts: np.ndarray | None = None  # [S] int64 open time of each session's first bar
    session_last_ts: np.ndarray | None = None  # [S] int64 open time of each session's last bar

    @classmethod
    def sessions(cls, ts: np.ndarray, starts: np.ndarray, session_bars: int) -> Schedule:
        """The schedule of the sessions starting at rows `starts` ([S]) of bar times `ts` ([T])."""
        starts = np.asarray(starts, dtype=np.int64)
        return cls(ts[starts].astype(np.int64), ts[starts + session_bars - 1].astype(np.int64))

    def role(self, ts: int) -> Role:
        """What to do on the bar opening at `ts` (s UTC)."""
        if self.session_first_ts is None or self.session_last_ts is None:
            return "decide"
        k = int(np.searchsorted(self.session_first_ts, ts, side="right")) - 1
        if k < 0 or ts > self.session_last_ts[k]:
            return "idle"
        return "session_end" if ts == self.session_last_ts[k] else "decide"

    def plan(self, ts: int) -> BarPlan:
        """The trader's plan for the bar opening at `ts` (s UTC)."""
        role = self.role(ts)
        return BarPlan(
            role, decide=role == "decide", close="session_end" if role == "session_end" else None
        )
