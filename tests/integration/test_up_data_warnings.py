"""`micro up` shows prepare's warning of a split left without sessions, with the fix.

With the dashboard (a terminal) its log reaches only monitoring/logs, so the warning is printed
above the dashboard; without it (`--no-dash`, a pipe) the console log carries it.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import micro_env, run_micro

FIVE_DAYS = ("--set", "data.synth_days=5")  # 13 train sessions, none for validation or test


def _split_warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if "split has 0 sessions" in line]


def test_up_without_the_dashboard_logs_the_empty_split_warnings(home: Path) -> None:
    done = run_micro(home, "up", "--no-dash", "--duration", "1", *FIVE_DAYS, timeout=180)
    assert done.returncode == 0, done.stderr
    warned = _split_warnings(done.stderr)
    assert [w.split("the ")[1].split(" split")[0] for w in warned] == ["validation", "test"]
    assert all("WARNING" in w and "micro data prepare --resplit" in w for w in warned)


def test_up_with_the_dashboard_prints_the_empty_split_warnings_above_it(home: Path) -> None:
    main, terminal = pty.openpty()  # stdout a terminal: micro up runs its dashboard
    screen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "micro.cli", "up", "--duration", "2", *FIVE_DAYS],
            cwd=home,
            env=micro_env(home),
            stdout=terminal,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=180,
        )
    finally:
        os.close(terminal)
        reader.join(timeout=5)
        os.close(main)
    assert done.returncode == 0, done.stderr
    warned = _split_warnings(done.stderr)
    assert len(warned) == 2 and all(w.startswith("micro up: WARNING: the ") for w in warned)
    assert all("lower data.session_bars" in w for w in warned)
    assert b"Trainer" in b"".join(screen)  # the dashboard ran below them
