"""OANDA's request limits, kept on the client side: requests per second and new connections.

OANDA allows at most 100 requests per second on a connection and 2 new connections per second
(developer.oanda.com, "Best Practices"). `Pacer` holds a sliding window of the last events, so
no window of `per` seconds ever holds more than `rate` of them; `PacedAdapter` is a requests
transport adapter whose connections pass every new connection and then every request (retries
included) through one pacer each, right before it goes on the wire: a request that waited for
its connection is counted when it leaves, not before. One request pacer serves every connection
(stricter than OANDA's per-connection limit). The wait is the broker's own, which a stopping
trader cuts short.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

OANDA_REQUESTS_PER_SECOND = 100  # on one connection
OANDA_CONNECTIONS_PER_SECOND = 2  # new connections
OANDA_WINDOW_SECONDS = 1.1  # each limit is kept over this window: 0.1 s for network jitter


class Pacer:
    """At most `rate` events in any `per` seconds: `acquire` waits until the next one may go."""

    def __init__(
        self,
        rate: int,
        per: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 1 or per <= 0:
            raise ValueError(f"a pacer needs rate >= 1 and per > 0, got {rate}, {per}")
        self.rate = rate
        self.per = float(per)
        self._monotonic = monotonic
        self._wait = wait
        self._times: deque[float] = deque(maxlen=rate)  # monotonic s of the last `rate` events
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # total time held back

    def acquire(self) -> None:
        """Wait until one more event keeps every window within the rate, then count it."""
        with self._lock:
            while len(self._times) == self.rate:
                delay = self._times[0] + self.per - self._monotonic()
                if delay <= 0:
                    break
                self.waited_seconds += delay
                self._wait(delay)
            self._times.append(self._monotonic())


class PacedAdapter(HTTPAdapter):
    """A transport adapter whose requests and new connections go through two pacers."""

    def __init__(self, requests: Pacer, connections: Pacer, **kwargs: Any) -> None:
        self.request_pacer = requests
        self.connection_pacer = connections
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        connections, requests = self.connection_pacer, self.request_pacer

        class PacedHTTPConnection(HTTPConnection):
            def connect(self) -> None:
                connections.acquire()
                super().connect()

            def request(self, *args: Any, **kwargs: Any) -> None:
                if self.sock is None:
                    self.connect()  # a new connection first (paced), then the request
                requests.acquire()
                super().request(*args, **kwargs)

        class PacedHTTPSConnection(HTTPSConnection):
            def connect(self) -> None:
                connections.acquire()
                super().connect()

            def request(self, *args: Any, **kwargs: Any) -> None:
                if self.sock is None:
                    self.connect()
                requests.acquire()
                super().request(*args, **kwargs)

        class PacedHTTPPool(HTTPConnectionPool):
            ConnectionCls = PacedHTTPConnection

        class PacedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = PacedHTTPSConnection

        self.poolmanager.pool_classes_by_scheme = {"http": PacedHTTPPool, "https": PacedHTTPSPool}
