"""Operator control and alerts of a real `micro live` (sim broker) process, driven from others.

`micro live pause` / `resume` / `reset-halt` / `kill` run as separate processes against a
running trader; alerts go through apprise to a webhook on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.alert_sink import alert_sink
from tests.conftest import micro_env, run_micro
from tests.e2e.test_live_parity import live_command
from tests.helpers import wait_for
from tests.integration import test_live_sim as base
from tests.integration.test_live_sim import TOML

# the prepared home and model of test_live_sim (a module fixture here too)
template, home = base.template, base.home


def journal(home: Path) -> list[dict[str, Any]]:
    path = home / "live" / "journal.jsonl"
    out = []
    for text in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(text))
        except ValueError:
            continue  # a line being written
    return out


def index_of(lines: list[dict[str, Any]], kind: str, event: str, after: int = -1) -> int | None:
    for i, line in enumerate(lines):
        if i > after and line.get("kind") == kind and line.get("event") == event:
            return i
    return None


def bars_after(home: Path, index: int) -> int:
    return sum(1 for line in journal(home)[index + 1 :] if line.get("kind") == "bar")


def start(home: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        live_command("--broker", "sim"), cwd=home, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def state(home: Path) -> dict[str, Any]:
    return json.loads((home / "live" / "state.json").read_text())


@pytest.mark.slow
def test_pause_stops_entries_across_a_restart_until_resume(home: Path) -> None:
    env = micro_env(home)
    proc = start(home, env)
    try:
        wait_for(lambda: bars_after(home, -1) >= 5, timeout=120)
        done = run_micro(home, "live", "pause", "--reason", "lunch")
        assert done.returncode == 0 and "paused" in done.stdout
        wait_for(lambda: index_of(journal(home), "risk", "paused") is not None, timeout=60)
        paused_at = index_of(journal(home), "risk", "paused")
        assert paused_at is not None
        wait_for(lambda: bars_after(home, paused_at) >= 60, timeout=120)
        assert state(home)["paused"] is True and "pause" in state(home)["halts"]
        again = run_micro(home, "live", "pause")
        assert again.returncode == 0 and "already paused" in again.stdout
    finally:
        stop(proc)
    assert proc.returncode == 0
    first = journal(home)
    pause_line = first[paused_at]
    assert pause_line["reason"] == "lunch"
    during = first[paused_at + 1 :]
    assert not [x for x in during if x["kind"] in ("order", "fill")]  # no entry while paused
    wanted = [x for x in during if x["kind"] == "bar" and x.get("decision") in ("BUY", "SELL")]
    assert wanted, "the agent never wanted to enter while paused: the test shows nothing"
    assert all(any("paused (lunch)" in b for b in x["blocked"]) for x in wanted)

    proc = start(home, env)  # the pause survives a restart
    try:
        restarted = len(first)
        wait_for(lambda: index_of(journal(home), "risk", "paused", restarted) is not None, 120)
        again_at = index_of(journal(home), "risk", "paused", restarted)
        assert again_at is not None
        wait_for(lambda: bars_after(home, again_at) >= 20, timeout=120)
        assert not [x for x in journal(home)[again_at:] if x["kind"] == "order"]
        done = run_micro(home, "live", "resume")
        assert done.returncode == 0 and "resumed" in done.stdout
        wait_for(lambda: index_of(journal(home), "risk", "resumed", again_at) is not None, 60)
        resumed_at = index_of(journal(home), "risk", "resumed", again_at)
        assert resumed_at is not None
        wait_for(lambda: bars_after(home, resumed_at) >= 5, timeout=120)
        assert state(home)["paused"] is False and "pause" not in state(home)["halts"]
    finally:
        stop(proc)
    assert not (home / "live" / "PAUSE").exists()
    done = run_micro(home, "live", "resume")
    assert done.returncode == 0 and "not paused" in done.stdout


@pytest.mark.slow
def test_a_drawdown_halt_alerts_and_reset_halt_clears_it_journaled(home: Path) -> None:
    assert TOML.rstrip().split("\n")[-2] == "[risk]"  # the last table: add to it
    (home / "micro.toml").write_text(TOML + "max_drawdown_pips = 0.5\n")
    with alert_sink() as sink:
        env = micro_env(home, MICRO_ALERT_URLS=sink.url)
        done = run_micro(home, "live", "reset-halt", env=env)  # nothing to reset yet
        assert done.returncode == 0 and "no drawdown halt" in done.stdout
        proc = start(home, env)
        try:
            wait_for(lambda: index_of(journal(home), "risk", "drawdown_halt") is not None, 180)
            wait_for(lambda: any("drawdown halt" in t for t in sink.titles()), timeout=60)
            wait_for(lambda: state(home)["risk"]["drawdown_halt"] is True, timeout=30)
            done = run_micro(home, "live", "reset-halt", "--reason", "reviewed", env=env)
            assert done.returncode == 0 and "reset requested" in done.stdout
            wait_for(lambda: index_of(journal(home), "risk", "halt_reset") is not None, 60)
            wait_for(lambda: any("halt reset" in t for t in sink.titles()), timeout=60)
            assert run_micro(home, "live", "kill", env=env).returncode == 0
            wait_for(lambda: any("KILL" in t for t in sink.titles()), timeout=60)
        finally:
            stop(proc)
    assert proc.returncode == 0
    lines = journal(home)
    reset = lines[index_of(lines, "risk", "halt_reset") or 0]
    assert reset["was_set"] is True and reset["reason"] == "reviewed"
    assert reset["before"]["drawdown_halt"] is True
    assert not (home / "live" / "RESET_HALT").exists()  # consumed
    halt = next(x for x in sink.received if "drawdown halt" in x["title"])
    assert halt["title"].startswith("micro live: GBP_JPY") and halt["type"] == "failure"
    log = (home / "live" / "logs" / "live.log").read_text()
    assert f"127.0.0.1:{sink.port}" not in log and "alert halt sent to target 1 (json)" in log
