"""bench/selfplay.py runs end to end on a tiny budget and prints its one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {"batched_steps_per_s", "reference_steps_per_s", "speedup", "network_share", "bytes_per_env"}


def test_selfplay_bench_prints_one_json_object_with_both_simulation_counts() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "selfplay.py"),
            "--seconds",
            "1",
            "--envs",
            "8",
            "--reference-envs",
            "2",
            "--days",
            "10",
        ],  # fmt: skip
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    for block in ("sims_5", "sims_25"):
        assert KEYS <= report[block].keys()
        figures = report[block]
        assert figures["batched_steps_per_s"] > 0 and figures["reference_steps_per_s"] > 0
        assert 0.0 < figures["network_share"] <= 1.0
        assert figures["bytes_per_env"] > 0
    # More simulations need a larger tree per environment.
    assert report["sims_25"]["bytes_per_env"] > report["sims_5"]["bytes_per_env"]
