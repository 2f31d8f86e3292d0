"""bench/validate.py runs end to end on a tiny budget and prints its one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "mc_seconds",
    "reference_mc_seconds",
    "mc_speedup",
    "checkpoint_seconds",
    "checkpoint_sessions",
    "checkpoint_simulations",
    "decisions_per_second",
    "reference_checkpoint_seconds",
    "checkpoint_time_ratio",
    "diagnostics_seconds",
}


def test_validate_bench_prints_one_json_object_with_mc_and_checkpoint_seconds() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "validate.py"), "--quick", "--seconds", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert KEYS <= report.keys()
    assert report["mc_seconds"] > 0 and report["reference_mc_seconds"] > 0
    assert report["checkpoint_seconds"] > 0 and report["checkpoint_simulations"] == 5
    assert report["checkpoint_sessions"] == 4
    assert report["reference_checkpoint_seconds"] > 0 and report["checkpoint_time_ratio"] > 0
