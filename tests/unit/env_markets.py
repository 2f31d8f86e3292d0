"""Small hand-made markets for the env tests: real `Market` objects built from a few prices."""

from __future__ import annotations

import numpy as np

from micro.data.market import Market
from micro.env.actions import BUY, CLOSE, FLAT, HOLD, SELL
from micro.env.trading import Observation
from micro.instruments import instrument

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC


def hand_market(
    close: list[float] | np.ndarray,
    *,
    open_: list[float] | np.ndarray | None = None,
    high: list[float] | np.ndarray | None = None,
    low: list[float] | np.ndarray | None = None,
    instrument_name: str = "GBP_JPY",
    session_bars: int | None = None,
    outcome: list[int] | np.ndarray | None = None,
) -> Market:
    """A market from closes; open defaults to the previous close, high/low to the bar's body."""
    c = np.asarray(close, dtype=np.float64)
    o = np.asarray(open_, dtype=np.float64) if open_ is not None else np.r_[c[0], c[:-1]]
    h = np.asarray(high, dtype=np.float64) if high is not None else np.maximum(o, c)
    lo = np.asarray(low, dtype=np.float64) if low is not None else np.minimum(o, c)
    n = c.size
    labels = (
        np.asarray(outcome, dtype=np.int8)
        if outcome is not None
        else np.r_[np.sign(np.diff(c)) + 1, -1].astype(np.int8)
    )
    return Market(
        instrument=instrument_name,
        pip=instrument(instrument_name).pip,
        ts=T0 + 60 * np.arange(n, dtype=np.int64),
        open=o,
        high=h,
        low=lo,
        close=c,
        features=np.zeros((n, 9), dtype=np.float32),  # the env never reads them
        outcome=labels,
        session_starts={},
        session_bars=session_bars if session_bars is not None else n,
        window=1,
    )


def random_walk_market(n: int, session_bars: int, seed: int = 0) -> Market:
    """A GBP_JPY-like random walk with wicks, so stops, gaps and reversals all happen."""
    rng = np.random.default_rng(seed)
    close = 180.0 + np.cumsum(rng.normal(0.0, 0.08, n))
    open_ = np.r_[180.0, close[:-1]] + rng.normal(0.0, 0.02, n)
    high = np.maximum(open_, close) + rng.exponential(0.04, n)
    low = np.minimum(open_, close) - rng.exponential(0.04, n)
    return hand_market(close, open_=open_, high=high, low=low, session_bars=session_bars)


def coin_flipper(seed: int, buy: float = 0.04, sell: float = 0.03, close: float = 0.08):
    """A policy that enters and exits at random (per step: `buy`, `sell` when flat, `close` when
    in a position): a stand-in agent with an uneven trade list of wins, losses, stops and ends."""
    rng = np.random.default_rng(seed)

    def policy(observation: Observation) -> np.ndarray:
        u = rng.random(observation.side.size)
        action = np.full(observation.side.size, HOLD, dtype=np.int64)
        flat = observation.side == FLAT
        action[flat & (u < buy)] = BUY
        action[flat & (u > 1.0 - sell)] = SELL
        action[~flat & (u < close)] = CLOSE
        return np.where(observation.legal[np.arange(action.size), action], action, HOLD)

    return policy
