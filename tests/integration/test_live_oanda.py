"""The live trader against the fake OANDA v20 server: real HTTP on 127.0.0.1, real faults.

Most tests run the real `Trader` + `OandaBroker` in-process (fast, inspectable); the start-up
errors, SIGTERM and the token checks run the real `micro live` command as a subprocess. The fake's
replay clock moves one minute per candles poll, so the trader runs as fast as it can.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from micro.config import Config, load_config
from micro.data.store import connect, get_meta, read_candles
from micro.errors import UserError
from micro.features.scaling import FeatureScaling
from micro.home import Home
from micro.live.oanda import OandaBroker
from micro.live.trader import Trader
from micro.model.checkpoint import save_checkpoint
from micro.model.networks import StochasticMuZeroNet
from tests.conftest import micro_env, run_micro
from tests.e2e.test_live_parity import live_command
from tests.fakes import FakeOanda
from tests.fakes.oanda_trading import _close
from tests.helpers import TINY_MODEL, copy_home

TOML = (
    TINY_MODEL
    + """
[mcts]
simulations = 3
[validation]
simulations = 3
[live]
poll_seconds = 0.02
warmup_bars = 280  # at least the 271 bars the default features need (history + window - 1)
[live.oanda]
timeout_seconds = 1.0
max_retries = 1
backoff_seconds = 0.0
[risk]
circuit_breaker_errors = 3
circuit_open_seconds = 0.3
daily_loss_limit_pips = 100000.0
max_drawdown_pips = 100000.0
weekly_close_buffer_minutes = 0
"""
)
START_ROW = 3000  # a Wednesday afternoon of the synthetic market


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Batch-1 decisions, as `micro live` runs them: threads only add contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("live_oanda")
    assert run_micro(home, "data", "synth", "--days", "8", "--seed", "3").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(TOML)
    config = load_config(home, environ={})
    torch.manual_seed(1)  # a net that trades often
    net = StochasticMuZeroNet(config.model, config.features.window)
    save_checkpoint(home / "checkpoints" / "best.pth", net, config, episode=3, learner_step=9)
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    return copy_home(template, tmp_path)


@pytest.fixture
def fake(home: Path):
    con = connect(home / "data" / "market.duckdb", read_only=True)
    try:
        frame = read_candles(con, "GBP_JPY")
    finally:
        con.close()
    with FakeOanda(candles=frame) as server:
        server.replay(pd.Timestamp(frame["ts"].iloc[START_ROW]))
        try:
            yield server
        finally:
            # A test that plays a crash leaves its trader unfinished: close what it opened.
            while OPEN_BROKERS:
                OPEN_BROKERS.pop().close()
    assert server.errors == [], server.errors


OPEN_BROKERS: list[OandaBroker] = []


def open_broker(config: Config, fake: FakeOanda) -> OandaBroker:
    """An OandaBroker on the fake, closed (its price stream stopped) when the test ends."""
    broker = OandaBroker(config, fake.token, fake.account.id)
    OPEN_BROKERS.append(broker)
    return broker


def config_for(home: Path, fake: FakeOanda, *sets: str) -> Config:
    urls = [f"live.oanda.api_url={fake.api_url}", f"live.oanda.stream_url={fake.stream_url}"]
    return load_config(home, [*urls, *sets], environ={})


def trader_for(home: Path, fake: FakeOanda, *sets: str, max_bars: int = 40) -> Trader:
    from micro.live.models import ModelSlot

    config = config_for(home, fake, *sets)
    con = connect(home / "data" / "market.duckdb", read_only=True)
    try:
        scaling = FeatureScaling.from_dict(get_meta(con, "feature_scaling"))
    finally:
        con.close()
    broker = open_broker(config, fake)
    models = ModelSlot(home / "checkpoints" / "best.pth", config)
    return Trader(Home(home), config, broker, models, scaling, max_bars=max_bars)


def journal(home: Path, kind: str | None = None) -> list[dict]:
    path = home / "live" / "journal.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [x for x in lines if kind is None or x["kind"] == kind]


def order_posts(fake: FakeOanda) -> list:
    return [r for r in fake.requests_to("/v3/accounts/") if r.method == "POST"]


def run_until(trader: Trader, done, limit: int = 200) -> None:
    """Start the trader and feed it bars until `done()` or `limit` bars."""
    trader.start()
    for _ in range(limit):
        for bar in trader.clock.poll():
            trader.on_bar(bar)
        if done():
            return
    raise AssertionError("the condition never came true")


# ---------------------------------------------------------------- orders


def test_every_entry_carries_a_stop_loss_and_a_client_id_at_jpy_precision(
    home: Path, fake: FakeOanda
) -> None:
    assert trader_for(home, fake, max_bars=60).run() == 0
    posts = order_posts(fake)
    assert posts, "the trader should have entered at least once"
    closes = {b["bar"]["ts"]: b["bar"]["close"] for b in journal(home, "bar")}
    for post, line in zip(posts, journal(home, "order"), strict=True):
        order = post.body["order"]
        assert order["type"] == "MARKET" and order["instrument"] == "GBP_JPY"
        assert re.fullmatch(r"micro-\d+-[BS]", order["tradeClientExtensions"]["id"])
        # the env's stop (decision close ∓ 30 pips) moved out by the fake's half spread (1 pip)
        # onto the side OANDA triggers it on, at the instrument's 3 decimals
        side = line["side"]
        expected = closes[line["bar_ts"]] - side * (0.300 + 0.010)
        assert order["stopLossOnFill"]["price"] == f"{expected:.3f}"
    fills = journal(home, "fill")
    assert len(fills) == len(posts)
    state = json.loads((home / "live" / "state.json").read_text())
    open_ids = [t["id"] for t in fake.account.trades]
    assert (state["position"]["trade_id"] if state["position"] else None) in (open_ids or [None])


def test_an_order_timeout_is_looked_up_by_client_id_and_never_entered_twice(
    home: Path, fake: FakeOanda
) -> None:
    fake.inject(delay=1.6, path=f"/v3/accounts/{fake.account.id}/orders")  # > 1 s timeout
    trader = trader_for(home, fake)
    run_until(trader, lambda: any(x.get("found") for x in journal(home, "reconcile")), 400)
    posts = order_posts(fake)
    ids = [p.body["order"]["tradeClientExtensions"]["id"] for p in posts]
    assert len(ids) == 1, ids
    first = fake.requests.index(posts[0])
    after = [r for r in fake.requests[first + 1 :] if r.method == "GET"]
    assert after[0].path.endswith(f"/trades/@{ids[0]}")  # the lookup comes before anything
    assert journal(home, "error")[0]["outcome_unknown"] is True
    fills = journal(home, "fill")
    assert [(f["how"], f["client_id"]) for f in fills] == [("lookup", ids[0])]
    assert len(fake.account.trades) + len(fake.closed_trades) == 1


def test_a_dropped_order_answer_adopts_the_trade_found_by_client_id(
    home: Path, fake: FakeOanda
) -> None:
    fake.inject(drop=True, path=f"/v3/accounts/{fake.account.id}/orders")
    trader = trader_for(home, fake)
    run_until(trader, lambda: bool(journal(home, "fill")))
    fill = journal(home, "fill")[0]
    assert fill["how"] == "lookup"
    assert len(order_posts(fake)) == 1
    assert fake.account.trades[0]["id"] == fill["trade_id"]
    assert trader.book.position is not None and trader.book.position.trade_id == fill["trade_id"]


def test_an_order_cancelled_inside_a_201_is_journaled_and_opens_nothing(
    home: Path, fake: FakeOanda
) -> None:
    fake.cancel_next_order = "INSUFFICIENT_MARGIN"
    trader = trader_for(home, fake)
    run_until(trader, lambda: bool(journal(home, "rejected")))
    assert journal(home, "rejected")[0]["reason"] == "INSUFFICIENT_MARGIN"
    assert trader.book.position is None and fake.account.trades == []


# ---------------------------------------------------------------- faults and risk


def test_a_burst_of_5xx_opens_the_breaker_and_half_open_recovers(
    home: Path, fake: FakeOanda
) -> None:
    trader = trader_for(home, fake, "live.oanda.max_retries=0", max_bars=30)
    fake.inject(status=503, times=3, skip=2)  # start-up's history and open trades pass
    assert trader.run() == 0
    events = [x.get("event") for x in journal(home) if x["kind"] in ("risk", "error")]
    opened = events.index("circuit_open")
    assert events[:opened].count(None) >= 3  # the three errors (error lines have no event)
    assert "circuit_closed" in events[opened:]
    kinds = [x["kind"] for x in journal(home)]
    start = kinds.index("risk", kinds.index("error"))
    between = journal(home)[start : start + events[opened:].index("circuit_closed") + 1]
    assert not [x for x in between if x["kind"] == "order"]
    assert trader.bars_done == 30


def test_429_is_waited_out_without_an_error(home: Path, fake: FakeOanda) -> None:
    fake.inject(status=429, retry_after=0.05, path="/v3/instruments", skip=3)
    assert trader_for(home, fake, max_bars=10).run() == 0
    assert journal(home, "error") == []
    assert len(journal(home, "bar")) == 10


def test_market_closed_means_idle_and_no_orders(home: Path, fake: FakeOanda) -> None:
    fake.tradeable = False
    assert trader_for(home, fake, max_bars=20).run() == 0
    bars = journal(home, "bar")
    assert bars and all(b.get("decision") is None for b in bars)
    assert order_posts(fake) == []
    assert json.loads((home / "live" / "state.json").read_text())["market_open"] is False


@pytest.mark.parametrize("hook", ["stale", "nan"])
def test_a_stale_or_nan_price_never_leads_to_an_order(
    home: Path, fake: FakeOanda, hook: str
) -> None:
    def spoil(price: dict) -> dict:
        if hook == "stale":
            price["time"] = "2021-01-01T00:00:00.000000000Z"
        else:
            price["bids"] = [{"price": "NaN", "liquidity": 1}]
        return price

    fake.price_hook = spoil
    assert trader_for(home, fake, max_bars=40).run() == 0
    assert order_posts(fake) == []
    blocked = [x for x in journal(home, "risk") if x.get("event") == "order_blocked"]
    assert blocked
    word = "stale price" if hook == "stale" else "unusable price"
    assert all(any(word in r for r in x["reasons"]) for x in blocked)


def test_the_daily_loss_limit_halts_entries_until_the_next_day(home: Path, fake: FakeOanda) -> None:
    trader = trader_for(home, fake, "risk.daily_loss_limit_pips=2.0", max_bars=80)
    assert trader.run() == 0
    assert any(x.get("event") == "daily_loss_halt" for x in journal(home, "risk"))
    assert len(order_posts(fake)) == 1  # the entry that paid the spread, then no more
    blocked = [x for x in journal(home, "risk") if x.get("event") == "order_blocked"]
    assert all("daily loss" in " ".join(x["reasons"]) for x in blocked if x["action"] != "CLOSE")


def test_the_kill_switch_flattens_and_halts(home: Path, fake: FakeOanda) -> None:
    trader = trader_for(home, fake)
    run_until(trader, lambda: trader.book.position is not None)
    done = subprocess.run(
        live_command("kill", "--reason", "test"), cwd=home, env=micro_env(home),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    posts_before = len(order_posts(fake))
    for _ in range(20):
        for bar in trader.clock.poll():
            trader.on_bar(bar)
    trader.finish("test")
    assert fake.account.trades == []
    assert any(r.method == "PUT" and r.path.endswith("/close") for r in fake.requests)
    assert len(order_posts(fake)) == posts_before
    assert journal(home, "trade")[-1]["closed_by"] == "kill"
    assert json.loads((home / "live" / "state.json").read_text())["killed"] is True


# ---------------------------------------------------------------- restarts


def test_a_restart_in_a_position_adopts_it_from_the_journal(home: Path, fake: FakeOanda) -> None:
    first = trader_for(home, fake)
    run_until(first, lambda: first.book.position is not None)
    held = first.book.position
    first.finish("test")
    posts = len(order_posts(fake))
    second = trader_for(home, fake, max_bars=1)
    second.start()
    assert second.book.position is not None
    assert second.book.position.trade_id == held.trade_id
    assert second.book.position.entry_price == held.entry_price
    assert len(order_posts(fake)) == posts


def test_a_position_its_stop_closed_while_the_trader_was_stopped_is_booked_at_the_next_start(
    home: Path, fake: FakeOanda
) -> None:
    """The soak's SIGTERM race, on purpose: state.json holds a trade the broker's stop closes
    before the trader reads another bar; the next start books it from the broker's record."""
    first = trader_for(home, fake)
    run_until(first, lambda: first.book.position is not None)
    held = first.book.position
    first.finish("test")
    assert json.loads((home / "live" / "state.json").read_text())["position"]["trade_id"] == (
        held.trade_id
    )
    with fake.trade_lock:
        trade = next(t for t in fake.account.trades if t["id"] == held.trade_id)
        _close(fake, trade, float(trade["stopLossOrder"]["price"]), "STOP_LOSS_ORDER")
    posts = len(order_posts(fake))
    second = trader_for(home, fake, max_bars=1)
    second.start()
    assert second.book.position is None
    assert [
        x["closed_while_away"] for x in journal(home, "reconcile") if "closed_while_away" in x
    ] == [held.trade_id]
    booked = journal(home, "trade")[-1]
    assert booked["trade_id"] == held.trade_id and booked["closed_by"] == "stop_loss"
    assert json.loads((home / "live" / "state.json").read_text())["position"] is None
    assert len(order_posts(fake)) == posts


def test_an_unknown_open_trade_at_start_stops_trading_unless_adoption_is_allowed(
    home: Path, fake: FakeOanda
) -> None:
    config = config_for(home, fake)
    manual = open_broker(config, fake)
    manual.history(5)  # moves the clock so a price exists
    assert manual.market_order(1, 500, 100.0, "by-hand-1").filled
    with pytest.raises(UserError, match="does not know"):
        trader_for(home, fake).start()
    adopting = trader_for(home, fake, "live.adopt_unknown_positions=true")
    adopting.start()
    assert adopting.book.position is not None and adopting.book.position.units == 500
    assert journal(home, "fill")[-1]["how"] == "adopted_unknown"


# ---------------------------------------------------------------- the real command


def test_oanda_without_a_token_is_one_clear_line_and_exit_2(home: Path) -> None:
    done = subprocess.run(
        live_command("--broker", "oanda"), cwd=home, env=micro_env(home),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "OANDA_TOKEN" in done.stderr


def test_sigterm_exits_0_leaves_the_stop_at_the_broker_and_writes_no_token(
    home: Path, fake: FakeOanda
) -> None:
    fake.token = "s3cret-token-value-123"
    env = micro_env(
        home,
        OANDA_TOKEN=fake.token,
        OANDA_ACCOUNT=fake.account.id,
        MICRO_LIVE__OANDA__API_URL=fake.api_url,
        MICRO_LIVE__OANDA__STREAM_URL=fake.stream_url,
        MICRO_LIVE__POLL_SECONDS="0.05",
    )
    proc = subprocess.Popen(
        live_command("--broker", "oanda"), cwd=home, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not fake.account.trades and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert fake.account.trades, "the trader never entered"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    open_trades = fake.account.trades
    state = json.loads((home / "live" / "state.json").read_text())
    if open_trades:  # the stop rests at the broker and the state knows the position
        assert open_trades[0]["stopLossOrder"]["state"] == "PENDING"
        assert state["position"]["trade_id"] == open_trades[0]["id"]
    assert journal(home)[-1]["kind"] == "stop"
    assert fake.token not in out + err
    for path in Path(home).rglob("*"):
        if path.is_file() and path.suffix in ("", ".json", ".jsonl", ".log", ".toml"):
            assert fake.token not in path.read_text(errors="replace"), path
    assert os.environ.get("OANDA_TOKEN") != fake.token


def test_an_idle_trader_keeps_its_state_fresh_for_the_health_check(
    home: Path, fake: FakeOanda
) -> None:
    import threading

    from micro.monitoring.health import check
    from tests.helpers import wait_for

    fake.now = pd.Timestamp(fake.replay_clock.now)  # the market stops printing bars (a weekend)
    trader = trader_for(home, fake, "live.poll_seconds=0.05", max_bars=None)
    runner = threading.Thread(target=trader.run, daemon=True)
    runner.start()
    state = home / "live" / "state.json"
    try:
        wait_for(state.exists, timeout=60)
        first = json.loads(state.read_text())["updated_unix"]
        wait_for(lambda: json.loads(state.read_text())["updated_unix"] > first + 0.5, timeout=20)
        assert journal(home, "bar") == []  # nothing to decide on, yet alive and saying so
        result = check(Home(home), trader.config, "live", max_age=5.0)
        assert result.up, result.reason
    finally:
        trader.request_stop()
        runner.join(timeout=30)
    assert not runner.is_alive()
