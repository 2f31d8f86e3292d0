"""`micro dash --once` against homes written by the real services, and against broken homes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from micro import atomic
from micro.config import load_config
from micro.data.fingerprint import read_fingerprint
from micro.model.checkpoint import save_checkpoint
from micro.monitoring.panels import MISSING
from tests.conftest import micro_env, run_micro
from tests.skill import momentum_network

TINY = """
[model]
tcn_channels = 16
hidden = 32
mlp_hidden = 32
static_hidden = 16

[mcts]
simulations = 3

[train]
envs_per_actor = 8
batch_size = 32
min_replay = 200
checkpoint_every_episodes = 8
report_every_seconds = 0.5

[validation]
simulations = 3
min_trades = 1
account_pips = 1000000.0
promotion_score = "expectancy_p25"
"""


@dataclass(frozen=True)
class ServicesHome:
    """A home every service has written into, and what dash/health said while one ran."""

    root: Path
    dash_while_watching: str
    health_while_watching: subprocess.CompletedProcess


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    """Poll `predicate` while `proc` runs; fail at once if it exits, or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, f"{proc.args[3:]} exited with {proc.returncode}"
        time.sleep(0.2)
    raise AssertionError(f"{proc.args[3:]} did not get there within {timeout:.0f} s")


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.fixture(scope="module")
def services_home(tmp_path_factory: pytest.TempPathFactory) -> ServicesHome:
    """synth → prepare → train → validate --watch (until a promotion) → live on the sim broker."""
    root = tmp_path_factory.mktemp("services") / "home"
    root.mkdir()
    (root / "micro.toml").write_text(TINY)
    ok(run_micro(root, "data", "synth", "--days", "90", "--seed", "3"))
    ok(run_micro(root, "data", "prepare"))
    ok(run_micro(root, "train", "--max-episodes", "16"))
    # The real trainer's checkpoints have no skill yet; the newest (scored first) is the
    # hand-made momentum trader, which has timing skill on this trending market, so the
    # promotion below is deterministic (and the untrained ones are refused by the gates).
    config = load_config(root, environ={})
    save_checkpoint(
        root / "checkpoints" / "ckpt_ep0000100.pth",
        momentum_network(config),
        config,
        episode=100,
        learner_step=0,
        data_fingerprint=read_fingerprint(
            root / "data" / "market.duckdb", config, config.mcts.simulations
        ),
    )
    with open(root / "watch.out", "w") as log:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "micro.cli", "validate", "--watch"],
            cwd=root,
            env=micro_env(root),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            status = root / "validation" / "status.json"
            best_metrics = root / "validation" / "best_metrics.json"
            wait_for(lambda: (read(best_metrics).get("test") or {}).get("status"), watcher)
            wait_for(lambda: read(status).get("state") in ("idle", "scoring"), watcher)
            dash = ok(run_micro(root, "dash", "--once")).stdout
            health = run_micro(root, "health", "validator")
            watcher.send_signal(signal.SIGTERM)
            assert watcher.wait(timeout=60) == 0
        finally:
            watcher.kill()
    ok(run_micro(root, "live", "--broker", "sim", "--max-bars", "30"))
    return ServicesHome(root, dash, health)


def dash_once(root: Path) -> str:
    """`micro dash --once` must succeed with no traceback; its plain-text frame."""
    result = run_micro(root, "dash", "--once", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "\x1b[" not in result.stdout  # piped: plain text, no colour codes
    return result.stdout


def panel_title(frame: str, name: str) -> str:
    return next(line for line in frame.splitlines() if f"─ {name} " in line)


@pytest.mark.slow
def test_dash_shows_every_services_real_files(services_home: ServicesHome) -> None:
    root = services_home.root
    frame = dash_once(root)
    trainer = read(root / "monitoring" / "trainer" / "status.json")
    best = read(root / "validation" / "best_metrics.json")
    state = read(root / "live" / "state.json")
    # every service has stopped: each panel says so with the age of its last status
    for name in ("Trainer", "Validator", "Live"):
        assert "stopped · last status" in panel_title(frame, name)
    # trainer: progress, throughput, buffer, losses with sparklines, actions, recent episodes
    assert f"episodes        {trainer['episodes']}" in frame
    assert f"{trainer['buffer_positions']:,} positions" in frame
    for term in ("policy", "value", "reward", "chance", "afterstate_q", "total"):
        line = next(x for x in frame.splitlines() if f" {term} " in x and "." in x)
        assert f"{trainer['losses'][term]:.4f}" in line
        assert any(block in line for block in "▁▂▃▄▅▆▇█")  # its sparkline
    for action, share in trainer["action_distribution"].items():
        assert f"{action}" in frame and f"{100 * share:.1f}%" in frame
    assert "expectancy" in frame and "win rate" in frame
    # validator: the reports with SQN and its Monte Carlo band, the best and its promotion
    for report_path in sorted((root / "validation").glob("validation_ep*.json")):
        report = read(report_path)
        row = next(x for x in frame.splitlines() if report["checkpoint"]["file"] in x and "…" in x)
        sqn, band = report["metrics"]["sqn"], report["bootstrap"]["sqn"]
        assert (MISSING if sqn is None else f"{sqn:.2f}") in row  # SQN is null for < 2 trades
        low, high = (MISSING if band[p] is None else f"{band[p]:.2f}" for p in ("p5", "p95"))
        assert f"{low} … {high}" in row
    assert f"best: {best['checkpoint']}" in frame
    assert f"promoted {best['checkpoint']}" in frame  # the promotion history line
    # the best's gates' figures, and validation beside test
    assert f"DSR {best['dsr']:.3f}" in frame
    validation = next(x for x in frame.splitlines() if "validation trades" in x)
    assert f"SQN {best['sqn']:.2f}" in validation
    test = next(x for x in frame.splitlines() if " test       trades" in x)
    assert f"trades {best['test']['trades']}" in test and f"SQN {best['test']['sqn']:.2f}" in test
    assert ("FLAGGED" in test) == best["test"]["flagged"]
    # every gate of the latest report: passed ones with their figure, failed ones with their bound
    gates = next(x for x in frame.splitlines() if "│ gates " in x)
    assert "✓ trades" in gates and "✓ vs random" in gates
    # live: broker, connection, market, position, day P&L, risk, circuit, decisions and why
    assert "sim  GBP_JPY" in frame and "connection    ok" in frame
    assert f"{state['day_pnl_pips']:+.1f} pips" in frame
    assert "circuit       closed" in frame
    assert "visits H/B/S/C" in frame and "Q H/B/S/C" in frame and "σ" in frame
    last = [
        json.loads(x)
        for x in (root / "live" / "journal.jsonl").read_text().splitlines()
        if '"decision":"' in x
    ][-1]
    visits = "/".join(str(v) for v in last["rationale"]["visit_counts"])
    assert f"{last['decision']}" in frame and visits in frame


@pytest.mark.slow
def test_dash_and_health_see_a_running_validator_as_up(services_home: ServicesHome) -> None:
    title = panel_title(services_home.dash_while_watching, "Validator")
    assert ("idle ·" in title or "scoring ·" in title) and "ago" in title
    assert services_home.health_while_watching.returncode == 0
    assert services_home.health_while_watching.stdout.startswith("validator healthy:")


@pytest.mark.slow
def test_services_silent_for_an_hour_show_as_down_with_their_age(
    services_home: ServicesHome, tmp_path: Path
) -> None:
    root = tmp_path / "home"
    shutil.copytree(services_home.root, root)
    hour_ago = time.time() - 3600
    for path in (
        root / "monitoring" / "trainer" / "status.json",
        root / "validation" / "status.json",
    ):
        status = read(path)
        atomic.write_json(path, {**status, "state": "running", "updated_unix": hour_ago})
    state = read(root / "live" / "state.json")
    atomic.write_json(
        root / "live" / "state.json",
        {**state, "written_at": "2020-01-01T00:00:00+00:00", "updated_unix": 1577836800.0},
    )
    journal = root / "live" / "journal.jsonl"
    journal.write_text("".join(x + "\n" for x in journal.read_text().splitlines()[:-1]))  # no stop
    frame = dash_once(root)
    assert "down · last status 1 h ago" in panel_title(frame, "Trainer")
    assert "down · last status 1 h ago" in panel_title(frame, "Validator")
    assert "down · last status" in panel_title(frame, "Live") and " d " in panel_title(
        frame, "Live"
    )
    assert "episodes" in frame and "best: " in frame  # the last figures are still shown


def test_dash_on_an_empty_home_shows_every_service_down(home: Path) -> None:
    frame = dash_once(home)
    for name in ("Trainer", "Validator", "Live"):
        assert "down · no status file yet" in panel_title(frame, name)
    assert "micro train" in frame and "micro validate --watch" in frame and "micro live" in frame
    assert "no validation reports yet" in frame


def write_up_status(home: Path, pid: int, updated_unix: float) -> None:
    """monitoring/up/status.json as `micro up` writes it before the validator promoted anything."""
    services = [
        {"name": "trainer", "state": "running", "pid": 11, "restarts": 0},
        {"name": "validator", "state": "starting", "pid": 12, "restarts": 0},
        {"name": "live", "state": "waiting for best.pth", "pid": None, "restarts": 0},
    ]
    status = {"service": "up", "pid": pid, "updated_unix": updated_unix, "services": services}
    atomic.write_json(home / "monitoring" / "up" / "status.json", status)


def test_under_micro_up_the_live_panel_waits_for_a_promotion_instead_of_asking_to_start_it(
    home: Path,
) -> None:
    write_up_status(home, os.getpid(), time.time())  # this test stands in for `micro up`
    frame = dash_once(home)
    live = frame[frame.index(panel_title(frame, "Live")) :]
    assert "waiting for the validator to promote a checkpoint" in live
    assert "start it with `micro live`" not in frame
    assert "`micro up` is starting it" in frame  # the validator, which has no status yet


def test_a_stopped_micro_up_no_longer_speaks_for_the_services(home: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid, updated in ((gone.pid, time.time()), (os.getpid(), time.time() - 3600)):
        write_up_status(home, pid, updated)  # its process has exited / its file went stale
        frame = dash_once(home)
        assert "start it with `micro live`" in frame
        assert "waiting for the validator" not in frame


def test_dash_survives_partial_and_garbage_files(home: Path) -> None:
    (home / "monitoring" / "trainer").mkdir(parents=True)
    (home / "validation").mkdir()
    (home / "live").mkdir()
    (home / "monitoring" / "trainer" / "status.json").write_text('{"state": "running", "epis')
    (home / "monitoring" / "trainer" / "metrics.jsonl").write_bytes(b"\x00\xff garbage\n[1]\n{")
    (home / "validation" / "status.json").write_text("[]")
    (home / "validation" / "validation_ep0000008.json").write_text("{half a report")
    (home / "validation" / "best_metrics.json").write_text("null")
    (home / "validation" / "events.jsonl").write_text('{"event": "promoted", "unix": "x"}\n{"ev')
    (home / "live" / "state.json").write_bytes(b"\xff\xfe\x00")
    (home / "live" / "journal.jsonl").write_text('{"kind": "bar", "decision": "BUY"\n')
    frame = dash_once(home)
    for name in ("Trainer", "Validator", "Live"):
        title = panel_title(frame, name)
        assert "down · last status" in title and "s ago" in title
    assert "partial or not JSON" in frame and "not a JSON object" in frame


def test_dash_survives_status_files_of_the_wrong_shape(home: Path) -> None:
    now = time.time()
    atomic.write_json(
        home / "monitoring" / "trainer" / "status.json",
        {
            "state": "running",
            "updated_unix": now,
            "episodes": "many",
            "losses": [1, 2],
            "actors": "four",
            "action_distribution": {"HOLD": "half", "BUY": None},
            "recent": 7,
        },
    )
    atomic.append_jsonl(home / "monitoring" / "trainer" / "metrics.jsonl", {"loss/policy": "x"})
    atomic.write_json(
        home / "validation" / "status.json",
        {"state": "scoring", "updated_unix": now, "counts": None, "current": "odd"},
    )
    atomic.write_json(
        home / "validation" / "validation_ep0000016.json",
        {"status": "ok", "metrics": [], "bootstrap": {"sqn": 3}, "checkpoint": 5},
    )
    atomic.write_json(home / "validation" / "validation_ep0000008.json", {"status": "timeout"})
    atomic.write_json(home / "validation" / "best_metrics.json", {"checkpoint": ["x"]})
    atomic.write_json(
        home / "live" / "state.json",
        {"updated_unix": now, "position": {"side": "up"}, "risk": "none", "circuit": 3},
    )
    atomic.append_jsonl(
        home / "live" / "journal.jsonl",
        {"kind": "bar", "decision": "SELL", "rationale": {"visit_counts": "x", "sigma": [1]}},
    )
    atomic.append_jsonl(home / "live" / "journal.jsonl", {"kind": "error", "time": 5, "why": {}})
    frame = dash_once(home)
    assert "running · " in panel_title(frame, "Trainer")
    assert "scoring · " in panel_title(frame, "Validator")
    assert "running · " in panel_title(frame, "Live")
    assert "cannot show" not in frame  # every odd value was shown as "–", not given up on
    assert "SELL" in frame and "timeout" in frame


def test_run_dashboard_redraws_until_should_stop_says_stop(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from micro.config import load_config
    from micro.home import Home
    from micro.monitoring.dashboard import run_dashboard

    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 30

    run_dashboard(Home(home), load_config(home, []), refresh_seconds=0.01, should_stop=should_stop)
    assert len(asked) == 31  # it asked every turn and returned as soon as told
    assert "down · no status file yet" in capsys.readouterr().out  # the last frame


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process `pid` has a handler installed for `sig` (Linux: /proc/PID/status SigCgt)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            mask = next(line for line in fh if line.startswith("SigCgt:")).split()[1]
    except (FileNotFoundError, StopIteration):
        return False
    return bool(int(mask, 16) >> (sig - 1) & 1)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_leaves_the_live_dashboard_with_status_0(
    home: Path, sig: signal.Signals, inherited: str
) -> None:
    """No terminal, stdin from /dev/null, even SIGINT inherited as ignored (`cmd &` in a script)."""

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-m", "micro.cli", "dash", "--refresh", "0.2"],
        cwd=home,
        env=micro_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=ignore_sigint if inherited == "ignored" else None,
    )
    try:
        wait_for(lambda: catches(proc.pid, signal.SIGTERM), proc, timeout=120)  # dash is up
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)  # it stops within 0.1 s; 30 s for a loaded box
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err
    assert "micro dash" in out and "Trainer" in out
