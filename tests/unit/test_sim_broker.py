"""SimBroker: bid/ask around mid, one bar per poll, and stop fills exactly as the env's."""

from __future__ import annotations

import numpy as np
import pytest

from micro.env.costs import Costs
from micro.env.fills import quoted_stop, stop_level
from micro.live.book import Book
from micro.live.sim import SimBroker

PIP = 0.01
T0 = 1_700_000_040  # a minute boundary (s UTC)


def broker(opens, highs, lows, closes, first_replay: int = 1, spread: float = 4.0) -> SimBroker:
    n = len(closes)
    ts = T0 + 60 * np.arange(n, dtype=np.int64)
    arrays = [np.asarray(a, dtype=np.float64) for a in (opens, highs, lows, closes)]
    return SimBroker("GBP_JPY", PIP, spread, ts, *arrays, np.arange(first_replay, n))


def test_the_clock_releases_one_bar_per_poll_after_the_history() -> None:
    sim = broker([150.0] * 5, [150.1] * 5, [149.9] * 5, [150.0, 150.01, 150.02, 150.03, 150.04], 2)
    assert [c.ts for c in sim.history(10)] == [T0, T0 + 60]
    assert [c.close for c in sim.candles_since(T0 + 60)] == [150.02]
    assert [c.close for c in sim.candles_since(T0 + 120)] == [150.03]
    assert [c.close for c in sim.candles_since(T0 + 180)] == [150.04]
    assert sim.finished() and sim.candles_since(T0 + 240) == []


def test_a_round_trip_pays_exactly_the_spread_at_mid_plus_minus_half() -> None:
    sim = broker([150.0] * 3, [150.5] * 3, [149.9] * 3, [150.00, 150.10, 150.30])
    sim.candles_since(T0)
    quote = sim.quote()
    assert quote.bid == pytest.approx(150.08) and quote.ask == pytest.approx(150.12)
    assert quote.time == T0 + 2 * 60 and quote.tradeable
    result = sim.market_order(1, 1000, 149.0, "micro-1-B")
    assert result.filled and result.trade.price == pytest.approx(150.12)
    sim.candles_since(T0 + 60)
    exit_fill = sim.close_trade(result.trade.trade_id).price
    assert (exit_fill - result.trade.price) / PIP == pytest.approx(20.0 - 4.0)


def test_a_client_id_is_never_filled_twice_and_can_be_looked_up() -> None:
    sim = broker([150.0] * 3, [150.5] * 3, [149.5] * 3, [150.0] * 3)
    sim.candles_since(T0)
    first = sim.market_order(-1, 1000, 151.0, "micro-9-S")
    trade = first.trade
    sim.close_trade(trade.trade_id)
    again = sim.market_order(-1, 1000, 151.0, "micro-9-S")
    assert not again.filled and again.reason == "CLIENT_TRADE_ID_ALREADY_EXISTS"
    found = sim.trade_by_client_id("micro-9-S")
    assert found is not None and found.state == "CLOSED" and found.trade_id == trade.trade_id
    assert sim.trade_by_client_id("nobody") is None


@pytest.mark.parametrize(
    ("side", "bar", "exit_mid"),
    [
        (1, (150.00, 150.05, 149.70, 149.80), 149.70),  # long: the low reaches the stop
        (1, (149.60, 149.65, 149.50, 149.55), 149.60),  # long: gapped below, fills at the open
        (-1, (150.00, 150.30, 149.95, 150.10), 150.30),  # short: the high reaches the stop
        (1, (150.00, 150.05, 149.71, 149.80), None),  # one pip short of the stop: still open
    ],
)
def test_stops_trigger_on_the_exit_side_where_the_env_stops_on_the_mid(
    side: int, bar: tuple, exit_mid
) -> None:
    o, h, low, c = bar
    sim = broker([150.0, o], [150.0, h], [150.0, low], [150.0, c], first_replay=0)
    sim.candles_since(0)  # the decision bar (row 0): its close, 150.00, is the entry mid
    half_spread = 0.02  # 4 pips of spread
    stop = quoted_stop(side, stop_level(side, 150.0, 30.0, PIP), half_spread)  # as the trader
    entry = sim.market_order(side, 1000, stop, "micro-0")
    sim.candles_since(T0)
    trade = sim.trade_by_client_id("micro-0")
    book = Book(PIP, Costs(4.0, 0.0, 0.0), 30.0)
    book.open(side, 1000, sim.history(2)[0], entry.trade.trade_id, "micro-0", entry.trade.price)
    expected = book.stop_exit(sim.history(2)[1])
    assert expected == exit_mid
    if exit_mid is None:
        assert trade.state == "OPEN"
    else:
        assert trade.state == "CLOSED" and trade.close_reason == "stop_loss"
        assert trade.close_price == pytest.approx(exit_mid - side * 0.02)  # sold at the bid
