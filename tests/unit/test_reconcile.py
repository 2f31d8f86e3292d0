"""Booking what the broker did: a broker stop the mid never reached pays the spread once."""

from __future__ import annotations

from pathlib import Path

import pytest

from micro.config import Config
from micro.env.costs import Costs
from micro.live.book import Book
from micro.live.broker import BrokerTrade, Candle
from micro.live.health import BrokerHealth
from micro.live.journal import Journal
from micro.live.reconcile import Reconciler
from micro.live.risk import CircuitBreaker, RiskGuard

PIP = 0.01


def reconciler(tmp_path: Path) -> Reconciler:
    config = Config()
    journal = Journal(tmp_path / "journal.jsonl", lambda: 1_700_000_000.0)
    health = BrokerHealth(CircuitBreaker(3, 60.0, lambda: 0.0), journal)
    book = Book(PIP, Costs(4.0, 0.0, 0.0), 30.0)
    return Reconciler(config, None, book, journal, health, RiskGuard(config.risk), {},  # type: ignore[arg-type]
                      lambda: 1_700_000_000.0)  # fmt: skip


def closed_by_broker(exit_fill: float) -> BrokerTrade:
    return BrokerTrade("7", "micro-1-B", 1, 1000, 150.02, 0.0, "CLOSED", 149.68,
                       close_price=exit_fill, close_time=60.0, close_reason="stop_loss",
                       realized_pl=(exit_fill - 150.02) * 1000, financing=-0.5)  # fmt: skip


def test_a_broker_stop_the_mid_never_reached_is_booked_at_the_mid_behind_the_fill(
    tmp_path: Path,
) -> None:
    r = reconciler(tmp_path)
    r.book.open(1, 1000, Candle(0, 150.0, 150.0, 150.0, 150.0), "7", "micro-1-B", 150.02)
    bar = Candle(60, 149.9, 149.95, 149.71, 149.8)  # the mid stays above the env's 149.70
    r._book_closed(bar, closed_by_broker(149.68))  # the bid dipped to the broker's stop
    trade = r.journal.lines("trade")[0]
    assert trade["exit_price"] == pytest.approx(149.70)  # 149.68 + half the 4-pip spread
    assert trade["pips"] == pytest.approx(-30.0 - 4.0)  # the spread paid once, at entry
    assert trade["broker_pips"] == pytest.approx(-34.0)
    assert trade["financing"] == pytest.approx(-0.5)
    assert r.risk.state.equity_pips == pytest.approx(-34.0)  # the halts count the broker's pips


def test_the_envs_own_stop_is_booked_when_the_mid_reached_it(tmp_path: Path) -> None:
    r = reconciler(tmp_path)
    r.book.open(1, 1000, Candle(0, 150.0, 150.0, 150.0, 150.0), "7", "micro-1-B", 150.02)
    bar = Candle(60, 149.9, 149.95, 149.60, 149.8)  # through the env's stop at 149.70
    r._book_closed(bar, closed_by_broker(149.68))
    trade = r.journal.lines("trade")[0]
    assert trade["exit_price"] == pytest.approx(149.70) and trade["exit_reason"] == 1
