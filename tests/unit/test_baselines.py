"""Baselines on the agent's sessions: matched random-entry traders, MA crossover, buy-and-hold."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from micro.config import Config, replace
from micro.env.actions import BUY, CLOSE, FLAT, HOLD, SELL
from micro.env.trades import EXIT_AGENT, EXIT_STOP_LOSS, empty_trades
from micro.env.trading import Observation, TradingEnv, run_sessions
from micro.validation.baselines import (
    baselines_report,
    buy_and_hold,
    draw_planned_holding,
    moving_average_crossover,
    planned_holding_survival,
    random_entry_percentile,
    random_traders,
    simple_moving_average,
)
from tests.unit.env_markets import coin_flipper, hand_market, random_walk_market

CONFIG = Config()
NO_STOP = replace(CONFIG, **{"env.use_stop_loss": False})
L = 120  # session bars


def market_and_starts(sessions: int = 12, seed: int = 0):
    market = random_walk_market(sessions * L + 50, L, seed=seed)
    return market, np.arange(sessions, dtype=np.int64) * L + 50


@pytest.mark.parametrize("config", [CONFIG, NO_STOP], ids=["stop", "no_stop"])
def test_random_traders_match_the_agents_count_holding_times_and_sides_per_session(
    config: Config,
) -> None:
    market, starts = market_and_starts()
    agent = run_sessions(market, config, starts, coin_flipper(1))
    assert agent.size > 20

    traders = random_traders(market, config, starts, agent, runs=50, seed=3)

    by_session = Counter(agent["session"].tolist())
    for r in range(50):
        assert Counter(traders.sides[r].tolist()) == Counter(agent["side"].tolist())
        entry, slot = traders.entry_rows[r], traders.slot_bars[r]
        for start, count in by_session.items():
            mine = traders.sessions == start
            assert mine.sum() == count
            assert sorted(slot[mine]) == sorted(agent["bars_held"][agent["session"] == start])
            e, h = entry[mine], slot[mine]
            assert np.all(e >= start) and np.all(e + h <= start + L - 1)  # inside the session
            assert np.all(e[1:] >= e[:-1] + h[:-1])  # slots one after another, never overlapping
    assert np.all(traders.bars_held <= traders.holding_bars)
    assert np.all(traders.holding_bars >= traders.slot_bars)  # a plan is never below the slot
    exits = traders.entry_rows + traders.bars_held
    assert np.all(exits <= traders.sessions[None, :] + L - 1)  # nothing outlives its session
    if not config.env.use_stop_loss:
        assert traders.imputed == 0
        assert np.array_equal(traders.bars_held, traders.holding_bars)
        assert np.array_equal(traders.holding_bars, traders.slot_bars)


def test_random_traders_are_reproducible_by_seed_and_vary_between_traders() -> None:
    market, starts = market_and_starts()
    agent = run_sessions(market, CONFIG, starts, coin_flipper(2))

    a = random_traders(market, CONFIG, starts, agent, runs=20, seed=9)
    b = random_traders(market, CONFIG, starts, agent, runs=20, seed=9)
    assert np.array_equal(a.entry_rows, b.entry_rows) and np.array_equal(a.pips, b.pips)
    assert len({tuple(row) for row in a.entry_rows}) == 20


def replay_in_env(market, config: Config, session_starts, entries, holding, sides) -> np.ndarray:
    """Play each trade alone in its own env of `TradingEnv`: the reference pricing."""
    b = entries.size
    env = TradingEnv(market, config, b)
    observation = env.reset(session_starts)
    exits = entries + holding
    trades = []
    for _ in range(L - 1):
        rows, side = observation.rows, observation.side
        action = np.full(b, HOLD, dtype=np.int64)
        action[(rows == entries) & (side == FLAT)] = np.where(sides > 0, BUY, SELL)[
            (rows == entries) & (side == FLAT)
        ]
        action[(rows == exits) & (side != FLAT)] = CLOSE
        result = env.step(action)
        trades.append(result.trades)
        observation = result.observation
    out = np.concatenate(trades)
    return out[np.argsort(out["env"])]


@pytest.mark.parametrize("config", [CONFIG, NO_STOP], ids=["stop", "no_stop"])
def test_random_trades_are_priced_exactly_as_the_env_prices_them(config: Config) -> None:
    market, starts = market_and_starts(seed=4)
    config = replace(config, **{"env.slippage_pips": 0.5, "env.commission_pips": 0.3})
    agent = run_sessions(market, config, starts, coin_flipper(5))
    traders = random_traders(market, config, starts, agent, runs=3, seed=6)

    for r in range(3):
        env_trades = replay_in_env(
            market, config, traders.sessions, traders.entry_rows[r], traders.holding_bars[r],
            traders.sides[r],
        )  # fmt: skip
        assert env_trades.size == agent.size
        np.testing.assert_allclose(traders.pips[r], env_trades["pips"], rtol=0, atol=1e-9)
        assert np.array_equal(traders.bars_held[r], env_trades["bars_held"])
    if config.env.use_stop_loss:
        assert np.any(traders.bars_held < traders.holding_bars)  # stops did fire


def test_an_agent_with_a_planted_edge_ranks_above_nearly_all_random_traders() -> None:
    market, starts = market_and_starts(sessions=20, seed=7)
    close = market.close
    entered = np.full(starts.size, -1)

    def clairvoyant(observation: Observation) -> np.ndarray:
        """Enters the way the price will move over the next 10 bars; exits 10 bars later."""
        rows, side = observation.rows, observation.side
        ahead = close[np.minimum(rows + 10, close.size - 1)] - close[rows]
        action = np.full(rows.size, HOLD, dtype=np.int64)
        go = (side == FLAT) & (observation.steps_left > 10) & (np.abs(ahead) > 0.2)
        action[go] = np.where(ahead[go] > 0, BUY, SELL)
        entered[go] = rows[go]
        action[(side != FLAT) & (rows == entered + 10)] = CLOSE
        return action

    agent = run_sessions(market, NO_STOP, starts, clairvoyant)
    report = random_entry_percentile(market, NO_STOP, starts, agent, runs=300, seed=1)

    assert report["trades"] == agent.size > 20
    assert report["agent_expectancy_pips"] > 15.0
    assert report["agent_percentile"] > 99.0
    assert report["expectancy_pips"]["p95"] < report["agent_expectancy_pips"]
    json.dumps(report, allow_nan=False)


def test_a_coin_flipping_agent_is_not_ranked_at_an_extreme() -> None:
    market, starts = market_and_starts(sessions=20, seed=8)
    agent = run_sessions(market, NO_STOP, starts, coin_flipper(8))
    report = random_entry_percentile(market, NO_STOP, starts, agent, runs=300, seed=2)
    assert 2.0 < report["agent_percentile"] < 98.0


def test_trades_of_a_session_outside_the_starts_are_refused() -> None:
    market, starts = market_and_starts()
    agent = run_sessions(market, CONFIG, starts, coin_flipper(1))
    with pytest.raises(ValueError, match="not in `starts`"):
        random_traders(market, CONFIG, starts[1:], agent, runs=2, seed=0)


def test_no_agent_trades_give_an_empty_ranking() -> None:
    market, starts = market_and_starts()
    report = random_entry_percentile(market, CONFIG, starts, empty_trades())
    assert report["trades"] == 0 and report["agent_percentile"] is None
    json.dumps(report, allow_nan=False)


def test_buy_and_hold_on_a_rising_market_earns_the_rise_minus_the_spread() -> None:
    close = 150.0 + 0.01 * np.arange(200)  # +1 pip a bar, never below the entry
    market = hand_market(close, session_bars=100)

    trades = buy_and_hold(market, CONFIG, np.array([0, 100]))

    assert trades.size == 2 and np.all(trades["side"] == 1)
    assert trades["entry_row"].tolist() == [0, 100] and trades["exit_row"].tolist() == [99, 199]
    np.testing.assert_allclose(trades["pips"], 99.0 - 4.0, atol=1e-9)  # 99 pips up, 4 spread


def test_the_crossover_is_long_while_fast_is_above_slow_then_flips_short() -> None:
    up, down = 150.0 + 0.02 * np.arange(200), 154.0 - 0.02 * np.arange(1, 201)
    close = np.r_[up, down]  # rises for 200 bars, then falls
    market = hand_market(close, session_bars=300)
    config = replace(CONFIG, **{"env.use_stop_loss": False})

    trades = moving_average_crossover(market, config, np.array([100]), fast=10, slow=60)

    # First bar where the mean of the last 10 closes falls below the mean of the last 60.
    cross = next(
        t for t in range(100, 400) if close[t - 9 : t + 1].mean() < close[t - 59 : t + 1].mean()
    )
    assert trades["side"].tolist() == [1, -1]
    assert trades["entry_row"].tolist() == [100, cross + 1]
    assert trades["exit_row"].tolist() == [cross, 399]
    assert trades["pips"][1] > 0  # the short rides the fall to the session end


def test_the_simple_moving_average_is_the_plain_mean_of_the_last_closes() -> None:
    close = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    sma = simple_moving_average(close, 3)
    assert np.isnan(sma[:2]).all() and sma[2:].tolist() == pytest.approx([2.0, 3.0, 13 / 3])


def test_the_baselines_report_holds_all_three_and_is_valid_json() -> None:
    market, starts = market_and_starts()
    agent = run_sessions(market, CONFIG, starts, coin_flipper(1))

    report = baselines_report(market, CONFIG, starts, agent, runs=50, seed=1)

    assert report["random_entry"]["runs"] == 50
    assert report["random_entry_fair_coin"].keys() == report["random_entry"].keys()
    assert report["random_entry_fair_coin"]["trades"] == agent.size
    assert report["buy_and_hold"]["trades"] == starts.size
    assert report["moving_average_crossover"]["trades"] > 0
    assert report["moving_average_crossover"]["slow_bars"] == CONFIG.validation.ma_slow_bars
    json.dumps(report, allow_nan=False)


def falling_market(sessions: int = 20, seed: int = 0):
    """A GBP_JPY-like market that falls 1 pip a bar under 2-pip noise: a period to sell in."""
    rng = np.random.default_rng(seed)
    n = sessions * L + 50
    close = 180.0 + np.cumsum(-0.01 + rng.normal(0.0, 0.02, n))
    open_ = np.r_[180.0, close[:-1]]
    high = np.maximum(open_, close) + rng.exponential(0.01, n)
    low = np.minimum(open_, close) - rng.exponential(0.01, n)
    market = hand_market(close, open_=open_, high=high, low=low, session_bars=L)
    return market, np.arange(sessions, dtype=np.int64) * L + 50


def always_sells(seed: int):
    """Sells at random moments and closes at random ones: a side bet with no timing at all."""
    rng = np.random.default_rng(seed)

    def policy(observation: Observation) -> np.ndarray:
        u = rng.random(observation.side.size)
        action = np.full(observation.side.size, HOLD, dtype=np.int64)
        flat = observation.side == FLAT
        action[flat & (u < 0.05)] = SELL
        action[~flat & (u < 0.05)] = CLOSE
        return np.where(observation.legal[np.arange(action.size), action], action, HOLD)

    return policy


def test_fair_coin_traders_place_the_same_trades_and_flip_a_coin_for_each_side() -> None:
    market, starts = market_and_starts()
    agent = run_sessions(market, CONFIG, starts, coin_flipper(1))

    matched = random_traders(market, CONFIG, starts, agent, runs=200, seed=4, sides="agent")
    coin = random_traders(market, CONFIG, starts, agent, runs=200, seed=4, sides="fair_coin")

    assert np.array_equal(coin.entry_rows, matched.entry_rows)  # only the sides differ
    assert np.array_equal(coin.holding_bars, matched.holding_bars)
    assert set(np.unique(coin.sides).tolist()) == {-1, 1}
    assert np.mean(coin.sides > 0) == pytest.approx(0.5, abs=0.02)
    longs_per_trader = np.sum(coin.sides > 0, axis=1)
    assert longs_per_trader.std() > 1.0  # each trader's mix varies, unlike the matched ones
    with pytest.raises(ValueError, match="sides"):
        random_traders(market, CONFIG, starts, agent, runs=2, seed=0, sides="always_long")


def test_the_two_random_baselines_tell_a_side_bet_from_timing() -> None:
    market, starts = falling_market()
    agent = run_sessions(market, NO_STOP, starts, always_sells(3))
    assert agent.size > 40 and np.all(agent["side"] == -1)
    assert np.mean(agent["pips"]) > 0.0  # the fall pays the seller, whenever it enters

    report = baselines_report(market, NO_STOP, starts, agent, runs=300, seed=5)
    matched, coin = report["random_entry"], report["random_entry_fair_coin"]

    assert coin["agent_percentile"] > 99.0  # a fair coin buys half the time into the fall
    assert 5.0 < matched["agent_percentile"] < 95.0  # random shorts held as long do as well
    assert coin["expectancy_pips"]["p95"] < matched["expectancy_pips"]["p5"]
    json.dumps(report, allow_nan=False)


def test_with_no_trades_the_fair_coin_ranking_is_empty_too() -> None:
    market, starts = market_and_starts()
    report = baselines_report(market, CONFIG, starts, empty_trades(), runs=10, seed=1)
    coin, matched = report["random_entry_fair_coin"], report["random_entry"]
    assert {**coin, "sides": "agent"} == matched  # both empty; only the side rule differs
    assert report["random_entry_fair_coin"]["agent_percentile"] is None


def test_planned_holding_survival_is_kaplan_meier_with_stops_censored_a_bar_early() -> None:
    # Closed after 1 and 3 bars; stopped after 2 and 4 (planned for at least 2 and 4 bars).
    times, mass, beyond = planned_holding_survival(
        np.array([1, 2, 3, 4]), np.array([True, False, True, False])
    )
    # At 1 bar all 4 are at risk, one closes: S = 3/4. At 3 bars the closed 3 and the stopped 4
    # are at risk, one closes: S = 3/8, and 3/8 of the plans are longer than any close.
    assert times.tolist() == [1, 3]
    assert mass.tolist() == pytest.approx([1 / 4, 3 / 8])
    assert beyond == pytest.approx(3 / 8)

    all_closed = planned_holding_survival(np.array([2, 2, 5, 9]), np.ones(4, dtype=bool))
    assert all_closed[0].tolist() == [2, 5, 9]
    assert all_closed[1].tolist() == pytest.approx([0.5, 0.25, 0.25]) and all_closed[2] == 0.0


def test_a_stopped_trades_plan_is_drawn_given_it_lasted_at_least_as_long() -> None:
    times, mass, _ = planned_holding_survival(
        np.array([1, 2, 3, 4]), np.array([True, False, True, False])
    )
    uniforms = np.random.default_rng(0).random(20_000)

    plans = draw_planned_holding(np.full(uniforms.size, 2), times, mass, 119, uniforms)

    # Given H >= 2 the mass left is 3/8 at 3 bars and 3/8 beyond (the session end): half each.
    assert set(np.unique(plans).tolist()) == {3, 119}
    assert np.mean(plans == 3) == pytest.approx(0.5, abs=0.02)
    long_stop = draw_planned_holding(np.full(5, 50), times, mass, 119, uniforms[:5])
    assert long_stop.tolist() == [119] * 5  # longer than every close: held to the session end
    never_closed = draw_planned_holding(np.array([4, 7]), np.zeros(0, np.int64), np.zeros(0), 119,
                                        uniforms[:2])  # fmt: skip
    assert never_closed.tolist() == [119, 119]


def test_only_stopped_trades_get_a_drawn_plan_and_the_time_in_market_matches() -> None:
    market, starts = market_and_starts(sessions=40, seed=11)
    config = replace(CONFIG, **{"risk.stop_loss_pips": 10.0})
    agent = run_sessions(market, config, starts, coin_flipper(3))
    stopped = agent["exit_reason"] == EXIT_STOP_LOSS
    assert 0.2 < stopped.mean() < 0.8 and np.any(agent["exit_reason"] == EXIT_AGENT)

    traders = random_traders(market, config, starts, agent, runs=300, seed=2)
    report = random_entry_percentile(market, config, starts, agent, runs=300, seed=2)

    assert traders.imputed == report["imputed_plans"] == stopped.sum()
    drawn = traders.holding_bars != traders.slot_bars  # only a stopped trade's slot can differ
    assert drawn.any() and np.all(traders.holding_bars[drawn] > traders.slot_bars[drawn])
    assert report["holding"] == "planned"
    assert report["agent_bars_in_market"] == agent["bars_held"].sum()
    assert report["time_in_market_ratio"] == pytest.approx(1.0, abs=0.08)
