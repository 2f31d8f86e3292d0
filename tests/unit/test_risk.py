"""Risk controls: circuit breaker states, weekly close, daily loss and drawdown halts, prices."""

from __future__ import annotations

import math

import pandas as pd

from micro.config import RiskConfig
from micro.live.broker import Quote
from micro.live.risk import (
    CircuitBreaker,
    RiskGuard,
    RiskState,
    minutes_to_weekly_close,
    price_problem,
    trading_day,
)


def at(text: str) -> float:
    """Seconds since the epoch of a UTC time."""
    return pd.Timestamp(text).value / 1e9


class FakeClock:
    """A monotonic clock the test moves by hand (the breaker's only notion of time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_errors_only() -> None:
    breaker = CircuitBreaker(3, 60.0, FakeClock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # the run of errors is broken
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()


def test_an_open_breaker_half_opens_after_its_pause_and_a_trial_decides() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 30.0, clock)
    breaker.record_failure()
    clock.now = 29.9
    assert not breaker.allow()
    clock.now = 30.0
    assert breaker.state == "half_open" and breaker.allow()
    breaker.record_failure()  # the trial failed: open again for another pause
    assert breaker.state == "open"
    clock.now = 60.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.transitions == [
        ("closed", "open"), ("open", "half_open"), ("half_open", "open"),
        ("open", "half_open"), ("half_open", "closed"),
    ]  # fmt: skip


def test_minutes_to_the_weekly_close_count_down_to_friday_21_utc() -> None:
    assert minutes_to_weekly_close(at("2024-03-08 20:30")) == 30.0  # a Friday
    assert minutes_to_weekly_close(at("2024-03-09 12:00")) == 0.0  # Saturday: closed
    assert minutes_to_weekly_close(at("2024-03-10 20:59")) == 0.0  # Sunday before the open
    assert minutes_to_weekly_close(at("2024-03-10 21:00")) == 5 * 24 * 60  # the open


def test_no_new_entries_within_the_buffer_before_the_weekly_close() -> None:
    guard = RiskGuard(RiskConfig(weekly_close_buffer_minutes=60))
    assert guard.entry_blocks(at("2024-03-08 19:59"), 1000) == []
    assert "weekly close" in guard.entry_blocks(at("2024-03-08 20:01"), 1000)[0]
    assert guard.entry_blocks(at("2024-03-09 10:00"), 1000)  # the weekend


def test_the_daily_loss_limit_halts_entries_until_the_next_trading_day() -> None:
    guard = RiskGuard(RiskConfig(daily_loss_limit_pips=100.0, weekly_close_buffer_minutes=0))
    guard.on_bar(at("2024-03-05 10:00"), 0.0)
    guard.record_trade(-60.0)
    assert guard.on_bar(at("2024-03-05 11:00"), -39.0) == []
    assert guard.on_bar(at("2024-03-05 11:01"), -41.0) == ["daily_loss_halt"]
    assert "daily loss" in guard.entry_blocks(at("2024-03-05 20:59"), 1000)[0]
    events = guard.on_bar(at("2024-03-05 21:01"), 0.0)  # 21:00 UTC starts a new trading day
    assert events == ["new_trading_day"]
    assert guard.entry_blocks(at("2024-03-05 21:01"), 1000) == []
    assert trading_day(at("2024-03-05 21:00")) == trading_day(at("2024-03-06 20:59"))


def test_the_drawdown_halt_holds_from_the_equity_peak_and_survives_a_restart() -> None:
    guard = RiskGuard(RiskConfig(max_drawdown_pips=300.0, daily_loss_limit_pips=1e9))
    guard.record_trade(200.0)
    guard.on_bar(at("2024-03-05 10:00"), 50.0)  # open profit raises the peak to 250
    guard.record_trade(-40.0)
    assert guard.on_bar(at("2024-03-05 10:01"), -209.0) == []  # equity −49: 299 below the peak
    assert guard.on_bar(at("2024-03-05 10:02"), -210.0) == ["drawdown_halt"]  # 300 below
    restored = RiskGuard(RiskConfig(), RiskState.from_dict(guard.state.to_dict()))
    assert any("drawdown" in r for r in restored.entry_blocks(at("2024-03-12 10:00"), 1))


def test_orders_above_max_units_are_refused() -> None:
    guard = RiskGuard(RiskConfig(max_units=1000, weekly_close_buffer_minutes=0))
    assert guard.entry_blocks(at("2024-03-05 10:00"), 1000) == []
    assert "max_units" in guard.entry_blocks(at("2024-03-05 10:00"), 1001)[0]


def test_a_nan_zero_crossed_or_stale_price_is_never_usable() -> None:
    bar_close = at("2024-03-05 10:00")
    good = Quote(150.00, 150.04, bar_close + 2, True)
    assert price_problem(good, bar_close, 180.0) is None
    assert price_problem(None, bar_close, 180.0) == "no price"
    for bad in (
        Quote(math.nan, 150.04, bar_close, True),
        Quote(0.0, 150.04, bar_close, True),
        Quote(150.05, 150.04, bar_close, True),
        Quote(150.0, math.inf, bar_close, True),
    ):
        assert "unusable" in price_problem(bad, bar_close, 180.0)
    stale = Quote(150.00, 150.04, bar_close - 181, True)
    assert "stale" in price_problem(stale, bar_close, 180.0)
