"""A webhook on 127.0.0.1 that records what apprise's `json://` target posts to it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class AlertSink:
    """Received alerts (apprise's JSON body: version, title, message, type), oldest first."""

    def __init__(self, delay_seconds: float = 0.0, status: int = 200) -> None:
        self.delay_seconds = delay_seconds
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                time.sleep(sink.delay_seconds)
                with sink._lock:
                    sink.raw.append(self.path.encode() + b" " + body)
                    sink.received.append(json.loads(body))
                self.send_response(sink.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        with self._lock:
            return [str(x.get("title")) for x in self.received]

    def messages(self) -> list[str]:
        with self._lock:
            return [str(x.get("message")) for x in self.received]


@contextmanager
def alert_sink(delay_seconds: float = 0.0, status: int = 200) -> Iterator[AlertSink]:
    """A running sink; stopped on exit."""
    sink = AlertSink(delay_seconds, status)
    thread = threading.Thread(target=sink.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.server.shutdown()
        sink.server.server_close()
