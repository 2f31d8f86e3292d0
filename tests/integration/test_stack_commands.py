"""The commands docker-compose runs that nothing else exercises, run for real."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import micro_env, run_micro
from tests.helpers import wait_for


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
    log = home / "live.err"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "micro.cli", "live", "--broker", "sim", "--wait-for-model"],
            cwd=home,
            env=micro_env(home),
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: proc.poll() is not None or "waiting for" in log.read_text())
        assert proc.poll() is None, log.read_text()  # still waiting, not crashed
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    said = log.read_text()
    assert "waiting for" in said and "best.pth" in said
