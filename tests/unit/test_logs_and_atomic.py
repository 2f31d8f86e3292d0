from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from micro import atomic
from micro.logs import setup_logging


def test_secrets_from_the_environment_never_reach_the_log_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OANDA_TOKEN", "abcd-1234-very-secret")
    monkeypatch.setenv("OANDA_ACCOUNT", "101-001-5555555-001")
    log_file = tmp_path / "x.log"
    setup_logging(log_file, console=False)
    log = logging.getLogger("micro.test")
    log.info("token is %s", "abcd-1234-very-secret")
    log.warning("url https://api/v3/accounts/101-001-5555555-001/orders")
    try:
        raise RuntimeError("failed with abcd-1234-very-secret")
    except RuntimeError:
        log.exception("request failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert "very-secret" not in text and "5555555" not in text
    assert text.count("***") >= 3
    assert "RuntimeError" in text
    setup_logging(None, console=False)


def test_atomic_json_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "status.json"
    atomic.write_json(target, {"a": 1, "nan": float("nan")})
    atomic.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(target.parent) == ["status.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic.write_bytes(target, b"old")

    def broken(fh) -> None:
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic.write_with(target, broken)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_nan_is_written_as_null(tmp_path: Path) -> None:
    atomic.write_json(tmp_path / "x.json", {"v": float("inf")})
    assert atomic.read_json(tmp_path / "x.json") == {"v": None}


def test_jsonl_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    for i in range(3):
        atomic.append_jsonl(path, {"i": i})
    assert [json.loads(line)["i"] for line in path.read_text().splitlines()] == [0, 1, 2]


def test_read_json_of_a_partial_file_is_none(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"a": ')
    assert atomic.read_json(tmp_path / "p.json") is None
    assert atomic.read_json(tmp_path / "missing.json") is None
