"""`micro train --backend ray`: self-play actors on a Ray cluster; the learner stays here.

The trainer process is the Ray driver and keeps everything `micro.train.trainer.Trainer` owns:
the learner, the replay buffer, checkpoints, status and metrics, so the validator, the live
trader and `micro dash` cannot tell which backend trained. Only the actors move:

- A placement group of `train.actors` bundles (`train.ray_cpus_per_actor` CPUs each, strategy
  SPREAD) spreads them over the cluster's nodes; actor i lives in bundle i.
- Each actor (`RemoteSelfPlay`) runs `SelfPlay`'s loop on a thread of its own, on the market the
  trainer put into the object store once (a worker machine needs no copy of the store).
- Weights are put into the object store once per version (`ray.put`); the trainer keeps one
  `exchange` call in flight per actor, which hands over the newest version's reference and the
  replay-ratio gate and returns the episodes finished since the last call (each trajectory
  stamped with its node id and weight version). An actor holds a call up to
  `EXCHANGE_WAIT_SECONDS` for an episode, so the trainer is not flooded with empty answers.
- An actor whose call fails (its process or its whole node died, its loop raised) is logged,
  counted in status.json and replaced after a back-off in its bundle; Ray reschedules a lost
  node's bundles where the cluster has room, and until it has, that actor is simply missing.
- Stopping (a limit, SIGINT/SIGTERM) asks every actor to stop, kills what is left and removes
  the placement group. The actors are the driver's own (not detached), so Ray kills them if
  the trainer dies in any other way: no actor outlives the trainer.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from micro.config import Config
from micro.errors import UserError
from micro.home import Home
from micro.train.actor import ActorSpec, EpisodeSummary, SelfPlay
from micro.train.replay import Trajectory
from micro.train.trainer import ACTOR_RESTART_BACKOFF, Limits, Trainer

if TYPE_CHECKING:
    from micro.data.market import Market

log = logging.getLogger("micro.train")

EXCHANGE_WAIT_SECONDS = 0.5  # longest an actor holds the trainer's call waiting for an episode
STOP_WAIT_SECONDS = 5.0  # actors that have not stopped by then are killed
NODE_CHECK_SECONDS = 2.0  # between looks at which of the cluster's nodes are alive
PROBE_SECONDS = 5.0  # to reach a cluster's head before giving up (Ray itself retries forever)
RAY_TMP = Path("/tmp/ray")  # where `ray start` notes the address of this machine's cluster


# ---------------------------------------------------------------- connecting


def import_ray() -> ModuleType:
    """The `ray` module; a one-line UserError when the optional extra is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise UserError(
            "train.backend = ray needs Ray: install it with `pip install 'micro[ray]'`, or "
            "train with --backend local"
        ) from None


def head_address(address: str) -> str | None:
    """HOST:PORT of the cluster to join: `address` itself, or for `auto` the one `ray start`
    began on this machine ($RAY_ADDRESS, else Ray's note in /tmp/ray); None: a private Ray."""
    if address != "auto":
        return address or None
    found = os.environ.get("RAY_ADDRESS", "")
    if not found:
        try:
            found = (RAY_TMP / "ray_current_cluster").read_text().strip()
        except OSError:
            found = ""
    if not found:
        raise UserError(
            "--address auto: no Ray cluster was started on this machine; run `ray start --head` "
            "first, or give the head's HOST:PORT"
        )
    return found


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine's loopback interface (127.0.0.1, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def probe(address: str) -> None:
    """UserError unless something listens at HOST:PORT `address` (Ray would wait forever)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except (OSError, ValueError) as exc:
        raise UserError(
            f"--address {address}: no Ray head answers there ({exc}); start one with "
            "`ray start --head`, or fix train.ray_address / --address"
        ) from None


def check_reachable(config: Config) -> None:
    """UserError unless `train.ray_address` names a head that answers (none: a private Ray)."""
    address = head_address(config.train.ray_address)
    if address is not None:
        probe(address)


def connect(config: Config) -> tuple[ModuleType, str]:
    """Join the cluster of `train.ray_address` (or start a private Ray); (ray, where) back."""
    train = config.train
    address = head_address(train.ray_address)
    if address is not None:
        probe(address)
    host = "127.0.0.1" if address is None else address.rpartition(":")[0]
    if is_loopback(host):
        # Ray swaps a loopback address for the machine's outward one unless told that this
        # cluster lives on one host; it must be said before ray is imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = import_ray()
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        store = train.ray_object_store_mb * 2**20 or None
        ray.init(
            address="local",
            num_cpus=max(1, int(np.ceil(train.actors * train.ray_cpus_per_actor))),
            object_store_memory=store,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **common,
        )
        return ray, "a private Ray on this machine"
    ray.init(address=address, **common)
    return ray, address


# ---------------------------------------------------------------- the actor


class GateFlag:
    """The replay-ratio gate as `SelfPlay` reads it (`.value`, 0: wait), set by `exchange`."""

    def __init__(self) -> None:
        self.value = 1


class RemoteSelfPlay:
    """A Ray actor: `SelfPlay`'s loop on its own thread; the trainer calls `exchange` and `stop`."""

    def __init__(self, spec: ActorSpec, market: Market) -> None:
        import ray
        import torch

        from micro.config import config_from_dict

        config = config_from_dict(spec.config, source="trainer")
        torch.set_num_threads(max(spec.threads, 1))
        self.ray = ray
        self.node = str(ray.get_runtime_context().get_node_id())
        self.gate = GateFlag()
        self.selfplay = SelfPlay(spec, config, self.gate, market=market, node=self.node)
        self.weights: queue.Queue[tuple[int, int, dict[str, np.ndarray]]] = queue.Queue()
        self.finished: queue.Queue[tuple[Trajectory, EpisodeSummary]] = queue.Queue()
        self.stopping = threading.Event()
        self.version = -1  # the newest weight version handed to the loop
        self.failure = ""
        self.thread = threading.Thread(
            target=self._play, name=f"selfplay-{spec.actor_id}", daemon=True
        )
        self.thread.start()

    def _play(self) -> None:
        try:
            # The raylet is this worker's parent: if it dies, the loop stops.
            self.selfplay.run(self.finished, self.weights, self.stopping, os.getppid())
        except Exception as exc:  # reported to the trainer by the next exchange
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("self-play stopped")

    def exchange(
        self, version: int, weights: list[Any], go: bool, wait: float = EXCHANGE_WAIT_SECONDS
    ) -> tuple[str, int, list[tuple[Trajectory, EpisodeSummary]]]:
        """Take weight `version` (`weights`: [its object ref], or [] when already sent) and the
        gate; return (node id, pid, the episodes finished since the last call)."""
        if weights and version > self.version:
            got, episodes, state = self.ray.get(weights[0])
            # Writable copies: the object store's arrays are read-only views.
            self.weights.put((got, episodes, {k: np.array(v) for k, v in state.items()}))
            self.version = version
        self.gate.value = int(go)
        done = []
        try:
            done.append(self.finished.get(timeout=wait))
            while True:
                done.append(self.finished.get_nowait())
        except queue.Empty:
            pass
        if not self.thread.is_alive() and not self.stopping.is_set():
            raise RuntimeError(f"self-play stopped: {self.failure or 'its loop ended'}")
        return self.node, os.getpid(), done

    def stop(self) -> bool:
        """Stop the loop (an episode under way is dropped); True once it has ended."""
        self.stopping.set()
        self.gate.value = 1  # a loop waiting at the gate must see the stop
        self.thread.join(timeout=STOP_WAIT_SECONDS - 1.0)
        return not self.thread.is_alive()


# ---------------------------------------------------------------- the trainer


@dataclass
class RaySlot:
    """One actor place (a bundle of the placement group) and the actor now in it."""

    actor_id: int
    handle: Any = None  # the Ray actor handle (None: none placed)
    pending: Any = None  # ObjectRef of the exchange call in flight
    node: str = ""  # Ray node id it answered from
    pid: int | None = None  # its worker process on that node
    answered: bool = False  # it has answered since it was placed
    sent_version: int = -1  # weight version last handed to it
    restarts: int = 0
    restart_at: float = 0.0  # monotonic s: when to place a replacement
    episodes: int = 0


class RayTrainer(Trainer):
    """The trainer with its actors on a Ray cluster (see the module docstring)."""

    def __init__(self, home: Home, config: Config, limits: Limits) -> None:
        train = config.train
        self.ray, self.where = connect(config)
        from ray.util.placement_group import placement_group, remove_placement_group

        self.placement_group = placement_group(
            [{"CPU": train.ray_cpus_per_actor}] * train.actors, strategy="SPREAD"
        )
        ready, _ = self.ray.wait(
            [self.placement_group.ready()], timeout=train.ray_placement_timeout_seconds
        )
        if not ready:
            remove_placement_group(self.placement_group)
            total = self.ray.cluster_resources().get("CPU", 0.0)
            self.ray.shutdown()
            raise UserError(
                f"Ray cluster at {self.where}: {train.actors} actors × "
                f"{train.ray_cpus_per_actor:g} CPUs did not fit within "
                f"{train.ray_placement_timeout_seconds:g} s (the cluster has {total:g} CPUs); "
                "add workers with `ray start --address HEAD:PORT`, or lower --actors or "
                "train.ray_cpus_per_actor"
            )
        super().__init__(home, config, limits)
        if not train.threads:  # the learner's share: the cores Ray does not offer actors here
            import torch

            offered = self._cpus_offered_here()
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - int(np.ceil(offered))))
        self.actor_class = self.ray.remote(RemoteSelfPlay)
        self.market_ref = self.ray.put(self.market)
        self.weights_ref = self.ray.put(self._weights_message())
        self.slots = [RaySlot(i) for i in range(train.actors)]
        self.node_episodes: Counter[str] = Counter()
        self.nodes_alive: dict[str, bool] = {}
        self.nodes_lost: set[str] = set()
        self.actor_deaths = 0
        self.actors_replaced = 0
        self.next_node_check = 0.0
        self.actors_stopped = False
        log.info("Ray backend: %d actors placed (SPREAD) on %s", train.actors, self.where)

    def _cpus_offered_here(self) -> float:
        """CPUs the Ray node of this process offers to actors (its `--num-cpus`)."""
        here = self.ray.get_runtime_context().get_node_id()
        for node in self.ray.nodes():
            if node["NodeID"] == here:
                return float(node["Resources"].get("CPU", 0.0))
        return 0.0

    # ------------------------------------------------------------------ actors

    def _place(self, slot: RaySlot) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        strategy = PlacementGroupSchedulingStrategy(
            placement_group=self.placement_group, placement_group_bundle_index=slot.actor_id
        )
        slot.handle = self.actor_class.options(
            num_cpus=self.config.train.ray_cpus_per_actor,
            max_restarts=0,
            scheduling_strategy=strategy,
        ).remote(self._actor_spec(slot.actor_id), self.market_ref)
        slot.answered, slot.sent_version, slot.pid = False, -1, None
        self._exchange(slot)
        log.info("actor %d requested in bundle %d", slot.actor_id, slot.actor_id)

    def _exchange(self, slot: RaySlot) -> None:
        """Put the next exchange call in flight: the newest weights if not yet sent, the gate."""
        version = self.counters.weight_version
        send = [self.weights_ref] if slot.sent_version < version else []
        slot.pending = slot.handle.exchange.remote(version, send, self.selfplay_open)
        slot.sent_version = version

    def _lost(self, slot: RaySlot, exc: BaseException) -> None:
        """Log and count an actor that failed, and schedule its replacement."""
        self.actor_deaths += 1
        delay = ACTOR_RESTART_BACKOFF[min(slot.restarts, len(ACTOR_RESTART_BACKOFF) - 1)]
        reason = " ".join(str(exc).split())[:300]
        log.error(
            "actor %d on node %s died (%s: %s); replacing it in %.0f s",
            slot.actor_id,
            slot.node[:12] or "?",
            type(exc).__name__,
            reason,
            delay,
        )
        try:
            self.ray.kill(slot.handle, no_restart=True)
        except Exception:  # already gone with its node
            pass
        slot.handle = slot.pending = None
        slot.answered = False
        slot.restart_at = time.monotonic() + delay

    def _check_nodes(self) -> None:
        """Note (log and count once) every node that hosted an actor and is no longer alive."""
        try:
            alive = {n["NodeID"]: bool(n["Alive"]) for n in self.ray.nodes()}
        except Exception as exc:  # the head is busy; look again later
            log.warning("could not list the Ray nodes: %s", exc)
            return
        used = {s.node for s in self.slots if s.node} | set(self.node_episodes)
        for node in sorted(used):
            self.nodes_alive[node] = alive.get(node, False)
            if not self.nodes_alive[node] and node not in self.nodes_lost:
                self.nodes_lost.add(node)
                log.error(
                    "Ray node %s is gone; its actors are replaced where the cluster has room",
                    node[:12],
                )

    def _supervise(self) -> None:
        now = time.monotonic()
        if now >= self.next_node_check:
            self._check_nodes()
            self.next_node_check = now + NODE_CHECK_SECONDS
        for slot in self.slots:
            if slot.handle is None and now >= slot.restart_at:
                if slot.restart_at:
                    slot.restarts += 1
                    self.actors_replaced += 1
                self._place(slot)

    def _receive(self) -> int:
        flying = {slot.pending: slot for slot in self.slots if slot.pending is not None}
        if not flying:
            return 0
        ready, _ = self.ray.wait(list(flying), num_returns=len(flying), timeout=0)
        received = 0
        for ref in ready:
            slot = flying[ref]
            slot.pending = None
            try:
                node, pid, episodes = self.ray.get(ref)
            except Exception as exc:  # the actor, its node or its loop died
                self._lost(slot, exc)
                continue
            slot.node, slot.pid, slot.answered = node, pid, True
            for trajectory, summary in episodes:
                self._accept(trajectory, summary)
                slot.episodes += 1
                received += len(trajectory)
            if not self.stopping:
                self._exchange(slot)
        return received

    def _accept(self, trajectory: Trajectory, summary: EpisodeSummary) -> None:
        super()._accept(trajectory, summary)
        self.node_episodes[trajectory.node] += 1

    def _publish_weights(self) -> None:
        self.counters.weight_version += 1
        self.weights_ref = self.ray.put(self._weights_message())  # once per version

    def _stop_actors(self) -> None:
        from ray.util.placement_group import remove_placement_group

        placed = [slot for slot in self.slots if slot.handle is not None]
        # Only an actor that has answered can answer a stop; one still waiting for room is killed.
        stops = [slot.handle.stop.remote() for slot in placed if slot.answered]
        if stops:
            self.ray.wait(stops, num_returns=len(stops), timeout=STOP_WAIT_SECONDS)
        for slot in placed:
            try:
                self.ray.kill(slot.handle, no_restart=True)
            except Exception:
                pass
            slot.handle = slot.pending = None
        try:
            remove_placement_group(self.placement_group)
        except Exception as exc:
            log.warning("could not remove the placement group: %s", exc)
        self.actors_stopped = True
        log.info("Ray actors stopped (%d)", len(placed))
        self.ray.shutdown()

    # ------------------------------------------------------------------ status

    def _actor_status(self) -> list[dict[str, Any]]:
        return [
            {
                "id": s.actor_id,
                "alive": s.handle is not None and s.answered,
                "pid": s.pid,
                "restarts": s.restarts,
                "episodes": s.episodes,
            }
            for s in self.slots
        ]

    def _actor_state(self, slot: RaySlot) -> str:
        """stopped, running (answered since placed), placing (not yet) or replacing (it died)."""
        if self.actors_stopped:
            return "stopped"
        if slot.handle is None:
            return "replacing"
        return "running" if slot.answered else "placing"

    def _backend_status(self) -> dict[str, Any]:
        nodes = {
            node: {
                "episodes": self.node_episodes.get(node, 0),
                "alive": self.nodes_alive.get(node, True),
                "actors": [s.actor_id for s in self.slots if s.node == node and s.handle],
            }
            for node in sorted({s.node for s in self.slots if s.node} | set(self.node_episodes))
        }
        return {
            "backend": "ray",
            "ray": {
                "address": self.where,
                "actor_deaths": self.actor_deaths,
                "actors_replaced": self.actors_replaced,
                "node_deaths": len(self.nodes_lost),
                "nodes": nodes,
                "actors": [
                    {
                        "id": s.actor_id,
                        "node": s.node,
                        "state": self._actor_state(s),
                    }
                    for s in self.slots
                ],
            },
        }
