"""Costs in pips: spread + commission + slippage at entry, slippage at exit; JPY and USD pairs."""

from __future__ import annotations

import numpy as np
import pytest

from micro.config import Config, replace
from micro.env.actions import BUY, CLOSE, HOLD, SELL
from micro.env.costs import Costs, costs_for, gross_pips
from micro.env.trades import EXIT_SESSION_END, EXIT_STOP_LOSS
from micro.env.trading import TradingEnv
from tests.unit.env_markets import hand_market

# spread (GBP_JPY 4, EUR_USD 1.2 from the table) + commission 0.5 + slippage 0.3
COSTLY = replace(Config(), **{"env.commission_pips": 0.5, "env.slippage_pips": 0.3})


def test_entry_pays_spread_commission_and_slippage_and_exit_pays_slippage() -> None:
    costs = costs_for(COSTLY, "GBP_JPY")
    assert costs == Costs(spread_pips=4.0, commission_pips=0.5, slippage_pips=0.3)
    assert costs.entry_pips == pytest.approx(4.8)
    assert costs.exit_pips == pytest.approx(0.3)
    assert costs.round_trip_pips == pytest.approx(5.1)
    assert costs.net_pips(10.0) == pytest.approx(4.9)


def test_an_instrument_missing_from_the_spread_table_pays_the_default_spread() -> None:
    assert costs_for(Config(), "NZD_CHF").spread_pips == Config().env.default_spread_pips
    assert costs_for(Config()).spread_pips == 4.0  # the configured instrument, GBP_JPY


@pytest.mark.parametrize(
    ("side", "entry", "exit_", "pip", "pips"),
    [
        (1, 150.000, 150.250, 0.01, 25.0),
        (-1, 150.000, 149.950, 0.01, 5.0),
        (-1, 150.000, 150.100, 0.01, -10.0),
        (1, 1.10000, 1.10250, 0.0001, 25.0),
        (-1, 1.10000, 1.09800, 0.0001, 20.0),
    ],
)
def test_gross_pips_are_signed_by_the_side_and_scaled_by_the_pip(
    side: int, entry: float, exit_: float, pip: float, pips: float
) -> None:
    assert gross_pips(side, entry, exit_, pip) == pytest.approx(pips, abs=1e-9)


@pytest.mark.parametrize(
    ("instrument", "action", "close", "entry_cost", "rewards", "net"),
    [
        # EUR_USD: entry 1.2 + 0.5 + 0.3 = 2.0 pips, exit 0.3 pips
        ("EUR_USD", BUY, [1.10000, 1.10100, 1.10250, 1.10300], 2.0, [-2 + 10, 15, -0.3], 22.7),
        ("EUR_USD", SELL, [1.10000, 1.09800, 1.09900, 1.09900], 2.0, [-2 + 20, -10, -0.3], 7.7),
        # GBP_JPY: entry 4 + 0.5 + 0.3 = 4.8 pips, exit 0.3 pips
        ("GBP_JPY", BUY, [180.000, 180.200, 180.100, 180.100], 4.8, [-4.8 + 20, -10, -0.3], 4.9),
        ("GBP_JPY", SELL, [180.000, 179.500, 179.600, 179.600], 4.8, [-4.8 + 50, -10, -0.3], 34.9),
    ],
)
def test_round_trips_pay_every_cost_once_on_jpy_and_four_decimal_pairs(
    instrument: str,
    action: int,
    close: list[float],
    entry_cost: float,
    rewards: list[float],
    net: float,
) -> None:
    market = hand_market(close, instrument_name=instrument)
    env = TradingEnv(market, COSTLY, 1)
    env.reset(np.array([0]))
    results = [env.step(np.array([a])) for a in (action, HOLD, CLOSE)]

    assert env.costs.entry_pips == pytest.approx(entry_cost)
    assert [float(r.reward[0]) for r in results] == pytest.approx(rewards, abs=1e-4)
    (trade,) = results[2].trades
    assert trade["pips"] == pytest.approx(net, abs=1e-9)
    assert sum(float(r.reward[0]) for r in results) == pytest.approx(net, abs=1e-4)


def test_a_stop_loss_exit_also_pays_the_exit_slippage() -> None:
    market = hand_market([180.000, 179.800], low=[180.000, 179.650])  # stop at 179.700
    env = TradingEnv(market, COSTLY, 1)
    env.reset(np.array([0]))
    result = env.step(np.array([BUY]))

    (trade,) = result.trades
    assert trade["exit_reason"] == EXIT_STOP_LOSS
    assert trade["pips"] == pytest.approx(-30.0 - 5.1, abs=1e-9)
    assert result.reward[0] == pytest.approx(-4.8 - 30.0 - 0.3, abs=1e-4)


def test_a_session_end_exit_also_pays_the_exit_slippage() -> None:
    market = hand_market([1.10000, 1.10050], instrument_name="EUR_USD")
    env = TradingEnv(market, COSTLY, 1)
    env.reset(np.array([0]))
    result = env.step(np.array([SELL]))

    (trade,) = result.trades
    assert trade["exit_reason"] == EXIT_SESSION_END
    assert trade["pips"] == pytest.approx(-5.0 - 2.3, abs=1e-9)
    assert result.reward[0] == pytest.approx(-2.0 - 5.0 - 0.3, abs=1e-4)
