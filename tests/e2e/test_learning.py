"""Learning, tested honestly: short seeded runs of the default config through the real CLI.

The learning knobs and the network keep their defaults (only the reporting intervals are
shortened); the budget is episodes, not minutes, so a slower machine trains the same amount
(the replay-ratio gate keeps learner steps per episode fixed). The markets are variants the
defaults were never tuned on (bench/learning.py tunes on its own seeds and variants):
- a trend whose drift is weaker and whose regimes are longer than the `trend` default, in more
  noise: the trained agent must time its entries, i.e. beat random-entry traders with the same
  trades and holding times both with its own side mix and with a fair coin for the side, after
  the 4-pip spread, on validation sessions it never trained on;
- a random walk: nothing beats the spread, so the agent must end up trading less often than it
  did at the start.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micro.config import Config
from micro.volumes import report_files
from tests.conftest import run_micro

REPORTING = """
[train]
seed = 11
latest_every_seconds = 10
report_every_seconds = 2
"""
# Not a market bench/learning.py tunes on: weaker drift, longer regimes, more noise, seed 5.
UNSEEN_TREND = ("--drift-pips", "0.45", "--regime-bars", "90", "--noise-scale", "1.5")
# The default entry exploration falls from 1 to its floor over this many episodes; the test
# judges the policy that schedule arrives at. Earlier the greedy policy sits at the edge of
# entering: on this market, seed 11, checkpoints 50 episodes apart between episodes 2,300 and
# 2,960 made 0 to 130 validation trades (a CI run's latest at 3,000 made 10), while every
# checkpoint scored from 3,000 to 5,000 made 67 to 144 trades at the 95th-100th percentile.
ENTRY_DECAY_EPISODES = Config().train.entry_exploration_decay_episodes
# Checkpoints 50 episodes apart still differ: one CI run's last one scored 89.6 against the
# fair coin (13 checkpoints from 4,400 to 5,000 of a run here: 98.6 to 100). So the last three
# numbered checkpoints are scored, and two of them must pass every check.
JUDGED = 3


def train(home: Path, regime: str, episodes: int, *knobs: str) -> None:
    synth = run_micro(
        home, "data", "synth", "--days", "60", "--seed", "5", "--regime", regime, *knobs
    )
    assert synth.returncode == 0, synth.stderr
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(REPORTING)
    result = run_micro(home, "train", "--max-episodes", str(episodes), timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 385 s on CI; over 600 s on a slower 2-core machine (episode budget)
def test_trained_agent_times_its_entries_on_unseen_sessions_of_an_unseen_trend(
    home: Path,
) -> None:
    train(home, "trend", ENTRY_DECAY_EPISODES, *UNSEEN_TREND)
    last = sorted((home / "checkpoints").glob("ckpt_ep*.pth"))[-JUDGED:]
    verdicts = {path.name: times_its_entries(home, path) for path in last}
    assert sum(not failed for failed in verdicts.values()) >= 2, verdicts


def times_its_entries(home: Path, checkpoint: Path) -> list[str]:
    """Validate `checkpoint`; the checks it fails (none: it times its entries)."""
    result = run_micro(home, "validate", str(checkpoint), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    episode = int(checkpoint.stem.removeprefix("ckpt_ep"))
    (path,) = [path for n, path in report_files(home / "validation") if n == episode]
    report = json.loads(path.read_text())
    assert report["split"] == "validation"
    metrics = report["metrics"]
    matched = report["baselines"]["random_entry"]["agent_percentile"]
    fair_coin = report["baselines"]["random_entry_fair_coin"]["agent_percentile"]
    actions = report["evaluation"]["actions"]
    checks = {
        f"{metrics['trades']} trades (>= 20)": metrics["trades"] >= 20,
        # per trade, after the 4-pip spread
        f"expectancy {metrics['expectancy_pips']:.2f} pips (> 0)": metrics["expectancy_pips"] > 0,
        # timing, not only holding times
        f"percentile {matched} vs random entry (>= 90)": matched >= 90,
        # and not a side bet
        f"percentile {fair_coin} vs a fair coin (>= 90)": fair_coin >= 90,
        f"{actions['BUY']} buys and {actions['SELL']} sells (both > 0)": (
            actions["BUY"] > 0 and actions["SELL"] > 0
        ),
    }
    return [check for check, passed in checks.items() if not passed]


@pytest.mark.slow
def test_on_a_random_walk_the_agent_learns_to_trade_less(home: Path) -> None:
    train(home, "random", 1000)
    lines = (home / "monitoring" / "trainer" / "metrics.jsonl").read_text().splitlines()
    trades = [json.loads(line).get("episode/trades") for line in lines]
    trades = [t for t in trades if t is not None]
    assert len(trades) >= 3
    assert trades[-1] < 0.5 * trades[0]
