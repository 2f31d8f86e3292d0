"""bench/replay.py: the prioritised draw (sum tree) against the plain O(n) draw, in one run.

Run through the real script on a small buffer: the JSON has every figure, the sum tree draws
positions by priority as the plain draw does (mean drawn priority above the stored mean, and
the two draws agree), and bad input is one line with exit status 2.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import run_bench


def bench(*args: str) -> subprocess.CompletedProcess:
    return run_bench("replay.py", *args, timeout=300)


def test_both_draws_are_timed_and_draw_by_priority() -> None:
    result = bench("--capacity", "50000", "--repeats", "5")
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["positions"] == 50000 and out["batch_size"] == 256
    for key in ("prioritised_step_ms", "uniform_step_ms", "reference_prioritised_step_ms"):
        assert out[key] > 0.0
    assert out["speedup_vs_reference"] == pytest.approx(
        out["reference_prioritised_step_ms"] / out["prioritised_step_ms"], rel=0.06
    )
    drawn, plain, stored = (
        out["drawn_mean_priority"],
        out["reference_drawn_mean_priority"],
        out["stored_mean_priority"],
    )
    assert drawn > 1.1 * stored and plain > 1.1 * stored
    assert drawn == pytest.approx(plain, rel=0.05)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--capacity", "10"], "--capacity must be at least 1000"),
        (["--repeats", "0"], "--repeats at least 1"),
        (["--capacity", "many"], "argument --capacity: invalid int value: 'many'"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args: list[str], says: str) -> None:
    result = bench(*args)
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
