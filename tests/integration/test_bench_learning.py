"""bench/learning.py, the learning judge, runs end to end on a tiny budget and prints its JSON.

The budget here is far too small to learn anything: the test pins the protocol (markets,
splits, figures, the mirrored sessions, targets), not the agent's skill.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import run_bench

TINY = [
    "model.tcn_channels=16",
    "model.hidden=32",
    "model.mlp_hidden=32",
    "model.static_hidden=16",
    "train.envs_per_actor=16",
    "train.min_replay=500",
    "validation.simulations=4",
    "validation.random_baselines=50",
    "validation.bootstrap_runs=50",
]
FIGURES = {
    "trades",
    "trades_per_session",
    "expectancy_pips",
    "expectancy_p05",
    "sqn",
    "buy_share",
    "sell_share",
    "percentile_matched",
    "percentile_fair_coin",
    "crossover_total_pips",
    "buy_and_hold_total_pips",
    "dsr",
    "after_exit_60_pips",
    "after_young_exit_60_pips",
    "flat_value_bias_pips",
}


def bench(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return run_bench("learning.py", *args, timeout=timeout)


@pytest.mark.slow
def test_quick_run_scores_last_and_best_on_both_splits_and_the_mirror() -> None:
    sets = [part for s in TINY for part in ("--set", s)]
    result = bench("--quick", "--minutes", "0.4", "--days", "40", "--max-sessions", "6", *sets)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["bench"] == "learning" and set(report["markets"]) == {"trend", "random"}
    for name, market in report["markets"].items():
        assert market["episodes"] > 0 and market["env_steps"] > 0
        assert market["curve"] and market["curve"][-1]["episode"] == market["episodes"]
        for label in ("last", "best"):
            for split in ("validation", "test"):
                assert FIGURES <= market[label][split].keys(), (name, label, split)
        assert FIGURES <= market["last"]["mirror"]["validation"].keys()
        checks = market["targets"]["checks"]
        if name == "random":
            assert "validation_trades_below_0.1_per_session" in checks
        else:
            assert {"validation_skill", "test_skill", "minutes_to_skill_le_10"} <= checks.keys()
    assert isinstance(report["all_targets_met"], bool)


def test_an_unknown_market_is_one_line_and_status_2() -> None:
    result = bench("--markets", "trend,nowhere", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bench/learning.py: --markets: unknown nowhere; expected some of "
        "trend, trend_weak, trend_short, trend_long_noisy, meanrevert, meanrevert_slow, "
        "meanrevert_calm, random"
    ]
    assert result.stdout == ""


@pytest.mark.slow
def test_an_episode_budget_trains_that_many_episodes_and_marks_the_curve_by_episode() -> None:
    sets = [part for s in TINY for part in ("--set", s)]
    budget = 96
    result = bench(
        "--markets",
        "random",
        "--max-episodes",
        str(budget),
        "--score-every-episodes",
        "32",
        "--days",
        "30",
        "--max-sessions",
        "4",
        *sets,
        "--set",
        "train.checkpoint_every_episodes=16",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["episodes_per_market"] == budget and report["minutes_per_market"] is None
    market = report["markets"]["random"]
    # The trainer stops once the budget is reached; episodes finishing meanwhile add a few.
    assert budget <= market["episodes"] < budget + 64
    episodes = [point["episode"] for point in market["curve"]]
    assert episodes == sorted(set(episodes)) and episodes[-1] == market["episodes"]
    # Every numbered checkpoint before the last belongs to a mark: at most one per 32 episodes.
    assert len(episodes) <= budget // 32 + 1
    assert all(episode <= budget for episode in episodes[:-1])
    assert "episodes_to_skill" in market and market["training_minutes"] > 0


def test_a_negative_episode_budget_is_one_line_and_status_2() -> None:
    result = bench("--markets", "trend", "--max-episodes", "-5", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bench/learning.py: --max-episodes -5: expected a positive number of episodes"
    ]
    assert result.stdout == ""
