"""bench/edge.py: how much of a market's edge the agent's observation carries, before learning.

Run through the real script on small suite markets: the JSON has its figures for both held-out
splits, the meanrevert market's reference rule (fade the 240-bar deviation) finds a positive
correlation with the coming move while the trend market's does not, and bad input is one line
with exit status 2.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import run_bench


def bench(*args: str) -> subprocess.CompletedProcess:
    return run_bench("edge.py", *args)


@pytest.mark.slow
def test_the_observation_and_the_reference_rule_are_scored_on_both_held_out_splits() -> None:
    result = bench("--markets", "meanrevert,trend", "--days", "45", "--horizons", "60")
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["bench"] == "edge" and set(out["markets"]) == {"meanrevert", "trend"}
    for name, market in out["markets"].items():
        assert market["spread_pips"] == 4.0  # GBP_JPY's round trip, paid once per trade
        for split in ("validation", "test"):
            figures = market["horizons"]["60"][split]
            assert figures["rows"] > 0, (name, split)
            for rule in ("observation", "fade_dev240"):
                assert -1.0 <= figures[rule]["corr"] <= 1.0
                assert figures[rule]["trades"] == pytest.approx(0.2 * figures["rows"], abs=2)
    reverting = out["markets"]["meanrevert"]["horizons"]["60"]
    trending = out["markets"]["trend"]["horizons"]["60"]
    for split in ("validation", "test"):
        assert reverting[split]["fade_dev240"]["corr"] > 0.1  # fading pays on a reverting market
        assert trending[split]["fade_dev240"]["corr"] < 0.0  # and loses on a trending one
        assert trending[split]["observation"]["corr"] > 0.2  # the window sees the trend


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--markets", "sideways"], "--markets: unknown sideways"),
        (["--horizons", "sixty"], "--horizons 'sixty'"),
        (["--top", "0"], "--top in (0, 1]"),
        (
            ["--set", "features.range_bars=many"],
            "--set features.range_bars: features.range_bars must be int",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args: list[str], says: str) -> None:
    result = bench(*args)
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
