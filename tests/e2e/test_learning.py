"""Learning, tested honestly: short seeded runs through the real CLI, judged on unseen sessions.

A small network (the knobs that decide learning keep their defaults; only sizes and the
exploration schedule are shortened to fit a test) trains on synthetic data:
- `trend` has planted, persistent drift: the trained agent must beat random-entry traders with
  the same number of trades, holding times and sides on validation sessions it never trained
  on, by expectancy after the 4-pip spread;
- `random` is a martingale: nothing beats the spread, so the agent must end up trading less
  often than it did at the start.

Measured on this 2-core machine: with these settings self-play turns profitable after about
3,300-3,500 episodes (two seeds), so 5,000 leaves margin; greedy validation then trades
40-200 times at +5 to +26 pips per trade, above every random-entry trader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_micro

SMALL = """
[model]
tcn_channels = 32
hidden = 64
mlp_hidden = 64
static_hidden = 16
[mcts]
simulations = 4
[train]
seed = 11
envs_per_actor = 32
batch_size = 128
learning_rate = 0.002
temperature_decay_episodes = 300
latest_every_seconds = 10
report_every_seconds = 2
"""


def train(home: Path, regime: str, episodes: int) -> None:
    synth = run_micro(home, "data", "synth", "--days", "60", "--seed", "5", "--regime", regime)
    assert synth.returncode == 0, synth.stderr
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(SMALL)
    result = run_micro(home, "train", "--max-episodes", str(episodes), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_trained_agent_beats_random_entry_on_unseen_trend_sessions(home: Path) -> None:
    train(home, "trend", episodes=5000)
    result = run_micro(home, "validate", "checkpoints/latest.pth", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(next((home / "validation").glob("validation_ep*.json")).read_text())
    metrics = report["metrics"]
    random_entry = report["baselines"]["random_entry"]
    assert report["split"] == "validation"
    assert metrics["trades"] >= 10
    assert metrics["expectancy_pips"] > 0  # per trade, after the 4-pip spread
    assert metrics["expectancy_pips"] > random_entry["expectancy_pips"]["p50"]
    assert random_entry["agent_percentile"] >= 75


@pytest.mark.slow
def test_on_a_random_walk_the_agent_learns_to_trade_less(home: Path) -> None:
    train(home, "random", episodes=1000)
    lines = (home / "monitoring" / "trainer" / "metrics.jsonl").read_text().splitlines()
    trades = [json.loads(line).get("episode/trades") for line in lines]
    trades = [t for t in trades if t is not None]
    assert len(trades) >= 3
    assert trades[-1] < 0.5 * trades[0]
