"""A journal writer SIGKILLed mid-append: the journal reads back whole and the next line is apart.

The writer is a real process appending through `micro.live.journal.Journal`. In the first test
its `os.write` takes a few bytes a call (as a kernel may), and it stops, mid-line, to be killed;
in the second, writers of large lines are killed at random moments, round after round.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from micro.live.journal import Journal
from tests.conftest import REPO

SLOW_WRITER = """
import os, sys, time
from micro.live.journal import Journal

real_write = os.write
state = {"lines": 0}

def slow_write(fd, data):
    if state["lines"] == 3:  # the fourth line: a few bytes out, then wait to be killed
        written = real_write(fd, bytes(data[:25]))
        print("torn", flush=True)
        time.sleep(600)
        return written
    return real_write(fd, bytes(data[:7]))  # short writes: the loop must finish the line

os.write = slow_write
journal = Journal(sys.argv[1])
for i in range(10):
    journal.record("order", n=i, client_id=f"micro-{i}-B")
    state["lines"] += 1
"""

BIG_WRITER = """
import sys
from micro.live.journal import Journal

journal = Journal(sys.argv[1])
round_ = int(sys.argv[2])
print("ready", flush=True)
for n in range(100000):
    journal.record("bar", round=round_, n=n, pad="x" * 2_000_000)
"""


def writer(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def readable(path: Path) -> tuple[list[dict], int]:
    """The journal's lines that parse, and how many do not (the torn tail included)."""
    good, bad = [], 0
    for text in path.read_bytes().split(b"\n"):
        if not text:
            continue
        try:
            good.append(json.loads(text))
        except ValueError:
            bad += 1
    return good, bad


def test_a_writer_killed_mid_append_leaves_a_journal_that_reads_back_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.jsonl"
    proc = writer(SLOW_WRITER, str(path))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "torn"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    raw = path.read_bytes()
    assert not raw.endswith(b"\n")  # killed mid-line: a torn tail
    fragment = raw[raw.rfind(b"\n") + 1 :]
    assert len(fragment) == 25

    Journal(path).record("start", broker="oanda")  # the next writer (a restarted trader)
    lines, unreadable = readable(path)
    assert unreadable == 0
    assert [x["kind"] for x in lines] == ["order"] * 3 + ["repair", "start"]
    assert [x["n"] for x in lines[:3]] == [0, 1, 2]
    assert lines[3]["torn_bytes"] == 25 and lines[3]["fragment"] == fragment.decode()
    assert path.read_bytes().endswith(b"\n")


def test_writers_killed_at_random_moments_never_leave_an_unreadable_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.jsonl"
    rng = random.Random(7)
    rounds = 6
    for round_ in range(rounds):
        proc = writer(BIG_WRITER, str(path), str(round_))
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    Journal(path).record("stop")
    lines, unreadable = readable(path)
    assert unreadable == 0
    for round_ in range(rounds):
        numbers = [x["n"] for x in lines if x.get("round") == round_]
        assert numbers == list(range(len(numbers)))  # nothing lost but a torn last line
    repairs = [x for x in lines if x["kind"] == "repair"]
    assert all(0 < x["torn_bytes"] < 2_100_000 for x in repairs)
    assert lines[-1]["kind"] == "stop"
