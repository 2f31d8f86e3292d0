"""Risk controls between the agent's decision and the broker: what may and may not be sent.

- Entries (BUY/SELL) are refused when: the kill switch is on, the daily loss limit was hit (until
  the next trading day, which starts at 21:00 UTC), the drawdown from the equity peak reached
  `risk.max_drawdown_pips` (until the operator acts: `micro live reset-halt`), the order would
  exceed `risk.max_units`, the weekly close (Fri 21:00 UTC) is less than
  `risk.weekly_close_buffer_minutes` away or past,
  the market is closed (broker `tradeable` false or the candle clock stalled), trading is
  halted after an unknown position or an unresolved order, or the operator paused it
  (`micro live pause`, `micro.live.control`).
- Every order (entries and closes) is refused when the circuit breaker is open or the price is
  NaN, zero, crossed or stale (its time more than `risk.stale_price_seconds` from the bar's).
P&L here is pips of one position (the env's units), so the limits read the same in backtest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from micro.config import RiskConfig
from micro.live.broker import Quote

DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
DAY_ROLL_SECONDS = 21 * 3600  # the FX trading day starts at 21:00 UTC (17:00 New York)
# 1970-01-02 was a Friday: Friday 21:00 UTC as seconds since the epoch, the FX week's close.
FRIDAY_CLOSE_REF = 1 * DAY_SECONDS + 21 * 3600
WEEKEND_SECONDS = 2 * DAY_SECONDS  # Friday 21:00 to Sunday 21:00 UTC

BreakerState = Literal["closed", "open", "half_open"]


def trading_day(ts: float) -> int:
    """Index of the FX trading day (starting 21:00 UTC) that holds time `ts` (s UTC)."""
    return int((ts - DAY_ROLL_SECONDS) // DAY_SECONDS)


def seconds_after_weekly_close(ts: float) -> float:
    """Seconds since the most recent Friday 21:00 UTC (0 .. one week)."""
    return (ts - FRIDAY_CLOSE_REF) % WEEK_SECONDS


def minutes_to_weekly_close(ts: float) -> float:
    """Minutes until the next Friday 21:00 UTC; 0 while the market is in its weekend."""
    after = seconds_after_weekly_close(ts)
    if after < WEEKEND_SECONDS:
        return 0.0
    return (WEEK_SECONDS - after) / 60.0


def price_problem(quote: Quote | None, bar_close_ts: float, stale_seconds: float) -> str | None:
    """Why `quote` must not lead to an order (missing, NaN, zero, crossed, stale), or None."""
    if quote is None:
        return "no price"
    if not quote.usable():
        return f"unusable price (bid {quote.bid}, ask {quote.ask})"
    age = abs(bar_close_ts - quote.time)
    if age > stale_seconds:
        return f"stale price ({age:.0f} s from the bar's close, limit {stale_seconds:.0f} s)"
    return None


class CircuitBreaker:
    """closed → open after N consecutive broker errors → half-open after a pause → one trial."""

    def __init__(
        self,
        errors_to_open: int,
        open_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.errors_to_open = errors_to_open
        self.open_seconds = open_seconds
        self._monotonic = monotonic
        self._state: BreakerState = "closed"
        self.consecutive_errors = 0
        self._opened_at = 0.0
        self.transitions: list[tuple[BreakerState, BreakerState]] = []

    @property
    def state(self) -> BreakerState:
        """The state now: an open breaker turns half-open once its pause is over."""
        if self._state == "open" and self._monotonic() - self._opened_at >= self.open_seconds:
            self._move("half_open")
        return self._state

    def allow(self) -> bool:
        """Whether a broker request may be made now (half-open: a trial request)."""
        return self.state != "open"

    def record_success(self) -> None:
        self.consecutive_errors = 0
        if self._state != "closed":
            self._move("closed")

    def record_failure(self) -> None:
        self.consecutive_errors += 1
        state = self.state
        if state == "half_open" or (
            state == "closed" and self.consecutive_errors >= self.errors_to_open
        ):
            self._opened_at = self._monotonic()
            self._move("open")

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state, "consecutive_errors": self.consecutive_errors}

    def _move(self, new: BreakerState) -> None:
        self.transitions.append((self._state, new))
        self._state = new


@dataclass
class RiskState:
    """What the risk controls remember across bars and restarts (in live/state.json)."""

    trading_day: int | None = None
    day_realised_pips: float = 0.0  # closed trades of the current trading day
    equity_pips: float = 0.0  # all closed trades since the first start
    equity_peak_pips: float = 0.0  # peak of realised + open pips
    daily_halt_day: int | None = None  # entries halted until this trading day is over
    drawdown_halt: bool = False  # entries halted until the operator acts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RiskState:
        """The state from state.json; unknown keys are ignored, missing ones default."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


class RiskGuard:
    """The risk rules over one RiskState; events come back as short names for the journal."""

    def __init__(self, config: RiskConfig, state: RiskState | None = None) -> None:
        self.config = config
        self.state = state or RiskState()

    def on_bar(self, ts: float, open_pips: float) -> list[str]:
        """Roll the trading day and check the loss limits at the bar closing at `ts`."""
        s = self.state
        events = []
        day = trading_day(ts)
        if s.trading_day != day:
            if s.trading_day is not None:
                events.append("new_trading_day")
            s.trading_day = day
            s.day_realised_pips = 0.0
        equity = s.equity_pips + open_pips
        s.equity_peak_pips = max(s.equity_peak_pips, equity)
        if s.daily_halt_day != day and s.day_realised_pips + open_pips <= -abs(
            self.config.daily_loss_limit_pips
        ):
            s.daily_halt_day = day
            events.append("daily_loss_halt")
        if not s.drawdown_halt and s.equity_peak_pips - equity >= self.config.max_drawdown_pips:
            s.drawdown_halt = True
            events.append("drawdown_halt")
        return events

    def record_trade(self, pips: float) -> None:
        """A closed trade's net pips enter the day's and the account's P&L."""
        self.state.day_realised_pips += pips
        self.state.equity_pips += pips
        self.state.equity_peak_pips = max(self.state.equity_peak_pips, self.state.equity_pips)

    def entry_blocks(self, ts: float, units: int) -> list[str]:
        """Reasons (possibly none) that forbid a new entry at time `ts` (s UTC)."""
        s = self.state
        reasons = []
        if s.daily_halt_day is not None and trading_day(ts) == s.daily_halt_day:
            reasons.append("daily loss limit reached; entries resume on the next trading day")
        if s.drawdown_halt:
            reasons.append(
                "drawdown halt: equity fell risk.max_drawdown_pips from its peak; review, then "
                "`micro live reset-halt` (or raise the limit)"
            )
        if units > self.config.max_units:
            reasons.append(f"{units} units exceed risk.max_units = {self.config.max_units}")
        minutes = minutes_to_weekly_close(ts)
        if minutes <= self.config.weekly_close_buffer_minutes:
            reasons.append(f"{minutes:.0f} min to the weekly close (Fri 21:00 UTC)")
        return reasons
