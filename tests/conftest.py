"""Shared fixtures: an isolated micro home and a way to run the real `micro` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ("tests.fakes.oanda_v20",)  # the fake_oanda fixture, for every test

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def micro_env(home: Path, **extra: str) -> dict[str, str]:
    """A subprocess environment with no stray MICRO_*/OANDA_* settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICRO_", "OANDA_"))}
    env["MICRO_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_micro(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `micro ARGS` as a real subprocess in `home`; returns the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "micro.cli", *args],
        cwd=home,
        env=env if env is not None else micro_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty micro home."""
    root = tmp_path / "home"
    root.mkdir()
    return root


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present (CI has ../shared beside the checkout)")
    return SHARED_DATA
