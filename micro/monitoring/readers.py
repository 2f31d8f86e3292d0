"""Safe readers of the files the services write: status JSON, JSONL tails, ages.

Nothing here raises on a missing, half-written, garbage or foreign file: the dashboard and
`micro health` must keep working while the services start, crash, or are being restarted.
Every reader only reads; the services own their files, and `micro.volumes` their names and
records (a status file of a schema version this micro does not read is shown as unreadable).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from micro.config import Config
from micro.home import Home
from micro.volumes import (
    RECORDS,
    SERVICES,
    SchemaError,
    UpStatus,
    report_files,
    status_path,
    up_status_path,
)

# A status file older than this is stale and its service is shown as down. Each writer rewrites its
# file at a known interval; three missed rewrites (and never less than STALE_FLOOR_SECONDS, so one
# slow checkpoint save or GC pause does not flap the state) mean the writer is gone.
STALE_MISSED_REPORTS = 3
STALE_FLOOR_SECONDS = 30.0
BAR_SECONDS = 60.0  # the live trader rewrites live/state.json once per completed M1 bar

TAIL_BLOCK_BYTES = 64 * 1024  # read a JSONL tail backwards in blocks of this size
TAIL_MAX_BYTES = 8 * 1024 * 1024  # never read more than this from the end of one file


@dataclass(frozen=True)
class StatusFile:
    """One service's status file as read now: content, when it was written, and its trouble."""

    service: str
    path: Path
    data: dict[str, Any] | None  # None when missing or unreadable
    updated_unix: float | None  # seconds UTC: the file's own time, else its mtime
    problem: str | None  # "no status file yet", "unreadable (…)", or None

    def age(self, now: float) -> float | None:
        """Seconds since the file was written (None when there is no file)."""
        return None if self.updated_unix is None else max(now - self.updated_unix, 0.0)


@dataclass(frozen=True)
class Liveness:
    """What the dashboard and the health check conclude about one service."""

    service: str
    up: bool
    state: str  # "running", "idle", "scoring", "stopped", "down", …
    age_seconds: float | None
    reason: str  # one line: why it is up or down

    @property
    def label(self) -> str:
        """e.g. "running · 3 s ago" or "down · last status 2 h 5 min ago"."""
        if self.age_seconds is None:
            return f"{self.state} · {self.reason}"
        age = format_age(self.age_seconds)
        return f"{self.state} · {age} ago" if self.up else f"{self.state} · last status {age} ago"


def stale_after_seconds(service: str, config: Config) -> float:
    """Age (s) past which `service`'s status file means the service is down."""
    if service == "trainer":
        interval = config.train.report_every_seconds
    elif service == "validator":
        interval = config.validation.poll_seconds  # rewritten at least every poll, also scoring
    elif service == "live":
        interval = BAR_SECONDS + config.live.poll_seconds
    else:
        raise ValueError(f"unknown service {service!r}; expected one of {SERVICES}")
    return max(STALE_MISSED_REPORTS * interval, STALE_FLOOR_SECONDS)


def read_json_object(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in `path` and None, or None and why it could not be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None, "unreadable (partial or not JSON)"
    if not isinstance(data, dict):
        return None, "unreadable (not a JSON object)"
    return data, None


def read_status(home: Home, service: str) -> StatusFile:
    """`service`'s status file; never raises (a schema this micro does not read: unreadable)."""
    path = status_path(home, service)
    data, problem = read_json_object(path)
    if problem == "missing":
        return StatusFile(service, path, None, None, "no status file yet")
    updated = written_unix(data) if data is not None else None
    if data is not None:
        try:
            RECORDS[service].from_dict(data)
        except SchemaError as exc:
            data, problem = None, f"unreadable ({str(exc).split(';')[0]})"
    if updated is None:
        updated = mtime(path)
    return StatusFile(service, path, data, updated, problem)


def written_unix(data: dict[str, Any]) -> float | None:
    """The writer's own time in `data`: updated_unix, else updated_at / written_at (ISO 8601)."""
    value = number(data.get("updated_unix"))
    if value is not None:
        return value
    for key in ("updated_at", "written_at"):
        parsed = parse_iso(data.get(key))
        if parsed is not None:
            return parsed
    return None


def parse_iso(value: Any) -> float | None:
    """Seconds UTC of an ISO 8601 time with an offset, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def mtime(path: Path) -> float | None:
    """The file's modification time (s UTC), or None."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def liveness(status: StatusFile, stale_after: float, now: float, stopped: bool = False) -> Liveness:
    """Up when the file is readable, fresh and its state is not "stopped"; else down and why.

    `stopped` says the service announced its stop somewhere else (the live journal's `stop`).
    """
    age = status.age(now)
    if status.updated_unix is None:
        return Liveness(status.service, False, "down", None, status.problem or "no status file")
    if status.data is None:
        why = f"{status.path.name} {status.problem}, written {format_age(age or 0.0)} ago"
        return Liveness(status.service, False, "down", age, why)
    state = str(status.data.get("state") or ("stopped" if stopped else "running"))
    if state == "stopped" or stopped:
        why = f"stopped (it said so {format_age(age or 0.0)} ago)"
        return Liveness(status.service, False, "stopped", age, why)
    if age is not None and age > stale_after:
        why = f"{status.path.name} not rewritten for {format_age(age)} (stale after "
        return Liveness(status.service, False, "down", age, why + f"{format_age(stale_after)})")
    return Liveness(status.service, True, state, age, f"{status.path.name} is fresh")


def supervised_states(home: Home, now: float) -> dict[str, str]:
    """Each service's state under a running `micro up` ({} when none runs in this home).

    `micro up` rewrites monitoring/up/status.json every half second with its pid and, per
    service, "running", "starting", "restarting" or "waiting for best.pth". A file older than
    STALE_FLOOR_SECONDS or whose pid is gone is a `micro up` that has stopped.
    """
    data, _ = read_json_object(up_status_path(home))
    if data is None:
        return {}
    try:
        up = UpStatus.from_dict(data)
    except SchemaError:
        return {}
    updated = up.updated_unix
    if updated is None or now - updated > STALE_FLOOR_SECONDS or not pid_alive(up.pid):
        return {}
    return {s.name: str(s.state) for s in up.services if s.name is not None}


def pid_alive(pid: Any) -> bool:
    """Whether `pid` names a running process on this machine."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it exists; it is another user's
    except OSError:
        return False
    return True


def tail_jsonl(path: Path, lines: int) -> list[dict[str, Any]]:
    """The last `lines` JSON objects of `path`, oldest first, reading backwards from the end.

    A torn last line (no newline yet) and lines that are not JSON objects are skipped; a missing
    or unreadable file gives []. Reads at most TAIL_MAX_BYTES however long the file has grown.
    """
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            position, chunks, newlines = end, [], 0
            while position > 0 and newlines <= lines and end - position < TAIL_MAX_BYTES:
                step = min(TAIL_BLOCK_BYTES, position)
                position -= step
                fh.seek(position)
                chunk = fh.read(step)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except OSError:
        return []
    blob = b"".join(reversed(chunks))
    if position > 0:  # the first line is cut: drop it
        blob = blob[blob.find(b"\n") + 1 :] if b"\n" in blob else b""
    if not blob.endswith(b"\n"):  # the writer is mid-line (or died mid-line)
        blob = blob[: blob.rfind(b"\n") + 1]
    out: list[dict[str, Any]] = []
    for raw in reversed(blob.splitlines()):
        try:
            item = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(item, dict):
            out.append(item)
            if len(out) == lines:
                break
    out.reverse()
    return out


def series(rows: list[dict[str, Any]], key: str) -> list[float]:
    """The finite numbers under `key` in `rows`, in order (None/garbage skipped)."""
    return [x for row in rows if (x := number(row.get(key))) is not None]


def dig(data: Any, *keys: str | int) -> Any:
    """data[k1][k2]…, or None when any step is missing or of the wrong type."""
    for key in keys:
        if isinstance(data, dict) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def number(value: Any) -> float | None:
    """`value` as a finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


_REPORT_CACHE: dict[Path, tuple[tuple[int, int], dict[str, Any] | None]] = {}
_REPORT_CACHE_SIZE = 64


def latest_reports(folder: Path, count: int) -> list[dict[str, Any]]:
    """The `count` validation reports of the highest episodes in `folder`, newest first.

    Unreadable reports are skipped. Parsed reports are cached by (mtime, size): the folder holds
    one large report per checkpoint and the dashboard asks every second.
    """
    out = []
    for _, path in reversed(report_files(folder)):
        report = _cached_report(path)
        if report is not None:
            out.append(report)
            if len(out) == count:
                break
    return out


def _cached_report(path: Path) -> dict[str, Any] | None:
    """The report in `path`, parsed again only when its mtime or size changed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (stat.st_mtime_ns, stat.st_size)
    hit = _REPORT_CACHE.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    report, _ = read_json_object(path)
    if len(_REPORT_CACHE) >= _REPORT_CACHE_SIZE:
        _REPORT_CACHE.pop(next(iter(_REPORT_CACHE)))
    _REPORT_CACHE[path] = (key, report)
    return report


def format_age(seconds: float) -> str:
    """A short human age: "4 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    seconds = max(float(seconds), 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def now_unix() -> float:
    """Wall clock, seconds UTC: the services stamp their files with the same clock."""
    return time.time()
