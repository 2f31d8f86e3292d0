"""The batched trading env: hand-computed round trips, stops, rewards, features and batching."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from micro.config import Config, replace
from micro.data.market import Market
from micro.env.actions import BUY, CLOSE, HOLD, SELL
from micro.env.position import mark_positions, replay_position, static_features
from micro.env.trades import (
    EXIT_AGENT,
    EXIT_SESSION_END,
    EXIT_STOP_LOSS,
    TRADE_DTYPE,
    concatenate_trades,
    trade_dicts,
)
from micro.env.trading import Observation, StepResult, TradingEnv, run_sessions
from tests.unit.env_markets import T0, hand_market, random_walk_market

CONFIG = Config()  # GBP_JPY: 4-pip spread, no commission or slippage, 30-pip stop, mtm reward


def play(
    market: Market, actions: list[int], config: Config = CONFIG, start: int = 0
) -> tuple[list[Observation], list[StepResult]]:
    """One env through a scripted session: the observations (reset first) and step results."""
    env = TradingEnv(market, config, 1)
    observations = [env.reset(np.array([start]))]
    results = []
    for action in actions:
        result = env.step(np.array([action]))
        results.append(result)
        observations.append(result.observation)
    return observations, results


def rewards_of(results: list[StepResult]) -> list[float]:
    return [float(r.reward[0]) for r in results]


def trades_of(results: list[StepResult]) -> np.ndarray:
    return concatenate_trades([r.trades for r in results])


# ---------------------------------------------------------------- round trips and costs


def test_long_round_trip_on_gbp_jpy_nets_gross_minus_the_four_pip_spread() -> None:
    market = hand_market([150.000, 150.100, 150.250, 150.300, 150.200])
    _, results = play(market, [BUY, HOLD, CLOSE, HOLD])

    assert rewards_of(results) == pytest.approx([-4 + 10, 15, 0, 0], abs=1e-4)
    (trade,) = trades_of(results)
    assert trade["pips"] == pytest.approx(25.0 - 4.0, abs=1e-9)
    assert sum(rewards_of(results)) == pytest.approx(trade["pips"], abs=1e-4)
    assert trade["side"] == 1 and trade["exit_reason"] == EXIT_AGENT
    assert (trade["entry_row"], trade["exit_row"], trade["bars_held"]) == (0, 2, 2)
    assert (trade["entry_ts"], trade["exit_ts"]) == (T0, T0 + 120)
    assert (trade["entry_price"], trade["exit_price"]) == (150.000, 150.250)
    assert [bool(r.done[0]) for r in results] == [False, False, False, True]


def test_short_on_a_jpy_pair_profits_when_price_falls() -> None:
    market = hand_market([150.000, 149.950, 149.950])
    _, results = play(market, [SELL, CLOSE])

    (trade,) = trades_of(results)
    assert trade["side"] == -1
    assert trade["pips"] + 4.0 == pytest.approx(+5.0, abs=1e-9)  # gross: 5 pips in its favour
    assert rewards_of(results) == pytest.approx([-4 + 5, 0], abs=1e-4)


def test_a_long_loses_when_price_falls_by_the_same_amount() -> None:
    market = hand_market([150.000, 149.950, 149.950])
    _, results = play(market, [BUY, CLOSE])

    assert trades_of(results)["pips"][0] == pytest.approx(-5.0 - 4.0, abs=1e-9)


# ---------------------------------------------------------------- stop-loss


def test_stop_loss_fills_at_the_stop_price_when_the_low_reaches_it() -> None:
    close = [150.000, 149.900, 149.800, 149.900]
    low = [150.000, 149.900, 149.650, 149.800]  # bar 2 trades through the stop at 149.700
    market = hand_market(close, low=low)
    observations, results = play(market, [BUY, HOLD, HOLD])

    (trade,) = trades_of(results)
    assert trade["exit_reason"] == EXIT_STOP_LOSS
    assert trade["exit_price"] == pytest.approx(149.700, abs=1e-9)
    assert trade["exit_row"] == 2 and trade["bars_held"] == 2
    assert trade["pips"] == pytest.approx(-30.0 - 4.0, abs=1e-9)
    assert trade["mae_pips"] == pytest.approx(30.0, abs=1e-9)
    assert rewards_of(results) == pytest.approx([-4 - 10, -20, 0], abs=1e-4)
    assert observations[2].side[0] == 0  # flat again at row 2: free to re-enter
    assert observations[2].legal[0].tolist() == [True, True, True, False]


def test_stop_loss_fills_at_the_open_when_the_bar_gaps_past_it() -> None:
    close = [150.000, 150.550, 150.500]
    open_ = [150.000, 150.500, 150.550]  # bar 1 opens 20 pips beyond the short's stop (150.300)
    high = [150.000, 150.600, 150.550]
    low = [150.000, 150.450, 150.500]
    market = hand_market(close, open_=open_, high=high, low=low)
    _, results = play(market, [SELL, HOLD])

    (trade,) = trades_of(results)
    assert trade["exit_reason"] == EXIT_STOP_LOSS
    assert trade["exit_price"] == 150.500
    assert trade["pips"] == pytest.approx(-50.0 - 4.0, abs=1e-9)
    assert trade["mae_pips"] == pytest.approx(50.0, abs=1e-9)  # the high after the fill is not ours
    assert rewards_of(results) == pytest.approx([-4 - 50, 0], abs=1e-4)


def test_without_the_stop_loss_the_same_gap_is_held_to_the_session_end() -> None:
    close = [150.000, 150.550, 150.500]
    open_ = [150.000, 150.500, 150.550]
    high = [150.000, 150.600, 150.550]
    low = [150.000, 150.450, 150.500]
    market = hand_market(close, open_=open_, high=high, low=low)
    config = replace(CONFIG, **{"env.use_stop_loss": False})
    _, results = play(market, [SELL, HOLD], config)

    (trade,) = trades_of(results)
    assert trade["exit_reason"] == EXIT_SESSION_END
    assert trade["pips"] == pytest.approx(-50.0 - 4.0, abs=1e-9)
    assert trade["mae_pips"] == pytest.approx(60.0, abs=1e-9)  # bar 1's high, 150.600
    assert rewards_of(results) == pytest.approx([-4 - 55, +5], abs=1e-4)


@pytest.mark.parametrize(("low", "stopped"), [(149.703, True), (149.704, False)])
def test_a_bar_that_just_touches_the_stop_fills_it_and_one_a_tenth_pip_short_does_not(
    low: float, stopped: bool
) -> None:
    # a long from 150.003: its stop is 149.703, which 150.003 - 30 * 0.01 computes a hair below
    close = [150.003, 149.900, 149.900]
    market = hand_market(close, low=[150.003, low, 149.9])
    _, results = play(market, [BUY, HOLD])

    (trade,) = trades_of(results)
    assert bool(trade["exit_reason"] == EXIT_STOP_LOSS) == stopped
    assert trade["exit_row"] == (1 if stopped else 2)


def test_stop_loss_distance_comes_from_the_risk_config() -> None:
    close = [150.000, 149.900, 149.900]
    low = [150.000, 149.840, 149.900]  # 16 pips below entry
    market = hand_market(close, low=low)
    config = replace(CONFIG, **{"risk.stop_loss_pips": 15.0})
    _, results = play(market, [BUY, HOLD], config)

    (trade,) = trades_of(results)
    assert trade["exit_reason"] == EXIT_STOP_LOSS and trade["exit_row"] == 1
    assert trade["exit_price"] == pytest.approx(149.850, abs=1e-9)


# ---------------------------------------------------------------- session end


def test_session_end_force_closes_at_the_last_close_with_exit_reason_2() -> None:
    market = hand_market([150.000, 150.050, 150.100, 150.200])
    observations, results = play(market, [BUY, HOLD, HOLD])

    (trade,) = trades_of(results)
    assert trade["exit_reason"] == EXIT_SESSION_END
    assert (trade["exit_row"], trade["bars_held"]) == (3, 3)
    assert trade["pips"] == pytest.approx(20.0 - 4.0, abs=1e-9)
    assert rewards_of(results) == pytest.approx([-4 + 5, 5, 10], abs=1e-4)
    assert [bool(r.done[0]) for r in results] == [False, False, True]
    assert [int(o.steps_left[0]) for o in observations] == [3, 2, 1, 0]
    assert observations[-1].side[0] == 0 and not observations[-1].static.any()


def test_an_entry_at_the_last_decision_is_closed_one_bar_later() -> None:
    market = hand_market([150.000, 150.000, 150.100])
    _, results = play(market, [HOLD, BUY])

    (trade,) = trades_of(results)
    assert (trade["exit_reason"], trade["bars_held"]) == (EXIT_SESSION_END, 1)
    assert trade["pips"] == pytest.approx(10.0 - 4.0, abs=1e-9)


def test_a_session_inside_a_longer_market_ends_at_start_plus_length_minus_one() -> None:
    close = 150.0 + 0.01 * np.arange(20)
    market = hand_market(close, session_bars=5)
    observations, results = play(market, [BUY, HOLD, HOLD, HOLD], start=7)

    assert [int(o.rows[0]) for o in observations] == [7, 8, 9, 10, 11]
    (trade,) = trades_of(results)
    assert (trade["session"], trade["entry_row"], trade["exit_row"]) == (7, 7, 11)
    assert trade["pips"] == pytest.approx(4.0 - 4.0, abs=1e-9)


def test_uncut_shows_a_position_the_session_end_closed_as_a_longer_session_would() -> None:
    # `TradingEnv.uncut` (train.session_end bootstrap): the env whose long the session end
    # closed is shown at its last row exactly as a session one bar longer shows it there (still
    # long, the same position features, HOLD/CLOSE legal); the env that closed on its own is
    # shown flat, as `observe` shows it.
    close = 150.0 + 0.01 * np.arange(20) * np.sin(np.arange(20))
    scripts = [[BUY, HOLD, HOLD, HOLD], [SELL, CLOSE, HOLD, HOLD]]
    observed = []
    for session_bars in (5, 6):
        env = TradingEnv(hand_market(close, session_bars=session_bars), CONFIG, 2)
        env.reset(np.array([7, 7]))
        for step in zip(*scripts, strict=True):
            result = env.step(np.array(step))
        observed.append((env, result))
    (cut_env, cut), (longer_env, longer) = observed
    assert cut.done.all() and not longer.done.any()
    assert list(cut.trades["exit_reason"]) == [EXIT_SESSION_END]
    uncut = cut_env.uncut(cut.trades)
    on = longer.observation
    np.testing.assert_array_equal(uncut.rows, on.rows)
    np.testing.assert_array_equal(uncut.side, on.side)
    np.testing.assert_array_equal(uncut.static, on.static)
    np.testing.assert_array_equal(uncut.legal, on.legal)
    assert list(uncut.side) == [1, 0] and uncut.static[0].any()
    # the env's own observation still shows the session's end
    assert not cut_env.observe().side.any()


def test_each_step_reports_the_outcome_label_of_its_decision_row() -> None:
    market = hand_market([150.0, 150.1, 150.0, 150.0, 150.2], outcome=[2, 0, 1, 2, -1])
    _, results = play(market, [HOLD, BUY, HOLD, CLOSE])

    assert [int(r.outcome[0]) for r in results] == [2, 0, 1, 2]


# ---------------------------------------------------------------- legality


def test_legal_masks_follow_the_side() -> None:
    market = hand_market([150.0, 150.1, 150.2, 150.3])
    observations, _ = play(market, [BUY, HOLD, CLOSE])

    flat, long_ = [True, True, True, False], [True, False, False, True]
    assert [o.legal[0].tolist() for o in observations] == [flat, long_, long_, [True] + [False] * 3]


@pytest.mark.parametrize(
    ("first", "illegal", "name"),
    [(HOLD, CLOSE, "CLOSE"), (BUY, BUY, "BUY"), (SELL, SELL, "SELL"), (BUY, SELL, "SELL")],
)
def test_an_illegal_action_raises_and_changes_nothing(first: int, illegal: int, name: str) -> None:
    market = hand_market([150.0, 150.1, 150.2, 150.3])
    env = TradingEnv(market, CONFIG, 2)
    env.reset(np.array([0, 0]))
    env.step(np.array([first, HOLD]))
    before = env.observe()

    with pytest.raises(ValueError, match=rf"env 0: action {name} is illegal"):
        env.step(np.array([illegal, HOLD]))

    after = env.observe()
    assert after.rows.tolist() == before.rows.tolist() == [1, 1]  # neither env moved
    assert np.array_equal(after.static, before.static)


@pytest.mark.parametrize("actions", [np.array([4]), np.array([-1]), np.array([0.0]), np.zeros(2)])
def test_actions_out_of_range_of_wrong_type_or_shape_are_refused(actions: np.ndarray) -> None:
    env = TradingEnv(hand_market([150.0, 150.1, 150.2]), CONFIG, 1)
    env.reset(np.array([0]))
    with pytest.raises(ValueError):
        env.step(actions)


def test_done_envs_ignore_their_actions_until_reset() -> None:
    market = hand_market([150.0, 150.1, 150.2])
    env = TradingEnv(market, CONFIG, 1)
    env.reset(np.array([0]))
    env.step(np.array([BUY]))
    env.step(np.array([HOLD]))

    result = env.step(np.array([SELL]))

    assert result.done[0] and result.reward[0] == 0.0 and result.outcome[0] == -1
    assert result.trades.size == 0
    assert result.observation.rows[0] == 2 and result.observation.steps_left[0] == 0


def test_a_session_start_without_room_for_the_session_is_refused() -> None:
    env = TradingEnv(hand_market([150.0] * 10, session_bars=5), CONFIG, 1)
    with pytest.raises(ValueError, match="no room for 5 bars"):
        env.reset(np.array([6]))


# ---------------------------------------------------------------- amddp1 and MAE


def test_amddp1_pays_net_pips_minus_k_times_max_drawdown_only_at_close() -> None:
    market = hand_market([150.000, 150.200, 150.050, 150.300, 150.300])
    config = replace(
        CONFIG,
        **{"env.reward": "amddp1", "env.drawdown_penalty": 0.5, "train.session_end": "terminal"},
    )
    _, results = play(market, [BUY, HOLD, HOLD, CLOSE], config)

    # marks net of the 4-pip spread: -4, 16, 1, 26 -> max drawdown 15 pips, net 26 pips
    assert trades_of(results)["pips"][0] == pytest.approx(26.0, abs=1e-9)
    assert rewards_of(results) == pytest.approx([0, 0, 0, 26 - 0.5 * 15], abs=1e-4)


def test_amddp1_counts_the_drawdown_down_to_the_stop_fill() -> None:
    market = hand_market([150.000, 150.100, 149.800], low=[150.0, 150.0, 149.650])
    config = replace(
        CONFIG,
        **{"env.reward": "amddp1", "env.drawdown_penalty": 0.5, "train.session_end": "terminal"},
    )
    _, results = play(market, [BUY, HOLD], config)

    # marks: -4, 6, then the stop at 149.700: -34 -> max drawdown 40 pips
    assert rewards_of(results) == pytest.approx([0, -34 - 0.5 * 40], abs=1e-4)


def test_mae_is_the_worst_gross_excursion_using_lows_for_longs_and_highs_for_shorts() -> None:
    close = [150.000, 150.050, 150.200, 150.200]
    high = [150.000, 150.080, 150.150, 150.200]
    low = [150.000, 149.800, 149.900, 150.200]
    market = hand_market(close, high=high, low=low)

    long_trade = trades_of(play(market, [BUY, HOLD, CLOSE])[1])[0]
    short_trade = trades_of(play(market, [SELL, HOLD, CLOSE])[1])[0]

    assert long_trade["mae_pips"] == pytest.approx(20.0, abs=1e-9)  # low 149.800
    assert long_trade["pips"] == pytest.approx(20.0 - 4.0, abs=1e-9)
    assert short_trade["mae_pips"] == pytest.approx(15.0, abs=1e-9)  # high 150.150
    assert short_trade["pips"] == pytest.approx(-20.0 - 4.0, abs=1e-9)


def test_mae_is_zero_when_price_never_goes_against_the_trade() -> None:
    market = hand_market([150.000, 150.100, 150.200], low=[150.0, 150.0, 150.1])
    trade = trades_of(play(market, [BUY, HOLD])[1])[0]
    assert trade["mae_pips"] == 0.0


# ---------------------------------------------------------------- the 6 position features

PATH = [150.000, 150.100, 150.050, 150.200, 150.000, 150.000, 150.000]


def expected_static(side: int, u: float, bars: int, peak: float, mdd: float, acc: float) -> list:
    """The 6 features as `micro.env.position` defines them, from hand-computed pips."""
    t = math.tanh
    return [side, t(u / 100), t(bars / 100), t((peak - u) / 100), t(mdd / 100), t(acc / 100)]


def test_position_features_of_a_long_on_a_hand_made_path() -> None:
    observations, _ = play(hand_market(PATH), [BUY, HOLD, HOLD, HOLD, CLOSE, HOLD])

    # unrealised pips net of the 4-pip spread at rows 1..4: 6, 1, 16, -4 (entry mark: -4)
    expected = [
        [0.0] * 6,
        expected_static(1, 6, 1, peak=6, mdd=0, acc=0),
        expected_static(1, 1, 2, peak=6, mdd=5, acc=5),
        expected_static(1, 16, 3, peak=16, mdd=5, acc=5),
        expected_static(1, -4, 4, peak=16, mdd=20, acc=25),
        [0.0] * 6,  # closed at row 4
        [0.0] * 6,
    ]
    got = np.stack([o.static[0] for o in observations])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(expected), atol=1e-6)


def test_position_features_of_a_short_on_the_same_path() -> None:
    observations, _ = play(hand_market(PATH), [SELL, HOLD, HOLD, HOLD, CLOSE, HOLD])

    # unrealised: entry -4, then -14, -9, -24, -4; the peak stays at the entry mark -4
    expected = [
        expected_static(-1, -14, 1, peak=-4, mdd=10, acc=10),
        expected_static(-1, -9, 2, peak=-4, mdd=10, acc=10),
        expected_static(-1, -24, 3, peak=-4, mdd=20, acc=25),
        expected_static(-1, -4, 4, peak=-4, mdd=20, acc=25),
    ]
    got = np.stack([o.static[0] for o in observations[1:5]])
    np.testing.assert_allclose(got, np.array(expected), atol=1e-6)


def test_live_position_helpers_match_the_env_bar_by_bar() -> None:
    observations, _ = play(hand_market(PATH), [BUY, HOLD, HOLD, HOLD, CLOSE, HOLD])
    env_static = np.stack([o.static[0] for o in observations[1:5]])  # rows 1..4, position open

    replayed = replay_position(1, 150.000, np.array(PATH[1:5]), 0.01, 4.0)  # [5, 6]
    np.testing.assert_array_equal(replayed[1:], env_static)
    np.testing.assert_allclose(replayed[0], expected_static(1, -4, 0, -4, 0, 0), atol=1e-6)

    # the live trader's B = 1 path: mark each close, then compute the features
    side, entry = np.array([1], np.int8), np.array([150.000])
    u, peak, mdd, acc = (np.array([x]) for x in (-4.0, -4.0, 0.0, 0.0))
    for bars, price in enumerate(PATH[1:5], start=1):
        mark_positions(side, entry, np.array([price]), 0.01, 4.0, u, peak, mdd, acc)
        live = static_features(side, u, np.array([bars]), peak, mdd, acc)
        np.testing.assert_array_equal(live[0], env_static[bars - 1])


# ---------------------------------------------------------------- batching


def test_reset_envs_restarts_only_the_chosen_envs() -> None:
    market = hand_market(np.linspace(150.0, 160.0, 400), session_bars=40)
    env = TradingEnv(market, CONFIG, 3)
    env.reset(np.array([0, 100, 200]))
    env.step(np.array([BUY, SELL, BUY]))
    for _ in range(4):
        env.step(np.array([HOLD, HOLD, HOLD]))
    before = env.observe()

    after = env.reset_envs(np.array([1]), np.array([300]))

    assert after.rows.tolist() == [5, 300, 205]
    assert after.side.tolist() == [1, 0, 1]
    assert after.steps_left.tolist() == [34, 39, 34]
    np.testing.assert_array_equal(after.static[[0, 2]], before.static[[0, 2]])
    assert not after.static[1].any()
    result = env.step(np.array([CLOSE, BUY, CLOSE]))
    assert result.observation.rows.tolist() == [6, 301, 206]
    assert sorted(result.trades["env"].tolist()) == [0, 2]  # env 1's short vanished unrecorded


def scripted_policy(observation: Observation) -> np.ndarray:
    """A deterministic policy of the row and side only, so an env acts alike in any batch."""
    h = (observation.rows * 2654435761) % 1000
    flat_action = np.where(h < 120, BUY, np.where(h < 240, SELL, HOLD))
    held_action = np.where(h < 100, CLOSE, HOLD)
    return np.where(observation.side == 0, flat_action, held_action).astype(np.int64)


def test_batch_of_256_agrees_env_by_env_with_batch_of_1() -> None:
    market = random_walk_market(3000, session_bars=40, seed=3)
    starts = np.random.default_rng(1).choice(3000 - 40, size=256, replace=False)

    env = TradingEnv(market, CONFIG, 256)
    observation = env.reset(starts)
    batched_rewards, batched_trades = [], []
    for _ in range(39):
        result = env.step(scripted_policy(observation))
        batched_rewards.append(result.reward)
        batched_trades.append(result.trades)
        observation = result.observation
    batched_rewards = np.stack(batched_rewards)  # [39, 256]
    batched = concatenate_trades(batched_trades)
    assert set(batched["exit_reason"].tolist()) == {EXIT_AGENT, EXIT_STOP_LOSS, EXIT_SESSION_END}

    for i in range(256):
        single = TradingEnv(market, CONFIG, 1)
        observation = single.reset(starts[i : i + 1])
        rewards, trades = [], []
        for _ in range(39):
            result = single.step(scripted_policy(observation))
            rewards.append(result.reward[0])
            trades.append(result.trades)
            observation = result.observation
        np.testing.assert_array_equal(np.array(rewards), batched_rewards[:, i])
        mine = batched[batched["env"] == i]
        theirs = concatenate_trades(trades)
        for name in TRADE_DTYPE.names:
            if name != "env":
                np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)


def test_mtm_rewards_of_each_session_sum_to_its_trades_net_pips() -> None:
    market = random_walk_market(2000, session_bars=60, seed=5)
    starts = np.arange(0, 1900, 19)
    config = replace(
        CONFIG, **{"env.commission_pips": 0.7, "env.slippage_pips": 0.4, "risk.stop_loss_pips": 12}
    )
    env = TradingEnv(market, config, starts.size)
    observation = env.reset(starts)
    total = np.zeros(starts.size)
    per_env_pips = np.zeros(starts.size)
    while not env.observe().steps_left.max() == 0:
        result = env.step(scripted_policy(observation))
        total += result.reward
        np.add.at(per_env_pips, result.trades["env"], result.trades["pips"])
        observation = result.observation

    np.testing.assert_allclose(total, per_env_pips, atol=1e-3)


def test_run_sessions_plays_buy_and_hold_to_the_end_of_every_session() -> None:
    market = hand_market(np.linspace(150.0, 151.0, 101), session_bars=11)
    starts = np.array([0, 30, 60])

    trades = run_sessions(
        market, CONFIG, starts, lambda o: np.where(o.side == 0, BUY, HOLD).astype(np.int64)
    )

    assert trades["session"].tolist() == [0, 30, 60]
    assert trades["exit_reason"].tolist() == [EXIT_SESSION_END] * 3
    assert trades["bars_held"].tolist() == [10, 10, 10]
    np.testing.assert_allclose(trades["pips"], 10 * 1.0 - 4.0, atol=1e-9)  # 1 pip a bar
    rows = json.loads(json.dumps(trade_dicts(trades)))
    assert rows[0]["exit_reason_name"] == "session_end" and rows[0]["side"] == 1


def test_on_real_cad_jpy_bars_every_exit_fills_inside_its_bar_and_stops_cost_their_distance(
    shared_data: Path,
) -> None:
    frame = pd.read_csv(shared_data / "CADJPY_M1_2022_mt4.csv", header=None)
    close = frame[5].to_numpy(float)
    market = hand_market(
        close,
        open_=frame[2].to_numpy(float),
        high=frame[3].to_numpy(float),
        low=frame[4].to_numpy(float),
        instrument_name="CAD_JPY",
        session_bars=360,
    )
    config = replace(CONFIG, **{"risk.stop_loss_pips": 8.0})
    starts = np.arange(0, close.size - 360, 120)

    trades = run_sessions(market, config, starts, scripted_policy)

    reasons = trades["exit_reason"]
    assert set(reasons.tolist()) == {EXIT_AGENT, EXIT_STOP_LOSS, EXIT_SESSION_END}
    row = trades["exit_row"]
    inside = (trades["exit_price"] >= market.low[row] - 1e-9) & (
        trades["exit_price"] <= market.high[row] + 1e-9
    )
    assert inside.all()
    stopped = trades[reasons == EXIT_STOP_LOSS]
    gapped = stopped["exit_price"] == market.open[stopped["exit_row"]]
    spread = CONFIG.spread_pips("CAD_JPY")  # 3 pips
    np.testing.assert_allclose(stopped["pips"][~gapped], -8.0 - spread, atol=1e-6)
    assert (stopped["pips"][gapped] <= -8.0 - spread + 1e-6).all()
    assert (stopped["mae_pips"] >= 8.0 - 1e-6).all()
