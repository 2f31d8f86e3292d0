"""bench/up.py runs the real `micro up` in a home and reports what a new user would see.

A run this short promotes nothing under the default gates: the test pins the protocol (the stack
runs and stops, the trainer's figures and the validator's decisions are read back, the target is
judged), not the agent's skill, which bench/learning.py measures.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY_MODEL, wait_for

REPO = Path(__file__).resolve().parents[2]
CONFIG = (
    TINY_MODEL
    + """
[data]
synth_days = 60
[mcts]
simulations = 3
[train]
envs_per_actor = 8
batch_size = 32
min_replay = 200
checkpoint_every_episodes = 8
[validation]
simulations = 3
bootstrap_runs = 50
random_baselines = 50
poll_seconds = 0.5
[live]
poll_seconds = 0.1
"""
)


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "up.py"), *args],
        capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.slow
def test_bench_up_runs_the_stack_and_prints_one_json_object_when_stopped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "micro.toml").write_text(CONFIG)
    bench = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "up.py"), "--minutes", "10", "--keep", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        events = home / "validation" / "events.jsonl"
        wait_for(lambda: events.exists() and '"scored"' in events.read_text(), timeout=300)
        bench.send_signal(signal.SIGTERM)  # stop early: the stack stops, the figures are printed
        stdout, stderr = bench.communicate(timeout=180)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
    assert bench.returncode == 0, stderr[-3000:]
    lines = stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["bench"] == "up" and report["exit_status"] == 0
    assert report["episodes"] > 0 and report["scored"] >= 1
    assert report["last_decision"] is not None and report["last_decision"]["gates"]
    assert report["target_minutes"] == 15.0
    assert report["target_met"] == (
        report["minutes_to_promotion"] is not None
        and report["minutes_to_first_paper_order"] is not None
    )
    assert (home / "checkpoints").is_dir() and (home / "up.log").exists()
    assert not alive_children(home)


def alive_children(home: Path) -> list[str]:
    """micro processes still running in `home` (none may outlive the bench)."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if f"--home {home}" in line]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--minutes", "0"], "--minutes 0"), (["--keep", "{busy}"], "not a new folder")],
)
def test_bench_up_refuses_bad_arguments_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.txt").write_text("x")
    result = _bench(*[a.replace("{busy}", str(busy)) for a in args])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
