"""OANDA's pricing stream in a background thread: the latest quote, dead-stream detection, backoff.

`GET {stream_url}/v3/accounts/{id}/pricing/stream?instruments=...` answers newline-delimited
JSON: PRICE lines (`{"type": "PRICE", "instrument", "time", "bids": [{"price"}], "asks": [...],
"tradeable", "status"}`) whenever the price changes, and a HEARTBEAT (`{"type": "HEARTBEAT",
"time"}`) every 5 s. The thread keeps the latest `Quote`. No line at all (heartbeat included)
for `stream_timeout_seconds` means a dead stream (the socket read times out); a dead, dropped
or refused stream is reconnected after a delay that doubles on each failed attempt, from
`stream_backoff_seconds` up to `stream_max_backoff_seconds` (429 Retry-After honoured). The
delay resets once a connection has stayed alive for `stream_timeout_seconds`.

The bar loop never waits on the thread: `fresh()` hands back the latest quote only while the
stream is connected and spoke within the timeout, else None (the broker then asks REST).
The token lives only in this session's Authorization header: never logged, never in `status()`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import requests

from micro.config import OandaConfig
from micro.live.broker import Quote

log = logging.getLogger("micro.live")

StreamState = Literal["stopped", "connecting", "connected", "reconnecting"]
MAX_RETRY_AFTER_SECONDS = 300.0


def parse_price(line: dict[str, Any], parse_time: Callable[[str], float]) -> Quote:
    """A v20 PRICE object as a Quote; missing sides are NaN (a NaN price never trades)."""
    bids, asks = line.get("bids") or [], line.get("asks") or []
    bid = float(bids[0]["price"]) if bids else float("nan")
    ask = float(asks[0]["price"]) if asks else float("nan")
    tradeable = bool(line.get("tradeable", line.get("status") == "tradeable"))
    return Quote(bid=bid, ask=ask, time=parse_time(str(line["time"])), tradeable=tradeable)


class PriceStream:
    """One instrument's pricing stream, read by a daemon thread that reconnects on its own."""

    def __init__(
        self,
        stream_url: str,
        token: str,
        account: str,
        instrument: str,
        config: OandaConfig,
        parse_time: Callable[[str], float],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = f"{stream_url.rstrip('/')}/v3/accounts/{account}/pricing/stream"
        self.instrument = instrument
        self.connect_timeout = config.timeout_seconds  # s: to connect and get the headers
        self.silence_limit = config.stream_timeout_seconds  # s without a line: dead stream
        self.backoff_seconds = config.stream_backoff_seconds
        self.max_backoff_seconds = config.stream_max_backoff_seconds
        self._parse_time = parse_time
        self._monotonic = monotonic
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._session.headers["Accept-Datetime-Format"] = "RFC3339"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first_attempt = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: requests.Response | None = None
        self._quote: Quote | None = None
        self._last_line: float | None = None  # monotonic s of the last line of any type
        self._state: StreamState = "stopped"
        self._lines = 0  # lines read on the current connection
        self.reconnects = 0  # connection attempts after the first
        self.delays: list[float] = []  # every reconnect delay waited, s (capped doubling)
        self.last_error: str | None = None

    def __repr__(self) -> str:  # never shows the token
        return f"PriceStream({self.url!r}, {self.instrument}, {self.state})"

    # ------------------------------------------------------------ what the bar loop reads

    @property
    def state(self) -> StreamState:
        with self._lock:
            return self._state

    def fresh(self) -> Quote | None:
        """The latest quote while the stream is connected and alive, else None (never waits)."""
        with self._lock:
            if self._state != "connected" or self._quote is None or self._last_line is None:
                return None
            if self._monotonic() - self._last_line > self.silence_limit:
                return None
            return self._quote

    def status(self) -> dict[str, Any]:
        """The connection state for live/state.json and the journal (no secret in it)."""
        with self._lock:
            silent = None if self._last_line is None else self._monotonic() - self._last_line
            return {
                "state": self._state,
                "reconnects": self.reconnects,
                "seconds_since_line": None if silent is None else round(silent, 3),
                "last_error": self.last_error,
            }

    # ------------------------------------------------------------ lifecycle

    def start(self, wait_seconds: float | None = None) -> None:
        """Start the reader thread; wait up to `wait_seconds` for its first attempt to settle."""
        if self._thread is not None:
            return
        self._stop.clear()
        with self._lock:
            self._state = "connecting"
        self._thread = threading.Thread(target=self._run, name="oanda-price-stream", daemon=True)
        self._thread.start()
        if wait_seconds:
            self._first_attempt.wait(wait_seconds)

    def stop(self, join_seconds: float = 2.0) -> None:
        """Stop the thread: close the connection and wait a little for it to end."""
        self._stop.set()
        self._abort_response()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(join_seconds)
        with self._lock:
            self._state = "stopped"
        self._session.close()

    # ------------------------------------------------------------ the reader thread

    def _run(self) -> None:
        failures = 0  # consecutive failed connections: the backoff exponent
        while not self._stop.is_set():
            retry_after = None
            began = self._monotonic()
            self._lines = 0
            try:
                self._read_once()
                problem = "the stream ended"
            except _RetryLater as exc:
                problem, retry_after = str(exc), exc.seconds
            except requests.RequestException as exc:
                problem = _describe(exc)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                problem = f"unreadable stream line ({type(exc).__name__})"
            except Exception as exc:  # the thread must outlive any surprise: reconnect
                log.exception("OANDA price stream: unexpected failure")
                problem = f"unexpected {type(exc).__name__}"
            finally:
                with self._lock:
                    self._quote = None  # a quote never outlives its connection
                self._first_attempt.set()
                self._close_response()
            if self._stop.is_set():
                break
            healthy = self._lines > 0 and self._monotonic() - began >= self.silence_limit
            failures = 1 if healthy else failures + 1
            delay = min(self.backoff_seconds * 2 ** (failures - 1), self.max_backoff_seconds)
            if retry_after is not None:
                delay = max(delay, retry_after)
            with self._lock:
                self._state = "reconnecting"
                self.last_error = problem
                self.delays.append(delay)
            log.warning("OANDA price stream: %s; reconnecting in %.2f s", problem, delay)
            if self._stop.wait(delay):
                break
            with self._lock:
                self.reconnects += 1
        with self._lock:
            self._state = "stopped"

    def _read_once(self) -> None:
        """One connection, read line by line until it fails, ends or the stream is stopped."""
        response = self._session.get(
            self.url,
            params={"instruments": self.instrument},
            stream=True,
            timeout=(self.connect_timeout, self.silence_limit),
        )
        self._response = response
        if response.status_code != 200:
            wait = _retry_after(response.headers.get("Retry-After"))
            problem = f"HTTP {response.status_code} ({_error_message(response)})"
            if wait is not None:
                raise _RetryLater(problem, wait)
            raise requests.HTTPError(problem)
        with self._lock:
            self._state = "connected"
            self._quote = None  # until this connection's first PRICE: REST
            self._last_line = self._monotonic()
        self._first_attempt.set()
        # chunk_size None: hand each line over as soon as it arrives (requests' stubs want an int)
        for raw in response.iter_lines(chunk_size=None):  # type: ignore[call-overload]
            if self._stop.is_set():
                return
            if not raw:
                continue
            line = json.loads(raw)
            now = self._monotonic()
            self._lines += 1
            if line.get("type") == "PRICE" and line.get("instrument") == self.instrument:
                try:
                    quote: Quote | None = parse_price(line, self._parse_time)
                except (KeyError, ValueError, TypeError, IndexError):
                    quote = None  # an unreadable price: forget the old one, REST takes over
                    log.warning("OANDA price stream: unreadable PRICE line skipped")
                with self._lock:
                    self._quote, self._last_line = quote, now
            else:  # HEARTBEAT (or a type we do not use): the connection is alive
                with self._lock:
                    self._last_line = now

    def _abort_response(self) -> None:
        """Shut the socket of the open connection so a blocked read returns now."""
        response = self._response
        if response is None:
            return
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._close_response()

    def _close_response(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            try:
                response.close()
            except OSError:
                pass


class _RetryLater(requests.HTTPError):
    """A 429 (or 503) with Retry-After: wait at least that long before the next attempt."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS) if value else None
    except ValueError:
        return None


def _error_message(response: requests.Response) -> str:
    """OANDA's errorMessage of a refused stream request (never the request's headers)."""
    try:
        return str(response.json().get("errorMessage", "?"))[:200]
    except ValueError:
        return "?"


def _describe(exc: Exception) -> str:
    """A short, secret-free description of a stream failure."""
    if isinstance(exc, requests.HTTPError) and exc.response is None:
        return str(exc)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection lost mid-stream"
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        cause = exc.args[0] if exc.args else exc
        if "timed out" in str(cause).lower():
            return "no line (heartbeat included) within the stream timeout"
        return f"connection lost ({type(exc).__name__})"
    return type(exc).__name__
