"""`micro health SERVICE`: the Docker HEALTHCHECK over status files written by the real writers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from micro import atomic
from micro.config import load_config
from micro.home import Home
from micro.live.journal import Journal, StateFile
from micro.train.monitor import TrainerMonitor
from micro.validation.watcher import Watcher
from tests.conftest import run_micro


def health(home: Path, *args: str) -> tuple[int, str]:
    result = run_micro(home, "health", *args, timeout=60)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout.strip()


def write_trainer_status(home: Path, state: str) -> None:
    monitor = TrainerMonitor(Home(home).monitoring, "run", tensorboard=False)
    monitor.report({"state": state, "episodes": 8}, {"loss/total": 1.0}, step=1)


def write_live_state(home: Path) -> Journal:
    journal = Journal(home / "live" / "journal.jsonl")
    journal.record("start", broker="sim")
    StateFile(home / "live" / "state.json").write({"broker": "sim", "market_open": True})
    return journal


@pytest.mark.parametrize("service", ["trainer", "validator", "live"])
def test_a_service_without_a_status_file_is_unhealthy(home: Path, service: str) -> None:
    code, line = health(home, service)
    assert code == 1
    assert line == f"{service} unhealthy: no status file yet"


def test_a_running_trainer_that_just_reported_is_healthy(home: Path) -> None:
    write_trainer_status(home, "running")
    code, line = health(home, "trainer")
    assert code == 0 and line.startswith("trainer healthy: running, status written")


def test_a_trainer_that_wrote_it_stopped_is_unhealthy(home: Path) -> None:
    write_trainer_status(home, "stopped")
    code, line = health(home, "trainer")
    assert code == 1 and line.startswith("trainer unhealthy: stopped")


def test_a_status_older_than_max_age_is_unhealthy_and_says_how_old(home: Path) -> None:
    write_trainer_status(home, "running")
    path = home / "monitoring" / "trainer" / "status.json"
    status = atomic.read_json(path)
    atomic.write_json(path, {**status, "updated_unix": time.time() - 3600})
    code, line = health(home, "trainer")
    assert code == 1
    assert line == "trainer unhealthy: status.json not rewritten for 1 h (stale after 30 s)"
    assert health(home, "trainer", "--max-age", "7200")[0] == 0


def test_max_age_overrides_the_default(home: Path) -> None:
    write_trainer_status(home, "running")
    assert health(home, "trainer")[0] == 0
    code, line = health(home, "trainer", "--max-age", "0.001")
    assert code == 1 and "not rewritten for" in line


def test_the_validator_status_of_the_real_watcher_is_healthy(home: Path) -> None:
    watcher = Watcher(Home(home), load_config(home, []), "validation")
    watcher.write_status(state="idle")
    code, line = health(home, "validator")
    assert code == 0 and line.startswith("validator healthy: idle")
    watcher.write_status(state="stopped")
    assert health(home, "validator")[0] == 1


def test_the_live_trader_is_unhealthy_once_its_journal_ends_with_stop(home: Path) -> None:
    journal = write_live_state(home)
    code, line = health(home, "live")
    assert code == 0 and line.startswith("live healthy: running")
    journal.record("stop", reason="signal", bars=3)
    code, line = health(home, "live")
    assert code == 1 and line.startswith("live unhealthy: stopped")
    journal.record("start", broker="sim")  # restarted by Docker: healthy again
    assert health(home, "live")[0] == 0


def test_a_garbage_status_file_is_unhealthy_with_the_reason(home: Path) -> None:
    path = home / "validation" / "status.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"state": "idle", "upd')
    code, line = health(home, "validator")
    assert code == 1 and "unreadable (partial or not JSON)" in line


def test_an_unknown_service_or_bad_max_age_is_a_usage_error(home: Path) -> None:
    assert run_micro(home, "health", "tensorboard").returncode == 2
    assert run_micro(home, "health", "trainer", "--max-age", "-1").returncode == 2
