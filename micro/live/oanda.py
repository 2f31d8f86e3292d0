"""OandaBroker: the broker protocol over OANDA v20 (oandapyV20 through micro's OandaClient).

Every request has the configured timeout and the client's retries with exponential backoff
(429 Retry-After honoured). Orders are MARKET, FOK, with `stopLossOnFill` at the configured
distance (a price distance at the instrument's precision: "0.300" for 30 pips on a JPY pair)
and `tradeClientExtensions.id`, so a trade can be found by its client id after an order whose
outcome is unknown (`GET /trades/@{clientID}`). A 201 holding an `orderCancelTransaction` is a
rejection, not a fill. Prices come from the pricing stream (`micro.live.stream`, started by
`start_stream`) while it is connected and alive, else from REST pricing, so a dead stream never
leaves a decision without a fresh price. The token stays inside the sessions' headers.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import pandas as pd
from oandapyV20.endpoints import orders as order_endpoints
from oandapyV20.endpoints import pricing as pricing_endpoints
from oandapyV20.endpoints import trades as trade_endpoints

from micro.config import Config
from micro.data.oanda_client import MAX_CANDLES_PER_REQUEST, OandaClient, OandaError
from micro.instruments import instrument as instrument_facts
from micro.live.broker import (
    Account,
    BrokerError,
    BrokerTrade,
    Candle,
    CloseResult,
    OrderOutcomeUnknown,
    OrderResult,
    Quote,
)
from micro.live.stream import PriceStream, parse_price

log = logging.getLogger("micro.live")

POLL_COUNT = 500  # candles asked for per poll (the clock rarely needs more than one)


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
        self.client = client or OandaClient(config.live.oanda, token)
        self.order_settle_seconds = 2.0 * config.live.oanda.timeout_seconds
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
        return Account(float(summary["balance"]), float(summary["NAV"]), summary["currency"])

    def open_trades(self) -> list[BrokerTrade]:
        endpoint = trade_endpoints.OpenTrades(accountID=self.account_id)
        answer = self._call(lambda: self.client.request(endpoint))
        return [
            _trade(t) for t in answer.get("trades", []) if t.get("instrument") == self.instrument
        ]

    def trade_by_client_id(self, client_id: str) -> BrokerTrade | None:
        endpoint = trade_endpoints.TradeDetails(accountID=self.account_id, tradeID=f"@{client_id}")
        try:
            answer = self.client.request(endpoint)
        except OandaError as exc:
            if exc.status == 404:
                return None
            raise BrokerError(str(exc)) from None
        return _trade(answer["trade"])

    def market_order(
        self, side: int, units: int, stop_loss_pips: float, client_id: str
    ) -> OrderResult:
        """MARKET FOK with stopLossOnFill distance and tradeClientExtensions.id."""
        if side not in (-1, 1) or units <= 0:
            raise ValueError(f"bad order: side {side}, units {units}")
        distance = f"{stop_loss_pips * self.pip:.{self.precision}f}"
        body = {
            "order": {
                "type": "MARKET",
                "instrument": self.instrument,
                "units": str(side * int(units)),
                "timeInForce": "FOK",
                "positionFill": "DEFAULT",
                "stopLossOnFill": {"distance": distance, "timeInForce": "GTC"},
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
                return OrderResult(client_id, False, None, str(exc))
            raise BrokerError(str(exc)) from None
        fill = answer.get("orderFillTransaction")
        if fill is None or "tradeOpened" not in fill:
            cancel = answer.get("orderCancelTransaction") or answer.get("orderRejectTransaction")
            reason = (cancel or {}).get("reason") or (cancel or {}).get("rejectReason") or "?"
            return OrderResult(client_id, False, None, str(reason))
        opened = fill["tradeOpened"]
        trade = BrokerTrade(
            trade_id=str(opened["tradeID"]),
            client_id=client_id,
            side=side,
            units=abs(int(float(opened["units"]))),
            price=float(opened.get("price", fill.get("price"))),
            open_time=parse_time(fill["time"]),
            state="OPEN",
        )
        return OrderResult(client_id, True, trade)

    def close_trade(self, trade_id: str) -> CloseResult:
        endpoint = trade_endpoints.TradeClose(
            accountID=self.account_id, tradeID=trade_id, data={"units": "ALL"}
        )
        answer = self._call(lambda: self.client.request(endpoint))
        fill = answer.get("orderFillTransaction")
        if fill is None:
            cancel = answer.get("orderCancelTransaction") or {}
            raise BrokerError(f"OANDA did not close trade {trade_id} ({cancel.get('reason')})")
        closed = [c for c in fill.get("tradesClosed", []) if str(c.get("tradeID")) == trade_id]
        price = (
            float(closed[0]["price"]) if closed and "price" in closed[0] else float(fill["price"])
        )
        return CloseResult(trade_id, price, parse_time(fill["time"]))

    def close(self) -> None:
        if self.stream is not None:
            self.stream.stop()
        self.client.close()

    def _call(self, request: Any) -> Any:
        """Run `request`; an OANDA failure (after the client's retries) becomes a BrokerError."""
        try:
            return request()
        except OandaError as exc:
            raise BrokerError(str(exc)) from None


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
    """A v20 Trade object as a BrokerTrade."""
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
    )
