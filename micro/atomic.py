"""Atomic file writes: a reader never sees half a file (temp file, fsync, os.replace)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide and racy to toggle later


def write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    write_with(path, lambda fh: fh.write(data))


def write_with(path: Path | str, writer: Callable[[BinaryIO], Any]) -> None:
    """Call `writer(fh)` on a temp file beside `path`, fsync it, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; readers may be other users
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def write_json(path: Path | str, obj: Any, indent: int | None = 2) -> None:
    """Write `obj` as JSON atomically (NaN/inf are written as null)."""
    text = json.dumps(_finite(obj), indent=indent, sort_keys=False, default=str)
    write_bytes(path, (text + "\n").encode())


def append_jsonl(path: Path | str, obj: Any) -> None:
    """Append one JSON line; a single write() of a whole line, flushed and fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(_finite(obj), separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path | str) -> Any | None:
    """The JSON in `path`, or None when it is missing or not valid JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
        return None


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
