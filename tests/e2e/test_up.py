"""`micro up --duration` in an empty temp home: data appears, then a checkpoint, a validation
report and live journal lines, then everything stops cleanly with no process left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_micro
from tests.helpers import TINY_MODEL, alive

STACK = (
    TINY_MODEL
    + """
[data]
synth_days = 30
[mcts]
simulations = 3
[train]
envs_per_actor = 8
batch_size = 32
min_replay = 200
checkpoint_every_episodes = 8
latest_every_seconds = 5
report_every_seconds = 1
[validation]
simulations = 3
bootstrap_runs = 100
random_baselines = 100
poll_seconds = 0.5
min_trades = 1
max_drawdown_pct = 100.0
account_pips = 100000.0
[live]
poll_seconds = 0.1
"""
)


@pytest.mark.slow
def test_up_runs_the_whole_system_and_stops_cleanly(home: Path) -> None:
    (home / "micro.toml").write_text(STACK)
    result = run_micro(home, "up", "--duration", "100", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "synthetic" in result.stderr.lower()  # says it made data up...
    assert "micro data import" in result.stderr  # ...and how to use real data
    assert (home / "data" / "market.duckdb").exists()
    assert list((home / "checkpoints").glob("ckpt_ep*.pth"))
    assert (home / "checkpoints" / "latest.pth").exists()
    assert list((home / "validation").glob("validation_ep*.json"))
    assert (home / "checkpoints" / "best.pth").exists()
    journal = (home / "live" / "journal.jsonl").read_text().splitlines()
    assert len(journal) >= 5 and all(json.loads(line) for line in journal)
    status = json.loads((home / "monitoring" / "up" / "status.json").read_text())
    pids = [s["pid"] for s in status["services"] if s["pid"]]
    assert len(pids) == 3
    assert not any(alive(pid) for pid in pids)
    trainer = json.loads((home / "monitoring" / "trainer" / "status.json").read_text())
    assert trainer["state"] == "stopped"
    assert not any(alive(a["pid"]) for a in trainer["actors"] if a["pid"])
    leftovers = [p for p in home.rglob("*.tmp")]
    assert leftovers == []
