"""JSONL appends write whole lines or nothing, and a torn last line is cut, never glued to."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from micro import atomic
from micro.live.journal import Journal


def lines_of(path: Path) -> list[dict]:
    return [json.loads(text) for text in path.read_bytes().decode().splitlines()]


def test_a_short_write_is_followed_by_the_rest_of_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls: list[int] = []

    def three_bytes_at_a_time(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data[:3]))

    path = tmp_path / "j.jsonl"
    monkeypatch.setattr(os, "write", three_bytes_at_a_time)
    atomic.append_jsonl(path, {"kind": "order", "client_id": "micro-1-B"})
    atomic.append_jsonl(path, {"kind": "fill"})
    monkeypatch.undo()
    assert lines_of(path) == [{"kind": "order", "client_id": "micro-1-B"}, {"kind": "fill"}]
    assert len(calls) > 10


def test_a_write_that_fails_part_way_leaves_nothing_of_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    atomic.append_jsonl(path, {"i": 0})
    real_write = os.write
    written = {"n": 0}

    def disk_fills_up(fd: int, data: bytes) -> int:
        if written["n"] >= 5:
            raise OSError(28, "No space left on device")
        written["n"] += 5
        return real_write(fd, bytes(data[:5]))

    monkeypatch.setattr(os, "write", disk_fills_up)
    with pytest.raises(OSError, match="No space"):
        atomic.append_jsonl(path, {"i": 1, "pad": "x" * 50})
    monkeypatch.undo()
    assert path.read_bytes() == b'{"i":0}\n'
    atomic.append_jsonl(path, {"i": 2})
    assert lines_of(path) == [{"i": 0}, {"i": 2}]


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"i":0}\n{"i":1}\n{"kind":"ord')
    torn = atomic.append_jsonl(path, {"i": 2})
    assert torn == b'{"kind":"ord'
    assert lines_of(path) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_a_file_that_is_one_torn_line_is_cut_whole(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"x" * 200_000)  # longer than one look-back block
    assert atomic.repair_jsonl(path) == b"x" * 200_000
    assert path.read_bytes() == b""
    assert atomic.repair_jsonl(path) == b""
    assert atomic.repair_jsonl(tmp_path / "missing.jsonl") == b""


def test_the_journal_notes_a_repair_when_it_opens_a_torn_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"kind":"bar"}\n{"kind":"order","client_id":"micro-6')
    journal = Journal(path, wall=lambda: 1_700_000_000.0)
    journal.record("start", broker="oanda")
    journal.record("bar")
    kinds = [x["kind"] for x in lines_of(path)]
    assert kinds == ["bar", "repair", "start", "bar"]
    note = lines_of(path)[1]
    assert note["found_at"] == "open"
    assert note["torn_bytes"] == len(b'{"kind":"order","client_id":"micro-6')
    assert note["fragment"] == '{"kind":"order","client_id":"micro-6'
    assert [x["kind"] for x in journal.lines()] == kinds


def test_a_whole_journal_gets_no_repair_note(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).record("start")
    Journal(path).record("start")
    assert [x["kind"] for x in lines_of(path)] == ["start", "start"]
