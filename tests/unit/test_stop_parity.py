"""Stop parity: the env, the sim broker and the fake v20 server stop out on the same bar at the
same mid, given the stop the live trader sends.

The env stops a position at its decision close ∓ 30 pips on the mid. A broker triggers a
stop on the side it exits at (bid for a long, ask for a short), so the trader sends the env's
mid stop moved out by half the quoted spread (`micro.env.fills.quoted_stop`); the sim broker
and the fake OANDA (bid/ask = mid ∓ 1 pip, triggering on the bid low / ask high, a gap at the
open) must then fire on the env's bar, and their exit fill, translated back to mid
(`fills.mid_of_exit`), must be the env's exit price.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from micro.config import Config, replace
from micro.env.actions import BUY, HOLD, SELL
from micro.env.fills import mid_of_exit, quoted_stop, stop_level
from micro.env.trading import TradingEnv
from micro.live.oanda import OandaBroker
from micro.live.sim import SimBroker
from tests.fakes import FakeOanda
from tests.unit.env_markets import T0, hand_market

PIP = 0.01
HALF_SPREAD = 0.01  # the fake's bid/ask are mid ∓ 1 pip; the sim gets the same 2-pip spread
ENTRY_ROW = 3  # the decision bar: its close (150.000) is the entry mid
STOP_PIPS = 30.0
Prices = tuple[list[float], list[float], list[float], list[float]]  # open, high, low, close


def market_prices(side: int, case: str) -> Prices:
    """Bars 0..9 around 150.000; after the entry the price drifts towards the stop and then:
    `touch` (bar 7 goes 0.5 pip beyond it), `gap` (bar 7 opens 5 pips beyond it), `miss`
    (every bar stays 0.5 pip short of it)."""
    s = side
    close = [150.0] * 4 + [150.0 - s * d for d in (0.10, 0.20, 0.25, 0.26, 0.20, 0.10)]
    open_ = [150.0] + close[:-1]
    high = [max(o, c) + 0.002 for o, c in zip(open_, close, strict=True)]
    low = [min(o, c) - 0.002 for o, c in zip(open_, close, strict=True)]
    adverse = low if s > 0 else high  # a long's lows, a short's highs
    for row in (5, 6):
        adverse[row] = 150.0 - s * 0.295  # 0.5 pip short of the mid stop (149.700 / 150.300)
    if case == "touch":
        adverse[7] = 150.0 - s * 0.305
    elif case == "gap":
        open_[7] = 150.0 - s * 0.350
        close[7] = open_[7] + s * 0.005
        adverse[7] = 150.0 - s * 0.360
        (high if s > 0 else low)[7] = open_[7] + s * 0.010
    return open_, high, low, close


def env_exit(side: int, prices: Prices) -> tuple[int, float] | None:
    """The env's stop exit (bar ts, exit mid) of an entry at ENTRY_ROW, or None."""
    open_, high, low, close = prices
    market = hand_market(close, open_=open_, high=high, low=low)
    config = replace(Config(), **{"risk.stop_loss_pips": STOP_PIPS})
    env = TradingEnv(market, config, 1)
    env.reset(np.array([0]))
    for row in range(len(close) - 2):
        action = (BUY if side > 0 else SELL) if row == ENTRY_ROW else HOLD
        step = env.step(np.array([action]))
        for trade in step.trades:
            if int(trade["exit_reason"]) == 1:
                return int(trade["exit_ts"]), float(trade["exit_price"])
    return None


def broker_stop(side: int) -> float:
    """The stop the live trader sends: the env's mid stop moved out onto the exit side."""
    return float(quoted_stop(side, stop_level(side, 150.0, STOP_PIPS, PIP), HALF_SPREAD))


def sim_exit(side: int, prices: Prices) -> tuple[int, float] | None:
    open_, high, low, close = (np.asarray(p, dtype=np.float64) for p in prices)
    n = len(close)
    ts = T0 + 60 * np.arange(n, dtype=np.int64)
    sim = SimBroker("GBP_JPY", PIP, 2 * HALF_SPREAD / PIP, ts, open_, high, low, close,
                    np.arange(ENTRY_ROW, n))  # fmt: skip
    sim.candles_since(0)  # releases the decision bar
    assert sim.market_order(side, 1000, broker_stop(side), "parity").filled
    while not sim.finished():
        sim.candles_since(0)
    trade = sim.trade_by_client_id("parity")
    if trade is None or trade.state != "CLOSED":
        return None
    assert trade.close_price is not None and trade.close_time is not None
    return int(trade.close_time), float(mid_of_exit(side, trade.close_price, HALF_SPREAD))


def fake_exit(side: int, prices: Prices) -> tuple[int, float] | None:
    open_, high, low, close = prices
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(T0 + 60 * np.arange(len(close)), unit="s"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": 1.0,
        }
    )
    with FakeOanda(candles=frame) as fake:
        fake.replay(frame["ts"].iloc[ENTRY_ROW] + pd.Timedelta(minutes=1))  # bar 3 completed
        config = replace(
            Config(),
            **{"live.oanda.api_url": fake.api_url, "live.oanda.price_stream": False},
        )
        broker = OandaBroker(config, fake.token, fake.account.id)
        try:
            assert broker.market_order(side, 1000, broker_stop(side), "parity").filled
            for _ in range(len(close) - ENTRY_ROW - 1):
                broker.candles_since(T0)  # each poll completes one more bar at the fake
            trade = broker.trade_by_client_id("parity")
        finally:
            broker.close()
        assert fake.errors == []
    if trade is None or trade.state != "CLOSED":
        return None
    assert trade.close_price is not None and trade.close_time is not None
    bar_ts = int(trade.close_time) - 60  # the fake closes when the bar completes
    return bar_ts, float(mid_of_exit(side, trade.close_price, HALF_SPREAD))


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("case", ["touch", "gap", "miss"])
def test_the_env_the_sim_and_the_fake_oanda_stop_on_the_same_bar_at_the_same_mid(
    side: int, case: str
) -> None:
    prices = market_prices(side, case)
    env = env_exit(side, prices)
    if case == "miss":
        assert env is None
    else:
        assert env is not None and env[0] == T0 + 7 * 60
        expected_mid = 150.0 - side * (0.300 if case == "touch" else 0.350)
        assert env[1] == pytest.approx(expected_mid)
    for other in (sim_exit(side, prices), fake_exit(side, prices)):
        if env is None:
            assert other is None
        else:
            assert other is not None
            assert other[0] == env[0]
            assert other[1] == pytest.approx(env[1], abs=1e-9)


def test_the_stop_sent_is_the_env_stop_moved_half_the_spread_onto_the_exit_side() -> None:
    assert broker_stop(1) == pytest.approx(149.690)  # a long's stop sells at the bid
    assert broker_stop(-1) == pytest.approx(150.310)  # a short's buys at the ask
