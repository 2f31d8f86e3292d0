"""Live orders with real money: an unknown outcome never costs a second position or a lost one.

The real `Trader` + `OandaBroker` against the fake v20 server on 127.0.0.1 (the fixtures of
test_live_oanda: a 1 s request timeout, so an unanswered order settles after 2 s). The fake
carries an order out N seconds after its request timed out (`inject(delay=N)`), loses orders on
the way (`lose_orders`), answers what cannot be read (`order_answer_hook`) and keeps the account's
transactions (`transactions/sinceid`), as the trader's lookups need.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from micro.live.oanda import parse_time
from micro.live.trader import Trader
from tests.conftest import micro_env
from tests.e2e.test_live_parity import live_command
from tests.fakes import FakeOanda
from tests.integration import test_live_oanda as base
from tests.integration.test_live_oanda import (
    config_for,
    journal,
    open_broker,
    order_posts,
    run_until,
    trader_for,
)

# the fixtures of test_live_oanda: a prepared home, a model that trades often, the fake's replay
template, home, fake, one_torch_thread = base.template, base.home, base.fake, base.one_torch_thread

V20_SPEC = Path(__file__).resolve().parents[3] / "shared" / "oanda" / "v20.json"


def orders_path(fake: FakeOanda) -> str:
    return f"/v3/accounts/{fake.account.id}/orders"


def every_trade(fake: FakeOanda) -> list[dict[str, Any]]:
    with fake.trade_lock:
        return [dict(t) for t in fake.account.trades + fake.closed_trades]


def assert_never_two_positions(fake: FakeOanda) -> None:
    """No two of the broker's trades were ever open at the same time."""
    spans = sorted(
        (parse_time(t["openTime"]), parse_time(t["closeTime"]) if "closeTime" in t else 1e18)
        for t in every_trade(fake)
    )
    for (_, closed), (opened, _) in zip(spans, spans[1:], strict=False):
        assert opened >= closed, spans


def assert_book_is_the_broker(trader: Trader, fake: FakeOanda) -> None:
    open_ids = [t["id"] for t in fake.account.trades]
    held = trader.book.position.trade_id if trader.book.position else None
    assert open_ids == ([held] if held else []), (open_ids, held)


def run_for(trader: Trader, seconds_after_first_order: float, limit: int = 4000) -> None:
    """Feed bars until this long after the first order was posted (the trader started)."""
    deadline = None
    for _ in range(limit):
        for bar in trader.clock.poll():
            trader.on_bar(bar)
        if deadline is None and order_posts_of(trader):
            deadline = time.monotonic() + seconds_after_first_order
        if deadline is not None and time.monotonic() > deadline:
            return
    raise AssertionError("ran out of bars")


def step(trader: Trader) -> None:
    """Feed the trader its next completed bar."""
    for _ in range(10):
        bars = trader.clock.poll()
        for bar in bars:
            trader.on_bar(bar)
        if bars:
            return
    raise AssertionError("no bar came")


def order_posts_of(trader: Trader) -> bool:
    return any(line["kind"] == "order" for line in trader.journal.lines("order"))


# ---------------------------------------------------------------- late and lost orders


@pytest.mark.parametrize("delay", [1.5, 4.0])
def test_an_order_carried_out_after_its_request_timed_out_leaves_one_position(
    home: Path, fake: FakeOanda, delay: float
) -> None:
    """1.5 s: found by its client id while still pending; 4 s: after it was found not
    received (2 s), either adopted late or refused by the broker for its fenced client id."""
    fake.inject(delay=delay, path=orders_path(fake))
    trader = trader_for(home, fake, max_bars=None)
    trader.start()
    run_for(trader, delay + 1.5)
    first = order_posts(fake)[0].body["order"]["tradeClientExtensions"]["id"]
    assert journal(home, "error")[0]["outcome_unknown"] is True
    reconciled = [x for x in journal(home, "reconcile") if x.get("client_id") == first]
    if delay < 2.0:
        assert reconciled[-1]["found"] is True
    else:
        assert any(x.get("resolution") == "not_received" for x in reconciled)
        with fake.trade_lock:
            trades_of_first = [t for t in every_trade(fake) if t["clientExtensions"]["id"] == first]
        assert len(trades_of_first) <= 1  # the broker never fills the fenced id twice
    assert_never_two_positions(fake)
    assert_book_is_the_broker(trader, fake)


def test_an_order_carried_out_while_the_trader_restarts_is_adopted_once(
    home: Path, fake: FakeOanda
) -> None:
    fake.inject(delay=3.0, path=orders_path(fake))
    first = trader_for(home, fake)
    run_until(first, lambda: first.reconciler.pending is not None)
    first.finish("restart")
    saved = json.loads((home / "live" / "state.json").read_text())
    client_id = saved["pending_order"]["client_id"]
    assert saved["pending_order"]["since_id"] is not None  # where the record search starts
    second = trader_for(home, fake, max_bars=None)
    second.start()
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        for bar in second.clock.poll():
            second.on_bar(bar)
    fills = [x for x in journal(home, "fill") if x["client_id"] == client_id]
    traded = [t for t in every_trade(fake) if t["clientExtensions"]["id"] == client_id]
    assert len(traded) == 1 and len(fills) == 1  # carried out once, booked once
    assert fills[0]["how"] in ("lookup", "late", "fill")
    assert_never_two_positions(fake)
    assert_book_is_the_broker(second, fake)


def test_an_order_never_received_is_resolved_as_such_and_its_id_fenced(
    home: Path, fake: FakeOanda
) -> None:
    fake.lose_orders = 1
    trader = trader_for(home, fake, max_bars=None)
    run_until(trader, lambda: len(order_posts(fake)) >= 2, limit=1500)
    lost = order_posts(fake)[0].body["order"]["tradeClientExtensions"]["id"]
    resolution = [
        x for x in journal(home, "reconcile") if x.get("client_id") == lost and "found" in x
    ]
    assert resolution[-1]["resolution"] == "not_received"
    assert resolution[-1]["waited_seconds"] >= trader.broker.order_settle_seconds
    orders = journal(home, "order")
    assert orders[1]["client_id"] == lost and orders[1]["fenced"] is True  # the id is reused
    created = [
        t
        for t in fake.account.transactions
        if t["type"] == "MARKET_ORDER" and t["tradeClientExtensions"]["id"] == lost
    ]
    assert len(created) == 1  # the account only ever heard of the second send
    assert_never_two_positions(fake)
    assert_book_is_the_broker(trader, fake)
    assert json.loads((home / "live" / "state.json").read_text())["lost_order"] is None


def test_while_an_order_is_pending_no_new_entry_is_sent(home: Path, fake: FakeOanda) -> None:
    fake.lose_orders = 1
    trader = trader_for(home, fake, max_bars=None)
    run_until(trader, lambda: trader.reconciler.pending is not None)
    while trader.reconciler.pending is not None:
        step(trader)
    lines = journal(home)
    sent = next(i for i, x in enumerate(lines) if x["kind"] == "order")
    resolved = next(i for i, x in enumerate(lines) if x.get("resolution") == "not_received")
    between = lines[sent + 1 : resolved]
    assert not [x for x in between if x["kind"] == "order"]  # no entry while it was pending
    sent_on = lines[sent]["bar_ts"]
    entries = [
        x for x in between if x.get("decision") in ("BUY", "SELL") and x["bar"]["ts"] != sent_on
    ]
    assert all(any("unknown outcome" in r for r in x["blocked"]) for x in entries)


# ---------------------------------------------------------------- fenced client ids


def client_id_of(post: Any) -> str:
    return str(post.body["order"]["tradeClientExtensions"]["id"])


def stop_out(fake: FakeOanda) -> None:
    """The broker's stop of every open trade fills on the next bar (at its open)."""
    with fake.trade_lock:
        for trade in fake.account.trades:
            long = int(trade["currentUnits"]) > 0
            trade["stopLossOrder"]["price"] = "999999.000" if long else "0.001"


def step_until(trader: Trader, done: Any, limit: int = 400) -> None:
    for _ in range(limit):
        if done():
            return
        step(trader)
    raise AssertionError("the condition never came true")


def refused_duplicates(fake: FakeOanda) -> list[dict[str, Any]]:
    with fake.trade_lock:
        return [t for t in fake.account.transactions if t["type"] == "MARKET_ORDER_REJECT"]


def test_a_fenced_id_whose_reuse_is_found_by_lookup_is_never_sent_again_after_its_stop(
    home: Path, fake: FakeOanda
) -> None:
    """The soak's duplicate orders: a fenced id's reuse fills, its answer is lost, the lookup
    adopts it; once its stop fires, the next entry must carry a new id, not the filled one."""
    fake.lose_orders = 1  # the first order never reaches the account: its id is fenced
    fake.inject(drop=True, path=orders_path(fake), skip=1)  # the reuse fills, its answer is cut
    trader = trader_for(home, fake, max_bars=None)
    run_until(trader, lambda: bool(journal(home, "fill")), limit=1500)
    fenced = client_id_of(order_posts(fake)[0])
    assert client_id_of(order_posts(fake)[1]) == fenced
    fill = journal(home, "fill")[0]
    assert fill["how"] == "lookup" and fill["client_id"] == fenced
    assert trader.reconciler.lost is None  # found by its lookup: the fence has done its work
    stop_out(fake)
    step_until(trader, lambda: bool(journal(home, "trade")))
    assert journal(home, "trade")[0]["trade_id"] == fill["trade_id"]
    sent = len(order_posts(fake))
    step_until(trader, lambda: len(order_posts(fake)) >= sent + 2)
    assert fenced not in [client_id_of(p) for p in order_posts(fake)[sent:]]
    assert refused_duplicates(fake) == []
    assert not [x for x in journal(home, "rejected") if "already" in str(x["reason"]).lower()]
    assert_never_two_positions(fake)
    assert_book_is_the_broker(trader, fake)


def test_a_fence_left_on_an_id_whose_trade_was_booked_and_closed_is_lifted_not_resent(
    home: Path, fake: FakeOanda
) -> None:
    """A state.json whose fence outlived its trade (written by a trader that never lifted it):
    the records show the trade, booked and closed already; it is not booked twice, and the
    next entry carries a new id."""
    first = trader_for(home, fake, max_bars=None)
    run_until(first, lambda: bool(journal(home, "fill")))
    booked = journal(home, "fill")[0]
    stop_out(fake)
    step_until(first, lambda: bool(journal(home, "trade")))
    first.finish("restart")
    path = home / "live" / "state.json"
    state = json.loads(path.read_text())
    state["lost_order"] = {
        "client_id": booked["client_id"], "side": booked["side"], "units": booked["units"],
        "bar": state["last_bar"], "sent_at": time.time() - 60.0, "since_id": None,
    }  # fmt: skip
    path.write_text(json.dumps(state))
    second = trader_for(home, fake, max_bars=None)
    second.start()
    sent = len(order_posts(fake))
    step_until(second, lambda: len(order_posts(fake)) > sent)
    assert client_id_of(order_posts(fake)[sent]) != booked["client_id"]
    assert second.reconciler.lost is None
    assert [x["trade_id"] for x in journal(home, "trade")].count(booked["trade_id"]) == 1
    assert refused_duplicates(fake) == []
    assert_book_is_the_broker(second, fake)


def hold_entries_until_the_order_is_lost(trader: Trader, fake: FakeOanda) -> str:
    """Lose the first order; entries held until it is found not received; its fenced id."""
    fake.lose_orders = 1
    run_until(trader, lambda: trader.reconciler.pending is not None, limit=1500)
    trader.halts["test"] = "held by the test"
    step_until(trader, lambda: trader.reconciler.lost is not None, limit=1500)
    trader.halts.pop("test")
    return client_id_of(order_posts(fake)[0])


def test_a_lost_order_arriving_just_ahead_of_its_reuse_is_adopted_from_the_refusal(
    home: Path, fake: FakeOanda
) -> None:
    """OANDA refuses the reuse (400 CLIENT_TRADE_ID_ALREADY_EXISTS, read from the body's
    orderRejectTransaction): the trader looks the id up at once and adopts its trade."""
    trader = trader_for(home, fake, max_bars=None)
    fenced = hold_entries_until_the_order_is_lost(trader, fake)
    fake.lost_arrive_first = True  # it reaches the account just before the reuse does
    step_until(trader, lambda: bool(journal(home, "fill")))
    rejected = journal(home, "rejected")
    assert [x["reason"] for x in rejected] == ["CLIENT_TRADE_ID_ALREADY_EXISTS"]
    assert rejected[0]["client_id"] == fenced
    lines = journal(home)
    after = lines[next(i for i, x in enumerate(lines) if x["kind"] == "rejected") :]
    fill = next(x for x in after if x["kind"] == "fill")
    assert fill["how"] == "late" and fill["client_id"] == fenced
    assert after.index(fill) < next(i for i, x in enumerate(after) if x["kind"] == "bar")
    assert trader.reconciler.lost is None
    assert len([t for t in every_trade(fake) if t["clientExtensions"]["id"] == fenced]) == 1
    assert_book_is_the_broker(trader, fake)


def test_a_lost_order_that_filled_and_closed_unseen_is_booked_before_its_id_is_reused(
    home: Path, fake: FakeOanda
) -> None:
    """A broker that refuses a client id only while its trade is open would fill the reuse
    too: the trader looks the fenced id up (closed trades included) before it reuses it."""
    fake.reuse_closed_client_ids = True
    trader = trader_for(home, fake, max_bars=None)
    fenced = hold_entries_until_the_order_is_lost(trader, fake)
    lost = fake.lost_orders[0].body["order"]
    manual = open_broker(config_for(home, fake), fake)
    try:  # it arrives late, fills, and its stop closes it between two of the trader's looks
        trade = manual.market_order(int(lost["units"]) // abs(int(lost["units"])),
                                    abs(int(lost["units"])), 1.0 if int(lost["units"]) > 0
                                    else 999.0, fenced).trade  # fmt: skip
        assert trade is not None
        manual.close_trade(trade.trade_id)
    finally:
        manual.close()
    fake.lost_orders.clear()
    sent = len(order_posts(fake))
    step_until(trader, lambda: len(order_posts(fake)) > sent + 1)
    assert fenced not in [client_id_of(p) for p in order_posts(fake)[sent:]]
    assert len([t for t in every_trade(fake) if t["clientExtensions"]["id"] == fenced]) == 1
    late = [x for x in journal(home, "fill") if x["client_id"] == fenced]
    assert [x["how"] for x in late] == ["late"]
    assert [x["trade_id"] for x in journal(home, "trade")].count(trade.trade_id) == 1
    assert trader.reconciler.lost is None
    assert_book_is_the_broker(trader, fake)


def test_a_refused_duplicate_client_id_reads_oandas_reject_reason(
    home: Path, fake: FakeOanda
) -> None:
    broker = open_broker(config_for(home, fake), fake)
    broker.history(5)  # a price exists
    try:
        assert broker.market_order(1, 100, 100.0, "twice-1").filled
        result = broker.market_order(1, 100, 100.0, "twice-1")
    finally:
        broker.close()
    assert not result.filled and result.reason == "CLIENT_TRADE_ID_ALREADY_EXISTS"
    reject = refused_duplicates(fake)[-1]
    assert broker.last_transaction_id == str(reject["id"])  # its lastTransactionID was seen


# ---------------------------------------------------------------- answers it cannot read


@pytest.mark.parametrize("spoil", ["no_fill_time", "garbage"])
def test_an_order_answer_that_cannot_be_read_is_an_unknown_outcome_resolved_by_records(
    home: Path, fake: FakeOanda, spoil: str
) -> None:
    def hook(body: dict) -> dict:
        if spoil == "garbage":
            return {"unexpected": ["a", "list"]}
        del body["orderFillTransaction"]["time"]
        return body

    fake.order_answer_hook = hook
    fake.schema_check = None  # the answer breaks OANDA's description on purpose
    trader = trader_for(home, fake)
    run_until(trader, lambda: bool(journal(home, "fill")))  # no KeyError mid-order
    fake.order_answer_hook = None
    fill = journal(home, "fill")[0]
    assert fill["how"] == "lookup"
    error = journal(home, "error")[0]
    assert error["outcome_unknown"] is True and "could not be read" in error["error"]
    assert len(order_posts(fake)) == 1
    assert_book_is_the_broker(trader, fake)


def test_a_cancel_whose_answer_was_lost_is_found_in_the_transactions(
    home: Path, fake: FakeOanda
) -> None:
    fake.cancel_next_order = "INSUFFICIENT_MARGIN"
    fake.inject(drop=True, path=orders_path(fake))  # carried out (cancelled), answer cut
    trader = trader_for(home, fake)
    run_until(trader, lambda: bool(journal(home, "rejected")))
    rejected = journal(home, "rejected")[0]
    assert rejected["reason"] == "INSUFFICIENT_MARGIN" and rejected["how"] == "records"
    assert trader.reconciler.pending is None and trader.reconciler.lost is None
    cancelled = rejected["client_id"]
    assert not [t for t in every_trade(fake) if t["clientExtensions"]["id"] == cancelled]


@pytest.mark.parametrize("reason", ["MARKET_HALTED", "FIFO_VIOLATION"])
def test_the_trader_journals_a_201_cancel_with_its_reason_and_holds_nothing(
    home: Path, fake: FakeOanda, reason: str
) -> None:
    fake.cancel_next_order = reason
    trader = trader_for(home, fake)
    run_until(trader, lambda: bool(journal(home, "rejected")))
    assert journal(home, "rejected")[0]["reason"] == reason
    assert trader.book.position is None and fake.account.trades == []
    assert trader.reconciler.pending is None


def cancel_reasons() -> list[str]:
    """Every OrderCancelReason of OANDA's published v20 description."""
    if not V20_SPEC.is_file():
        return ["MARKET_HALTED", "INSUFFICIENT_MARGIN", "FIFO_VIOLATION"]
    spec = json.loads(V20_SPEC.read_text())
    return list(spec["definitions"]["OrderCancelReason"]["enum"])


def test_every_201_cancel_reason_is_a_refusal_that_opens_nothing(
    home: Path, fake: FakeOanda
) -> None:
    broker = open_broker(config_for(home, fake), fake)
    broker.history(5)  # a price exists
    try:
        for i, reason in enumerate(cancel_reasons()):
            fake.cancel_next_order = reason
            result = broker.market_order(1, 100, 100.0, f"cancel-{i}")
            assert not result.filled and result.trade is None and result.reason == reason
    finally:
        broker.close()
    assert fake.account.trades == []


# ---------------------------------------------------------------- the book against the broker


def test_a_trade_gone_without_a_record_is_a_mismatch_never_flat(
    home: Path, fake: FakeOanda
) -> None:
    trader = trader_for(home, fake, max_bars=None)
    run_until(trader, lambda: trader.book.position is not None)
    held = trader.book.position
    with fake.trade_lock:
        vanished = fake.account.trades.pop()  # no close, no record: the broker forgot it
    step(trader)
    assert trader.book.position is not None and trader.book.position.trade_id == held.trade_id
    mismatch = [x for x in journal(home, "reconcile") if x.get("event") == "mismatch"][-1]
    assert mismatch["book"]["trade_id"] == held.trade_id and mismatch["broker"] == []
    assert "no record" in mismatch["problems"][0]
    assert "mismatch" in trader.halts
    assert not [x for x in journal(home, "trade") if x["trade_id"] == held.trade_id]
    with fake.trade_lock:
        fake.account.trades.append(vanished)  # the broker's record is back
    step(trader)
    assert "mismatch" not in trader.halts
    assert any(x.get("event") == "mismatch_cleared" for x in journal(home, "reconcile"))


def test_a_trade_nobody_knows_halts_entries_between_bars_with_both_sides_journaled(
    home: Path, fake: FakeOanda
) -> None:
    trader = trader_for(home, fake, max_bars=None)
    trader.start()
    manual = open_broker(config_for(home, fake), fake)
    try:
        assert manual.market_order(-1, 700, 300.0, "by-hand-9").filled
    finally:
        manual.close()
    trader.reconciler.every_seconds = 0.0  # the schedule: due now, no bar needed
    assert trader.reconciler.due()
    trader.reconciler.reconcile(trader.last_bar, new_bar=False)
    mismatch = [x for x in journal(home, "reconcile") if x.get("event") == "mismatch"][-1]
    assert mismatch["book"] is None
    assert [t["client_id"] for t in mismatch["broker"]] == ["by-hand-9"]
    assert "mismatch" in trader.halts and trader.bars_done == 0
    blocks = trader._blocks(1, trader.last_bar, trader.broker.quote())
    assert any("book and broker differ" in b for b in blocks)


def test_a_broker_error_asks_for_a_comparison_before_the_schedule(
    home: Path, fake: FakeOanda
) -> None:
    trader = trader_for(home, fake, "live.oanda.price_stream=false", max_bars=None)
    trader.start()
    assert not trader.reconciler.due()
    fake.inject(status=500, times=10, path=f"/v3/accounts/{fake.account.id}/pricing")
    trader._quote()  # fails after the client's retry
    assert trader.reconciler.due()
    fake.clear_faults()
    before = len(fake.requests_to(f"/v3/accounts/{fake.account.id}/openTrades"))
    trader.reconciler.reconcile(trader.last_bar, new_bar=False)
    assert len(fake.requests_to(f"/v3/accounts/{fake.account.id}/openTrades")) == before + 1
    assert not trader.reconciler.due()


# ---------------------------------------------------------------- the broker's numbers


def test_trades_and_halts_carry_the_brokers_pnl_and_financing(home: Path, fake: FakeOanda) -> None:
    fake.financing = -1.25
    trader = trader_for(home, fake, max_bars=None)
    run_until(trader, lambda: len(journal(home, "trade")) >= 2, limit=1500)
    trades = journal(home, "trade")
    for trade in trades:
        assert trade["financing"] == pytest.approx(-1.25)
        side, pip = trade["side"], 0.01
        broker_pips = side * (trade["exit_fill"] - trade["entry_fill"]) / pip
        assert trade["broker_pips"] == pytest.approx(broker_pips)
        assert trade["broker_pl"] == pytest.approx(broker_pips * pip * trade["units"], abs=1e-3)
        assert trade["pips"] != pytest.approx(trade["broker_pips"])  # the model's, kept beside
    equity = trader.risk.state.equity_pips
    assert equity == pytest.approx(sum(t["broker_pips"] for t in trades))
    fills = [x for x in journal(home, "fill") if x["how"] == "fill"]
    for fill in fills:  # against the decision bar's close, paid positive; the fake's spread
        paid = fill["side"] * (fill["fill_price"] - fill["bar_close"]) / 0.01
        assert fill["slippage_pips"] == pytest.approx(paid, abs=1e-3)
        assert fill["spread_pips"] == pytest.approx(2.0)
    accounting = json.loads((home / "live" / "state.json").read_text())["accounting"]
    assert accounting["buy"]["fills"] + accounting["sell"]["fills"] >= len(fills)


def test_the_day_is_summed_up_in_the_journal_when_the_fx_day_rolls(
    home: Path, fake: FakeOanda
) -> None:
    frame = fake.candle_source.frames["GBP_JPY"]
    ts = pd.DatetimeIndex(frame["ts"])
    roll = next(
        i
        for i in range(1000, len(ts))
        if ts[i].day_of_week < 4 and ts[i].hour == 20 and ts[i].minute == 40
    )
    fake.replay_clock.now = ts[roll]  # 20 minutes before the FX day rolls (21:00 UTC)
    trader = trader_for(home, fake, max_bars=40)
    assert trader.run() == 0
    days = journal(home, "day")
    assert len(days) == 1
    day = days[0]
    assert set(day) >= {"trading_day", "trades", "model_pips", "broker_pips", "broker_pl",
                        "financing", "slippage"}  # fmt: skip
    assert set(day["slippage"]) == {"buy", "sell"}


# ---------------------------------------------------------------- stopping and request limits


def test_sigterm_is_honoured_within_seconds_while_the_broker_is_down(
    home: Path, fake: FakeOanda
) -> None:
    env = micro_env(
        home,
        OANDA_TOKEN=fake.token,
        OANDA_ACCOUNT=fake.account.id,
        MICRO_LIVE__OANDA__API_URL=fake.api_url,
        MICRO_LIVE__OANDA__STREAM_URL=fake.stream_url,
        MICRO_LIVE__OANDA__MAX_RETRIES="6",
        MICRO_LIVE__OANDA__BACKOFF_SECONDS="8",  # 8, 16, 32 … s between retries
        MICRO_LIVE__POLL_SECONDS="0.05",
    )
    proc = subprocess.Popen(
        live_command("--broker", "oanda"), cwd=home, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(journal(home, "bar")) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        fake.inject(status=503, times=10_000)  # the broker goes down
        served = fake.pending_faults()
        while fake.pending_faults() >= served and time.monotonic() < deadline:
            time.sleep(0.05)  # a request failed: the client is in its back-off now
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        sent, sent_wall = time.monotonic(), time.time()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    stop = journal(home)[-1]
    assert stop["kind"] == "stop"
    honoured = pd.Timestamp(stop["time"]).timestamp() - sent_wall
    assert honoured < 3.0, f"the trader took {honoured:.1f} s to stop during the retry back-off"
    assert took < 10.0, f"the process took {took:.1f} s to exit (Docker's stop grace is 10 s)"


def test_requests_and_new_connections_keep_to_oandas_limits(home: Path, fake: FakeOanda) -> None:
    broker = open_broker(config_for(home, fake, "live.oanda.max_retries=20"), fake)
    try:
        fake.inject(drop=True, times=5, path=f"/v3/accounts/{fake.account.id}/openTrades")
        started = time.monotonic()
        for _ in range(130):
            broker.open_trades()  # the first one reconnects after each dropped answer
        took = time.monotonic() - started
    finally:
        broker.close()

    def busiest(times: list[float], window: float) -> int:
        return max(sum(1 for t in times if s <= t < s + window) for s in times)

    # seen by the server, whose accept loop adds up to ~0.1 s of jitter, as a network would
    assert busiest(fake.request_times, 1.0) <= 100
    assert busiest(fake.connection_times, 1.0) <= 2
    assert len(fake.connection_times) >= 6  # every dropped answer cost a new connection
    assert took >= 2.0  # 6 connections at 2 a second
