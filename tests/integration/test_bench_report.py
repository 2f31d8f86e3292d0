"""bench/report.py runs end to end on a small checkpoint and prints its one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "trades",
    "build_seconds",
    "first_build_seconds",
    "page_bytes",
    "asset_bytes",
    "reference_seconds",
    "reference_bytes",
    "build_time_ratio",
    "command_seconds",
    "within_target",
}


def test_report_bench_prints_one_json_object_with_seconds_and_bytes_of_one_page() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "report.py"), "--trades", "150", "--repeats", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert KEYS <= report.keys()
    assert report["trades"] >= 100 and report["drawn_sessions"] >= 1
    assert 0 < report["build_seconds"] <= report["first_build_seconds"] + 1.0
    assert 0 < report["page_bytes"] <= report["target_bytes"]  # a small page, however slow
    assert report["asset_bytes"] > 1_000_000  # plotly.js, shared beside the pages
    assert report["reference_seconds"] > 0 and report["reference_bytes"] > 0
    assert report["command_seconds"] > 0
