"""Broker-true accounting: the day's ledger (slippage by side, spread, broker P&L) and its panel."""

from __future__ import annotations

import pytest
from rich.console import Console

from micro.live.accounting import Ledger
from micro.monitoring.panels import live_panel
from micro.monitoring.readers import Liveness
from micro.volumes import LiveState

PIP = 0.01


def test_slippage_is_the_fill_against_the_decision_close_by_side_positive_when_paid() -> None:
    ledger = Ledger(trading_day=5)
    assert ledger.fill(1, 150.025, 150.000, PIP, 4.0) == pytest.approx(2.5)  # bought above
    assert ledger.fill(-1, 149.990, 150.000, PIP, 3.0) == pytest.approx(1.0)  # sold below
    assert ledger.fill(-1, 150.010, 150.000, PIP, None) == pytest.approx(-1.0)  # price improved
    summary = ledger.summary()
    assert summary["slippage"]["buy"] == {"fills": 1, "slippage_pips": 2.5, "spread_pips": 4.0}
    assert summary["slippage"]["sell"] == {"fills": 2, "slippage_pips": 0.0, "spread_pips": 3.0}


def test_trades_add_model_and_broker_numbers_and_the_day_rolls_into_a_summary() -> None:
    ledger = Ledger()
    assert ledger.roll(7) is None  # nothing before the first day
    ledger.trade({"pips": -34.0, "broker_pips": -36.1, "broker_pl": -361.0, "financing": -2.5})
    ledger.trade({"pips": 10.0, "broker_pips": 9.0, "broker_pl": 90.0, "financing": None})
    assert ledger.roll(7) is None  # the same day
    done = ledger.roll(8)
    assert done is not None and done["trading_day"] == 7 and done["trades"] == 2
    assert done["model_pips"] == pytest.approx(-24.0)
    assert done["broker_pips"] == pytest.approx(-27.1)
    assert done["broker_pl"] == pytest.approx(-271.0) and done["financing"] == pytest.approx(-2.5)
    assert ledger.trading_day == 8 and ledger.trades == 0 and ledger.buy.fills == 0


def test_the_ledger_survives_state_json_and_a_foreign_one_starts_empty() -> None:
    ledger = Ledger(trading_day=3)
    ledger.fill(1, 150.02, 150.0, PIP, 2.0)
    again = Ledger.from_dict(ledger.to_dict())
    assert again == ledger
    assert Ledger.from_dict({"buy": "nonsense"}) == Ledger()
    assert Ledger.from_dict(None) == Ledger()


def test_the_live_panel_shows_the_brokers_day_slippage_by_side_and_the_spread_paid() -> None:
    ledger = Ledger(trading_day=3)
    ledger.fill(1, 150.025, 150.0, PIP, 4.0)
    ledger.fill(-1, 149.99, 150.0, PIP, 2.0)
    ledger.trade({"pips": -3.0, "broker_pips": -4.5, "broker_pl": -45.0, "financing": -1.25})
    state = LiveState(broker="oanda", instrument="GBP_JPY", accounting=ledger.to_dict())
    alive = Liveness("live", True, "running", 1.0, "trading")
    console = Console(width=160, record=True)
    console.print(live_panel(state, alive, []))
    text = console.export_text()
    assert "slippage buy +2.50 (1), sell +1.00 (1) pips; spread paid 3.00 pips" in text
    assert "1 trades  -4.5" in text and "model -3.0" in text and "financing -1.25" in text
