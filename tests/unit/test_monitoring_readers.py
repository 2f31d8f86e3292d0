"""The dashboard's readers: status files, JSONL tails and ages, whatever state the files are in."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from micro import atomic
from micro.config import load_config
from micro.home import Home
from micro.monitoring import readers
from micro.monitoring.readers import (
    format_age,
    latest_reports,
    liveness,
    read_status,
    series,
    stale_after_seconds,
    tail_jsonl,
)

NOW = 1_800_000_000.0


def write_lines(path: Path, rows: list[dict], torn: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)


def test_tail_returns_the_last_lines_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    write_lines(path, [{"i": i} for i in range(10)])
    assert [r["i"] for r in tail_jsonl(path, 3)] == [7, 8, 9]
    assert [r["i"] for r in tail_jsonl(path, 50)] == list(range(10))


def test_tail_skips_a_torn_last_line_and_garbage_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"i": 1}\nnot json\n[1, 2]\n{"i": 2}\n{"i": 3, "half')
    assert tail_jsonl(path, 5) == [{"i": 1}, {"i": 2}]


def test_tail_of_a_file_much_larger_than_a_block_reads_only_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "TAIL_BLOCK_BYTES", 256)
    path = tmp_path / "m.jsonl"
    write_lines(path, [{"i": i, "pad": "x" * 50} for i in range(5000)])
    assert [r["i"] for r in tail_jsonl(path, 4)] == [4996, 4997, 4998, 4999]


def test_tail_never_reads_more_than_its_byte_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "TAIL_BLOCK_BYTES", 100)
    monkeypatch.setattr(readers, "TAIL_MAX_BYTES", 1000)
    path = tmp_path / "m.jsonl"
    write_lines(path, [{"i": i} for i in range(10_000)])
    rows = tail_jsonl(path, 10_000)
    assert 0 < len(rows) < 200 and rows[-1] == {"i": 9999}


def test_tail_of_a_missing_or_empty_file_is_empty(tmp_path: Path) -> None:
    assert tail_jsonl(tmp_path / "none.jsonl", 5) == []
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert tail_jsonl(tmp_path / "empty.jsonl", 5) == []
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage\n\x80\n")
    assert tail_jsonl(tmp_path / "binary.jsonl", 5) == []


def test_series_keeps_only_finite_numbers(tmp_path: Path) -> None:
    rows = [{"x": 1}, {"x": None}, {"x": "2"}, {"x": True}, {}, {"x": 2.5}]
    assert series(rows, "x") == [1.0, 2.5]


def test_a_missing_status_file_reads_as_no_status_with_no_age(tmp_path: Path) -> None:
    status = read_status(Home(tmp_path), "trainer")
    assert status.data is None and status.updated_unix is None
    state = liveness(status, 30.0, NOW)
    assert not state.up and state.state == "down" and "no status file" in state.label


def test_a_partial_status_file_is_down_with_the_age_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "validation" / "status.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"service": "validator", "state": "id')
    os.utime(path, (NOW - 600, NOW - 600))
    status = read_status(Home(tmp_path), "validator")
    state = liveness(status, 30.0, NOW)
    assert status.data is None and "partial" in (status.problem or "")
    assert not state.up and state.age_seconds == pytest.approx(600)
    assert "10 min" in state.label


def test_a_status_file_that_is_not_an_object_is_unreadable(tmp_path: Path) -> None:
    atomic.write_json(tmp_path / "live" / "state.json", [1, 2, 3])
    status = read_status(Home(tmp_path), "live")
    assert status.data is None and "not a JSON object" in (status.problem or "")


def test_age_comes_from_updated_unix_then_iso_times_then_mtime(tmp_path: Path) -> None:
    home = Home(tmp_path)
    atomic.write_json(home.monitoring / "trainer" / "status.json", {"updated_unix": NOW - 5})
    assert read_status(home, "trainer").age(NOW) == pytest.approx(5)
    atomic.write_json(home.live / "state.json", {"written_at": "2027-01-15T08:00:00+00:00"})
    expected = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert read_status(home, "live").updated_unix == expected
    atomic.write_json(home.validation / "status.json", {"state": "idle"})
    os.utime(home.validation / "status.json", (NOW - 42, NOW - 42))
    assert read_status(home, "validator").age(NOW) == pytest.approx(42)


def test_fresh_status_is_up_stale_is_down_and_stopped_is_stopped(tmp_path: Path) -> None:
    home = Home(tmp_path)
    path = home.monitoring / "trainer" / "status.json"
    atomic.write_json(path, {"state": "running", "updated_unix": NOW - 3})
    fresh = liveness(read_status(home, "trainer"), 30.0, NOW)
    assert fresh.up and fresh.state == "running" and fresh.label == "running · 3 s ago"
    atomic.write_json(path, {"state": "running", "updated_unix": NOW - 7200})
    stale = liveness(read_status(home, "trainer"), 30.0, NOW)
    assert not stale.up and stale.state == "down"
    assert stale.label == "down · last status 2 h ago"
    atomic.write_json(path, {"state": "stopped", "updated_unix": NOW - 3})
    stopped = liveness(read_status(home, "trainer"), 30.0, NOW)
    assert not stopped.up and stopped.state == "stopped"


def test_stale_threshold_follows_each_writers_interval_with_a_floor(tmp_path: Path) -> None:
    config = load_config(tmp_path, ["train.report_every_seconds=20", "validation.poll_seconds=1"])
    assert stale_after_seconds("trainer", config) == 60.0
    assert stale_after_seconds("validator", config) == readers.STALE_FLOOR_SECONDS
    assert stale_after_seconds("live", config) == 3 * (60.0 + config.live.poll_seconds)
    with pytest.raises(ValueError):
        stale_after_seconds("tensorboard", config)


def test_latest_reports_are_the_highest_episodes_and_skip_unreadable_ones(tmp_path: Path) -> None:
    for episode in (8, 16, 24, 1000):
        atomic.write_json(tmp_path / f"validation_ep{episode:07d}.json", {"episode": episode})
    (tmp_path / "validation_ep0000032.json").write_text("{half")
    (tmp_path / "validation_ep12.json").write_text("{}")  # not a report name
    assert [r["episode"] for r in latest_reports(tmp_path, 3)] == [1000, 24, 16]
    assert latest_reports(tmp_path / "missing", 3) == []


def test_a_rewritten_report_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "validation_ep0000008.json"
    atomic.write_json(path, {"episode": 8, "status": "timeout"})
    assert latest_reports(tmp_path, 1)[0]["status"] == "timeout"
    atomic.write_json(path, {"episode": 8, "status": "ok", "metrics": {"trades": 31}})
    assert latest_reports(tmp_path, 1)[0]["status"] == "ok"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59.4, "59 s"),
        (200, "3 min"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
        (3 * 86400, "3 d"),
        (3 * 86400 + 7200, "3 d 2 h"),
        (-5, "0 s"),
    ],
)
def test_ages_read_as_short_human_durations(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_micro_up_speaks_for_the_services_only_while_it_runs(tmp_path: Path) -> None:
    home = Home(tmp_path)
    path = home.monitoring / "up" / "status.json"
    assert readers.supervised_states(home, NOW) == {}  # no micro up ever ran here
    services = [{"name": "live", "state": "waiting for best.pth"}, {"name": 3}, "odd"]
    atomic.write_json(path, {"pid": os.getpid(), "updated_unix": NOW - 1, "services": services})
    assert readers.supervised_states(home, NOW) == {"live": "waiting for best.pth"}
    assert readers.supervised_states(home, NOW + 3600) == {}  # stale: it stopped long ago
    for pid in (0, -1, True, "1", None):  # never a process group, never a guess
        atomic.write_json(path, {"pid": pid, "updated_unix": NOW, "services": services})
        assert readers.supervised_states(home, NOW) == {}
    path.write_text('{"pid": 1, "servi')
    assert readers.supervised_states(home, NOW) == {}
