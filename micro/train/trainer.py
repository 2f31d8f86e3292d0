"""`micro train`: actor processes feed the learner; the learner owns replay, optimiser, checkpoints.

The learner runs in this process. Each actor has its own pair of queues (trajectories up,
weights down), so an actor that dies mid-write can only break its own queue, which is replaced
when the actor is restarted. The learner never blocks on an actor: every read has a timeout.
SIGINT/SIGTERM finish the current step, write latest.pth and exit 0. Resuming from latest.pth
restores weights, optimiser, counters and RNG states (the replay buffer refills).

`micro.train.ray_backend.RayTrainer` keeps all of this and replaces only the actor-facing
methods (`_supervise`, `_receive`, `_publish_weights`, `_stop_actors`, `_actor_status`,
`_backend_status`) to run the actors on a Ray cluster instead.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from micro.config import MODEL_SECTIONS, Config
from micro.home import Home
from micro.train.actor import ActorSpec, EpisodeSummary, actor_main
from micro.train.learner import LOSS_TERMS, Learner
from micro.train.monitor import EpisodeStats, TrainerMonitor
from micro.train.replay import ReplayBuffer, Trajectory, mirror_batch
from micro.train.store import LATEST, numbered_name, prune

log = logging.getLogger("micro.train")

ACTOR_RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Limits:
    max_episodes: int | None = None
    max_minutes: float | None = None


@dataclass
class ActorSlot:
    """One supervised actor process and its queues."""

    actor_id: int
    process: Any = None
    trajectories: Any = None
    weights: Any = None
    restarts: int = 0
    restart_at: float = 0.0
    episodes: int = 0


@dataclass
class Counters:
    episodes: int = 0
    learner_steps: int = 0
    env_steps: int = 0
    samples: int = 0
    weight_version: int = 0
    actor_launches: int = 0
    last_numbered: int = 0
    extra: dict = field(default_factory=dict)


class Trainer:
    def __init__(self, home: Home, config: Config, limits: Limits) -> None:
        from micro.data.market import load_market
        from micro.model.networks import StochasticMuZeroNet

        self.home = home
        self.config = config
        self.limits = limits
        self.market = load_market(home.store, config)
        if len(self.market.sessions("train")) == 0:
            from micro.errors import DataError

            raise DataError(
                f"{home.store}: no training sessions; import or synthesise more data "
                "(`micro data synth --days 60`) and run `micro data prepare`"
            )
        from micro.data.fingerprint import read_fingerprint

        # What every checkpoint of this run is bound to (self-play's simulations).
        self.data_fingerprint = read_fingerprint(home.store, config, config.mcts.simulations)
        cores = os.cpu_count() or 2
        threads = config.train.threads or max(1, cores - config.train.actors)
        torch.set_num_threads(threads)
        self.net = StochasticMuZeroNet(config.model, window=config.features.window)
        self.learner = Learner(self.net, config)
        self.replay = ReplayBuffer(
            config.train.replay_capacity,
            unroll_steps=config.train.unroll_steps,
            n_step=config.train.n_step,
            discount=config.mcts.discount,
            prioritized=config.train.prioritized,
            priority_alpha=config.train.priority_alpha,
            priority_beta=config.train.priority_beta,
            cut_explored=config.train.cut_explored,
            cut_explored_exits=config.train.cut_explored_exits,
        )
        self.counters = Counters()
        self.rng = np.random.default_rng(config.train.seed)
        self.stats = EpisodeStats()
        self.losses: dict[str, float] = {}
        self.weight_lag = 0
        self.stopping = False
        self.stop_reason = ""
        self._resume()
        self.gate_start = (self.counters.env_steps, self.counters.samples)  # for _gate_selfplay
        self.monitor = TrainerMonitor(home.monitoring, run_name=self._run_name())
        import multiprocess

        self.mp = multiprocess.get_context("spawn")
        self.stop_event = self.mp.Event()
        # 0 while self-play is ahead of the replay ratio. A lock-free shared byte: an actor killed
        # mid-read cannot leave a lock held that would wedge the trainer (an Event's would).
        self.selfplay_go = self.mp.RawValue("b", 1)
        self.selfplay_open = True
        self.actors = [ActorSlot(i) for i in range(config.train.actors)]

    # ------------------------------------------------------------------ lifecycle

    def _run_name(self) -> str:
        return f"run-{self.config.section_hash(*MODEL_SECTIONS)}"

    def _resume(self) -> None:
        from micro.model.checkpoint import load_checkpoint

        path = self.home.checkpoints / LATEST
        if not path.exists():
            log.info("starting a new run (no %s)", path)
            return
        loaded = load_checkpoint(path, self.config)
        self._check_same_data(path, loaded.data_fingerprint)
        state = loaded.trainer_state or {}
        average = self.learner.average
        if average is not None:  # the average goes on from the checkpoint's weights
            average.module.load_state_dict(loaded.net.state_dict())
            average.n_averaged.fill_(max(1, loaded.learner_step))  # so the next step blends
        if "learner_weights" in state:  # the checkpoint's own weights are the average
            self.net.load_state_dict(state["learner_weights"])
        else:
            self.net.load_state_dict(loaded.net.state_dict())
        if loaded.optimizer_state:
            self.learner.optimizer.load_state_dict(loaded.optimizer_state)
        c = self.counters
        c.episodes = int(state.get("episodes", 0))
        c.learner_steps = int(state.get("learner_steps", 0))
        c.env_steps = int(state.get("env_steps", 0))
        c.samples = int(state.get("samples", 0))
        if state.get("samples_unit") != "unroll_starts":  # older runs counted batch × K
            c.samples //= self.config.train.unroll_steps
        c.weight_version = int(state.get("weight_version", 0))
        c.actor_launches = int(state.get("actor_launches", 0))
        c.last_numbered = int(state.get("last_numbered", 0))
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        self.learner.steps = c.learner_steps
        log.info("resumed from %s: episode %d, learner step %d", path, c.episodes, c.learner_steps)

    def _check_same_data(self, path: Path, theirs: dict[str, Any] | None) -> None:
        """UserError (one line) when `path` was trained on other data than the store holds."""
        from micro.data.fingerprint import differences
        from micro.errors import UserError

        differ = differences(theirs, self.data_fingerprint, "training")
        if differ:
            raise UserError(
                f"{path}: trained on other data than {self.home.store} holds "
                f"({'; '.join(differ)}); restore that data, or start a new run by moving "
                f"{self.home.checkpoints} away"
            )

    def _trainer_state(self) -> dict:
        c = self.counters
        state: dict[str, Any] = {
            "episodes": c.episodes,
            "learner_steps": c.learner_steps,
            "env_steps": c.env_steps,
            "samples": c.samples,
            "samples_unit": "unroll_starts",
            "weight_version": c.weight_version,
            "actor_launches": c.actor_launches,
            "last_numbered": c.last_numbered,
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }
        if self.learner.average is not None:  # the checkpoint carries the average: keep ours
            state["learner_weights"] = {k: v.detach() for k, v in self.net.state_dict().items()}
        return state

    def save(self, path: Path) -> None:
        from micro.model.checkpoint import save_checkpoint

        save_checkpoint(
            path,
            self.learner.acting,
            self.config,
            episode=self.counters.episodes,
            learner_step=self.counters.learner_steps,
            optimizer_state=self.learner.optimizer.state_dict(),
            trainer_state=self._trainer_state(),
            data_fingerprint=self.data_fingerprint,
        )

    def request_stop(self, reason: str) -> None:
        if not self.stopping:
            log.info("stopping: %s", reason)
        self.stopping = True
        self.stop_reason = reason

    # ------------------------------------------------------------------ actors

    def _weights_message(self) -> tuple[int, int, dict]:
        acting = self.learner.acting.state_dict()
        state = {k: v.detach().cpu().numpy().copy() for k, v in acting.items()}
        return (self.counters.weight_version, self.counters.episodes, state)

    def _actor_spec(self, actor_id: int) -> ActorSpec:
        """The spec of a new actor launch: its own seed, derived from the run's and the launch's."""
        self.counters.actor_launches += 1
        seed = int(
            np.random.SeedSequence(
                [self.config.train.seed, actor_id, self.counters.actor_launches]
            ).generate_state(1)[0]
        )
        return ActorSpec(
            actor_id=actor_id,
            store_path=str(self.home.store),
            config=self.config.to_dict(redact=False),
            seed=seed,
            threads=1,
        )

    def _start_actor(self, slot: ActorSlot) -> None:
        spec = self._actor_spec(slot.actor_id)
        slot.trajectories = self.mp.Queue()
        slot.weights = self.mp.Queue(maxsize=2)
        slot.weights.put(self._weights_message())
        slot.process = self.mp.Process(
            target=actor_main,
            args=(
                spec,
                slot.trajectories,
                slot.weights,
                self.stop_event,
                os.getpid(),
                self.selfplay_go,
            ),
            name=f"micro-actor-{slot.actor_id}",
            daemon=True,
        )
        slot.process.start()
        log.info("actor %d started (pid %d)", slot.actor_id, slot.process.pid)

    def _supervise(self) -> None:
        now = time.monotonic()
        for slot in self.actors:
            if slot.process is None:
                self._start_actor(slot)
                continue
            if slot.process.is_alive():
                continue
            if slot.restart_at == 0.0:
                delay = ACTOR_RESTART_BACKOFF[min(slot.restarts, len(ACTOR_RESTART_BACKOFF) - 1)]
                slot.restart_at = now + delay
                log.error(
                    "actor %d died (exit code %s); restarting in %.0f s",
                    slot.actor_id,
                    slot.process.exitcode,
                    delay,
                )
            elif now >= slot.restart_at:
                slot.restarts += 1
                slot.restart_at = 0.0
                self._start_actor(slot)

    def _publish_weights(self) -> None:
        self.counters.weight_version += 1
        message = self._weights_message()
        for slot in self.actors:
            if slot.weights is None or slot.process is None or not slot.process.is_alive():
                continue
            try:
                while True:
                    slot.weights.get_nowait()  # drop what the actor has not picked up yet
            except (queue.Empty, OSError, ValueError):
                pass
            try:
                slot.weights.put_nowait(message)
            except (queue.Full, OSError, ValueError):
                pass

    def _stop_actors(self) -> None:
        self.stop_event.set()
        self.selfplay_go.value = 1  # an actor waiting for the learner must see the stop
        self.selfplay_open = True
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(
            s.process is not None and s.process.is_alive() for s in self.actors
        ):
            self._drain()  # an actor blocked on a full pipe must be able to finish
            time.sleep(0.05)
        for slot in self.actors:
            if slot.process is not None and slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=2.0)
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(timeout=2.0)
        for slot in self.actors:
            for q in (slot.trajectories, slot.weights):
                if q is not None:
                    q.cancel_join_thread()
                    q.close()

    # ------------------------------------------------------------------ learning

    def _receive(self) -> int:
        """Move finished episodes from every actor into replay; returns positions received."""
        received = 0
        for slot in self.actors:
            if slot.trajectories is None:
                continue
            while True:
                try:
                    trajectory, summary = slot.trajectories.get_nowait()
                except queue.Empty:
                    break
                except (OSError, EOFError, ValueError):
                    break
                self._accept(trajectory, summary)
                slot.episodes += 1
                received += len(trajectory)
        return received

    def _drain(self) -> None:
        """Read and drop whatever actors are still sending (used while stopping)."""
        for slot in self.actors:
            if slot.trajectories is None:
                continue
            try:
                while True:
                    slot.trajectories.get_nowait()
            except (queue.Empty, OSError, EOFError, ValueError):
                pass

    def _accept(self, trajectory: Trajectory, summary: EpisodeSummary) -> None:
        self.replay.add(trajectory)
        # How many weight publications behind the learner this episode was played.
        self.weight_lag = self.counters.weight_version - trajectory.weight_version
        self.counters.episodes += 1
        self.counters.env_steps += len(trajectory)
        self.stats.add(summary.pips, summary.trades, summary.wins, summary.action_counts)

    def _selfplay_slack(self) -> int:
        """Positions self-play may run ahead of the ratio: one batch of sessions per actor."""
        train = self.config.train
        sessions = train.actors * train.envs_per_actor * (self.market.session_bars - 1)
        return sessions + train.min_replay

    def _gate_selfplay(self) -> None:
        """Let the actors play only while the learner keeps up with `train.replay_ratio`.

        Counted from this process's start (a resumed run's replay starts empty, whatever the
        restored counters say), and always open until the learner has enough to sample.
        """
        c = self.counters
        train = self.config.train
        env0, samples0 = self.gate_start
        ahead = (c.env_steps - env0) - (c.samples - samples0) / train.replay_ratio
        open_ = not (self._replay_warm() and ahead > self._selfplay_slack())
        if open_ != self.selfplay_open:  # write the shared byte only when the gate flips
            self.selfplay_go.value = int(open_)
            self.selfplay_open = open_

    def _replay_warm(self) -> bool:
        """Whether replay holds enough positions for the learner to sample (train.min_replay)."""
        train = self.config.train
        return len(self.replay) >= min(train.min_replay, train.replay_capacity)

    def _learn(self) -> bool:
        """One learner step when replay is warm and the replay ratio allows; True if stepped."""
        train = self.config.train
        if not self._replay_warm():
            return False
        if self.counters.samples > train.replay_ratio * self.counters.env_steps:
            return False
        batch = self.replay.sample(train.batch_size, self.rng)
        if train.reanalyze:
            points = self.replay.bootstrap_points(batch.ids)
            batch = self.learner.reanalyse(batch, points, self.market.windows(points.rows))
        windows = self.market.windows(batch.rows)
        if train.mirror:
            batch, windows = mirror_batch(batch, windows, self.rng.random(len(batch.ids)) < 0.5)
        losses, errors = self.learner.step(batch, windows, self.counters.episodes)
        self.replay.update_priorities(batch.ids, errors)
        self.counters.learner_steps += 1
        self.counters.samples += train.batch_size
        self.losses = losses
        if self.counters.learner_steps % train.publish_weights_steps == 0:
            self._publish_weights()
        return True

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        previous = {
            s: signal.signal(s, lambda *_: self.request_stop("signal"))
            for s in (signal.SIGINT, signal.SIGTERM)
        }
        started = time.monotonic()
        last_latest = last_report = started
        rate_mark = (started, self.counters.env_steps, self.counters.learner_steps)
        start_episodes = self.counters.episodes
        train = self.config.train
        try:
            self._supervise()
            while not self.stopping:
                self._supervise()
                received = self._receive()
                stepped = self._learn()
                self._gate_selfplay()
                if not received and not stepped:
                    time.sleep(0.02)
                c = self.counters
                if c.episodes - c.last_numbered >= train.checkpoint_every_episodes:
                    self._save_numbered()
                now = time.monotonic()
                if now - last_latest >= train.latest_every_seconds:
                    self.save(self.home.checkpoints / LATEST)
                    last_latest = now
                if now - last_report >= train.report_every_seconds:
                    rate_mark = self._report(rate_mark, "running")
                    last_report = now
                lim = self.limits
                if lim.max_episodes is not None and c.episodes - start_episodes >= lim.max_episodes:
                    self.request_stop(f"--max-episodes {lim.max_episodes} reached")
                if lim.max_minutes is not None and now - started >= lim.max_minutes * 60:
                    self.request_stop(f"--max-minutes {lim.max_minutes} reached")
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self._stop_actors()
            self.save(self.home.checkpoints / LATEST)
            self._report(rate_mark, "stopped")
            self.monitor.close()
        log.info(
            "trainer stopped (%s): %d episodes, %d learner steps; latest.pth written",
            self.stop_reason or "done",
            self.counters.episodes,
            self.counters.learner_steps,
        )
        return 0

    def _save_numbered(self) -> None:
        c = self.counters
        c.last_numbered = c.episodes
        path = self.home.checkpoints / numbered_name(c.episodes)
        self.save(path)
        log.info("checkpoint %s (learner step %d)", path.name, c.learner_steps)
        prune(self.home.checkpoints, self.home.validation, self.config.train.keep_checkpoints)

    def _actor_status(self) -> list[dict[str, Any]]:
        """One `ActorStatus` record per actor, as status.json lists them."""
        return [
            {
                "id": s.actor_id,
                "alive": bool(s.process is not None and s.process.is_alive()),
                "pid": s.process.pid if s.process is not None else None,
                "restarts": s.restarts,
                "episodes": s.episodes,
            }
            for s in self.actors
        ]

    def _backend_status(self) -> dict[str, Any]:
        """Figures of the actors' backend, written flat into status.json beside the others."""
        return {"backend": "local"}

    def _report(self, mark: tuple[float, int, int], state: str) -> tuple[float, int, int]:
        now = time.monotonic()
        c = self.counters
        dt = max(now - mark[0], 1e-9)
        env_rate = (c.env_steps - mark[1]) / dt
        learner_rate = (c.learner_steps - mark[2]) / dt
        recent = self.stats.summary()
        actions = self.stats.action_distribution()
        starts_per_position = c.samples / c.env_steps if c.env_steps else None
        status = {
            "state": state,
            "episodes": c.episodes,
            "learner_steps": c.learner_steps,
            "env_steps": c.env_steps,
            "weight_version": c.weight_version,
            "weight_lag": self.weight_lag,
            "env_steps_per_s": env_rate,
            "learner_steps_per_s": learner_rate,
            "learner_samples_per_s": learner_rate * self.config.train.batch_size,
            "unroll_starts_per_position": starts_per_position,
            "reanalysis_shift_pips": self.learner.reanalysis_shift,
            "selfplay_waiting": not self.selfplay_open,
            "buffer_positions": len(self.replay),
            "losses": self.losses,
            "action_distribution": actions,
            "recent": recent,
            "actors": self._actor_status(),
            "config_hash": self.config.section_hash(*MODEL_SECTIONS),
            **self._backend_status(),
        }
        scalars: dict[str, float | None] = {
            f"loss/{t}": self.losses.get(t) for t in (*LOSS_TERMS, "total")
        }
        scalars.update(
            {
                "throughput/env_steps_per_s": env_rate,
                "throughput/learner_steps_per_s": learner_rate,
                "replay/positions": float(len(self.replay)),
                "progress/episodes": float(c.episodes),
                "replay/weight_lag": float(self.weight_lag),
                "progress/env_steps": float(c.env_steps),
                "progress/learner_steps": float(c.learner_steps),
                "replay/unroll_starts_per_position": starts_per_position,
                "replay/reanalysis_shift_pips": self.learner.reanalysis_shift,
                "progress/learning_rate": self.losses.get("learning_rate"),
                "episode/pips": recent["pips_per_episode"],
                "episode/win_rate": recent["win_rate"],
                "episode/trades": recent["trades_per_episode"],
            }
        )
        scalars.update({f"actions/{name}": share for name, share in actions.items()})
        self.monitor.report(status, scalars, step=c.learner_steps)
        return (now, c.env_steps, c.learner_steps)
