"""The commands docker-compose runs that nothing else exercises, run for real."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import micro_env, run_micro


def test_prepare_default_if_empty_synthesises_once_then_only_prepares(home: Path) -> None:
    first = run_micro(home, "data", "prepare", "--default-if-empty", "--set", "data.synth_days=20")
    assert first.returncode == 0, first.stderr
    assert "synthetic" in first.stderr.lower() and "micro data import" in first.stderr
    info = run_micro(home, "data", "info", "--json")
    assert info.returncode == 0 and '"bars"' in info.stdout
    again = run_micro(home, "data", "prepare", "--default-if-empty", "--set", "data.synth_days=20")
    assert again.returncode == 0 and "synthetic" not in again.stderr.lower()


def test_live_waits_for_a_promoted_model_and_stops_on_sigterm(home: Path) -> None:
    assert run_micro(home, "data", "synth", "--days", "20").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "micro.cli", "live", "--broker", "sim", "--wait-for-model"],
        cwd=home,
        env=micro_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)
        assert proc.poll() is None  # still waiting, not crashed
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "waiting for" in err and "best.pth" in err
