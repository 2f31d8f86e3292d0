"""Alerts that reach the operator away from the terminal, through apprise; never in the way.

The targets are apprise URLs (`tgram://…`, `slack://…`, `discord://…`, `mailto://…`,
`json://host/path` for a plain webhook) in the environment variable MICRO_ALERT_URLS, separated
by spaces or commas, and nowhere else: a URL holds its channel's token, so it is never written to
a file or a log (each is registered with `micro.redaction`; apprise's own logger, which may echo
parts of a URL, is silenced, and a target is named only by its number and scheme). Without the
variable every `send` is a no-op.

Each service holds one `Alerter` (`[alerts]` in the config). `send` decides at once and never
blocks: an alert with the key of one sent within `dedupe_seconds` is dropped; past
`max_per_hour` in any rolling hour alerts are counted and the next one sent says how many were
held back; the rest go on a bounded queue. A daemon thread delivers them one at a time, each
target with `timeout_seconds` to connect and to answer, so a failing or slow channel costs that
thread only, never the trading loop. `close` gives the queue a few seconds to drain at exit.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from micro.config import AlertsConfig
from micro.errors import ConfigError
from micro.redaction import redact_text, register_secret

log = logging.getLogger("micro.alerts")

URLS_ENV = "MICRO_ALERT_URLS"
QUEUE_SIZE = 256  # alerts waiting for the delivery thread; more are dropped and counted
HOUR_SECONDS = 3600.0
CLOSE_SECONDS = 5.0  # how long `close` waits for the queue to drain

Level = Literal["info", "success", "warning", "failure"]


@dataclass(frozen=True)
class Alert:
    """One message: `key` names what it is about (the dedupe unit), `level` its colour."""

    kind: str  # "promotion", "halt", "kill", "mismatch", "disconnect", "daily_summary", …
    title: str
    body: str
    key: str
    level: Level = "warning"


def alert_urls(environ: Mapping[str, str] | None = None) -> list[str]:
    """The target URLs in MICRO_ALERT_URLS (spaces or commas between them)."""
    text = (os.environ if environ is None else environ).get(URLS_ENV, "")
    return [url for url in re.split(r"[\s,]+", text) if url]


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "?"


def _targets(urls: Sequence[str], timeout_seconds: float) -> list[tuple[str, Any]]:
    """(scheme, apprise plugin) per URL; ConfigError naming a URL apprise cannot read."""
    import apprise

    quiet = logging.getLogger("apprise")  # its messages may quote a URL's parts
    quiet.propagate = False
    quiet.setLevel(logging.CRITICAL + 1)
    targets = []
    for number, url in enumerate(urls, 1):
        register_secret(url)
        if "://" in url:
            register_secret(url.split("://", 1)[1])
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise ConfigError(
                f"{URLS_ENV}: target {number} ({_scheme(url)}://…) is not a URL apprise can "
                "send to; fix it (see apprise's list of services) or remove it"
            )
        plugin.socket_connect_timeout = timeout_seconds
        plugin.socket_read_timeout = timeout_seconds
        targets.append((_scheme(url), plugin))
    return targets


class Alerter:
    """Deduplicated, rate-limited alerts of one service, delivered by a background thread."""

    def __init__(
        self,
        config: AlertsConfig,
        service: str,
        urls: Sequence[str] = (),
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.service = service
        self._targets = _targets(urls, config.timeout_seconds)
        self._monotonic = monotonic
        self._wall = wall
        self._last_by_key: dict[str, float] = {}  # key -> monotonic s of its last send
        self._sent_times: deque[float] = deque()  # monotonic s of sends in the last hour
        self._held_back = 0  # rate-limited since the last send
        self._queue: queue.Queue[Alert | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = self.deduplicated = self.rate_limited = self.dropped = 0
        self.delivered = self.failed = 0  # per target and alert, counted by the thread

    @classmethod
    def from_env(
        cls, config: AlertsConfig, service: str, environ: Mapping[str, str] | None = None
    ) -> Alerter:
        """The service's alerter with the targets in MICRO_ALERT_URLS (none: silent)."""
        return cls(config, service, alert_urls(environ))

    @property
    def enabled(self) -> bool:
        return bool(self._targets)

    def send(
        self, kind: str, title: str, body: str, key: str | None = None, level: Level = "warning"
    ) -> bool:
        """Queue an alert unless it is a duplicate or over the rate limit; never blocks."""
        if not self._targets:
            return False
        key = key or kind
        with self._lock:
            now = self._monotonic()
            last = self._last_by_key.get(key)
            if last is not None and now - last < self.config.dedupe_seconds:
                self.deduplicated += 1
                return False
            while self._sent_times and now - self._sent_times[0] >= HOUR_SECONDS:
                self._sent_times.popleft()
            if len(self._sent_times) >= self.config.max_per_hour:
                self.rate_limited += 1
                self._held_back += 1
                return False
            if self._held_back:
                body += (
                    f"\n({self._held_back} earlier alert(s) held back by the rate limit of "
                    f"{self.config.max_per_hour} an hour)"
                )
                self._held_back = 0
            self._last_by_key[key] = now
            self._sent_times.append(now)
            stamp = dt.datetime.fromtimestamp(self._wall(), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            alert = Alert(
                kind,
                redact_text(f"micro {self.service}: {title}"),
                redact_text(f"{body}\n{stamp} UTC"),
                key,
                level,
            )
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                self.dropped += 1
                log.warning("alert queue full: %s dropped", kind)
                return False
            self.sent += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._deliver_all, name=f"micro-alerts-{self.service}", daemon=True
                )
                self._thread.start()
        return True

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Let queued alerts go out for up to `timeout` seconds (the thread dies with us)."""
        thread = self._thread
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    def _deliver_all(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            self._deliver(alert)

    def _deliver(self, alert: Alert) -> None:
        import apprise

        for number, (scheme, plugin) in enumerate(self._targets, 1):
            try:
                ok = bool(
                    plugin.notify(
                        body=alert.body,
                        title=alert.title,
                        notify_type=apprise.NotifyType(alert.level),
                    )
                )
            except Exception as exc:  # noqa: BLE001 - a channel's failure is never ours to raise
                ok = False
                log.warning(
                    "alert %s: target %d (%s) raised %s", alert.kind, number, scheme,
                    type(exc).__name__,
                )  # fmt: skip
            if ok:
                self.delivered += 1
                log.info("alert %s sent to target %d (%s)", alert.kind, number, scheme)
            else:
                self.failed += 1
                log.warning("alert %s: target %d (%s) did not take it", alert.kind, number, scheme)
