"""A self-play actor process: B environments stepped through one batched search.

Runs in its own process (the `multiprocess` package, spawn start). It loads the market
read-only, plays B training sessions in lockstep with `Agent.act(mode="explore")` and sends one
`Trajectory` per finished session to the learner. Weights arrive on its own queue as
(version, episodes, state_dict); the newest is loaded between steps. It exits when the stop
event is set, and never outlives the trainer: the kernel kills it when its parent dies
(PR_SET_PDEATHSIG), and it also checks its parent pid every step.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from micro.config import Config
from micro.processes import die_with_parent
from micro.train.replay import Trajectory

if TYPE_CHECKING:
    from micro.data.market import Market
    from micro.mcts.agent import Rationale

log = logging.getLogger("micro.train.actor")


@dataclass(frozen=True)
class ActorSpec:
    """Everything an actor process needs, picklable."""

    actor_id: int
    store_path: str
    config: dict[str, Any]  # Config.to_dict(redact=False)
    seed: int
    threads: int


@dataclass(frozen=True)
class EpisodeSummary:
    """Self-play statistics of one finished episode, sent with its trajectory."""

    pips: float
    trades: int
    wins: int
    action_counts: np.ndarray  # [4] int64
    weight_version_start: int


def _decayed(start: float, end: float, decay_episodes: int, episodes: int) -> float:
    """Linear from start to end over the decay episodes, end after them (at once if 0)."""
    if decay_episodes <= 0:
        return end
    return start + min(episodes / decay_episodes, 1.0) * (end - start)


def temperature(config: Config, episodes: int) -> float:
    """Action-sampling temperature: linear from start to end over the decay episodes."""
    train = config.train
    return _decayed(
        train.temperature_start, train.temperature_end, train.temperature_decay_episodes, episodes
    )


def entry_exploration(config: Config, episodes: int) -> float:
    """The chance that a flat decision explores: linear from its start to `entry_exploration`."""
    train = config.train
    return _decayed(
        train.entry_exploration_start,
        train.entry_exploration,
        train.entry_exploration_decay_episodes,
        episodes,
    )


def bootstrap_values(rationale: Rationale, kind: str) -> np.ndarray:
    """[B] float32 pips the n-step value targets bootstrap from (`train.value_bootstrap`).

    `search`: the root's search value. `best`: the highest Q among the root's searched actions,
    the value of acting greedily from there (the root value where no action was searched).
    """
    if kind == "search":
        return rationale.value
    q = np.where(rationale.visit_counts > 0, rationale.q, -np.inf)
    best = q.max(axis=1)
    return np.where(np.isfinite(best), best, rationale.value).astype(np.float32)


def actor_main(
    spec: ActorSpec,
    trajectories: Any,
    weights: Any,
    stop: Any,
    parent_pid: int,
    go: Any = None,
) -> None:
    """Entry point of an actor process; `go` (a shared byte) is 0 while it must wait."""
    die_with_parent()
    if os.getppid() != parent_pid:  # the trainer died before the request above was made
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer decides when actors stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    import torch

    from micro.config import config_from_dict

    config = config_from_dict(spec.config, source="trainer")
    torch.set_num_threads(max(spec.threads, 1))
    actor = SelfPlay(spec, config, go)
    try:
        actor.run(trajectories, weights, stop, parent_pid)
    except KeyboardInterrupt:
        pass
    finally:
        # Do not block exit on flushing episodes the learner will no longer read.
        trajectories.cancel_join_thread()


class SelfPlay:
    """The actor's loop, separate from the process plumbing so tests can drive it in-process."""

    def __init__(
        self,
        spec: ActorSpec,
        config: Config,
        go: Any = None,
        market: Market | None = None,
        node: str = "",
    ) -> None:
        """`market`: the trainer's, already loaded (a Ray actor on a machine without the store);
        None loads it from `spec.store_path`. `node`: the Ray node id stamped on trajectories."""
        from pathlib import Path

        from micro.data.market import load_market
        from micro.env.trading import TradingEnv
        from micro.mcts.agent import Agent
        from micro.model.networks import StochasticMuZeroNet

        self.spec = spec
        self.config = config
        self.market = market if market is not None else load_market(Path(spec.store_path), config)
        self.node = node
        self.starts = self.market.sessions("train")
        self.net = StochasticMuZeroNet(config.model, window=config.features.window)
        self.net.eval()
        self.agent = Agent(self.net, config.mcts)
        self.batch = config.train.envs_per_actor
        self.env = TradingEnv(self.market, config, self.batch)
        self.rng = np.random.default_rng(spec.seed)
        self.version = -1
        self.episodes_seen = 0
        self.go = go  # the trainer's replay-ratio gate (None: never wait)

    def load_weights(self, message: tuple[int, int, dict]) -> None:
        import torch

        version, episodes, state = message
        self.net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        self.net.eval()
        self.version, self.episodes_seen = version, episodes

    def poll_weights(self, weights: Any) -> None:
        newest = None
        while True:
            try:
                newest = weights.get_nowait()
            except queue.Empty:
                break
        if newest is not None:
            self.load_weights(newest)

    def run(self, trajectories: Any, weights: Any, stop: Any, parent_pid: int) -> None:
        # The first weights are sent before the actor starts; wait for them (or a stop).
        while self.version < 0 and not stop.is_set():
            try:
                self.load_weights(weights.get(timeout=0.5))
            except queue.Empty:
                if os.getppid() != parent_pid:
                    return
        while not stop.is_set():
            episode = self.play_sessions(weights, stop, parent_pid)
            if episode is None:
                return
            for trajectory, summary in episode:
                trajectories.put((trajectory, summary))

    def play_sessions(
        self, weights: Any, stop: Any, parent_pid: int
    ) -> list[tuple[Trajectory, EpisodeSummary]] | None:
        """Play B sessions to their end; None when stopped part-way (partial data is dropped)."""
        from micro.env.actions import NUM_ACTIONS
        from micro.mcts.agent import Observations

        b = self.batch
        starts = self.rng.choice(self.starts, size=b, replace=len(self.starts) < b)
        obs = self.env.reset(starts)
        steps = self.market.session_bars - 1
        rows = np.zeros((b, steps), np.int64)
        static = np.zeros((b, steps, 6), np.float32)
        side = np.zeros((b, steps), np.int8)
        actions = np.zeros((b, steps), np.int8)
        rewards = np.zeros((b, steps), np.float32)
        outcomes = np.zeros((b, steps), np.int8)
        root_values = np.zeros((b, steps), np.float32)
        policies = np.zeros((b, steps, NUM_ACTIONS), np.float32)
        explored = np.zeros((b, steps), bool)
        pips = np.zeros(b)
        trades = np.zeros(b, np.int64)
        wins = np.zeros(b, np.int64)
        version_start = self.version
        length = np.full(b, steps, np.int64)
        alive = np.ones(b, bool)
        for t in range(steps):
            if stop.is_set() or os.getppid() != parent_pid:
                return None
            while self.go is not None and not self.go.value:  # the learner is behind
                if stop.is_set() or os.getppid() != parent_pid:
                    return None
                time.sleep(0.02)
            self.poll_weights(weights)
            observations = Observations(
                window=self.market.windows(obs.rows),
                static=obs.static,
                legal=obs.legal,
                side=obs.side,
            )
            temp = temperature(self.config, self.episodes_seen)
            chosen, rationale = self.agent.act(
                observations,
                "explore",
                self.rng,
                temp,
                exit_exploration=self.config.train.exit_exploration,
                entry_exploration=entry_exploration(self.config, self.episodes_seen),
            )
            rows[:, t] = obs.rows
            static[:, t] = obs.static
            side[:, t] = obs.side
            actions[:, t] = chosen
            root_values[:, t] = bootstrap_values(rationale, self.config.train.value_bootstrap)
            policies[:, t] = rationale.policy_target
            explored[:, t] = chosen != rationale.best_action
            result = self.env.step(chosen)
            rewards[:, t] = result.reward
            outcomes[:, t] = result.outcome
            for trade in result.trades:
                env_id = int(trade["env"])
                pips[env_id] += trade["pips"]
                trades[env_id] += 1
                wins[env_id] += int(trade["pips"] > 0)
            finished = result.done & alive
            length[finished] = t + 1
            alive &= ~result.done
            obs = result.observation
            if not alive.any():
                break
        end_values = np.zeros(b, np.float32)
        if self.config.train.session_end == "bootstrap":
            end_values = self.value_past_the_end(result.trades, rewards, length)
        out = []
        for i in range(b):
            n = int(length[i])
            counts = np.bincount(actions[i, :n], minlength=NUM_ACTIONS).astype(np.int64)
            trajectory = Trajectory(
                rows=rows[i, :n].copy(),
                static=static[i, :n].copy(),
                side=side[i, :n].copy(),
                actions=actions[i, :n].copy(),
                rewards=rewards[i, :n].copy(),
                outcomes=outcomes[i, :n].copy(),
                root_values=root_values[i, :n].copy(),
                policies=policies[i, :n].copy(),
                weight_version=self.version,
                actor=self.spec.actor_id,
                node=self.node,
                end_value=float(end_values[i]),
                explored=explored[i, :n].copy(),
            )
            summary = EpisodeSummary(
                pips=float(pips[i]),
                trades=int(trades[i]),
                wins=int(wins[i]),
                action_counts=counts,
                weight_version_start=version_start,
            )
            out.append((trajectory, summary))
        return out

    def value_past_the_end(
        self, trades: np.ndarray, rewards: np.ndarray, length: np.ndarray
    ) -> np.ndarray:
        """[B] float32 pips: each session's last bar searched as if the session went on.

        The live trader's market has no session end, so under `train.session_end` bootstrap the
        end is a cut, not a terminal: a position the session end closed is searched still open
        at its last mark (`TradingEnv.uncut`), the exit cost of that forced close comes off the
        last step's reward (in place in `rewards`), and the value targets bootstrap from the
        search's value (`bootstrap_values`, greedy: no noise, no random draw).
        """
        from micro.mcts.agent import Observations

        final = self.env.uncut(trades)
        cut = np.flatnonzero(final.side != 0)  # every session ended here: held = cut by the end
        rewards[cut, length[cut] - 1] += np.float32(self.env.costs.exit_pips)
        observations = Observations(
            window=self.market.windows(final.rows),
            static=final.static,
            legal=final.legal,
            side=final.side,
        )
        _, rationale = self.agent.act(observations, "greedy", self.rng)
        return bootstrap_values(rationale, self.config.train.value_bootstrap)
