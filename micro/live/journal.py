"""`live/journal.jsonl` (append-only record of everything) and `live/state.json` (the snapshot).

Journal lines are JSON objects with `time` (wall clock, UTC ISO), `kind` and the kind's fields:
`start`, `bar` (decision, rationale, latency), `order`, `fill`, `rejected`, `close`, `trade`,
`error`, `risk`, `reload`, `reconcile`, `connection` (the price stream's state, when it changes),
`stop`, and `repair` (below).

Durable: each line goes out whole or not at all and is fsynced before `record` returns
(`micro.atomic.append_jsonl`). A trader killed mid-append leaves a torn last line; the next
writer cuts it when it opens the journal (its first `record`) and journals a `repair` line
with the bytes cut (`torn_bytes`, and the fragment's text), so the new line is never glued to
the fragment and the loss is on record. state.json (a `micro.volumes.LiveState`) is rewritten
atomically after every bar. Neither file ever holds a secret: both pass through
`micro.redaction` (token, account id, account URLs), broker error texts included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from micro.atomic import append_jsonl, read_json, repair_jsonl, write_json
from micro.volumes import LiveState

log = logging.getLogger("micro.live")

FRAGMENT_CHARS = 4000  # of a torn line, kept in its repair note
Listener = Callable[[dict[str, Any]], None]  # told of every line once it is on disk


class Journal:
    """Appends one JSON line per event to `path`, stamped by the `wall` clock (s UTC)."""

    def __init__(
        self, path: Path, wall: Callable[[], float] = time.time, listeners: Sequence[Listener] = ()
    ) -> None:
        self.path = Path(path)
        self.wall = wall
        self._opened = False  # the torn-tail check runs before this writer's first line
        self.listeners = list(listeners)  # alerts, the live page: a failing one is logged only

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append `{"time", "kind", **fields}` (fsynced, whole or not at all) and return it."""
        if not self._opened:
            self._opened = True
            self._note_repair(repair_jsonl(self.path), "open")
        line = {"time": _utc(self.wall(), "milliseconds"), "kind": kind}
        line.update(fields)
        self._note_repair(append_jsonl(self.path, line), "append")
        for listener in self.listeners:
            try:
                listener(line)
            except Exception:  # noqa: BLE001 - a view of the journal never stops the trader
                log.exception("a journal listener failed on a %s line", kind)
        return line

    def _note_repair(self, torn: bytes, when: str) -> None:
        """Journal that a torn last line was cut (`when`: at open, or found at an append)."""
        if not torn:
            return
        text = torn.decode("utf-8", "replace")
        append_jsonl(
            self.path,
            {
                "time": _utc(self.wall(), "milliseconds"),
                "kind": "repair",
                "found_at": when,
                "torn_bytes": len(torn),
                "fragment": text[:FRAGMENT_CHARS],
            },
        )

    def lines(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every readable line (of `kind`), oldest first; a torn last line is skipped."""
        if not self.path.is_file():
            return []
        out: list[dict[str, Any]] = []
        with open(self.path, encoding="utf-8") as fh:
            for text in fh:
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if isinstance(line, dict) and (kind is None or line.get("kind") == kind):
                    out.append(line)
        return out

    def fill_of(self, trade_id: str | None, client_id: str | None) -> dict[str, Any] | None:
        """The journal's `fill` line of the trade with this id or client id, if it has one."""
        for line in self.lines("fill")[::-1]:  # the newest first
            if (trade_id and line.get("trade_id") == trade_id) or (
                client_id and line.get("client_id") == client_id
            ):
                return line
        return None


class StateFile:
    """`live/state.json`: rewritten atomically, read back at start-up."""

    def __init__(self, path: Path, wall: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.wall = wall

    def read(self) -> LiveState | None:
        """The last state written, or None when there is none (or it is unreadable).

        A state of a schema version this micro does not read raises SchemaError (a user error:
        the trader refuses to start rather than forget a position).
        """
        state = read_json(self.path)
        if not isinstance(state, dict):
            return None
        return LiveState.from_dict(state)

    def write(self, state: LiveState | Mapping[str, Any]) -> None:
        """Rewrite the file with `state` (a record, or its fields), stamped with the time."""
        record = state if isinstance(state, LiveState) else LiveState.from_dict(state)
        written_at = _utc(self.wall(), "seconds")
        write_json(self.path, dataclasses.replace(record, written_at=written_at).to_dict())


def _utc(seconds: float, timespec: str) -> str:
    """ISO 8601 UTC of unix `seconds`."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec=timespec)
