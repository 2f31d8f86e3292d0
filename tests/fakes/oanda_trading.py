"""Trading routes of the fake OANDA v20 server: pricing, orders, trades, positions, a bar clock.

Installed on every FakeOanda (`install_trading`). Shapes follow OANDA's v20 docs: a MARKET order
answers 201 with `orderCreateTransaction` and either `orderFillTransaction` (with `tradeOpened`)
or `orderCancelTransaction`; trades carry `clientExtensions` and `stopLossOrder`; prices are
strings at the instrument's precision. Bid/ask are mid ∓ one pip (as the fake's candles).

The clock: `fake.replay(start)` makes the fake's `now` a replay clock that moves one minute on
every candles request (one bar per poll), so a trader polling it runs as fast as it can.
Each time the clock moves, open trades' stops are checked on the bar that just completed (bid
low for longs, ask high for shorts; a bar opening beyond the stop fills at its open).
Knobs for faults: `fake.tradeable`, `fake.cancel_next_order` (a reason: the next order is
cancelled inside a 201), `fake.price_hook` (edit the PRICE object before it is sent, REST and
stream alike), `fake.lose_orders` (that many coming orders vanish: the connection closes with
no answer and the account never hears of them; they are kept in `fake.lost_orders`, and
`fake.lost_arrive_first = True` carries them out just before the next order is handled: a lost
order arriving late, ahead of the order that reuses its client id),
`fake.reuse_closed_client_ids` (a client trade id is refused only while its trade is open, as
OANDA may do), `fake.order_answer_hook` (edit an order's 201 answer after the order was carried
out: a field missing, a foreign value). An order carried out
N seconds after its request timed out is `fake.inject(delay=N, path=".../orders")`: the fake
holds the request N seconds, then carries it out and answers a client long gone.

The account keeps its transactions (MARKET_ORDER, ORDER_FILL, ORDER_CANCEL, MARKET_ORDER_REJECT)
in `fake.account.transactions`, served by `GET /v3/accounts/{id}/transactions/sinceid?id=N`.
`fake.request_times` and `fake.connection_times` hold the monotonic time of every request and of
every accepted connection (OANDA's limits: 100 requests/s, 2 new connections/s).

The pricing stream (`GET /v3/accounts/{id}/pricing/stream?instruments=...`) sends a PRICE line
whenever the price changes and a HEARTBEAT every `fake.stream_heartbeat_seconds` (5 s, as
OANDA). `fake.stream_fault("drop" | "silent", times)` spoils the next connections: "drop" sends
one PRICE and then closes the connection mid-stream (no terminating chunk); "silent" accepts the
connection and then sends nothing, not even heartbeats. `fake.stream_connects` holds the
monotonic time of every stream request (reconnect spacing). On OANDA the stream is another host,
so faults from `fake.inject(...)` reach it only when their `path` names `/pricing/stream`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from micro.instruments import instrument as instrument_facts

if TYPE_CHECKING:
    from tests.fakes.oanda_v20 import Call, FakeOanda, Fault

ACCOUNT = r"/v3/accounts/(?P<account>[^/]+)"
STREAM_PATH = re.compile(r"/v3/accounts/[^/]+/pricing/stream")
STREAM_TICK_SECONDS = 0.01  # how often the stream looks for a new price
SILENT_STREAM_SECONDS = 30.0  # a silent connection ends after this long (or when the fake stops)
# What OANDA may answer, inside a 201 `orderCancelTransaction`, to a MARKET FOK order with a
# stopLossOnFill and tradeClientExtensions (OrderCancelReason in OANDA's v20 OpenAPI file). Left
# out: reasons for pending, take-profit, trailing or guaranteed orders, client cancels, and
# CLIENT_TRADE_ID_ALREADY_EXISTS, which OANDA answers as a 400 reject (the fake does too).
MARKET_ORDER_CANCEL_REASONS = (
    "MARKET_HALTED",
    "INSUFFICIENT_MARGIN",
    "FIFO_VIOLATION",
    "BOUNDS_VIOLATION",
    "INSUFFICIENT_LIQUIDITY",
    "TIME_IN_FORCE_EXPIRED",
    "INTERNAL_SERVER_ERROR",
    "MIGRATION",
    "ACCOUNT_LOCKED",
    "ACCOUNT_NEW_POSITIONS_LOCKED",
    "ACCOUNT_ORDER_CREATION_LOCKED",
    "ACCOUNT_ORDER_FILL_LOCKED",
    "STOP_LOSS_ON_FILL_LOSS",
    "STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED",
    "STOP_LOSS_ON_FILL_REQUIRED",
    "STOP_LOSS_ON_FILL_GUARANTEED_REQUIRED",
    "STOP_LOSS_ON_FILL_TIME_IN_FORCE_INVALID",
    "STOP_LOSS_ON_FILL_TRIGGER_CONDITION_INVALID",
    "OPEN_TRADES_ALLOWED_EXCEEDED",
    "PENDING_ORDERS_ALLOWED_EXCEEDED",
    "STOP_LOSS_ON_FILL_CLIENT_ORDER_ID_ALREADY_EXISTS",
    "POSITION_SIZE_EXCEEDED",
    "ACCOUNT_POSITION_VALUE_LIMIT_EXCEEDED",
    "INSTRUMENT_BID_REDUCE_ONLY",
    "INSTRUMENT_ASK_REDUCE_ONLY",
    "INSTRUMENT_BID_HALTED",
    "INSTRUMENT_ASK_HALTED",
)


def install_trading(fake: FakeOanda) -> None:
    """Register the trading routes and their state on `fake`."""
    fake.tradeable = True
    fake.cancel_next_order = None
    fake.price_hook = None
    fake.closed_trades = []
    fake.trade_lock = threading.RLock()
    fake.replay = lambda start: _replay(fake, start)
    fake.stream_heartbeat_seconds = 5.0
    fake.stream_faults = []  # one kind per coming connection: "drop" or "silent"
    fake.stream_connects = []  # time.monotonic() of every stream request
    fake.stream_lock = threading.Lock()
    fake.stream_fault = lambda kind, times=1: _stream_fault(fake, kind, times)
    fake.lose_orders = 0
    fake.lost_orders = []  # the Calls of orders lost on the way (what a late arrival carries out)
    fake.lost_arrive_first = False
    fake.reuse_closed_client_ids = False  # True: refused only while the id's trade is open
    fake.financing = 0.0  # account currency charged (−) or paid (+) on every close
    fake.order_answer_hook = None
    fake.request_times = []
    fake.connection_times = []
    _keep_rest_faults_off_the_stream(fake)
    fake.add_route("GET", ACCOUNT + r"/transactions/sinceid", _transactions_since)
    fake.add_route("GET", ACCOUNT + r"/pricing", _pricing)
    fake.add_route("GET", ACCOUNT + r"/pricing/stream", _pricing_stream)
    fake.add_route("POST", ACCOUNT + r"/orders", _order)
    fake.add_route("GET", ACCOUNT + r"/openTrades", _open_trades)
    fake.add_route("GET", ACCOUNT + r"/trades", _open_trades)
    fake.add_route("GET", ACCOUNT + r"/trades/(?P<spec>[^/]+)", _trade)
    fake.add_route("PUT", ACCOUNT + r"/trades/(?P<spec>[^/]+)/close", _close_trade)
    fake.add_route("GET", ACCOUNT + r"/openPositions", _open_positions)
    fake.add_route("PUT", ACCOUNT + r"/positions/(?P<instrument>[^/]+)/close", _close_position)


class ReplayClock:
    """A clock the candles route moves one minute per request."""

    def __init__(self, start: pd.Timestamp) -> None:
        self.now = pd.Timestamp(start)
        self.lock = threading.Lock()

    def __call__(self) -> pd.Timestamp:
        return self.now


def _replay(fake: FakeOanda, start: pd.Timestamp) -> ReplayClock:
    clock = ReplayClock(start)
    fake.now = clock
    fake.replay_clock = clock
    original = next(r for r in fake.routes if r.pattern.pattern.endswith("/candles"))

    def candles_then_tick(fake: FakeOanda, call: Call) -> Any:
        answer = original.handler(fake, call)
        with clock.lock:
            clock.now += pd.Timedelta(minutes=1)
        _trigger_stops(fake)
        return answer

    fake.add_route("GET", original.pattern.pattern, candles_then_tick)
    return clock


def _fmt(fake: FakeOanda, value: float) -> str:
    return f"{value:.{instrument_facts(fake.instrument).precision}f}"


def _time(moment: pd.Timestamp) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _last_bar(fake: FakeOanda) -> pd.Series:
    """The newest completed candle at the fake's now."""
    now = fake.now
    frame = fake.candle_source.between(fake.instrument, now - pd.Timedelta(days=7), now)
    frame = frame[frame["ts"] + pd.Timedelta(minutes=1) <= now]
    if frame.empty:
        from tests.fakes.oanda_v20 import ApiError

        raise ApiError(400, "No price available")
    return frame.iloc[-1]


def _check(fake: FakeOanda, call: Call) -> None:
    from tests.fakes.oanda_v20 import _check_account

    _check_account(fake, call)


def _pricing(fake: FakeOanda, call: Call) -> dict[str, Any]:
    _check(fake, call)
    return {"prices": [_price(fake)], "time": _time(fake.now)}


def _price(fake: FakeOanda) -> dict[str, Any]:
    """The instrument's v20 PRICE object now: mid of the last completed bar ∓ one pip."""
    pip = instrument_facts(fake.instrument).pip
    mid = float(_last_bar(fake)["close"])
    price = {
        "type": "PRICE",
        "instrument": fake.instrument,
        "time": _time(fake.now),
        "tradeable": bool(fake.tradeable),
        "status": "tradeable" if fake.tradeable else "non-tradeable",
        "bids": [{"price": _fmt(fake, mid - pip), "liquidity": 10_000_000}],
        "asks": [{"price": _fmt(fake, mid + pip), "liquidity": 10_000_000}],
        "closeoutBid": _fmt(fake, mid - pip),
        "closeoutAsk": _fmt(fake, mid + pip),
    }
    if fake.price_hook is not None:
        price = fake.price_hook(price)
    return price


# ---------------------------------------------------------------- the pricing stream


def _stream_fault(fake: FakeOanda, kind: str, times: int) -> None:
    if kind not in ("drop", "silent"):
        raise ValueError(f"stream faults are 'drop' or 'silent', not {kind!r}")
    with fake.stream_lock:
        fake.stream_faults.extend([kind] * times)


def _keep_rest_faults_off_the_stream(fake: FakeOanda) -> None:
    """Stream requests take only faults whose path names the stream (another host at OANDA)."""
    take_rest_fault = fake._take_fault

    def take_fault(path: str) -> Fault | None:
        if not STREAM_PATH.fullmatch(path):
            return take_rest_fault(path)
        with fake._lock:
            for fault in fake._faults:
                if "/pricing/stream" in fault.path and path.startswith(fault.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        fake._faults.remove(fault)
                    return fault
        return None

    fake._take_fault = take_fault


def _pricing_stream(fake: FakeOanda, call: Call) -> Any:
    from tests.fakes.oanda_v20 import ApiError, Reply

    _check(fake, call)
    if fake.instrument not in call.query.get("instruments", "").split(","):
        raise ApiError(400, "Invalid value specified for 'instruments'")
    with fake.stream_lock:
        fake.stream_connects.append(time.monotonic())
        fault = fake.stream_faults.pop(0) if fake.stream_faults else None
    if fault == "silent":
        return Reply(stream=_silence(fake))
    return Reply(stream=_price_lines(fake, drop=fault == "drop"))


def _silence(fake: FakeOanda) -> Iterator[dict[str, Any]]:
    """A connection that never says anything (until the fake stops or a long while passes)."""
    fake._stopping.wait(SILENT_STREAM_SECONDS)
    yield from ()


def _price_lines(fake: FakeOanda, drop: bool) -> Iterator[dict[str, Any]]:
    """PRICE on every change, HEARTBEAT every `stream_heartbeat_seconds`; drop after one PRICE."""
    from tests.fakes.oanda_v20 import ApiError, heartbeat

    last: dict[str, Any] | None = None
    beat = time.monotonic()
    while not fake._stopping.is_set():
        try:
            price: dict[str, Any] | None = _price(fake)
        except ApiError:  # no completed bar yet
            price = None
        if price is not None and _without_time(price) != last:
            last = _without_time(price)
            yield price
            if drop:  # close mid-stream: the client sees no terminating chunk
                raise ConnectionAbortedError("fake OANDA: pricing stream dropped")
        if time.monotonic() - beat >= fake.stream_heartbeat_seconds:
            beat = time.monotonic()
            yield heartbeat(fake.now)
        fake._stopping.wait(STREAM_TICK_SECONDS)


def _without_time(price: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in price.items() if k != "time"}


def _order(fake: FakeOanda, call: Call) -> Any:
    from tests.fakes.oanda_v20 import ApiError, Reply

    _check(fake, call)
    order = (call.body or {}).get("order") or {}
    client = (order.get("tradeClientExtensions") or {}).get("id")
    if order.get("type") != "MARKET" or order.get("instrument") != fake.instrument:
        raise ApiError(400, "Invalid value specified for 'order'")
    stop = order.get("stopLossOnFill") or {}
    if not client or not ("distance" in stop or "price" in stop):
        raise ApiError(400, "the fake requires stopLossOnFill and tradeClientExtensions.id")
    if fake.lose_orders > 0:  # lost on the way: the account never hears of it
        from tests.fakes.oanda_http import DropConnection

        fake.lose_orders -= 1
        fake.lost_orders.append(call)
        raise DropConnection("fake OANDA: the order never reached the account")
    if fake.lost_arrive_first:  # the lost orders arrive late, just ahead of this one
        fake.lost_arrive_first = False
        held, fake.lost_orders = fake.lost_orders, []
        for late in held:
            try:
                _order(fake, late)
            except ApiError:
                pass  # refused (its answer went to a client long gone)
    units = int(order["units"])
    account = fake.account
    with fake.trade_lock:
        now = _time(fake.now)
        create = {
            "id": account.next_transaction_id(),
            "type": "MARKET_ORDER",
            "time": now,
            "instrument": fake.instrument,
            "units": order["units"],
            "stopLossOnFill": stop,
            "tradeClientExtensions": {"id": client},
        }
        every = account.trades + ([] if fake.reuse_closed_client_ids else fake.closed_trades)
        if any((t.get("clientExtensions") or {}).get("id") == client for t in every):
            _log(fake, {**create, "type": "MARKET_ORDER_REJECT",
                        "rejectReason": "CLIENT_TRADE_ID_ALREADY_EXISTS"})  # fmt: skip
            raise ApiError(
                400,
                "Client Trade ID already exists",
                orderRejectTransaction={
                    **create,
                    "type": "MARKET_ORDER_REJECT",
                    "rejectReason": "CLIENT_TRADE_ID_ALREADY_EXISTS",
                },
                relatedTransactionIDs=[create["id"]],
                lastTransactionID=str(account.last_transaction_id),
                errorCode="CLIENT_TRADE_ID_ALREADY_EXISTS",
            )
        reason = fake.cancel_next_order or (None if fake.tradeable else "MARKET_HALTED")
        if reason is not None:
            fake.cancel_next_order = None
            cancel = {
                "id": account.next_transaction_id(),
                "type": "ORDER_CANCEL",
                "time": now,
                "orderID": create["id"],
                "reason": reason,
            }
            _log(fake, create, cancel)
            return Reply(
                {
                    "orderCreateTransaction": create,
                    "orderCancelTransaction": cancel,
                    "lastTransactionID": cancel["id"],
                },
                201,
            )
        pip = instrument_facts(fake.instrument).pip
        mid = float(_last_bar(fake)["close"])
        price = round(mid + (pip if units > 0 else -pip), 3 if pip == 0.01 else 5)
        if "distance" in stop:
            distance = float(stop["distance"])
            stop_price = price - distance if units > 0 else price + distance
        else:
            stop_price = float(stop["price"])
        fill_id = account.next_transaction_id()
        trade = {
            "id": fill_id,
            "instrument": fake.instrument,
            "price": _fmt(fake, price),
            "openTime": now,
            "state": "OPEN",
            "initialUnits": str(units),
            "currentUnits": str(units),
            "realizedPL": "0.0000",
            "unrealizedPL": "0.0000",
            "financing": "0.0000",
            "clientExtensions": {"id": client, "tag": "micro"},
            "stopLossOrder": {
                "id": account.next_transaction_id(),
                "type": "STOP_LOSS",
                "tradeID": fill_id,
                "price": _fmt(fake, stop_price),
                "state": "PENDING",
            },
        }
        account.trades.append(trade)
        fill = {
            "id": fill_id,
            "type": "ORDER_FILL",
            "time": now,
            "orderID": create["id"],
            "instrument": fake.instrument,
            "units": str(units),
            "price": _fmt(fake, price),
            "reason": "MARKET_ORDER",
            "tradeOpened": {
                "tradeID": fill_id,
                "units": str(units),
                "price": _fmt(fake, price),
                "clientExtensions": {"id": client},
            },
        }
        stop_order = trade["stopLossOrder"]
        _log(fake, create, fill, {
            "id": stop_order["id"], "type": "STOP_LOSS_ORDER", "time": now, "tradeID": fill_id,
            "price": stop_order["price"], "timeInForce": "GTC", "reason": "ON_FILL",
        })  # fmt: skip
        answer = Reply(
            {
                "orderCreateTransaction": create,
                "orderFillTransaction": fill,
                "relatedTransactionIDs": [create["id"], fill_id, stop_order["id"]],
                "lastTransactionID": str(account.last_transaction_id),
            },
            201,
        )
        if fake.order_answer_hook is not None:
            answer.body = fake.order_answer_hook(answer.body)
        return answer


def _log(fake: FakeOanda, *transactions: dict[str, Any]) -> None:
    """Append to the account's transaction history (with the account id, as OANDA's carry)."""
    for transaction in transactions:
        fake.account.transactions.append({**transaction, "accountID": fake.account.id})


def _transactions_since(fake: FakeOanda, call: Call) -> dict[str, Any]:
    """GET /transactions/sinceid?id=N: every transaction after N, oldest first (at most 1000)."""
    from tests.fakes.oanda_v20 import ApiError

    _check(fake, call)
    try:
        since = int(call.query["id"])
    except (KeyError, ValueError):
        raise ApiError(400, "Invalid value specified for 'id'") from None
    with fake.trade_lock:
        newer = [t for t in fake.account.transactions if int(t["id"]) > since][:1000]
        return {
            "transactions": [dict(t) for t in newer],
            "lastTransactionID": str(fake.account.last_transaction_id),
        }


def _open_trades(fake: FakeOanda, call: Call) -> dict[str, Any]:
    _check(fake, call)
    with fake.trade_lock:
        return {
            "trades": [dict(t) for t in reversed(fake.account.trades)],
            "lastTransactionID": str(fake.account.last_transaction_id),
        }


def _find(fake: FakeOanda, spec: str) -> dict[str, Any] | None:
    for trade in fake.account.trades + fake.closed_trades:
        if spec.startswith("@"):
            if (trade.get("clientExtensions") or {}).get("id") == spec[1:]:
                return trade
        elif trade["id"] == spec:
            return trade
    return None


def _trade(fake: FakeOanda, call: Call) -> dict[str, Any]:
    from tests.fakes.oanda_v20 import ApiError

    _check(fake, call)
    with fake.trade_lock:
        trade = _find(fake, call.groups["spec"])
        if trade is None:
            raise ApiError(404, "The Trade specified does not exist")
        return {"trade": dict(trade), "lastTransactionID": str(fake.account.last_transaction_id)}


def _close(fake: FakeOanda, trade: dict[str, Any], price: float, reason: str) -> dict[str, Any]:
    """Move `trade` to the closed list at `price`; the ORDER_FILL transaction."""
    account = fake.account
    units = int(trade["currentUnits"])
    pl = (price - float(trade["price"])) * units
    financing = float(fake.financing)
    account.balance += pl + financing
    account.trades.remove(trade)
    fill_id = account.next_transaction_id()
    trade.update(
        state="CLOSED",
        currentUnits="0",
        averageClosePrice=_fmt(fake, price),
        closeTime=_time(fake.now),
        realizedPL=f"{pl:.4f}",
        financing=f"{financing:.4f}",
        closingTransactionIDs=[fill_id],
    )
    if reason == "STOP_LOSS_ORDER":
        trade["stopLossOrder"]["state"] = "FILLED"
    else:
        trade["stopLossOrder"]["state"] = "CANCELLED"
    fake.closed_trades.append(trade)
    fill = {
        "id": fill_id,
        "type": "ORDER_FILL",
        "time": _time(fake.now),
        "instrument": fake.instrument,
        "units": str(-units),
        "price": _fmt(fake, price),
        "reason": reason,
        "pl": f"{pl:.4f}",
        "financing": f"{financing:.4f}",
        "tradesClosed": [
            {
                "tradeID": trade["id"],
                "units": str(-units),
                "price": _fmt(fake, price),
                "realizedPL": f"{pl:.4f}",
                "financing": f"{financing:.4f}",
            }
        ],
    }
    _log(fake, fill)
    return fill


def _market_exit(fake: FakeOanda, units: int) -> float:
    pip = instrument_facts(fake.instrument).pip
    mid = float(_last_bar(fake)["close"])
    return mid - pip if units > 0 else mid + pip


def _close_trade(fake: FakeOanda, call: Call) -> dict[str, Any]:
    from tests.fakes.oanda_v20 import ApiError

    _check(fake, call)
    with fake.trade_lock:
        trade = _find(fake, call.groups["spec"])
        if trade is None or trade["state"] != "OPEN":
            raise ApiError(404, "The Trade specified does not exist")
        exit_price = _market_exit(fake, int(trade["currentUnits"]))
        fill = _close(fake, trade, exit_price, "MARKET_ORDER_TRADE_CLOSE")
        return {"orderFillTransaction": fill, "lastTransactionID": fill["id"]}


def _open_positions(fake: FakeOanda, call: Call) -> dict[str, Any]:
    _check(fake, call)
    with fake.trade_lock:
        units = sum(int(t["currentUnits"]) for t in fake.account.trades)
        positions = []
        if units:
            side = "long" if units > 0 else "short"
            ids = [t["id"] for t in fake.account.trades]
            positions.append(
                {
                    "instrument": fake.instrument,
                    side: {"units": str(units), "tradeIDs": ids},
                    "long" if side == "short" else "short": {"units": "0"},
                }
            )
        return {"positions": positions, "lastTransactionID": str(fake.account.last_transaction_id)}


def _close_position(fake: FakeOanda, call: Call) -> dict[str, Any]:
    _check(fake, call)
    with fake.trade_lock:
        answer: dict[str, Any] = {}
        for t in list(fake.account.trades):
            units = int(t["currentUnits"])
            fill = _close(fake, t, _market_exit(fake, units), "MARKET_ORDER_POSITION_CLOSEOUT")
            answer["longOrderFillTransaction" if units > 0 else "shortOrderFillTransaction"] = fill
        answer["lastTransactionID"] = str(fake.account.last_transaction_id)
        return answer


def _trigger_stops(fake: FakeOanda) -> None:
    """Fill stops on the bar that just completed (bid for longs, ask for shorts)."""
    pip = instrument_facts(fake.instrument).pip
    with fake.trade_lock:
        if not fake.account.trades:
            return
        bar = _last_bar(fake)
        for trade in list(fake.account.trades):
            units = int(trade["currentUnits"])
            stop = float(trade["stopLossOrder"]["price"])
            if units > 0:
                opened, worst = float(bar["open"]) - pip, float(bar["low"]) - pip
                hit = worst <= stop
                price = min(opened, stop)
            else:
                opened, worst = float(bar["open"]) + pip, float(bar["high"]) + pip
                hit = worst >= stop
                price = max(opened, stop)
            if hit:
                _close(fake, trade, price, "STOP_LOSS_ORDER")
