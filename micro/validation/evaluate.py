"""Greedy evaluation: a checkpoint plays every session of a split, all of them in one env batch.

The decisions come from `Agent.act(mode="greedy")`, the same function self-play and the live
trader call, so what is scored is what would trade. Every session of the split (or an evenly
spread `validation.max_sessions` of them) starts together in one `TradingEnv` of B = S envs and
all of them step in lockstep for the L − 1 decisions of a session: one batched search per bar.
The RNG handed to the agent is seeded from `validation.seed` (greedy mode draws nothing from it
today; passing it keeps the run reproducible should that change).

With `diagnostics` (the default) the pass also records, at every decision, σ of the chosen
action's afterstate, the bar's outcome, the root's network and search values and the step's
reward (`micro.validation.diagnostics.DecisionTrace`: a few numbers per decision, nothing
recomputed), and then trades the same sessions by the policy prior without search and at random
(one network call per decision, and none), for the report's planning gain and calibration.

Every decision that was not HOLD (an entry or an agent exit) is kept with its rationale (visits,
Q, prior, σ, root values: `micro.validation.charts.ActedRecorder`) for the report's pictures.
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
from micro.validation.charts import ActedRecorder
from micro.validation.diagnostics import Diagnostics, TraceRecorder, comparison_passes

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
    diagnostics: Diagnostics | None = None  # the trace and the two comparison passes
    acted: np.ndarray | None = None  # [A] ACTED_DTYPE every decision not HOLD, its rationale

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
    diagnostics: bool = True,
) -> Evaluation:
    """Play the sessions at `starts` ([S] rows) to their end with greedy decisions of `model`;
    with `diagnostics`, record the trace and play the comparison passes (module docstring)."""
    starts = np.sort(np.asarray(starts, dtype=np.int64))
    simulations = simulations_for(config)
    counts = np.zeros(NUM_ACTIONS, dtype=np.int64)
    began = time.perf_counter()
    if starts.size == 0:
        return Evaluation(split, starts, concatenate_trades([]), 0, counts, simulations, 0.0)
    agent = Agent(model, config.mcts, num_simulations=simulations)
    seed = config.validation.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    recorder = TraceRecorder() if diagnostics else None
    acted = ActedRecorder(starts)
    env = TradingEnv(market, config, int(starts.size))
    observation = env.reset(starts)
    parts = []
    decisions = 0
    for _ in range(env.session_bars - 1):
        observations = Observations(
            window=market.windows(observation.rows),  # [S, W, F]
            static=observation.static,  # [S, 6]
            legal=observation.legal,  # [S, 4]
            side=observation.side,  # [S]
        )
        actions, why = agent.act(observations, mode="greedy", rng=rng)  # [S] int64
        counts += np.bincount(actions, minlength=NUM_ACTIONS)
        decisions += int(actions.size)
        acted.record(
            observation.rows, actions, why.visit_counts, why.q, why.prior, why.chance_probs,
            why.value, why.network_value,
        )  # fmt: skip
        result = env.step(actions)
        parts.append(result.trades)
        if recorder is not None:
            recorder.record(
                observation.side, actions, why.chance_probs, why.network_value, why.value,
                result.reward, result.outcome,
            )  # fmt: skip
        observation = result.observation
    if not result.done.all():  # every session has the same length: all end on the last step
        raise AssertionError("a validation session did not end with the others")
    seconds = time.perf_counter() - began
    extra = None
    if recorder is not None:
        extra = comparison_passes(model, market, config, starts, recorder.trace(), seed)
    return Evaluation(
        split=split,
        starts=starts,
        trades=concatenate_trades(parts),
        decisions=decisions,
        action_counts=counts,
        simulations=simulations,
        seconds=seconds,
        diagnostics=extra,
        acted=acted.acted(),
    )
