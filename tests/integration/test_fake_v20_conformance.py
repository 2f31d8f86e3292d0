"""The fake v20 server speaks OANDA's API: its answers match OANDA's own OpenAPI description.

The description is `../shared/oanda/v20.json` beside the checkout (never copied in); these tests
skip, saying so, when it is absent. Every FakeOanda checks its answers against it while it runs
(tests/fakes/v20_schema.py), so each test that drives the fake is a conformance test too; here
the checker is shown to catch what it must, every route the trader uses is driven once, and the
trader meets each reason OANDA may give for cancelling a market order inside a 201.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import requests

from micro.data.synth import synthesize
from tests.fakes import FakeOanda
from tests.fakes.oanda_trading import MARKET_ORDER_CANCEL_REASONS
from tests.fakes.v20_schema import SPEC_PATH, V20Schema
from tests.integration import test_live_oanda as live

# the live-trader tests' home (synthetic market, a net that trades) and replaying fake
template, home, fake, one_torch_thread = live.template, live.home, live.fake, live.one_torch_thread
journal, order_posts, trader_for = live.journal, live.order_posts, live.trader_for


@pytest.fixture(scope="module")
def schema() -> V20Schema:
    loaded = V20Schema.load()
    if loaded is None:
        pytest.skip(f"{SPEC_PATH} is absent (OANDA's v20 OpenAPI file, in shared/oanda/)")
    return loaded


@pytest.fixture
def served(schema: V20Schema):
    frame = synthesize("GBP_JPY", 3, 1, "trend", "2024-01-01")
    with FakeOanda(candles=frame) as server:
        server.replay(pd.Timestamp(frame["ts"].iloc[500]))
        yield server


def an_order(client_id: str, units: int = 100) -> dict:
    return {
        "order": {
            "type": "MARKET",
            "instrument": "GBP_JPY",
            "units": str(units),
            "timeInForce": "FOK",
            "positionFill": "DEFAULT",
            "stopLossOnFill": {"distance": "0.300", "timeInForce": "GTC"},
            "tradeClientExtensions": {"id": client_id, "tag": "micro"},
        }
    }


def test_the_checker_refuses_what_oanda_would_never_send(schema: V20Schema) -> None:
    fill = {
        "id": "7",
        "type": "ORDER_FILL",
        "time": "2024-01-03T10:00:00.000000000Z",
        "orderID": "6",
        "instrument": "GBP_JPY",
        "units": "100",
        "price": "180.123",
        "reason": "MARKET_ORDER",
        "tradeOpened": {"tradeID": "7", "units": "100", "price": "180.123"},
    }
    assert schema.check("OrderFillTransaction", fill) == []
    assert schema.check("OrderFillTransaction", {**fill, "units": 100})  # a number, not a string
    assert schema.check("OrderFillTransaction", {**fill, "tradeOpend": {}})  # a misspelt field
    assert schema.check("OrderFillTransaction", {**fill, "reason": "TRADE_CLOSE"})  # not a reason
    cancel = {"id": "8", "type": "ORDER_CANCEL", "orderID": "6", "reason": "MARKET_HALTED"}
    assert schema.check("OrderCancelTransaction", cancel) == []
    assert schema.check("OrderCancelTransaction", {**cancel, "reason": "NO_REASON"})
    answer = {"orderCreateTransaction": {"id": "6", "type": "MARKET"}, "lastTransactionID": "6"}
    path = "/v3/accounts/101-001-1-001/orders"
    assert schema.check_response("POST", path, 201, answer)  # an order type, not a transaction
    assert (
        schema.check_response("POST", path, 201, {**answer, "orderCreateTransaction": fill}) == []
    )
    assert schema.check_response("POST", path, 503, "anything") == []  # undocumented: unchecked
    assert schema.check_stream_line({"type": "HEARTBEAT", "time": "1"}) == []
    assert schema.check_stream_line({"type": "PRICE", "bids": [{"price": 1.5}]})


def test_every_route_the_trader_uses_answers_as_the_spec_says(
    served: FakeOanda, schema: V20Schema
) -> None:
    server = served
    headers = {"Authorization": f"Bearer {server.token}"}
    account = f"{server.api_url}/v3/accounts/{server.account.id}"

    def get(url: str, **params: str) -> requests.Response:
        return requests.get(url, headers=headers, params=params, timeout=10)

    def send(method: str, url: str, body: dict) -> requests.Response:
        return requests.request(method, url, headers=headers, json=body, timeout=10)

    candles = get(
        f"{server.api_url}/v3/instruments/GBP_JPY/candles", granularity="M1", count="5", price="MBA"
    )
    for candle in candles.json()["candles"]:
        assert schema.check("Candlestick", candle) == []
    assert get(account + "/summary").status_code == 200
    assert get(account + "/instruments", instruments="GBP_JPY").status_code == 200
    price = get(account + "/pricing", instruments="GBP_JPY").json()["prices"][0]
    assert schema.check("ClientPrice", price) == []

    filled = send("POST", account + "/orders", an_order("c-1")).json()
    assert schema.check("OrderFillTransaction", filled["orderFillTransaction"]) == []
    again = send("POST", account + "/orders", an_order("c-1"))
    assert again.status_code == 400
    assert again.json()["orderRejectTransaction"]["rejectReason"] == (
        "CLIENT_TRADE_ID_ALREADY_EXISTS"
    )
    server.cancel_next_order = "INSUFFICIENT_MARGIN"
    cancelled = send("POST", account + "/orders", an_order("c-2", -100)).json()
    assert schema.check("OrderCancelTransaction", cancelled["orderCancelTransaction"]) == []
    assert "orderFillTransaction" not in cancelled

    trade = get(account + "/trades/@c-1").json()["trade"]
    assert schema.check("Trade", trade) == []
    assert get(account + "/openTrades").json()["trades"][0]["id"] == trade["id"]
    assert get(account + "/openPositions").status_code == 200
    assert get(account + "/trades/@nobody").status_code == 404
    closed = send("PUT", account + f"/trades/{trade['id']}/close", {"units": "ALL"}).json()
    assert closed["orderFillTransaction"]["reason"] == "MARKET_ORDER_TRADE_CLOSE"
    assert schema.check("Trade", get(account + "/trades/@c-1").json()["trade"]) == []
    send("POST", account + "/orders", an_order("c-3", -100))
    out = send("PUT", account + "/positions/GBP_JPY/close", {"shortUnits": "ALL"}).json()
    assert out["shortOrderFillTransaction"]["reason"] == "MARKET_ORDER_POSITION_CLOSEOUT"
    if any(r.pattern.pattern.endswith("/transactions/sinceid") for r in server.routes):
        assert get(account + "/transactions/sinceid", id="1").json()["transactions"]

    stream = requests.get(
        account + "/pricing/stream",
        headers=headers,
        params={"instruments": "GBP_JPY"},
        stream=True,
        timeout=10,
    )
    server.stream_heartbeat_seconds = 0.05
    lines = stream.iter_lines()
    kinds = {json.loads(next(lines))["type"] for _ in range(3)}
    stream.close()
    assert kinds == {"PRICE", "HEARTBEAT"}

    assert server.schema_violations == []
    server.errors.clear()  # the client hung up on the stream: nothing else is expected there


def test_the_cancel_reasons_the_fake_gives_are_oandas(schema: V20Schema) -> None:
    assert set(MARKET_ORDER_CANCEL_REASONS) <= set(schema.cancel_reasons)
    for reason in ("MARKET_HALTED", "INSUFFICIENT_MARGIN", "FIFO_VIOLATION"):
        assert reason in MARKET_ORDER_CANCEL_REASONS


def test_each_cancel_reason_inside_a_201_is_no_position_and_journaled_with_its_reason(
    home: Path, fake: FakeOanda
) -> None:
    reasons = list(MARKET_ORDER_CANCEL_REASONS)
    given: dict[str, str] = {}  # client id -> the reason its order was cancelled with
    route = next(
        r for r in fake.routes if r.method == "POST" and r.pattern.pattern.endswith("/orders")
    )

    def cancel_each(server: FakeOanda, call):
        client = ((call.body or {}).get("order") or {}).get("tradeClientExtensions", {}).get("id")
        if reasons and client not in given:
            given[client] = server.cancel_next_order = reasons.pop(0)
        return route.handler(server, call)

    fake.add_route("POST", route.pattern.pattern, cancel_each)
    trader = trader_for(home, fake, max_bars=None)
    trader.start()
    for _ in range(1500):
        for bar in trader.clock.poll():
            trader.on_bar(bar)
            assert trader.book.position is None, "a cancelled order left a position"
        if not reasons and len(given) == len(MARKET_ORDER_CANCEL_REASONS):
            break
    trader.finish("test")
    assert reasons == [], f"the trader sent too few orders to meet {reasons}"
    assert fake.account.trades == [] and fake.closed_trades == []
    lines = journal(home)
    for client, reason in given.items():
        noted = [x for x in lines if x.get("client_id") == client and x.get("reason") == reason]
        assert noted, f"{client}: the cancel {reason} is not in the journal"
    posted = [p.body["order"]["tradeClientExtensions"]["id"] for p in order_posts(fake)]
    assert len(posted) == len(set(posted))  # no order sent twice
    state = json.loads((home / "live" / "state.json").read_text())
    assert state["position"] is None and state["pending_order"] is None
