"""Self-play's exit exploration, through the actor's real loop (`SelfPlay.play_sessions`).

At the default (`train.exit_exploration` = 1) every hold-or-close decision of a held position is
sampled from the visits, so an untrained agent closes most trades within a few bars; at 0 those
decisions are the search's best action and exploratory entries are held far longer. Entries
explore the same in both.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading

import numpy as np

from micro.config import Config, replace
from micro.train.actor import ActorSpec, SelfPlay
from tests.unit.env_markets import random_walk_market

L = 120  # session bars
SESSIONS = 8


def played(exit_exploration: float) -> tuple[int, float]:
    """(trades, mean bars held) of one batch of self-play sessions by an untrained agent."""
    config = replace(
        Config(),
        **{
            "train.exit_exploration": exit_exploration,
            "train.envs_per_actor": SESSIONS,
            "mcts.simulations": 4,
            "model.tcn_channels": 8,
            "model.hidden": 16,
            "model.mlp_hidden": 16,
            "model.static_hidden": 8,
        },
    )
    walk = random_walk_market(SESSIONS * L + 50, L, seed=4)
    starts = np.arange(SESSIONS, dtype=np.int64) * L + 50
    market = dataclasses.replace(
        walk, session_starts={"train": starts}, window=config.features.window
    )
    spec = ActorSpec(0, "unused", config.to_dict(redact=False), seed=7, threads=1)
    actor = SelfPlay(spec, config, market=market)
    episodes = actor.play_sessions(queue.Queue(), threading.Event(), os.getppid())
    assert episodes is not None
    trades = sum(summary.trades for _, summary in episodes)
    held = sum(int((trajectory.side != 0).sum()) for trajectory, _ in episodes)
    return trades, held / max(trades, 1)


def test_without_exit_exploration_exploratory_trades_are_held_far_longer() -> None:
    trades_explored, held_explored = played(1.0)
    trades_calm, held_calm = played(0.0)
    assert trades_explored > 0 and trades_calm > 0
    assert held_calm > 3 * held_explored
    assert trades_calm < trades_explored
