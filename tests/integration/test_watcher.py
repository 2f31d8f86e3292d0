"""`micro validate --watch` with real files: ordering, broken checkpoints, time limit, signals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from micro.config import load_config
from micro.home import Home
from micro.volumes import tensorboard_run as run_folder
from tests.conftest import micro_env
from tests.helpers import alive
from tests.integration.test_validate import (
    TINY,
    make_checkpoint,
    micro_command,
    prepare_home,
    prepare_skill_home,
    skill_checkpoint,
    strict_json,
)


@pytest.fixture(scope="module")
def watch_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_home(tmp_path_factory.mktemp("watch-template"))


@pytest.fixture
def vhome(watch_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the prepared home for one test."""
    home = tmp_path / "home"
    shutil.copytree(watch_template, home)
    return home


def start_watch(home: Path, *args: str) -> subprocess.Popen:
    """`micro validate --watch ARGS` in `home` as a real subprocess (output to a log file)."""
    log = open(home / "watch.out", "w")  # noqa: SIM115 (closed when the process is)
    return subprocess.Popen(
        micro_command("validate", "--watch", *args),
        cwd=home,
        env=micro_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def wait_for(predicate: Callable[[], Any], proc: subprocess.Popen, timeout: float = 90.0) -> Any:
    """Poll `predicate` until truthy (returning it); fail early when the watcher has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the watcher exited with {proc.returncode}")
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def status(home: Path) -> dict[str, Any]:
    try:
        return json.loads((home / "validation" / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def report(home: Path, episode: int, split: str = "validation") -> dict[str, Any] | None:
    """The report of ckpt_ep{N:07d}.pth (named by file and sha256), None until written."""
    folder = home / "validation" / ("test" if split == "test" else "")
    found = list(folder.glob(f"validation_ep{episode:07d}_ckpt_ep{episode:07d}_*.json"))
    return strict_json(found[0]) if found else None


def events(home: Path) -> list[dict[str, Any]]:
    path = home / "validation" / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def stop(proc: subprocess.Popen) -> int:
    """SIGTERM the watcher and return its exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        proc.kill()


def leftovers(home: Path) -> list[str]:
    """Temporary files of atomic writes left anywhere in the volumes."""
    return [p.name for p in home.rglob("*.tmp")]


def scoring(home: Path, checkpoint: str) -> dict[str, Any] | None:
    current = status(home).get("current") or {}
    return current if current.get("checkpoint") == checkpoint else None


@pytest.mark.slow
def test_watcher_scores_newest_first_records_broken_ones_and_stops_cleanly_on_sigterm(
    vhome: Path,
) -> None:
    make_checkpoint(vhome, 50)
    make_checkpoint(vhome, 100)
    truncated = make_checkpoint(vhome, 150)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    make_checkpoint(vhome, 200).with_suffix(".json").write_text("{not json")
    proc = start_watch(vhome)
    try:
        wait_for(lambda: all(report(vhome, e) for e in (50, 100, 150, 200)), proc)
        # A report is written before its event line and the status that counts it.
        wait_for(lambda: status(vhome).get("counts", {}).get("scored") == 2, proc)
        order = [e["episode"] for e in events(vhome) if e["event"] in ("scored", "failed")]
        assert order == [200, 150, 100, 50]  # newest first, then the older ones
        assert report(vhome, 200)["status"] == "failed" and "sidecar" in report(vhome, 200)["error"]
        assert report(vhome, 150)["status"] == "failed"
        assert "truncated" in report(vhome, 150)["error"]
        assert report(vhome, 100)["status"] == "ok" and report(vhome, 50)["status"] == "ok"
        snapshot = status(vhome)
        assert snapshot["counts"]["scored"] == 2 and snapshot["counts"]["failed"] == 2
        assert snapshot["best"] is None and snapshot["pid"] == proc.pid  # untrained: no skill
        assert snapshot["last_error"]["checkpoint"] == "ckpt_ep0000150.pth"

        make_checkpoint(vhome, 250)  # written while watching: scored next
        wait_for(lambda: report(vhome, 250), proc)
        assert report(vhome, 250)["status"] == "ok"

        make_checkpoint(vhome, 300)
        current = wait_for(lambda: scoring(vhome, "ckpt_ep0000300.pth"), proc)
        assert stop(proc) == 0
    finally:
        proc.kill()
    assert not alive(current["child_pid"])
    assert report(vhome, 300) is None  # abandoned: scored again at the next start
    assert status(vhome)["state"] == "stopped"
    assert leftovers(vhome) == []


def test_a_checkpoint_deleted_while_being_scored_is_recorded_and_watching_continues(
    vhome: Path,
) -> None:
    path = make_checkpoint(vhome, 50)
    proc = start_watch(vhome)
    try:
        wait_for(lambda: scoring(vhome, path.name), proc)
        path.unlink()  # the trainer prunes: .pth first, then its sidecar
        path.with_suffix(".json").unlink()
        recorded = wait_for(lambda: report(vhome, 50), proc)
        if recorded["status"] == "ok":  # it was read before the deletion: never promoted
            assert not recorded["promotion"]["promoted"]
        else:
            assert recorded["status"] == "failed" and "not found" in recorded["error"]
        make_checkpoint(vhome, 100)
        assert wait_for(lambda: report(vhome, 100), proc)["status"] == "ok"
        assert stop(proc) == 0
    finally:
        proc.kill()


def test_a_checkpoint_past_the_time_limit_is_recorded_as_timeout(vhome: Path) -> None:
    make_checkpoint(vhome, 50)
    proc = start_watch(vhome, "--set", "validation.checkpoint_time_limit_seconds=0.5")
    try:
        child = wait_for(lambda: scoring(vhome, "ckpt_ep0000050.pth"), proc)["child_pid"]
        recorded = wait_for(lambda: report(vhome, 50), proc)
        assert recorded["status"] == "timeout"
        assert "checkpoint_time_limit_seconds" in recorded["error"]
        assert not alive(child)
        assert status(vhome)["counts"]["timeout"] == 1
        second = subprocess.run(
            micro_command("validate", "--watch"),
            cwd=vhome,
            env=micro_env(vhome),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2 and "another" in second.stderr  # one watcher per home
        assert stop(proc) == 0
    finally:
        proc.kill()
    assert leftovers(vhome) == []


def test_watching_an_unprepared_store_exits_2_with_one_line(home: Path) -> None:
    (home / "micro.toml").write_text(TINY)
    result = subprocess.run(
        micro_command("validate", "--watch"),
        cwd=home,
        env=micro_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "micro data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


CURVE_TAGS = (
    "expectancy_pips",
    "expectancy_p05",
    "sqn",
    "trades",
    "random_entry_percentile",
    "fair_coin_percentile",
    "buy_share",
    "sell_share",
)


def test_each_scored_checkpoint_appears_on_the_tensorboard_learning_curve_at_its_episode(
    vhome: Path,
) -> None:
    path = make_checkpoint(vhome, 50)
    proc = start_watch(vhome)
    try:
        scored = wait_for(lambda: report(vhome, 50), proc)
        assert stop(proc) == 0
    finally:
        proc.kill()
    assert scored["status"] == "ok" and scored["metrics"]["trades"] > 0

    folder = run_folder(Home(vhome), load_config(vhome, environ={}))  # the trainer's run folder
    files = list(folder.glob("events.out.tfevents.*.validator"))
    assert len(files) == 1
    curve = EventAccumulator(str(files[0]))
    curve.Reload()
    assert sorted(curve.Tags()["scalars"]) == sorted(f"validation/{t}" for t in CURVE_TAGS)

    def point(tag: str):
        (only,) = curve.Scalars(f"validation/{tag}")
        assert only.step == 50  # the checkpoint's episode
        return only

    sidecar = json.loads(path.with_suffix(".json").read_text())
    created = datetime.fromisoformat(sidecar["created_at"]).timestamp()
    assert point("sqn").wall_time == pytest.approx(created)  # when the checkpoint was written
    metrics, baselines = scored["metrics"], scored["baselines"]
    assert point("trades").value == metrics["trades"]
    assert point("expectancy_pips").value == pytest.approx(metrics["expectancy_pips"], rel=1e-6)
    assert point("expectancy_p05").value == pytest.approx(
        scored["bootstrap"]["expectancy_pips"]["p5"], rel=1e-6
    )
    assert point("sqn").value == pytest.approx(metrics["sqn"], rel=1e-6)
    assert point("random_entry_percentile").value == pytest.approx(
        baselines["random_entry"]["agent_percentile"], rel=1e-6
    )
    assert point("fair_coin_percentile").value == pytest.approx(
        baselines["random_entry_fair_coin"]["agent_percentile"], rel=1e-6
    )
    actions = scored["evaluation"]["actions"]
    assert point("buy_share").value == pytest.approx(actions["BUY"], rel=1e-6)
    assert point("sell_share").value == pytest.approx(actions["SELL"], rel=1e-6)


@pytest.fixture(scope="module")
def skill_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_skill_home(tmp_path_factory.mktemp("watch-skill-template"))


@pytest.mark.slow
def test_the_watcher_promotes_skill_tests_it_once_on_test_and_refuses_no_skill(
    skill_template: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(skill_template, home)
    make_checkpoint(home, 50)  # untrained: no skill
    skill_checkpoint(home, 100)  # the momentum trader: timing skill on a trending market
    proc = start_watch(home)
    try:
        wait_for(lambda: report(home, 50) and report(home, 100, "test"), proc, timeout=180)
        assert stop(proc) == 0
    finally:
        proc.kill()
    skill, none = report(home, 100), report(home, 50)
    assert skill["promotion"]["promoted"], skill["promotion"]["reason"]
    assert all(g["passed"] for g in skill["promotion"]["gates"])
    assert not none["promotion"]["promoted"]
    assert none["selection"]["checkpoints"] == 2  # deflated over both, on the same data
    order = [(e["event"], e["episode"]) for e in events(home) if e["event"] != "failed"]
    assert order == [("promoted", 100), ("scored", 100), ("tested", 100), ("scored", 50)]
    best = strict_json(home / "validation" / "best_metrics.json")
    assert best["episode"] == 100 and best["dsr"] >= 0.95 and best["test"]["status"] == "ok"
    test = report(home, 100, "test")
    assert test["split"] == "test" and not test["promotion"]["promoted"]
    assert best["test"]["expectancy_pips"] == test["metrics"]["expectancy_pips"]
    assert skill["test"] == best["test"]  # the validation report shows test beside it
    assert (home / "checkpoints" / "best.pth").read_bytes() == (
        home / "checkpoints" / "ckpt_ep0000100.pth"
    ).read_bytes()
    assert status(home)["best"]["episode"] == 100
