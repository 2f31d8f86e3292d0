"""`micro train` as a user runs it: real subprocesses, real files, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from micro.config import load_config
from micro.errors import UserError
from micro.locks import hold_lock
from micro.model.checkpoint import load_checkpoint, read_sidecar
from tests.conftest import micro_env, run_micro
from tests.helpers import TINY_MODEL, alive, copy_home, wait_for

TINY = (
    TINY_MODEL
    + """
[mcts]
simulations = 3
[train]
envs_per_actor = 8
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
    assert run_micro(home, "data", "synth", "--days", "30", "--seed", "3").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(TINY)
    return home


@pytest.fixture
def trained_home(prepared_template: Path, tmp_path: Path) -> Path:
    return copy_home(prepared_template, tmp_path)


def start_train(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "micro.cli", "train", *args],
        cwd=home,
        env=micro_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def status(home: Path) -> dict:
    try:
        return json.loads((home / "monitoring" / "trainer" / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_train_without_prepared_data_says_what_to_run(home: Path) -> None:
    result = run_micro(home, "train", "--max-episodes", "1")
    assert result.returncode == 2
    assert "micro data synth" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bounded_run_writes_checkpoints_sidecars_and_monitoring(trained_home: Path) -> None:
    result = run_micro(trained_home, "train", "--max-episodes", "16", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ckpts = trained_home / "checkpoints"
    numbered = sorted(p.name for p in ckpts.glob("ckpt_ep*.pth"))
    assert numbered and numbered[0] == "ckpt_ep0000008.pth"
    sidecar = read_sidecar(ckpts / "latest.pth")
    assert sidecar is not None and sidecar["episode"] >= 16 and sidecar["learner_step"] >= 1
    for key in ("format_version", "created_at", "model_config_hash", "sha256"):
        assert key in sidecar
    config = load_config(trained_home, environ={})
    loaded = load_checkpoint(ckpts / "latest.pth", config)
    assert loaded.trainer_state["episodes"] == sidecar["episode"]
    final = status(trained_home)
    assert final["state"] == "stopped" and final["episodes"] >= 16
    assert final["weight_version"] >= 1 and 0 <= final["weight_lag"] <= final["weight_version"]
    assert set(final["losses"]) >= {"policy", "value", "reward", "chance", "afterstate_q"}
    assert abs(sum(final["action_distribution"].values()) - 1.0) < 1e-6
    metrics = (trained_home / "monitoring" / "trainer" / "metrics.jsonl").read_text().splitlines()
    assert metrics and "throughput/env_steps_per_s" in json.loads(metrics[-1])
    assert list((trained_home / "monitoring" / "tensorboard").rglob("events.out.tfevents.*"))
    saved = json.loads((trained_home / "monitoring" / "trainer" / "config.json").read_text())
    assert saved["model"]["hidden"] == 32
    assert final["reanalysis_shift_pips"] is None  # `train.reanalyze` is off by default


def test_reanalysis_refreshes_the_value_targets_of_a_real_run(trained_home: Path) -> None:
    result = run_micro(
        trained_home, "train", "--max-episodes", "16", "--set", "train.reanalyze=true",
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    final = status(trained_home)
    assert final["learner_steps"] >= 1
    # the network's values differ from the ones the search stored: the targets did change
    assert final["reanalysis_shift_pips"] > 0


def test_a_weight_average_reaches_the_checkpoints_and_a_resumed_run_keeps_both(
    trained_home: Path,
) -> None:
    # `train.weight_average`: the checkpoint's weights (what the validator and the actors get)
    # are the average; the learner's own weights travel in the trainer state for a resume.
    average = ("--set", "train.weight_average=0.9")
    result = run_micro(trained_home, "train", "--max-episodes", "16", *average, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    config = load_config(trained_home, environ={})
    first = load_checkpoint(trained_home / "checkpoints" / "latest.pth", config)
    assert first.learner_step >= 2
    own = first.trainer_state["learner_weights"]
    acting = first.net.state_dict()
    assert own.keys() == acting.keys()
    assert any(not torch.equal(own[k], acting[k]) for k in own)
    # resumed with a slow average: it goes on from the first run's average (a restart would
    # copy the learner's own weights at the first step and land far from it)
    slow = ("--set", "train.weight_average=0.999")
    result = run_micro(trained_home, "train", "--max-episodes", "8", *slow, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    second = load_checkpoint(trained_home / "checkpoints" / "latest.pth", config)
    assert second.learner_step > first.learner_step  # resumed: the counters go on
    after = second.net.state_dict()
    moved = sum(float((after[k] - acting[k]).abs().sum()) for k in own)
    apart = sum(float((own[k] - acting[k]).abs().sum()) for k in own)
    assert moved < 0.25 * apart


def test_sigterm_writes_latest_and_exits_0_quickly_leaving_no_actor(trained_home: Path) -> None:
    proc = start_train(trained_home)
    try:
        wait_for(lambda: status(trained_home).get("episodes", 0) >= 8)
        actor_pids = [a["pid"] for a in status(trained_home)["actors"]]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - sent < 15
    finally:
        proc.kill()
    wait_for(lambda: not any(alive(p) for p in actor_pids), timeout=10)
    episodes = status(trained_home)["episodes"]
    assert read_sidecar(trained_home / "checkpoints" / "latest.pth")["episode"] == episodes


def test_a_crashed_actor_is_restarted_and_logged(trained_home: Path) -> None:
    proc = start_train(trained_home)
    try:
        wait_for(lambda: status(trained_home).get("episodes", 0) >= 8)
        first = status(trained_home)["actors"][0]["pid"]
        os.kill(first, signal.SIGKILL)
        wait_for(
            lambda: (
                (a := status(trained_home)["actors"][0])["restarts"] >= 1
                and a["alive"]
                and a["pid"] != first
            )
        )
        before = status(trained_home)["episodes"]
        wait_for(lambda: status(trained_home)["episodes"] > before)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    log = (trained_home / "monitoring" / "trainer" / "trainer.log").read_text()
    assert "actor 0 died" in log


def own_status(home: Path, proc: subprocess.Popen) -> dict:
    """The trainer status written by `proc` (a previous run's file counts as nothing yet)."""
    current = status(home)
    return current if current.get("pid") == proc.pid else {}


def running(proc: subprocess.Popen) -> bool:
    """True while `proc` runs; fails the test at once if it has exited."""
    assert proc.poll() is None, f"the trainer exited with {proc.returncode}"
    return True


def latest_episode(home: Path) -> int:
    sidecar = read_sidecar(home / "checkpoints" / "latest.pth")
    return 0 if sidecar is None else sidecar["episode"]


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_no_broken_checkpoint_and_resume_continues(
    trained_home: Path,
) -> None:
    config = load_config(trained_home, environ={})
    checkpoints = trained_home / "checkpoints"
    last_episode = 0
    # Each kill waits for a state, never for a time: a cold machine compiles numba first.
    moments = (
        # actors up, maybe nothing saved yet
        lambda proc: own_status(trained_home, proc).get("actors"),
        # right after a new latest.pth: the next save may be under way
        lambda proc: latest_episode(trained_home) > last_episode,
        # mid-run, between numbered checkpoints
        lambda proc: own_status(trained_home, proc).get("episodes", 0) >= last_episode + 12,
    )
    for moment in moments:
        proc = start_train(trained_home)
        try:
            wait_for(lambda proc=proc, moment=moment: running(proc) and moment(proc), 600)
            actor_pids = [a["pid"] for a in own_status(trained_home, proc).get("actors", [])]
        finally:
            proc.kill()  # SIGKILL: no handler runs
            proc.wait(timeout=10)
        wait_for(lambda pids=actor_pids: not any(alive(p) for p in pids if p), timeout=10)
        for pth in checkpoints.glob("*.pth"):
            loaded = load_checkpoint(pth, config)  # raises on a broken file
            assert loaded.sidecar is not None
        leftovers = [p.name for p in checkpoints.glob("*") if ".tmp" in p.name]
        assert leftovers == [] or all(p.startswith(".") for p in leftovers)
        assert latest_episode(trained_home) >= last_episode  # resumed, never went back
        last_episode = latest_episode(trained_home)
    assert last_episode > 0
    result = run_micro(trained_home, "train", "--max-episodes", "8", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resumed from" in (trained_home / "monitoring" / "trainer" / "trainer.log").read_text()
    resumed = read_sidecar(checkpoints / "latest.pth")
    assert resumed["episode"] >= last_episode + 8


def test_a_checkpoint_from_another_model_config_is_refused_naming_the_setting(
    trained_home: Path,
) -> None:
    assert run_micro(trained_home, "train", "--max-episodes", "8", timeout=300).returncode == 0
    result = run_micro(trained_home, "train", "--max-episodes", "8", "--set", "model.hidden=48")
    assert result.returncode == 2
    assert "model.hidden" in result.stderr and "Traceback" not in result.stderr


def test_a_second_trainer_on_the_same_home_is_refused_and_a_killed_ones_lock_dies_with_it(
    trained_home: Path,
) -> None:
    lock = trained_home / "checkpoints" / ".trainer.lock"
    first = start_train(trained_home)
    try:
        wait_for(lambda: lock.is_file() and lock.read_text().strip() == str(first.pid))
        second = run_micro(trained_home, "train", "--max-episodes", "1")
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"another `micro train` (pid {first.pid})" in lines[0], lines
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

    def free() -> bool:
        try:
            hold_lock(lock, "held by {pid}").close()
        except UserError:
            return False
        return True

    wait_for(free, timeout=60)  # the kernel drops it with the process (its actors die with it)
