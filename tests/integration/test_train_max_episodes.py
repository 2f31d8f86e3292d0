"""`micro train --max-episodes N` counts the episodes of this run, also when it resumes.

A run resumed at episode E with `--max-episodes N` stops at E + N (not at N): the help says so,
and the real resume path shows it.
"""

from __future__ import annotations

from pathlib import Path

from micro.model.checkpoint import read_sidecar
from tests.conftest import run_micro
from tests.integration.test_train import TINY


def test_max_episodes_counts_this_run_when_resuming(home: Path) -> None:
    assert run_micro(home, "data", "synth", "--days", "30", "--seed", "3").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(TINY)
    latest = home / "checkpoints" / "latest.pth"

    first = run_micro(home, "train", "--max-episodes", "8", timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    start = read_sidecar(latest)["episode"]
    assert start >= 8

    resumed = run_micro(home, "train", "--max-episodes", "8", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = (home / "monitoring" / "trainer" / "trainer.log").read_text()
    assert "resumed from" in log and "--max-episodes 8 reached" in log
    assert read_sidecar(latest)["episode"] >= start + 8  # N more, not N in all

    shown = run_micro(home, "train", "--help").stdout
    assert "episodes of this run" in " ".join(shown.split())
