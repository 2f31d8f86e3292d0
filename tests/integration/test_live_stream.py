"""The OANDA pricing stream against the fake v20 server: quotes, drops, silence, REST fallback.

Real HTTP on 127.0.0.1: the fake streams PRICE/HEARTBEAT lines and spoils connections on demand
(`fake.stream_fault("drop" | "silent")`, or a 503 injected on the stream path). The stream's
waits are short here (heartbeats every 0.1 s, backoff from 0.1 s) so each test takes seconds.
"""

# ruff: noqa: F811  (the fixtures imported from test_live_oanda are parameters here by name)
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from micro.live.oanda import OandaBroker
from tests.fakes import FakeOanda
from tests.integration.test_live_oanda import (  # noqa: F401  (fixtures used by name)
    config_for,
    fake,
    home,
    journal,
    one_torch_thread,
    open_broker,
    run_until,
    template,
    trader_for,
)

FAST = (
    "live.oanda.stream_timeout_seconds=0.5",
    "live.oanda.stream_backoff_seconds=0.1",
    "live.oanda.stream_max_backoff_seconds=2.0",
)


@pytest.fixture(autouse=True)
def quick_heartbeats(fake: FakeOanda) -> None:
    fake.stream_heartbeat_seconds = 0.1


def wait_for(condition: Callable[[], object], seconds: float = 15.0) -> None:
    """Poll `condition` until true; fail after `seconds` (a bound, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("the condition never came true")


def broker_for(home: Path, fake: FakeOanda, *sets: str) -> OandaBroker:
    broker = open_broker(config_for(home, fake, *FAST, *sets), fake)
    broker.history(5)  # moves the replay clock past a completed bar: a price exists
    return broker


def rest_pricing(fake: FakeOanda) -> list:
    return [r for r in fake.requests_to("/v3/accounts/") if r.path.endswith("/pricing")]


def test_quotes_arrive_from_the_stream_without_asking_rest(home: Path, fake: FakeOanda) -> None:
    broker = broker_for(home, fake)
    try:
        broker.start_stream()
        wait_for(lambda: broker.stream.fresh() is not None)
        asked = len(rest_pricing(fake))
        quote = broker.quote()
        assert broker.quote_source == "stream"
        assert len(rest_pricing(fake)) == asked
        rest = broker._rest_quote()  # the same instant at the fake: the same price
        assert (quote.bid, quote.ask, quote.tradeable) == (rest.bid, rest.ask, rest.tradeable)
        assert quote.usable() and quote.ask > quote.bid
        stream_request = [r for r in fake.requests if r.path.endswith("/pricing/stream")][0]
        assert stream_request.query["instruments"] == "GBP_JPY"
        assert broker.connection()["state"] == "connected"
    finally:
        broker.close()
    assert broker.stream.state == "stopped"


def test_heartbeats_keep_a_quiet_stream_alive(home: Path, fake: FakeOanda) -> None:
    broker = broker_for(home, fake)  # the replay clock stands still: only heartbeats flow
    try:
        broker.start_stream()
        wait_for(lambda: broker.stream.fresh() is not None)
        time.sleep(1.5)  # three stream timeouts of heartbeats only
        assert len(fake.stream_connects) == 1
        assert broker.stream.fresh() is not None and broker.stream.reconnects == 0
    finally:
        broker.close()


def test_a_dropped_stream_reconnects_with_exponential_backoff(
    home: Path,
    fake: FakeOanda,
) -> None:
    fake.stream_fault("drop", times=3)
    broker = broker_for(home, fake)
    try:
        broker.start_stream()
        wait_for(lambda: len(fake.stream_connects) == 4 and broker.stream.fresh() is not None)
        assert broker.stream.delays == [0.1, 0.2, 0.4]  # doubling from the first delay
        connects = fake.stream_connects
        gaps = [b - a for a, b in zip(connects, connects[1:], strict=False)]
        assert all(gap >= delay for gap, delay in zip(gaps, broker.stream.delays, strict=True))
        assert gaps[-1] > gaps[0]  # the spacing grows
        status = broker.connection()
        assert status["state"] == "connected" and status["reconnects"] == 3
        assert "connection lost" in status["last_error"]
        assert broker.quote() and broker.quote_source == "stream"
    finally:
        broker.close()


def test_the_reconnect_delay_is_capped(home: Path, fake: FakeOanda) -> None:
    fake.stream_fault("drop", times=5)
    broker = broker_for(home, fake, "live.oanda.stream_max_backoff_seconds=0.25")
    try:
        broker.start_stream()
        wait_for(lambda: len(fake.stream_connects) == 6 and broker.stream.fresh() is not None)
        assert broker.stream.delays == [0.1, 0.2, 0.25, 0.25, 0.25]
    finally:
        broker.close()


def test_a_silent_stream_is_detected_and_reconnected(home: Path, fake: FakeOanda) -> None:
    fake.stream_fault("silent")
    broker = broker_for(home, fake)
    try:
        broker.start_stream()
        assert broker.stream.fresh() is None  # connected, but nothing said: no stream price
        broker.quote()
        assert broker.quote_source == "rest"
        wait_for(lambda: len(fake.stream_connects) == 2 and broker.stream.fresh() is not None)
        status = broker.connection()
        assert status["reconnects"] == 1
        assert "no line" in status["last_error"]
    finally:
        broker.close()


def test_while_the_stream_is_down_the_trader_decides_on_rest_prices_and_journals_it(
    home: Path,
    fake: FakeOanda,
) -> None:
    fake.inject(status=503, times=10_000, path=f"/v3/accounts/{fake.account.id}/pricing/stream")
    trader = trader_for(home, fake, *FAST, max_bars=400)
    run_until(trader, lambda: len([b for b in journal(home, "bar") if b.get("decision")]) >= 10)
    decided = [b for b in journal(home, "bar") if b.get("decision")]
    assert {b["price_source"] for b in decided} == {"rest"}
    assert len(rest_pricing(fake)) >= len(decided)
    assert fake.requests_to(f"/v3/accounts/{fake.account.id}/orders")  # it still trades
    states = [x["stream"]["state"] for x in journal(home, "connection")]
    assert "reconnecting" in states and "connected" not in states
    saved = json.loads((home / "live" / "state.json").read_text())
    assert saved["connection"]["stream"]["state"] == "reconnecting"
    assert saved["connection"]["stream"]["reconnects"] >= 1
    assert "503" in saved["connection"]["stream"]["last_error"]

    fake.clear_faults()  # the stream comes back: decisions move to its prices
    # The first stream price can reach a bar before the connection line is journaled (the
    # stream thread reports its state, the trader's loop journals it): wait for both.
    run_until_more(
        trader,
        lambda: (
            journal(home, "bar")[-1].get("price_source") == "stream"
            and journal(home, "connection")[-1]["stream"]["state"] == "connected"
        ),
    )
    trader.finish("test")


def run_until_more(trader, done, limit: int = 400) -> None:
    """Feed an already started trader bars until `done()` (the stream reconnects meanwhile)."""
    for _ in range(limit):
        for bar in trader.clock.poll():
            trader.on_bar(bar)
        if done():
            return
        time.sleep(0.01)
    raise AssertionError("the condition never came true")


def test_the_token_appears_in_no_file_or_output(
    home: Path,
    fake: FakeOanda,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.token = "s3cret-stream-token-987"
    fake.stream_fault("drop", times=2)
    caplog.set_level(logging.DEBUG)
    trader = trader_for(home, fake, *FAST, max_bars=400)
    run_until(
        trader,
        lambda: (
            trader.broker.stream.reconnects >= 2 and len(trader.journal.lines("connection")) >= 2
        ),
    )
    assert trader.broker.connection()["state"] == "connected"  # so the token was sent (in a header)
    trader.finish("test")
    out, err = capsys.readouterr()
    texts = [out, err, caplog.text, repr(trader.broker), repr(trader.broker.stream)]
    texts += [json.dumps(trader.broker.connection())]
    for path in Path(home).rglob("*"):
        if path.is_file() and path.suffix in ("", ".json", ".jsonl", ".log", ".toml"):
            texts.append(path.read_text(errors="replace"))
    assert all(fake.token not in text for text in texts)
