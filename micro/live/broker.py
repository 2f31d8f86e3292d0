"""The broker protocol the trader talks to, and the plain results it gets back.

Two brokers implement it: `micro.live.oanda.OandaBroker` (OANDA v20) and
`micro.live.sim.SimBroker` (fills from stored candles). The trader never knows which one it has:
backtest and live differ only in the clock, the bar source and the broker (nautilus_trader).

Times are int seconds since the epoch, UTC; a candle's `ts` is its open time. Prices are the
instrument's quote currency; sides are +1 long, −1 short. Units are always positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np


@dataclass(frozen=True)
class Candle:
    """One completed M1 mid candle."""

    ts: int  # open time, s UTC
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0

    @property
    def close_ts(self) -> int:
        """When the candle completed (s UTC): the bar clock's time."""
        return self.ts + 60


@dataclass(frozen=True)
class Quote:
    """The current price: bid/ask, when it was quoted (s UTC) and whether trading is open."""

    bid: float
    ask: float
    time: float  # s UTC
    tradeable: bool

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)

    def usable(self) -> bool:
        """A finite, positive, uncrossed price: the only kind that may lead to an order."""
        values = np.array([self.bid, self.ask, self.time], dtype=np.float64)
        return bool(np.isfinite(values).all() and self.bid > 0 and self.ask >= self.bid)


@dataclass(frozen=True)
class BrokerTrade:
    """A trade as the broker knows it (open or closed)."""

    trade_id: str
    client_id: str | None  # tradeClientExtensions.id; None for a trade micro did not open
    side: int  # +1 long, −1 short
    units: int  # initial units, > 0
    price: float  # fill price of the entry
    open_time: float  # s UTC
    state: Literal["OPEN", "CLOSED"]
    stop_price: float | None = None  # the stop-loss order's price, when there is one
    close_price: float | None = None  # average exit fill, once CLOSED
    close_time: float | None = None  # s UTC, once CLOSED
    close_reason: str | None = None  # 'stop_loss', 'agent', 'external', once CLOSED
    realized_pl: float | None = None  # the broker's realised P&L, account currency
    financing: float | None = None  # financing paid (−) or earned (+), account currency
    current_units: int | None = None  # units still open (None: as initial)


@dataclass(frozen=True)
class OrderResult:
    """What a market order came to: a fill (with the trade it opened) or a rejection."""

    client_id: str
    filled: bool
    trade: BrokerTrade | None  # the opened trade when filled
    reason: str = ""  # why it was rejected (OANDA's orderCancelTransaction reason)


@dataclass(frozen=True)
class CloseResult:
    """The exit fill of a closed trade, with the broker's P&L of it."""

    trade_id: str
    price: float  # average exit fill
    time: float  # s UTC
    realized_pl: float | None = None  # account currency
    financing: float | None = None  # account currency


@dataclass(frozen=True)
class OrderTrace:
    """What the broker's own records say of an order sent with a client id.

    `filled`: it opened `trade`; `cancelled`: the broker refused or cancelled it (`reason`);
    `not_seen`: neither the trade nor any transaction of the order exists (yet).
    """

    state: Literal["filled", "cancelled", "not_seen"]
    trade: BrokerTrade | None = None
    reason: str = ""


@dataclass(frozen=True)
class Account:
    """Balance and NAV in the account currency."""

    balance: float
    nav: float
    currency: str


class BrokerError(Exception):
    """The broker could not be reached or answered wrongly: counts towards the circuit breaker."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of the broker's refusal, when it answered one


class BrokerInterrupted(BrokerError):
    """A request given up because the trader is stopping (SIGTERM during a retry wait)."""


class OrderOutcomeUnknown(BrokerError):
    """An order may or may not have reached the broker: look it up by client id before anything."""

    def __init__(self, client_id: str, message: str) -> None:
        super().__init__(message)
        self.client_id = client_id


class Broker(Protocol):
    """What the trader needs of a venue. Every method may raise BrokerError.

    The optional parts (`start`, `connection`, `quote_source`) are declared too: a broker
    without a price stream starts nothing, has no connection state and one price source
    (`SimBroker`'s no-op defaults), so the trader never probes a broker for what it has.
    """

    name: str
    instrument: str
    order_settle_seconds: float
    """After an unknown order outcome: once the broker's records (the trade by client id and
    the transactions since the last known id) show no trace of the order this long after the
    send, it was not received (until then, no new entry; its client id stays fenced)."""
    last_transaction_id: str | None
    """The account's newest transaction id seen in any answer (None: not known yet, or a
    broker without a transaction log): where a later search of the records starts."""
    quote_source: str | None
    """Where the last quote came from ('stream', or 'rest' while the stream is down); None for
    a broker with one source."""

    def start(self) -> None:
        """Open what the broker keeps running beside requests (OANDA: the pricing stream);
        called once, after the warm-up and the start-up reconciliation."""
        ...

    def connection(self) -> dict[str, object] | None:
        """The price stream's state for state.json and the journal (None: no stream)."""
        ...

    def finished(self) -> bool:
        """Whether the bar source has ended (a replay ran out); a live venue never does."""
        ...

    def history(self, count: int) -> list[Candle]:
        """The latest `count` completed candles, oldest first (warm-up at start)."""
        ...

    def candles_since(self, ts: int) -> list[Candle]:
        """Completed candles opening after `ts` (s UTC), oldest first: the bar clock."""
        ...

    def quote(self) -> Quote:
        """The current bid/ask and the tradeable flag."""
        ...

    def open_trades(self) -> list[BrokerTrade]:
        """Every open trade on the instrument."""
        ...

    def account(self) -> Account:
        """Balance and NAV."""
        ...

    def market_order(self, side: int, units: int, stop_price: float, client_id: str) -> OrderResult:
        """A market order with a stop-loss on fill at `stop_price` and a client trade id.

        `stop_price` is on the side the stop triggers on (bid for a long, ask for a short):
        `micro.env.fills.quoted_stop` translates the env's mid stop there. Raises
        OrderOutcomeUnknown when the order may have been carried out without an answer (no
        answer, or one that cannot be read).
        """
        ...

    def find_order(self, client_id: str, since_id: str | None) -> OrderTrace:
        """The broker's records of the order sent with `client_id` after transaction `since_id`."""
        ...

    def trade_details(self, trade_id: str) -> BrokerTrade | None:
        """The trade with the broker's id `trade_id` (open or closed), or None if there is none."""
        ...

    def interrupt(self) -> None:
        """Cut any retry wait short from now on: the waiting request fails at once (SIGTERM)."""
        ...

    def close_trade(self, trade_id: str) -> CloseResult:
        """Close the whole trade at market."""
        ...

    def trade_by_client_id(self, client_id: str) -> BrokerTrade | None:
        """The trade opened with `client_id` (open or closed), or None if there is none."""
        ...

    def close(self) -> None:
        """Release connections (broker-side stops stay in place)."""
        ...
