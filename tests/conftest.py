"""Shared fixtures: an isolated micro home, a way to run the real `micro` command, fixed seeds."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numba
import numpy as np
import pytest
import torch

pytest_plugins = ("tests.fakes.oanda_v20",)  # the fake_oanda fixture, for every test

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_SEED = 0  # every test starts from the same RNG states, whatever ran before it


@numba.njit(cache=False)
def _seed_numba(seed: int) -> None:
    """Numba keeps its own np.random state (per thread), apart from numpy's."""
    np.random.seed(seed)


@pytest.fixture(autouse=True)
def fixed_rng_and_threads() -> Iterator[None]:
    """Seed python, numpy, numba and torch before each test; restore torch's thread count after.

    A test's outcome must not depend on the tests that ran before it (pytest-randomly shuffles
    them): no RNG state or `torch.set_num_threads` carries over from one test to the next.
    """
    random.seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    _seed_numba(TEST_SEED)
    torch.manual_seed(TEST_SEED)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_price_stream_outlives_its_test() -> Iterator[None]:
    """A test that starts an OANDA price stream stops it (`broker.close()`, `trader.finish()`).

    A stream left running reconnects every 30 s for the rest of the suite, its warnings land in
    other tests' logs, and it holds a socket to a fake server that is gone. The leak is stopped
    here and reported as this test's error, so it is fixed where it happens.
    """
    before = {t.ident for t in threading.enumerate()}
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t.name == "oanda-price-stream" and t.is_alive() and t.ident not in before
    ]
    for thread in leaked:
        stream = getattr(getattr(thread, "_target", None), "__self__", None)
        if stream is not None:
            stream.stop()
    if leaked:
        pytest.fail(f"{len(leaked)} OANDA price stream(s) still running after the test")


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
        pytest.skip(f"{SHARED_DATA} not present (CI provides it beside the checkout)")
    return SHARED_DATA
