"""Atomic file writes: a reader never sees half a file (temp file, fsync, os.replace).

JSON files and JSONL lines pass through `micro.redaction.redact` on the way out, so no token,
account id or account URL reaches a file whatever a caller hands in (a broker's error text).
JSONL appends write whole lines or nothing: see `append_jsonl`.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from micro.redaction import redact, redact_text


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide and racy to toggle later
_TAIL_BLOCK = 65536  # bytes read at a time when looking back for a torn line's start
_APPEND_LOCK = threading.Lock()  # one append at a time in this process (the tail check + write)


def _fresh_lock_in_child() -> None:
    """A forked child starts with a free lock (another thread may have held it at the fork)."""
    global _APPEND_LOCK
    _APPEND_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


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
    """Write `obj` as JSON atomically (NaN/inf are written as null; secrets redacted)."""
    text = json.dumps(redact(_finite(obj)), indent=indent, sort_keys=False, default=_plain)
    write_bytes(path, (text + "\n").encode())


def append_jsonl(path: Path | str, obj: Any, fsync: bool = True) -> bytes:
    """Append `obj` as one JSON line, whole or not at all; the torn tail it cut first, if any.

    Whole or nothing: the line is written by a loop that goes on after a short write, and a
    write that fails part-way (disk full, an exception) is cut back to where it started. A line
    left torn by a writer killed mid-append (no newline at the end of the file) is cut before the
    new line is written, so the new line is never glued to the fragment; the cut bytes are
    returned for the caller to note (b"" when the file ended whole). fsync policy: with `fsync`
    (the default) every line is on disk before this returns; the folder is fsynced when the
    file is created. One writer per file; appends within a process are serialised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(redact(_finite(obj)), separators=(",", ":"), default=_plain)
    line = (text + "\n").encode()
    with _APPEND_LOCK:
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            torn = _cut_torn_tail(fd)
            start = os.fstat(fd).st_size
            try:
                _write_all(fd, line)
            except BaseException:
                os.ftruncate(fd, start)  # nothing of a line that did not go out whole
                raise
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(path.parent)
    return torn


def repair_jsonl(path: Path | str) -> bytes:
    """Cut a torn last line (one without its newline) from `path`; the bytes cut (b"": none)."""
    path = Path(path)
    if not path.is_file():
        return b""
    with _APPEND_LOCK:
        fd = os.open(path, os.O_RDWR)
        try:
            return _cut_torn_tail(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (a write may take fewer bytes than it was given)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"write() took {written} bytes")
        view = view[written:]


def _cut_torn_tail(fd: int) -> bytes:
    """Truncate the file after its last newline when it does not end with one; the bytes cut."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return b""
    end = size
    keep = 0  # the file is one torn line unless a newline is found before it
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    torn = os.pread(fd, size - keep, keep)
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return torn


def read_json(path: Path | str) -> Any | None:
    """The JSON in `path`, or None when it is missing or not valid JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
        return None


def _plain(obj: Any) -> str:
    """What json.dumps writes for an object it does not know (a Path, a Timestamp): redacted str."""
    return redact_text(str(obj))


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
