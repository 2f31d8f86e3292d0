"""A fake OANDA v20 REST server on 127.0.0.1 for tests: real HTTP, real JSON shapes, faults.

    with FakeOanda(candles=frame, token="test-token", account="101-001-1234567-001") as fake:
        env = {"OANDA_TOKEN": fake.token, "MICRO_LIVE__OANDA__API_URL": fake.api_url}
        fake.inject(status=503, times=2)           # the next two requests get 503
        fake.inject(status=429, retry_after=1)     # … then 429 with Retry-After: 1
        fake.inject(delay=5, path="/v3/instruments")  # a request that outlives the timeout
        fake.inject(drop=True)                     # close the connection mid-response
        ...
        fake.requests                              # every request: method, path, query, body

Endpoints now: GET /v3/instruments/{instrument}/candles, GET /v3/accounts/{id}/summary,
GET /v3/accounts/{id}/instruments. The live-trader work adds pricing, orders, trades, positions,
transactions and the pricing stream by registering routes (`fake.add_route(method, pattern,
handler)`) that read and change `fake.account` (an `AccountState`); a handler may return a
`Reply` whose `stream` yields objects sent as newline-delimited JSON (chunked), the way
/v3/accounts/{id}/pricing/stream answers with PRICE and HEARTBEAT lines.

Candles come from a DataFrame (columns ts naive UTC, open, high, low, close, volume; for the
instrument `instrument`), a dict of such frames by instrument, or a callable
`candles(instrument, start, end) -> DataFrame` giving the bars in [start, end). The fake's clock
(`now`: a fixed Timestamp, a callable, or None for the real clock) hides future bars and marks
the bar still forming at `now` as `complete: false`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest

from micro.instruments import instrument as instrument_facts

DEFAULT_TOKEN = "test-token"
DEFAULT_ACCOUNT = "101-001-1234567-001"
MAX_COUNT = 5000
ONE_MINUTE = pd.Timedelta(minutes=1)
UNAUTHORIZED = "Insufficient authorization to perform request."
FORBIDDEN = "The provided request was forbidden."

CandleSource = pd.DataFrame | dict[str, pd.DataFrame] | Callable[..., pd.DataFrame] | None
Clock = pd.Timestamp | Callable[[], pd.Timestamp] | None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it (the Authorization header is left out)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Fault:
    """An injected failure for the next `times` requests whose path starts with `path`."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    path: str = ""
    body: Any = None
    times: int = 1
    skip: int = 0
    """Matching requests let through untouched before the fault starts."""


@dataclass
class Reply:
    """What a route answers: a JSON body, or a stream of objects sent as JSON lines."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[Any] | None = None


@dataclass(frozen=True)
class Call:
    """What a route handler receives: the request and its path's named groups."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    groups: dict[str, str]


class ApiError(Exception):
    """Raise in a handler to answer `status` with OANDA's error JSON."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"errorMessage": message, **extra}


@dataclass
class AccountState:
    """The fake account: what summary/instruments report and what order routes will change."""

    id: str = DEFAULT_ACCOUNT
    currency: str = "USD"
    balance: float = 100_000.0
    alias: str = "micro fake"
    margin_rate: float = 0.05
    created_time: str = "2022-01-01T00:00:00.000000000Z"
    last_transaction_id: int = 1
    orders: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: list[dict[str, Any]] = field(default_factory=list)

    def next_transaction_id(self) -> str:
        self.last_transaction_id += 1
        return str(self.last_transaction_id)

    def summary(self) -> dict[str, Any]:
        """The `account` object of GET /v3/accounts/{id}/summary (amounts are strings)."""
        unrealized = sum(float(t.get("unrealizedPL", 0.0)) for t in self.trades)
        nav = self.balance + unrealized
        return {
            "id": self.id,
            "alias": self.alias,
            "currency": self.currency,
            "balance": f"{self.balance:.4f}",
            "NAV": f"{nav:.4f}",
            "unrealizedPL": f"{unrealized:.4f}",
            "pl": "0.0000",
            "resettablePL": "0.0000",
            "financing": "0.0000",
            "commission": "0.0000",
            "marginRate": f"{self.margin_rate:g}",
            "marginUsed": "0.0000",
            "marginAvailable": f"{nav:.4f}",
            "positionValue": "0.0000",
            "withdrawalLimit": f"{nav:.4f}",
            "openTradeCount": len(self.trades),
            "openPositionCount": len(self.positions),
            "pendingOrderCount": len(self.orders),
            "hedgingEnabled": False,
            "createdByUserID": 1234567,
            "createdTime": self.created_time,
            "lastTransactionID": str(self.last_transaction_id),
        }


Handler = Callable[["FakeOanda", Call], "Reply | dict[str, Any]"]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class FakeOanda:
    """A threaded HTTP server speaking a slice of OANDA v20; a context manager."""

    def __init__(
        self,
        candles: CandleSource = None,
        token: str = DEFAULT_TOKEN,
        account: str = DEFAULT_ACCOUNT,
        instrument: str = "GBP_JPY",
        instruments: Iterable[str] = ("GBP_JPY", "EUR_USD", "EUR_JPY", "USD_JPY", "CAD_JPY"),
        now: Clock = None,
        check_schema: bool = True,
    ) -> None:
        self.token = token
        self.account = AccountState(id=account)
        self.instrument = instrument
        self.instruments = sorted(set(instruments) | {instrument})
        self.set_candles(candles)
        self.now = now
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # unexpected handler errors, for assertions
        # OANDA's OpenAPI description checks every answer when ../shared/oanda/v20.json is there
        # (tests/fakes/v20_schema.py); a mismatch lands in schema_violations and in errors
        self.schema_check: Callable[[str, str, Reply], None] | None = None
        self.schema_violations: list[str] = []
        self.routes: list[Route] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._request_ids = iter(range(10**17, 10**18))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_route("GET", r"/v3/instruments/(?P<instrument>[^/]+)/candles", _get_candles)
        self.add_route("GET", r"/v3/accounts/(?P<account>[^/]+)/summary", _get_summary)
        self.add_route("GET", r"/v3/accounts/(?P<account>[^/]+)/instruments", _get_instruments)
        from tests.fakes.oanda_trading import install_trading  # pricing, orders, trades, clock

        install_trading(self)
        if check_schema:
            from tests.fakes.v20_schema import V20Schema

            schema = V20Schema.load()
            if schema is not None:
                schema.watch(self)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeOanda:
        from tests.fakes.oanda_http import _RequestHandler, _Server

        server = _Server(("127.0.0.1", 0), _RequestHandler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-oanda", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOanda:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake OANDA server is not running; use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ clock, candles, routes, faults

    def set_candles(self, candles: CandleSource) -> None:
        """Serve `candles` from now on (a frame for `instrument`, a dict by name, a callable)."""
        from tests.fakes.oanda_candles import Candles  # it imports this module

        self.candle_source = Candles(candles, self.instrument)

    @property
    def now(self) -> pd.Timestamp:
        """The fake's current time (naive UTC)."""
        moment = self._clock() if callable(self._clock) else self._clock
        if moment is None:
            moment = pd.Timestamp.now(tz="UTC")
        moment = pd.Timestamp(moment)
        return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment

    @now.setter
    def now(self, value: Clock) -> None:
        self._clock = value

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer `method` requests whose whole path matches `pattern` with `handler`."""
        self.routes.insert(0, Route(method.upper(), re.compile(pattern), handler))

    def inject(
        self,
        status: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        drop: bool = False,
        path: str = "",
        body: Any = None,
        skip: int = 0,
    ) -> None:
        """Queue a fault for `times` requests under `path`, after `skip` of them pass untouched.

        Faults apply in the order injected; `status` answers with OANDA's error JSON (plus a
        Retry-After header when `retry_after` is given), `delay` holds the answer back for that
        many seconds, `drop` closes the connection halfway through the body.
        """
        if status is None and not delay and not drop:
            raise ValueError("a fault needs a status, a delay or drop=True")
        with self._lock:
            self._faults.append(Fault(status, retry_after, delay, drop, path, body, times, skip))

    def clear_faults(self) -> None:
        """Drop every fault not yet used."""
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.times for f in self._faults)

    def requests_to(self, prefix: str) -> list[RecordedRequest]:
        """Recorded requests whose path starts with `prefix`."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _dispatch(self, call: Call) -> Reply:
        allowed = False
        for route in self.routes:
            match = route.pattern.fullmatch(call.path)
            if match is None:
                continue
            allowed = True
            if route.method != call.method:
                continue
            bound = Call(
                call.method, call.path, call.query, call.body, call.headers, match.groupdict()
            )
            try:
                answer = route.handler(self, bound)
            except ApiError as exc:
                return Reply(exc.body, exc.status)
            return answer if isinstance(answer, Reply) else Reply(answer)
        if allowed:
            return Reply({"errorMessage": "The requested method is not allowed."}, 405)
        return Reply({"errorMessage": "The requested resource could not be found."}, 404)


@pytest.fixture
def fake_oanda() -> Iterator[FakeOanda]:
    """A running FakeOanda (default token and account, no candles until `set_candles`)."""
    with FakeOanda() as fake:
        yield fake
    assert fake.errors == [], fake.errors


# ---------------------------------------------------------------- the routes


def _check_account(fake: FakeOanda, call: Call) -> None:
    if call.groups.get("account") != fake.account.id:
        raise ApiError(403, FORBIDDEN)


def _get_summary(fake: FakeOanda, call: Call) -> dict[str, Any]:
    _check_account(fake, call)
    return {
        "account": fake.account.summary(),
        "lastTransactionID": str(fake.account.last_transaction_id),
    }


def _get_instruments(fake: FakeOanda, call: Call) -> dict[str, Any]:
    _check_account(fake, call)
    wanted = [n for n in call.query.get("instruments", "").split(",") if n]
    names = [n for n in fake.instruments if not wanted or n in wanted]
    return {
        "instruments": [_instrument_json(n, fake.account.margin_rate) for n in names],
        "lastTransactionID": str(fake.account.last_transaction_id),
    }


def _instrument_json(name: str, margin_rate: float) -> dict[str, Any]:
    facts = instrument_facts(name)
    pip_location = int(round(np.log10(facts.pip)))
    return {
        "name": name,
        "type": "CURRENCY",
        "displayName": name.replace("_", "/"),
        "pipLocation": pip_location,
        "displayPrecision": facts.precision,
        "tradeUnitsPrecision": 0,
        "minimumTradeSize": "1",
        "maximumTrailingStopDistance": f"{facts.pip * 10000:.{facts.precision}f}",
        "minimumTrailingStopDistance": f"{facts.pip * 5:.{facts.precision}f}",
        "maximumPositionSize": "0",
        "maximumOrderUnits": "100000000",
        "marginRate": f"{margin_rate:g}",
    }


def _get_candles(fake: FakeOanda, call: Call) -> dict[str, Any]:
    name = call.groups["instrument"]
    if name not in fake.instruments or not fake.candle_source.has(name):
        raise ApiError(400, "Invalid value specified for 'instrument'")
    query = call.query
    granularity = query.get("granularity", "S5")
    if granularity != "M1":
        raise ApiError(400, "Invalid value specified for 'granularity' (the fake serves M1 only)")
    price = query.get("price", "M")
    if not price or set(price) - set("MBA"):
        raise ApiError(400, "Invalid value specified for 'price'")
    count = _int_param(query, "count", 500)
    if not 1 <= count <= MAX_COUNT:
        raise ApiError(400, "Maximum value for 'count' exceeded")
    now = fake.now
    start = _time_param(query, "from", now)
    end = _time_param(query, "to", now)
    include_first = query.get("includeFirst", "true").lower() != "false"
    if start is not None and end is not None and "count" in query:
        raise ApiError(400, "Cannot specify 'count' when both 'from' and 'to' are specified")
    if start is not None and end is not None and end < start:
        raise ApiError(400, "Invalid value specified for 'to'. 'to' is before 'from'")
    frame = fake.candle_source.select(name, start, end, count, include_first, now)
    facts = instrument_facts(name)
    unix = call.headers.get("accept-datetime-format", "RFC3339").upper() == "UNIX"
    return {
        "instrument": name,
        "granularity": "M1",
        "candles": _candles_json(frame, price, facts.precision, facts.pip, now, unix),
    }


def _int_param(query: dict[str, str], key: str, default: int) -> int:
    try:
        return int(query.get(key, default))
    except ValueError:
        raise ApiError(400, f"Invalid value specified for '{key}'") from None


def _time_param(query: dict[str, str], key: str, now: pd.Timestamp) -> pd.Timestamp | None:
    text = query.get(key)
    if text is None:
        return None
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            moment = pd.Timestamp(float(text), unit="s")
        else:
            moment = pd.Timestamp(text)
    except ValueError:
        raise ApiError(400, f"Invalid value specified for '{key}'") from None
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    if moment > now:
        raise ApiError(400, f"Invalid value specified for '{key}'. Time is in the future")
    return moment


def _candles_json(
    frame: pd.DataFrame, price: str, precision: int, pip: float, now: pd.Timestamp, unix: bool
) -> list[dict[str, Any]]:
    """v20 candlestick objects: string prices at the instrument's precision, RFC3339 times."""
    if frame.empty:
        return []
    stamps = pd.DatetimeIndex(frame["ts"])
    if unix:
        seconds = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
        times = [f"{int(s)}.000000000" for s in seconds]
    else:
        times = list(stamps.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"))
    complete = (stamps + ONE_MINUTE <= now).tolist()
    volume = frame["volume"].to_numpy().astype(np.int64).tolist()
    ohlc = frame[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)  # [N, 4]

    def prices(offset: float) -> list[dict[str, str]]:
        text = np.char.mod(f"%.{precision}f", ohlc + offset)
        return [dict(zip("ohlc", row, strict=True)) for row in text.tolist()]

    sides = {
        "mid": prices(0.0) if "M" in price else None,
        "bid": prices(-pip) if "B" in price else None,
        "ask": prices(pip) if "A" in price else None,
    }
    out = []
    for i in range(len(frame)):
        candle: dict[str, Any] = {"complete": complete[i], "volume": volume[i], "time": times[i]}
        for side, values in sides.items():
            if values is not None:
                candle[side] = values[i]
        out.append(candle)
    return out


def heartbeat(now: pd.Timestamp) -> dict[str, str]:
    """A pricing-stream HEARTBEAT line, as OANDA sends every 5 s."""
    return {"type": "HEARTBEAT", "time": now.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")}
