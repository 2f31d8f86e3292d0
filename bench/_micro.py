"""What the benches share: run this checkout's `micro` command in a home (not a bench itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def micro(home: Path, *args: str, timeout: float | None = 3600) -> subprocess.CompletedProcess:
    """`micro --home HOME ARGS` from this checkout, minus the caller's MICRO_*/OANDA_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICRO_", "OANDA_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "micro.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
