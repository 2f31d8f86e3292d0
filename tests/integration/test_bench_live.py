"""bench/live.py runs end to end on a tiny budget and prints its one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {"p50_ms", "p99_ms", "mean_ms", "bars", "reference_p50_ms", "reference_p99_ms"}


def test_live_bench_prints_one_json_object_with_p50_and_p99_at_5_and_25_simulations() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "live.py"), "--bars", "6", "--reference-bars", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    for key in ("sims_5", "sims_25"):
        assert KEYS <= report[key].keys(), report[key]
        assert report[key]["bars"] == 6 and report[key]["reference_bars"] == 2
        assert 0 < report[key]["p50_ms"] <= report[key]["p99_ms"]
