"""No-skill agents rank uniformly against the random-entry baselines, stops on and off.

Hundreds of agents that enter and exit at random (no skill: their decisions never look at the
price) trade their own sessions of one market; each is ranked by `random_entry_percentile`,
the function the validator calls. With no skill the rank is uniform on 0..100, whatever the
market's drift and whether stops fire: a Kolmogorov–Smirnov statistic within its 1 % critical
value, and no more than 9 % of agents beyond either 5 % tail (5 % expected). Before the random
traders held the agent's planned holding, stops made them spend ~0.74× the agent's time in the
market, and on the drifting market here 14 % of the agents with the agent's sides ranked above
the 95th percentile (√n · D = 4.6; with planned holding 4 % and 1.1).
"""

from __future__ import annotations

import numpy as np
import pytest

from micro.config import Config, replace
from micro.env.actions import BUY, CLOSE, FLAT, HOLD, SELL
from micro.env.trades import EXIT_STOP_LOSS
from micro.env.trading import Observation, run_sessions
from micro.validation.baselines import random_entry_percentile
from tests.unit.env_markets import hand_market

L = 120  # bars per session
SESSIONS = 8  # per agent
AGENTS = 300
RUNS = 200  # random traders per agent
KS_CRITICAL_1PCT = 1.63  # √n · D of the one-sample KS test at the 1 % level (large n)


def drifting_market(drift_pips: float, seed: int):
    """A GBP_JPY-like random walk: `drift_pips` a bar under 3-pip noise, with wicks and gaps."""
    rng = np.random.default_rng(seed)
    n = AGENTS * SESSIONS * L + 10
    close = 180.0 + np.cumsum(drift_pips * 0.01 + rng.normal(0.0, 0.03, n))
    open_ = np.r_[180.0, close[:-1]] + rng.normal(0.0, 0.0075, n)  # small gaps
    high = np.maximum(open_, close) + rng.exponential(0.015, n)
    low = np.minimum(open_, close) - rng.exponential(0.015, n)
    market = hand_market(close, open_=open_, high=high, low=low, session_bars=L)
    return market, np.arange(AGENTS * SESSIONS, dtype=np.int64) * L + 10


def no_skill_agent(seed: int, buy: float, sell: float, close: float = 0.05):
    """Flat: buys with probability `buy`, sells with `sell`; in a trade: closes with `close`."""
    rng = np.random.default_rng(seed)

    def policy(observation: Observation) -> np.ndarray:
        u, v = rng.random((2, observation.side.size))
        action = np.full(observation.side.size, HOLD, dtype=np.int64)
        flat = observation.side == FLAT
        action[flat & (u < buy)] = BUY
        action[flat & (u >= buy) & (u < buy + sell)] = SELL
        action[~flat & (v < close)] = CLOSE
        return np.where(observation.legal[np.arange(action.size), action], action, HOLD)

    return policy


def ks_statistic(ranks: np.ndarray) -> float:
    """√n · sup |F_n − U(0, 1)| of ranks in [0, 1]."""
    x = np.sort(ranks)
    n = x.size
    i = np.arange(1, n + 1)
    return float(np.sqrt(n) * max(np.max(i / n - x), np.max(x - (i - 1) / n)))


@pytest.mark.parametrize("drift_pips", [0.0, 0.5], ids=["flat", "drifting"])
@pytest.mark.parametrize("stop", [True, False], ids=["stop", "no_stop"])
@pytest.mark.parametrize(
    ("sides", "buy", "sell"),
    [("agent", 0.06, 0.02), ("fair_coin", 0.04, 0.04)],
    ids=["agent_sides", "fair_coin"],
)
def test_no_skill_agents_land_uniformly_in_the_random_entry_percentile(
    drift_pips: float, stop: bool, sides: str, buy: float, sell: float
) -> None:
    # A 10-pip stop against 3-pip bars: about a third of the trades are stopped.
    config = replace(Config(), **{"env.use_stop_loss": stop, "risk.stop_loss_pips": 10.0})
    market, starts = drifting_market(drift_pips, seed=int(100 * drift_pips) + stop)
    trades = run_sessions(market, config, starts, no_skill_agent(7, buy, sell))
    stopped = np.mean(trades["exit_reason"] == EXIT_STOP_LOSS)
    assert (0.25 < stopped < 0.5) if stop else stopped == 0.0

    ranks, time_in_market = [], []
    for k in range(AGENTS):
        mine = starts[k * SESSIONS : (k + 1) * SESSIONS]
        agent = trades[np.isin(trades["session"], mine)]
        report = random_entry_percentile(
            market, config, mine, agent, runs=RUNS, seed=1000 + k, sides=sides
        )
        ranks.append(report["agent_percentile"] / 100.0)
        time_in_market.append(report["time_in_market_ratio"])
    ranks_array = np.asarray(ranks)

    assert np.mean(time_in_market) == pytest.approx(1.0, abs=0.03)
    assert ks_statistic(ranks_array) < KS_CRITICAL_1PCT
    assert np.mean(ranks_array > 0.95) < 0.09
    assert np.mean(ranks_array < 0.05) < 0.09
