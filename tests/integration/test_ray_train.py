"""`micro train --backend ray` on a real two-node Ray cluster on 127.0.0.1.

The cluster (`ray.cluster_utils.Cluster`: a head and a worker node, one CPU each, small object
stores, no dashboard) runs in the test process; the trainer is the real `micro train` in a
subprocess that joins it by address, as a user's would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from micro.model.checkpoint import read_sidecar
from tests.conftest import micro_env, run_micro
from tests.helpers import TINY_MODEL, alive, copy_home, wait_for

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep Ray's addresses on 127.0.0.1

NODE = {
    "num_cpus": 1,
    "node_ip_address": "127.0.0.1",
    "object_store_memory": 100 * 2**20,
}

TINY = (
    TINY_MODEL
    + """
[data]
session_bars = 120
[mcts]
simulations = 3
[train]
envs_per_actor = 4
batch_size = 32
min_replay = 200
checkpoint_every_episodes = 8
latest_every_seconds = 1
report_every_seconds = 0.5
publish_weights_steps = 5
"""
)


@pytest.fixture(scope="module")
def prepared_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("template")
    (home / "micro.toml").write_text(TINY)
    assert run_micro(home, "data", "synth", "--days", "20", "--seed", "3").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    return home


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A head and a worker node on 127.0.0.1, one CPU each."""
    from ray.cluster_utils import Cluster

    started = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        started.add_node(**NODE)
        started.wait_for_nodes()
        yield started
    finally:
        started.shutdown()


def status(home: Path) -> dict:
    try:
        return json.loads((home / "monitoring" / "trainer" / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def node_episodes(home: Path) -> dict[str, int]:
    nodes = status(home).get("ray", {}).get("nodes", {})
    return {node: figures["episodes"] for node, figures in nodes.items()}


def replaced_and_running(home: Path, old_pid: int) -> bool:
    """Actor 0 answers again from a new process, with its restart counted."""
    (actor,) = [a for a in status(home)["actors"] if a["id"] == 0]
    return bool(actor["alive"] and actor["pid"] != old_pid and actor["restarts"] == 1)


@pytest.mark.slow
def test_two_node_cluster_trains_survives_a_lost_node_and_resumes_locally(
    prepared_template: Path, tmp_path: Path, cluster: Any
) -> None:
    home = copy_home(prepared_template, tmp_path)
    head = cluster.head_node
    (worker,) = cluster.worker_nodes
    log = (tmp_path / "train.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "micro.cli", "train", "--backend", "ray"]
        + ["--address", cluster.address, "--actors", "2"],
        cwd=home,
        env=micro_env(home, OMP_NUM_THREADS="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        # Trajectories arrive from an actor on each node, stamped with the node's id.
        wait_for(lambda: set(node_episodes(home)) == {head.node_id, worker.node_id}, timeout=150)
        wait_for(lambda: status(home).get("episodes", 0) >= 24, timeout=120)
        assert list((home / "checkpoints").glob("ckpt_ep*.pth"))
        before = status(home)
        assert before["backend"] == "ray" and before["ray"]["node_deaths"] == 0
        assert before["weight_version"] >= 1

        # An actor process that dies is logged, counted and replaced in its bundle.
        (victim,) = [a for a in before["actors"] if a["id"] == 0]
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(lambda: status(home)["ray"]["actors_replaced"] == 1, timeout=60)
        wait_for(lambda: replaced_and_running(home, victim["pid"]), timeout=90)

        cluster.remove_node(worker)  # the worker machine dies with its actor
        wait_for(lambda: status(home)["ray"]["node_deaths"] == 1, timeout=60)
        lost = status(home)
        assert lost["ray"]["actor_deaths"] >= 2
        wait_for(
            lambda: (
                status(home)["episodes"] >= lost["episodes"] + 4
                and status(home)["learner_steps"] > lost["learner_steps"]
            ),
            timeout=120,
        )
        assert proc.poll() is None  # the learner never stopped
        after = status(home)
        assert (
            after["ray"]["nodes"][head.node_id]["episodes"]
            > before["ray"]["nodes"][head.node_id]["episodes"]
        )
        head_pids = [a["pid"] for a in after["actors"] if a["alive"]]
        assert head_pids

        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert time.monotonic() - sent < 30
    finally:
        proc.kill()
        log.close()
    text = (tmp_path / "train.log").read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "is gone" in text and "died" in text  # the lost node and its actor are logged
    wait_for(lambda: not any(alive(p) for p in head_pids), timeout=20)
    final = status(home)
    assert final["state"] == "stopped"
    assert {a["state"] for a in final["ray"]["actors"]} == {"stopped"}
    frame = run_micro(home, "dash", "--once")  # the dashboard shows the cluster's faults
    assert frame.returncode == 0, frame.stderr
    assert "ray nodes" in frame.stdout and "1/2 up, 1 lost" in frame.stdout, frame.stdout
    episodes = final["episodes"]
    assert read_sidecar(home / "checkpoints" / "latest.pth")["episode"] == episodes

    # The local backend resumes the Ray run's checkpoint.
    resumed = run_micro(home, "train", "--max-episodes", "4", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr
    assert read_sidecar(home / "checkpoints" / "latest.pth")["episode"] >= episodes + 4
    assert status(home)["backend"] == "local"


@pytest.mark.slow
def test_no_actor_outlives_a_killed_trainer(
    prepared_template: Path, tmp_path: Path, cluster: Any
) -> None:
    home = copy_home(prepared_template, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "micro.cli", "train", "--backend", "ray"]
        + ["--address", cluster.address, "--actors", "2"],
        cwd=home,
        env=micro_env(home, OMP_NUM_THREADS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: all(a["alive"] for a in status(home).get("actors") or [{"alive": 0}]),
            timeout=150,
        )
        pids = [a["pid"] for a in status(home)["actors"]]
        proc.kill()  # SIGKILL: no stop, no clean-up of its own
        proc.wait(timeout=10)
    finally:
        proc.kill()
    wait_for(lambda: not any(alive(p) for p in pids), timeout=60)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--backend", "rey"], "train.backend must be one of 'local', 'ray'"),
        (["--backend", "ray", "--address", "head"], "train.ray_address must be HOST:PORT"),
        (["--backend", "ray", "--address", "127.0.0.1:1"], "no Ray head answers there"),
        (["--address", "127.0.0.1:6379"], "add --backend ray"),
    ],
)
def test_bad_backend_or_address_is_one_line_and_exit_2(
    home: Path, args: list[str], expected: str
) -> None:
    result = run_micro(home, "train", *args, timeout=60)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (home / "checkpoints").exists() and not status(home)  # nothing written
