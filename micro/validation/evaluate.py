"""Greedy evaluation: a checkpoint plays every session of a split, all of them in one env batch.

The decisions come from `Agent.act(mode="greedy")`, the same function self-play and the live
trader call, so what is scored is what would trade. Every session of the split (or an evenly
spread `validation.max_sessions` of them) starts together in one `TradingEnv` of B = S envs and
all of them step in lockstep for the L − 1 decisions of a session: one batched search per bar.
The RNG handed to the agent is seeded from `validation.seed` (greedy mode draws nothing from it
today; passing it keeps the run reproducible should that change).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from micro.config import Config
from micro.env.actions import ACTION_NAMES, NUM_ACTIONS
from micro.env.trades import concatenate_trades
from micro.env.trading import TradingEnv
from micro.mcts.agent import Agent, Observations
from micro.model.inference import SearchModel

if TYPE_CHECKING:
    from micro.data.market import Market


@dataclass(frozen=True)
class Evaluation:
    """What one greedy run over a split produced."""

    split: str
    starts: np.ndarray  # [S] int64 first row of each session played, ascending
    trades: np.ndarray  # [K] TRADE_DTYPE, every closed round trip of every session
    decisions: int  # S × (L − 1) agent decisions
    action_counts: np.ndarray  # [4] int64 decisions per action (HOLD, BUY, SELL, CLOSE)
    simulations: int  # search simulations per decision
    seconds: float  # wall seconds of the run (search + env)

    def action_shares(self) -> dict[str, float | None]:
        """Share of the decisions that chose each action, by name."""
        total = int(self.action_counts.sum())
        return {
            name: (float(self.action_counts[i]) / total if total else None)
            for i, name in enumerate(ACTION_NAMES)
        }


def evaluation_starts(market: Market, split: str, max_sessions: int = 0) -> np.ndarray:
    """[S] start rows of the sessions scored on `split`: all, or `max_sessions` evenly spread.

    Evenly spread (first and last always included) so a cap still covers the split's whole time
    span; the choice depends only on the split, so every checkpoint plays the same sessions.
    """
    starts = np.sort(np.asarray(market.sessions(split), dtype=np.int64))  # [S_all]
    if max_sessions <= 0 or starts.size <= max_sessions:
        return starts
    picks = np.unique(np.round(np.linspace(0, starts.size - 1, max_sessions)).astype(np.int64))
    return starts[picks]


def simulations_for(config: Config) -> int:
    """Simulations per validation decision: `validation.simulations`, else `mcts.simulations`."""
    return config.validation.simulations or config.mcts.simulations


def evaluate(
    model: SearchModel,
    market: Market,
    config: Config,
    starts: np.ndarray,
    *,
    split: str = "validation",
    seed: int | None = None,
) -> Evaluation:
    """Play the sessions at `starts` ([S] rows) to their end with greedy decisions of `model`."""
    starts = np.sort(np.asarray(starts, dtype=np.int64))
    simulations = simulations_for(config)
    counts = np.zeros(NUM_ACTIONS, dtype=np.int64)
    began = time.perf_counter()
    if starts.size == 0:
        return Evaluation(split, starts, concatenate_trades([]), 0, counts, simulations, 0.0)
    agent = Agent(model, config.mcts, num_simulations=simulations)
    rng = np.random.default_rng(config.validation.seed if seed is None else seed)
    env = TradingEnv(market, config, int(starts.size))
    observation = env.reset(starts)
    parts = []
    decisions = 0
    for _ in range(env.session_bars - 1):
        observations = Observations(
            window=market.windows(observation.rows),  # [S, W, 9]
            static=observation.static,  # [S, 6]
            legal=observation.legal,  # [S, 4]
            side=observation.side,  # [S]
        )
        actions, _ = agent.act(observations, mode="greedy", rng=rng)  # [S] int64
        counts += np.bincount(actions, minlength=NUM_ACTIONS)
        decisions += int(actions.size)
        result = env.step(actions)
        parts.append(result.trades)
        observation = result.observation
    if not result.done.all():  # every session has the same length: all end on the last step
        raise AssertionError("a validation session did not end with the others")
    return Evaluation(
        split=split,
        starts=starts,
        trades=concatenate_trades(parts),
        decisions=decisions,
        action_counts=counts,
        simulations=simulations,
        seconds=time.perf_counter() - began,
    )
