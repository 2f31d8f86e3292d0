"""OandaBroker: the broker protocol over OANDA v20 (oandapyV20 through micro's OandaClient).

Every request has the configured timeout and the client's retries with exponential backoff
(429 Retry-After honoured); `interrupt` (SIGTERM) cuts a retry wait short. Requests keep to
OANDA's limits (100 requests/s, 2 new connections/s: `micro.live.pacing`). Orders are MARKET,
FOK, with `stopLossOnFill` at a price (on the side the stop triggers on, at the instrument's
precision) and `tradeClientExtensions.id`. An order whose outcome is unknown (no answer, or an
answer that cannot be read) is found in the broker's own records (`find_order`): the trade by
its client id (`GET /trades/@{clientID}`), else the account's transactions since the last id
seen before the send (`GET /transactions/sinceid`): its MARKET_ORDER and the ORDER_FILL or
ORDER_CANCEL that followed, or its MARKET_ORDER_REJECT. A 201 holding an
`orderCancelTransaction` is a refusal, not a fill; a 400 is one too, its reason the
`rejectReason` of the answer's `orderRejectTransaction` (CLIENT_TRADE_ID_ALREADY_EXISTS: the id
was used before). Prices come from the pricing stream
(`micro.live.stream`, started by `start_stream`) while it is connected and alive, else from
REST pricing, so a dead stream never leaves a decision without a fresh price. The token stays
inside the sessions' headers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

import pandas as pd
from oandapyV20.endpoints import orders as order_endpoints
from oandapyV20.endpoints import pricing as pricing_endpoints
from oandapyV20.endpoints import trades as trade_endpoints
from oandapyV20.endpoints import transactions as transaction_endpoints

from micro.config import Config
from micro.data.oanda_client import MAX_CANDLES_PER_REQUEST, OandaClient, OandaError
from micro.instruments import instrument as instrument_facts
from micro.live.broker import (
    Account,
    BrokerError,
    BrokerInterrupted,
    BrokerTrade,
    Candle,
    CloseResult,
    OrderOutcomeUnknown,
    OrderResult,
    OrderTrace,
    Quote,
)
from micro.live.pacing import (
    OANDA_CONNECTIONS_PER_SECOND,
    OANDA_REQUESTS_PER_SECOND,
    OANDA_WINDOW_SECONDS,
    PacedAdapter,
    Pacer,
)
from micro.live.stream import PriceStream, parse_price

log = logging.getLogger("micro.live")

POLL_COUNT = 500  # candles asked for per poll (the clock rarely needs more than one)
TRANSACTION_PAGES = 100  # most pages of transactions read in one search of the records
T = TypeVar("T")
UNREADABLE = (KeyError, ValueError, TypeError, IndexError, AttributeError)  # a malformed answer


def parse_time(text: str) -> float:
    """An OANDA time (RFC3339 or UNIX seconds) as float seconds since the epoch, UTC."""
    try:
        return float(text)
    except ValueError:
        stamp = pd.Timestamp(text)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return float(stamp.value / 1e9)


class OandaBroker:
    """OANDA v20 behind the broker protocol, for `config.data.instrument`."""

    name = "oanda"

    def __init__(
        self, config: Config, token: str, account: str, client: OandaClient | None = None
    ) -> None:
        self.instrument = config.data.instrument
        facts = instrument_facts(self.instrument)
        self.pip = facts.pip
        self.precision = facts.precision
        self.account_id = account
        self._interrupted = threading.Event()
        self.client = client or OandaClient(config.live.oanda, token, sleep=self._retry_wait)
        self.requests = Pacer(OANDA_REQUESTS_PER_SECOND, OANDA_WINDOW_SECONDS, wait=self._wait)
        self.connections = Pacer(
            OANDA_CONNECTIONS_PER_SECOND, OANDA_WINDOW_SECONDS, wait=self._wait
        )
        adapter = PacedAdapter(self.requests, self.connections)
        for prefix in ("http://", "https://"):
            _session(self.client).mount(prefix, adapter)
        self.order_settle_seconds = 2.0 * config.live.oanda.timeout_seconds
        self.last_transaction_id: str | None = None
        self.connect_seconds = config.live.oanda.timeout_seconds
        self.stream: PriceStream | None = None
        if config.live.oanda.price_stream:
            self.stream = PriceStream(
                self.client.stream_url,
                token,
                account,
                self.instrument,
                config.live.oanda,
                parse_time,
            )
        self.quote_source: str | None = "rest"  # where the last quote() came from

    def __repr__(self) -> str:  # never shows the token
        return f"OandaBroker({self.instrument}, {self.client!r})"

    def interrupt(self) -> None:
        """Cut retry and pacing waits short from now on (the trader is stopping)."""
        self._interrupted.set()

    def _wait(self, seconds: float) -> None:
        if self._interrupted.wait(seconds):
            raise BrokerInterrupted("OANDA request given up: the trader is stopping")

    def _retry_wait(self, seconds: float) -> None:
        self._wait(seconds)

    def finished(self) -> bool:
        return False

    # ------------------------------------------------------------ candles and prices

    def history(self, count: int) -> list[Candle]:
        frame = self._call(
            lambda: self.client.candles(
                self.instrument, count=min(count + 1, MAX_CANDLES_PER_REQUEST)
            )
        )
        return _complete(frame)[-count:]

    def candles_since(self, ts: int) -> list[Candle]:
        start = pd.Timestamp(int(ts), unit="s")
        frame = self._call(
            lambda: self.client.candles(self.instrument, start=start, count=POLL_COUNT)
        )
        return [c for c in _complete(frame) if c.ts > ts]

    def start(self) -> None:
        """The trader's start: open the pricing stream when the config asks for one."""
        self.start_stream()

    def start_stream(self) -> None:
        """Open the pricing stream (waits at most the request timeout for its first answer)."""
        if self.stream is not None:
            self.stream.start(wait_seconds=self.connect_seconds)

    def connection(self) -> dict[str, object] | None:
        """The pricing stream's state for live/state.json and the journal (None: REST only)."""
        return self.stream.status() if self.stream is not None else None

    def quote(self) -> Quote:
        """The stream's latest quote while it is alive, else REST pricing (never waits on it)."""
        latest = self.stream.fresh() if self.stream is not None else None
        if latest is not None:
            self.quote_source = "stream"
            return latest
        self.quote_source = "rest"
        return self._rest_quote()

    def _rest_quote(self) -> Quote:
        endpoint = pricing_endpoints.PricingInfo(
            accountID=self.account_id, params={"instruments": self.instrument}
        )
        answer = self._call(lambda: self.client.request(endpoint))
        prices = [p for p in answer.get("prices", []) if p.get("instrument") == self.instrument]
        if not prices:
            raise BrokerError(f"OANDA pricing has no price for {self.instrument}")
        try:
            return parse_price(prices[0], parse_time)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise BrokerError(f"OANDA pricing answer unreadable ({exc!r})") from None

    # ------------------------------------------------------------ account and trades

    def account(self) -> Account:
        summary = self._call(lambda: self.client.account_summary(self.account_id))
        return _read(
            "account summary",
            lambda: Account(float(summary["balance"]), float(summary["NAV"]), summary["currency"]),
        )

    def open_trades(self) -> list[BrokerTrade]:
        endpoint = trade_endpoints.OpenTrades(accountID=self.account_id)
        answer = self._request(endpoint)
        return _read(
            "open trades",
            lambda: [
                _trade(t)
                for t in answer.get("trades", [])
                if t.get("instrument") == self.instrument
            ],
        )

    def trade_by_client_id(self, client_id: str) -> BrokerTrade | None:
        return self.trade_details(f"@{client_id}")

    def trade_details(self, trade_id: str) -> BrokerTrade | None:
        """GET /trades/{id} (or `@clientID`); None on 404."""
        endpoint = trade_endpoints.TradeDetails(accountID=self.account_id, tradeID=trade_id)
        try:
            answer = self._request(endpoint)
        except BrokerError as exc:
            if exc.status == 404:
                return None
            raise
        return _read("trade details", lambda: _trade(answer["trade"]))

    def find_order(self, client_id: str, since_id: str | None) -> OrderTrace:
        """The trade by its client id, else the transactions after `since_id`."""
        trade = self.trade_by_client_id(client_id)
        if trade is not None:
            return OrderTrace("filled", trade)
        if since_id is None:
            return OrderTrace("not_seen")
        order_ids: set[str] = set()
        for item in self._transactions_since(since_id):
            kind = item.get("type")
            ours = (item.get("tradeClientExtensions") or {}).get("id") == client_id
            if kind == "MARKET_ORDER" and ours:
                order_ids.add(str(item.get("id")))
            elif kind == "MARKET_ORDER_REJECT" and ours:
                return OrderTrace("cancelled", reason=str(item.get("rejectReason") or "REJECTED"))
            elif kind == "ORDER_CANCEL" and str(item.get("orderID")) in order_ids:
                return OrderTrace("cancelled", reason=str(item.get("reason") or "CANCELLED"))
            elif kind == "ORDER_FILL" and str(item.get("orderID")) in order_ids:
                opened = item.get("tradeOpened") or {}
                found = self.trade_details(str(opened.get("tradeID")))
                if found is not None:
                    return OrderTrace("filled", found)
        return OrderTrace("not_seen")

    def _transactions_since(self, since_id: str) -> list[dict[str, Any]]:
        """Every transaction after `since_id`, oldest first (page by page)."""
        found: list[dict[str, Any]] = []
        cursor = since_id
        for _ in range(TRANSACTION_PAGES):
            endpoint = transaction_endpoints.TransactionsSinceID(
                accountID=self.account_id, params={"id": cursor}
            )
            answer = self._request(endpoint)
            page = _read("transactions", partial(_transactions_of, answer))
            if not page:
                break
            found += page
            cursor = str(page[-1].get("id"))
            if cursor == str(answer.get("lastTransactionID")):
                break
        return found

    def market_order(self, side: int, units: int, stop_price: float, client_id: str) -> OrderResult:
        """MARKET FOK with stopLossOnFill at `stop_price` and tradeClientExtensions.id.

        An answer this broker cannot read is an unknown outcome, never a crash mid-order.
        """
        if side not in (-1, 1) or units <= 0:
            raise ValueError(f"bad order: side {side}, units {units}")
        body = {
            "order": {
                "type": "MARKET",
                "instrument": self.instrument,
                "units": str(side * int(units)),
                "timeInForce": "FOK",
                "positionFill": "DEFAULT",
                "stopLossOnFill": {"price": self._price(stop_price), "timeInForce": "GTC"},
                "tradeClientExtensions": {"id": client_id, "tag": "micro"},
            }
        }
        endpoint = order_endpoints.OrderCreate(accountID=self.account_id, data=body)
        try:
            answer = self.client.request(endpoint)
        except OandaError as exc:
            if exc.outcome_unknown:
                raise OrderOutcomeUnknown(client_id, str(exc)) from None
            if exc.status is not None and 400 <= exc.status < 500:
                self._saw(exc.body)
                return OrderResult(client_id, False, None, _reject_reason(exc.body) or str(exc))
            raise BrokerError(str(exc)) from None
        try:
            return self._order_result(answer, side, client_id)
        except UNREADABLE as exc:
            raise OrderOutcomeUnknown(
                client_id, f"OANDA's order answer could not be read ({exc!r})"
            ) from None

    def _order_result(self, answer: Any, side: int, client_id: str) -> OrderResult:
        """A fill, a refusal (201 with a cancel, or a reject), or KeyError if neither."""
        self._saw(answer)
        refusal = answer.get("orderCancelTransaction") or answer.get("orderRejectTransaction")
        if refusal is not None:
            reason = refusal.get("reason") or refusal.get("rejectReason") or "UNKNOWN"
            return OrderResult(client_id, False, None, str(reason))
        fill = answer["orderFillTransaction"]
        opened = fill["tradeOpened"]
        trade = BrokerTrade(
            trade_id=str(opened["tradeID"]),
            client_id=client_id,
            side=side,
            units=abs(int(float(opened["units"]))),
            price=float(opened["price"]),
            open_time=parse_time(fill["time"]),
            state="OPEN",
        )
        return OrderResult(client_id, True, trade)

    def close_trade(self, trade_id: str) -> CloseResult:
        endpoint = trade_endpoints.TradeClose(
            accountID=self.account_id, tradeID=trade_id, data={"units": "ALL"}
        )
        answer = self._request(endpoint)
        fill = answer.get("orderFillTransaction") if isinstance(answer, dict) else None
        if fill is None:
            cancel = (answer or {}).get("orderCancelTransaction") or {}
            raise BrokerError(f"OANDA did not close trade {trade_id} ({cancel.get('reason')})")
        return _read("trade close", lambda: _close_result(trade_id, fill))

    def close(self) -> None:
        if self.stream is not None:
            self.stream.stop()
        self.client.close()

    def _price(self, value: float) -> str:
        return f"{value:.{self.precision}f}"

    def _request(self, endpoint: Any) -> Any:
        """Send `endpoint` through the client; remember the account's newest transaction id."""
        answer = self._call(lambda: self.client.request(endpoint))
        self._saw(answer)
        return answer

    def _saw(self, answer: Any) -> None:
        latest = answer.get("lastTransactionID") if isinstance(answer, dict) else None
        if latest is not None and (
            self.last_transaction_id is None or _id(latest) > _id(self.last_transaction_id)
        ):
            self.last_transaction_id = str(latest)

    def _call(self, request: Callable[[], Any]) -> Any:
        """Run `request`; an OANDA failure (after the client's retries) becomes a BrokerError."""
        try:
            return request()
        except OandaError as exc:
            raise BrokerError(str(exc), status=exc.status) from None


def _complete(frame: pd.DataFrame) -> list[Candle]:
    """Completed candles of a client frame, oldest first."""
    if frame.empty:
        return []
    done = frame[frame["complete"].astype(bool)] if "complete" in frame else frame
    ts = (pd.DatetimeIndex(done["ts"]) - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    rows = zip(
        ts, done["open"], done["high"], done["low"], done["close"], done["volume"], strict=True
    )
    return [
        Candle(int(t), float(o), float(h), float(lo), float(c), float(v))
        for t, o, h, lo, c, v in rows
    ]


def _trade(data: dict[str, Any]) -> BrokerTrade:
    """A v20 Trade object as a BrokerTrade (KeyError/ValueError when it is not one)."""
    initial = float(data.get("initialUnits", data.get("currentUnits", 0)))
    stop = data.get("stopLossOrder") or {}
    state: Literal["OPEN", "CLOSED"] = "OPEN" if data.get("state", "OPEN") == "OPEN" else "CLOSED"
    close_reason = None
    if state == "CLOSED":
        close_reason = "stop_loss" if stop.get("state") == "FILLED" else "external"
    return BrokerTrade(
        trade_id=str(data["id"]),
        client_id=(data.get("clientExtensions") or {}).get("id"),
        side=1 if initial > 0 else -1,
        units=abs(int(initial)),
        price=float(data["price"]),
        open_time=parse_time(data["openTime"]),
        state=state,
        stop_price=float(stop["price"]) if "price" in stop else None,
        close_price=float(data["averageClosePrice"]) if data.get("averageClosePrice") else None,
        close_time=parse_time(data["closeTime"]) if data.get("closeTime") else None,
        close_reason=close_reason,
        realized_pl=_number(data.get("realizedPL")),
        financing=_number(data.get("financing")),
        current_units=abs(int(float(data["currentUnits"]))) if "currentUnits" in data else None,
    )


def _close_result(trade_id: str, fill: dict[str, Any]) -> CloseResult:
    """The exit of `trade_id` in a closing ORDER_FILL: its price, realised P&L and financing."""
    closed = [c for c in fill.get("tradesClosed") or [] if str(c.get("tradeID")) == trade_id]
    part = closed[0] if closed else {}
    return CloseResult(
        trade_id,
        float(part["price"]) if "price" in part else float(fill["price"]),
        parse_time(fill["time"]),
        realized_pl=_number(part.get("realizedPL", fill.get("pl"))),
        financing=_number(part.get("financing", fill.get("financing"))),
    )


def _reject_reason(body: Any) -> str | None:
    """The reason of a refused order (a 4xx): its `orderRejectTransaction`'s `rejectReason`
    (e.g. CLIENT_TRADE_ID_ALREADY_EXISTS), else the answer's `errorCode`; None if neither."""
    if not isinstance(body, dict):
        return None
    reject = body.get("orderRejectTransaction")
    reason = reject.get("rejectReason") if isinstance(reject, dict) else None
    reason = reason or body.get("errorCode")
    return str(reason) if reason else None


def _number(text: Any) -> float | None:
    return None if text is None else float(text)


def _id(transaction_id: Any) -> int:
    try:
        return int(str(transaction_id))
    except ValueError:
        return -1


def _transactions_of(answer: Any) -> list[dict[str, Any]]:
    return [dict(t) for t in answer["transactions"]]


def _read(what: str, parse: Callable[[], T]) -> T:
    """`parse()` of an answer; one OANDA cannot have meant (a field missing, a foreign value)
    becomes a BrokerError like an unreachable broker, never a traceback."""
    try:
        return parse()
    except UNREADABLE as exc:
        raise BrokerError(f"OANDA {what} answer could not be read ({exc!r})") from None


def _session(client: OandaClient) -> Any:
    """The requests session inside the client (oandapyV20's), where the pacing adapter goes."""
    return client._api.client
