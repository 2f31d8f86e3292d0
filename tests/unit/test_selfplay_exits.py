"""Self-play's exit exploration, through the actor's real loop (`SelfPlay.play_sessions`).

At `train.exit_exploration` = 1 every hold-or-close decision of a held position is sampled from
the visits, so an untrained agent closes most trades within a few bars; at 0 (the default is
0.05) those decisions are the search's best action and exploratory entries are held far longer.
Entries explore the same in both, unless `train.entry_exploration` makes them greedy too.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from typing import Any

import numpy as np
import pytest
import torch

from micro.config import Config, replace
from micro.mcts.agent import Agent, Observations, Rationale
from micro.train.actor import (
    ActorSpec,
    EpisodeSummary,
    SelfPlay,
    bootstrap_values,
    entry_exploration,
)
from micro.train.replay import Trajectory
from tests.unit.env_markets import random_walk_market

L = 120  # session bars
SESSIONS = 8


def actor(
    value_bootstrap: str = "search",
    exit_exploration: float = 1.0,
    entry_exploration: float = 1.0,
    **more: Any,
) -> SelfPlay:
    """An actor of an untrained agent on a batch of random-walk sessions.

    The untrained net is seeded (in production the learner's weights arrive first): this one's
    greedy choice for a held position is to hold, which the exit tests rely on.
    """
    torch.manual_seed(1)
    config = replace(
        Config(),
        **{
            "train.value_bootstrap": value_bootstrap,
            "train.exit_exploration": exit_exploration,
            "train.entry_exploration": entry_exploration,
            "train.entry_exploration_decay_episodes": 0,  # the chance given, from the start
            "train.session_end": "terminal",
            "train.envs_per_actor": SESSIONS,
            "mcts.simulations": 4,
            "model.tcn_channels": 8,
            "model.hidden": 16,
            "model.mlp_hidden": 16,
            "model.static_hidden": 8,
            **more,
        },
    )
    walk = random_walk_market(SESSIONS * L + 50, L, seed=4)
    starts = np.arange(SESSIONS, dtype=np.int64) * L + 50
    market = dataclasses.replace(
        walk, session_starts={"train": starts}, window=config.features.window
    )
    spec = ActorSpec(0, "unused", config.to_dict(redact=False), seed=7, threads=1)
    return SelfPlay(spec, config, market=market)


def play(self_play: SelfPlay) -> list[tuple[Trajectory, EpisodeSummary]]:
    """One batch of sessions through `SelfPlay.play_sessions`."""
    episodes = self_play.play_sessions(queue.Queue(), threading.Event(), os.getppid())
    assert episodes is not None
    return episodes


def recorded(self_play: SelfPlay) -> list[tuple[Observations, np.ndarray, Rationale]]:
    """Wraps the actor's agent so every decision (observations, actions, rationale) is kept."""
    decisions: list[tuple[Observations, np.ndarray, Rationale]] = []
    act = self_play.agent.act

    def recording(observations: Observations, *args: Any, **kwargs: Any) -> Any:
        actions, why = act(observations, *args, **kwargs)
        decisions.append((observations, actions, why))
        return actions, why

    self_play.agent.act = recording  # type: ignore[method-assign]
    return decisions


def entry_chances(self_play: SelfPlay) -> list[float]:
    """Wraps the actor's agent so the entry chance each search is given is kept."""
    chances: list[float] = []
    act = self_play.agent.act

    def keeping(*args: Any, **kwargs: Any) -> Any:
        chances.append(kwargs["entry_exploration"])
        return act(*args, **kwargs)

    self_play.agent.act = keeping  # type: ignore[method-assign]
    return chances


def off_greedy(
    self_play: SelfPlay, decisions: list[tuple[Observations, np.ndarray, Rationale]]
) -> tuple[int, int]:
    """(flat, held) decisions whose action differs from greedy search on the same observation."""
    flat_differ = held_differ = 0
    for observations, actions, _ in decisions:
        greedy, _ = Agent.act(self_play.agent, observations, "greedy", np.random.default_rng(0))
        flat = np.asarray(observations.side) == 0
        flat_differ += int((actions != greedy)[flat].sum())
        held_differ += int((actions != greedy)[~flat].sum())
    return flat_differ, held_differ


def played(exit_exploration: float, entry_exploration: float = 1.0) -> tuple[int, float]:
    """(trades, mean bars held) of one batch of self-play sessions by an untrained agent."""
    episodes = play(actor("search", exit_exploration, entry_exploration))
    trades = sum(summary.trades for _, summary in episodes)
    held = sum(int((trajectory.side != 0).sum()) for trajectory, _ in episodes)
    return trades, held / max(trades, 1)


def test_without_exit_exploration_exploratory_trades_are_held_far_longer() -> None:
    trades_explored, held_explored = played(1.0)
    trades_calm, held_calm = played(0.0)
    assert trades_explored > 0 and trades_calm > 0
    assert held_calm > 3 * held_explored
    assert trades_calm < trades_explored


def test_without_entry_exploration_every_flat_decision_is_the_greedy_one() -> None:
    # Through the actor's real loop (searches recorded by wrapping the agent): with
    # `train.entry_exploration` 0 each flat env's action is what greedy search picks on the same
    # observation; held envs still explore; with both chances 0 self-play is greedy play.
    for exit_exploration in (1.0, 0.0):
        self_play = actor("search", exit_exploration, entry_exploration=0.0)
        decisions = recorded(self_play)
        play(self_play)
        flat_differ, held_differ = off_greedy(self_play, decisions)
        assert flat_differ == 0
        assert (held_differ > 0) == (exit_exploration > 0)


def test_the_entry_chance_decays_from_its_start_over_the_episodes_the_learner_reports() -> None:
    # `train.entry_exploration_start` → `train.entry_exploration` over the decay episodes,
    # counted by the episodes the learner's weights carry: at the start every flat decision
    # explores (some differ from greedy search), past the decay none does.
    schedule = {
        "train.entry_exploration_start": 1.0,
        "train.entry_exploration_decay_episodes": 100,
    }
    for episodes_seen, chance in ((0, 1.0), (50, 0.5), (100, 0.0), (1_000, 0.0)):
        self_play = actor("search", 1.0, entry_exploration=0.0, **schedule)
        self_play.episodes_seen = episodes_seen
        chances = entry_chances(self_play)
        decisions = recorded(self_play)
        play(self_play)
        assert chances and all(c == pytest.approx(chance) for c in chances)
        flat_differ, _ = off_greedy(self_play, decisions)
        assert (flat_differ > 0) == (chance > 0)


def test_without_a_decay_the_entry_chance_is_the_same_from_the_first_episode() -> None:
    config = replace(
        Config(),
        **{"train.entry_exploration": 0.25, "train.entry_exploration_decay_episodes": 0},
    )
    assert entry_exploration(config, 0) == entry_exploration(config, 10**6) == 0.25
    # the default: every flat decision explored at first, a quarter after 5,000 episodes
    assert entry_exploration(Config(), 0) == 1.0
    assert entry_exploration(Config(), 2_500) == pytest.approx(0.625)
    assert entry_exploration(Config(), 5_000) == entry_exploration(Config(), 10**6) == 0.25


def test_the_best_bootstrap_takes_the_highest_searched_q_and_search_the_root_value() -> None:
    # `train.value_bootstrap`: `best` ignores unsearched actions (their Q is NaN, or stale) and
    # falls back to the root value where nothing was searched; `search` is the root value.
    rationale = Rationale(
        visit_counts=np.array([[3, 4, 1, 0], [0, 0, 0, 0], [8, 0, 0, 0]], np.int32),
        q=np.array([[-1.0, 2.5, 0.5, np.nan], [np.nan] * 4, [-3.0, 9.0, 9.0, 9.0]], np.float32),
        prior=np.full((3, 4), 0.25, np.float32),
        chance_probs=np.full((3, 4, 3), np.nan, np.float32),
        value=np.array([1.0, -0.5, -2.0], np.float32),
        network_value=np.zeros(3, np.float32),
        policy_target=np.full((3, 4), 0.25, np.float32),
        best_action=np.array([1, 0, 0], np.int64),
    )
    np.testing.assert_array_equal(bootstrap_values(rationale, "search"), [1.0, -0.5, -2.0])
    best = bootstrap_values(rationale, "best")
    assert best.dtype == np.float32
    np.testing.assert_array_equal(best, [2.5, -0.5, -3.0])


def test_self_play_stores_the_bootstrap_values_of_its_searches() -> None:
    # Through the actor's real loop: each step's stored root value is what `bootstrap_values`
    # makes of that step's search (recorded by wrapping the agent), for both kinds.
    for kind in ("search", "best"):
        self_play = actor(kind)
        decisions = recorded(self_play)
        episodes = play(self_play)
        searches = [why for _, _, why in decisions]
        expected = np.stack([bootstrap_values(why, kind) for why in searches], axis=1)  # [B, T]
        for i, (trajectory, _) in enumerate(episodes):
            n = len(trajectory.root_values)
            np.testing.assert_array_equal(trajectory.root_values, expected[i, :n])
        values = np.stack([why.value for why in searches], axis=1)
        assert (kind == "search") == np.array_equal(expected, values)


def test_self_play_marks_the_decisions_that_did_not_take_the_search_best_action() -> None:
    # What `train.cut_explored` cuts the value targets at: through the actor's real loop, a step
    # is explored exactly when its action is not the search's best; exploring every decision
    # marks some, exploring none marks none.
    for chance in (1.0, 0.0):
        self_play = actor("best", chance, chance)
        decisions = recorded(self_play)
        episodes = play(self_play)
        taken = np.stack([actions for _, actions, _ in decisions], axis=1)  # [B, T]
        best = np.stack([why.best_action for _, _, why in decisions], axis=1)
        for i, (trajectory, _) in enumerate(episodes):
            n = len(trajectory.actions)
            assert trajectory.explored is not None
            np.testing.assert_array_equal(trajectory.explored, taken[i, :n] != best[i, :n])
        marked = sum(int(trajectory.explored.sum()) for trajectory, _ in episodes)
        assert (marked > 0) == (chance == 1.0)


def test_a_cut_session_bootstraps_from_its_last_bar_searched_as_if_it_went_on() -> None:
    # `train.session_end` bootstrap, through the actor's real loop: after the last step one more
    # greedy search runs on the last bar with every position the session end closed still open
    # (`TradingEnv.uncut`); each trajectory's end value is what `bootstrap_values` makes of it,
    # and the forced close's exit slippage is not charged (an episode's rewards sum to its
    # trades' net pips plus that slippage for a cut trade). `terminal` adds no search.
    slippage = 0.5
    for session_end in ("terminal", "bootstrap"):
        self_play = actor(
            "best",
            entry_exploration=0.1,
            **{"train.session_end": session_end, "env.slippage_pips": slippage},
        )
        decisions = recorded(self_play)
        episodes = play(self_play)
        if session_end == "terminal":
            assert len(decisions) == L - 1
            assert all(trajectory.end_value == 0.0 for trajectory, _ in episodes)
            for trajectory, summary in episodes:
                assert trajectory.rewards.sum() == pytest.approx(summary.pips, abs=1e-3)
            continue
        assert len(decisions) == L
        end, _, why = decisions[-1]
        last_rows = np.array([trajectory.rows[-1] + 1 for trajectory, _ in episodes])
        np.testing.assert_array_equal(end.window, self_play.market.windows(last_rows))
        cut = np.asarray(end.side) != 0
        assert cut.any() and not cut.all()
        expected = bootstrap_values(why, "best")
        for i, (trajectory, summary) in enumerate(episodes):
            assert trajectory.end_value == pytest.approx(float(expected[i]))
            charged_back = slippage if cut[i] else 0.0
            assert trajectory.rewards.sum() == pytest.approx(summary.pips + charged_back, abs=1e-3)
