"""HTTP plumbing of the fake OANDA v20 server: a threading server and its request handler.

The handler checks the Bearer token, applies injected faults (status, Retry-After, delay, a
dropped connection), dispatches to the fake's route table and sends JSON or a chunked
newline-delimited stream, recording every request. The API behaviour lives in oanda_v20.py
(accounts, candles) and oanda_trading.py (pricing, orders, trades, the stream).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.oanda_v20 import FORBIDDEN, UNAUTHORIZED, Call, FakeOanda, RecordedRequest, Reply


class DropConnection(Exception):
    """Raised by a route: the request vanishes (the connection closes with no answer)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOanda

    def process_request(self, request: Any, client_address: Any) -> None:
        times = getattr(self.fake, "connection_times", None)
        if times is not None:
            times.append(time.monotonic())
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | OSError):
            return  # the client went away (timeouts, dropped connections): normal here
        if error is not None:
            self.fake.errors.append(error)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        fake._record(RecordedRequest(self.command, url.path, query, body, headers))
        times = getattr(fake, "request_times", None)
        if times is not None:
            times.append(time.monotonic())
        fault = fake._take_fault(url.path)
        if fault is not None and fault.delay:
            if fake._stopping.wait(fault.delay):
                return
        if fault is not None and fault.status is not None:
            reply = Reply(fault.body or _fault_body(fault.status), fault.status)
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = f"{fault.retry_after:g}"
        elif self.headers.get("Authorization") != f"Bearer {fake.token}":
            reply = Reply({"errorMessage": UNAUTHORIZED}, 401)
        else:
            call = Call(self.command, url.path, query, body, headers, {})
            try:
                reply = fake._dispatch(call)
            except DropConnection:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            except Exception as exc:  # a bug in a route: answer 500 and keep it for the test
                fake.errors.append(exc)
                reply = Reply({"errorMessage": f"fake server error: {exc!r}"}, 500)
            if fake.schema_check is not None:  # OANDA's OpenAPI description (v20_schema.py)
                fake.schema_check(self.command, url.path, reply)
        self._send(reply, drop=fault is not None and fault.drop)

    def _send(self, reply: Reply, drop: bool) -> None:
        fake = self.server.fake
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("RequestID", str(next(fake._request_ids)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if reply.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._send_stream(reply.stream)
            return
        payload = json.dumps(reply.body).encode()
        self.send_header("Content-Length", str(len(payload)))
        if drop:
            self.send_header("Connection", "close")
        self.end_headers()
        if drop:
            self.wfile.write(payload[: max(1, len(payload) // 2)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)

    def _send_stream(self, items: Iterable[Any]) -> None:
        fake = self.server.fake
        iterator: Iterator[Any] = iter(items)
        try:
            for item in iterator:
                if fake._stopping.is_set():
                    break
                line = (json.dumps(item) + "\n").encode()
                self.wfile.write(f"{len(line):X}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            self.close_connection = True


def _fault_body(status: int) -> dict[str, str]:
    messages = {
        401: UNAUTHORIZED,
        403: FORBIDDEN,
        429: "Too many requests",
        500: "Internal server error",
        502: "Bad gateway",
        503: "Service unavailable",
        504: "Gateway timeout",
    }
    return {"errorMessage": messages.get(status, f"Injected fault {status}")}
