"""The Monte Carlo bootstrap: seeded, ordered, degenerate cases clean, circular blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from micro.validation.metrics import max_drawdown_pips, sqn
from micro.validation.montecarlo import MIN_BLOCKS, bootstrap, resample_indices, run_statistics

STATS = ("sqn", "sqn_capped", "expectancy_pips", "total_pips", "max_drawdown_pips")


def some_trades(n: int = 300, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.8, 12.0, n)


def test_the_same_seed_gives_the_same_report() -> None:
    pips = some_trades()
    assert bootstrap(pips, runs=200, seed=7) == bootstrap(pips, runs=200, seed=7)
    assert bootstrap(pips, runs=200, seed=7, block_size=5) == bootstrap(
        pips, runs=200, seed=7, block_size=5
    )


def test_different_seeds_give_different_reports() -> None:
    pips = some_trades()
    a, b = bootstrap(pips, runs=200, seed=1), bootstrap(pips, runs=200, seed=2)
    assert a["expectancy_pips"] != b["expectancy_pips"]
    assert a["sqn"] != b["sqn"]


@pytest.mark.parametrize("block_size", [0, 7])
def test_percentiles_are_ordered_and_the_report_is_valid_json(block_size: int) -> None:
    report = bootstrap(some_trades(), runs=300, seed=3, block_size=block_size)

    for name in STATS:
        values = [report[name][f"p{q}"] for q in (5, 25, 50, 75, 95)]
        assert values == sorted(values), name
        assert values[0] < values[-1], name
    assert report["sqn_defined_runs"] == 300
    assert 0.0 <= report["probability_positive_expectancy"] <= 1.0
    json.dumps(report, allow_nan=False)


def test_the_median_expectancy_sits_near_the_sample_mean() -> None:
    pips = some_trades(2000)
    report = bootstrap(pips, runs=500, seed=4)
    # The mean of a resample has standard error std / √N ≈ 12 / 45 ≈ 0.27 pips.
    assert report["expectancy_pips"]["p50"] == pytest.approx(pips.mean(), abs=0.1)
    assert report["total_pips"]["p50"] == pytest.approx(2000 * report["expectancy_pips"]["p50"])


def test_a_constant_trade_list_has_degenerate_percentiles_and_no_sqn() -> None:
    report = bootstrap(np.full(40, 2.5), runs=100, seed=0)

    for q in (5, 25, 50, 75, 95):
        assert report["expectancy_pips"][f"p{q}"] == pytest.approx(2.5)
        assert report["total_pips"][f"p{q}"] == pytest.approx(100.0)
        assert report["max_drawdown_pips"][f"p{q}"] == 0.0
        assert report["sqn"][f"p{q}"] is None and report["sqn_capped"][f"p{q}"] is None
    assert report["sqn_defined_runs"] == 0
    assert report["probability_positive_expectancy"] == 1.0
    json.dumps(report, allow_nan=False)


def test_an_inexact_constant_is_still_treated_as_zero_spread() -> None:
    report = bootstrap(np.full(1000, 1.1), runs=50, seed=0)  # 1.1 sums with rounding noise
    assert report["sqn"]["p50"] is None
    json.dumps(report, allow_nan=False)


def test_an_empty_trade_list_gives_all_none_percentiles() -> None:
    report = bootstrap(np.zeros(0), runs=100, seed=0)
    assert report["trades"] == 0 and report["sqn"]["p50"] is None
    json.dumps(report, allow_nan=False)


def test_per_run_statistics_equal_the_trade_metrics_formulas() -> None:
    samples = np.array([[10.0, -5.0, 20.0, -10.0, 5.0], [1.0, 1.0, 1.0, 1.0, 1.0]])

    stats = run_statistics(samples)

    assert stats["sqn"][0] == pytest.approx(sqn(4.0, float(np.std(samples[0], ddof=1)), 5))
    assert np.isnan(stats["sqn"][1])  # no spread: no SQN
    assert stats["expectancy_pips"].tolist() == pytest.approx([4.0, 1.0])
    assert stats["total_pips"].tolist() == pytest.approx([20.0, 5.0])
    assert stats["max_drawdown_pips"][0] == max_drawdown_pips(samples[0]) == 10.0
    assert stats["max_drawdown_pips"][1] == 0.0


def test_iid_resampling_draws_indices_inside_the_list() -> None:
    idx = resample_indices(50, 200, np.random.default_rng(0))
    assert idx.shape == (200, 50) and idx.min() >= 0 and idx.max() < 50
    assert np.unique(idx).size == 50  # 10,000 draws over 50 trades reach every one


def test_block_resampling_keeps_blocks_of_consecutive_trades_wrapping_at_the_end() -> None:
    n, block = 103, 10
    idx = resample_indices(n, 200, np.random.default_rng(0), block_size=block)

    assert idx.shape == (200, n) and idx.min() >= 0 and idx.max() < n
    steps = np.diff(idx, axis=1) % n  # [200, n − 1]
    inside = np.ones(n - 1, dtype=bool)
    inside[block - 1 :: block] = False  # the step from one block to the next is free
    assert np.all(steps[:, inside] == 1)  # the next trade, or the first after the last
    assert np.any(steps[:, ~inside] != 1)
    assert np.any(np.diff(idx, axis=1)[:, inside] == 1 - n)  # some blocks do wrap around


@pytest.mark.parametrize("block", [2, 5, 10])
def test_every_trade_is_equally_likely_to_be_drawn_by_the_circular_blocks(block: int) -> None:
    n, runs = 50, 40_000
    idx = resample_indices(n, runs, np.random.default_rng(1), block_size=block)

    counts = np.bincount(idx.ravel(), minlength=n)  # draws of each trade
    expected = runs  # runs × n draws spread over n trades
    # Each count sums ~runs / block independent blocks: relative error ~ √(block / runs) ≤ 1.6 %.
    assert np.abs(counts / expected - 1.0).max() < 0.06
    assert counts[0] == pytest.approx(expected, rel=0.06)  # the ends are not under-sampled
    assert counts[-1] == pytest.approx(expected, rel=0.06)


def test_a_block_as_long_as_the_list_is_shrunk_and_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pips = some_trades(60, seed=3)

    with caplog.at_level("WARNING", logger="micro.validation"):
        report = bootstrap(pips, runs=400, seed=2, block_size=60)

    # Unshrunk, every run would be a rotation of the list: one expectancy, no spread at all.
    assert report["block_size_requested"] == 60 and report["block_shrunk"] is True
    assert report["block_size"] == 60 // MIN_BLOCKS and report["resampling"] == "circular_block"
    assert report["expectancy_pips"]["p5"] < pips.mean() < report["expectancy_pips"]["p95"]
    assert "too long for 60 trades" in caplog.text
    small = bootstrap(pips[:15], runs=50, seed=2, block_size=5)
    assert small["block_size"] == 0 and small["resampling"] == "iid" and small["block_shrunk"]
    kept = bootstrap(pips, runs=50, seed=2, block_size=6)
    assert kept["block_size"] == 6 and not kept["block_shrunk"]
    json.dumps(report, allow_nan=False)


def test_the_block_bootstrap_keeps_losing_streaks_that_iid_resampling_breaks_up() -> None:
    pips = np.r_[np.ones(250), -np.ones(250)]  # a winning streak, then a losing streak

    iid = bootstrap(pips, runs=500, seed=5)
    blocks = bootstrap(pips, runs=500, seed=5, block_size=50)

    # Blocks of 50 carry 50 straight losers at a time; shuffled ±1 trades break the streak up.
    assert blocks["max_drawdown_pips"]["p50"] >= 60.0
    assert iid["max_drawdown_pips"]["p95"] < blocks["max_drawdown_pips"]["p50"]
    assert blocks["block_size"] == 50 and iid["block_size"] == 0
    assert not blocks["block_shrunk"] and iid["resampling"] == "iid"
