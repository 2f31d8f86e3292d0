"""Small helpers shared by tests that run the real services."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# A model small enough for tests to train and score in seconds (sizes only: no learning knobs).
TINY_MODEL = """
[model]
tcn_channels = 16
hidden = 32
mlp_hidden = 32
static_hidden = 16
"""


REPO = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `bench/<script>` from the repository root as a user would: no stdin, output kept."""
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def alive(pid: int) -> bool:
    """Whether process `pid` is running (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "zombie" not in fh.read().lower()
    except FileNotFoundError:
        return False


def wait_for(predicate: Callable[[], object], timeout: float = 120.0, every: float = 0.2) -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout:.0f} s")


def copy_home(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a prepared template home (module fixtures build the template once)."""
    target = tmp_path / "home"
    shutil.copytree(template, target)
    return target
