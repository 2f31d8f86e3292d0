"""Per-checkpoint diagnostics: planning gain, the chance head's calibration, the value's error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from micro.config import Config, replace
from micro.env.actions import BUY, CLOSE, HOLD, SELL
from micro.env.trades import EXIT_AGENT, EXIT_STOP_LOSS, empty_trades
from micro.env.trading import TradingEnv
from micro.features.outcomes import DOWN, NEUTRAL, UP
from micro.validation.diagnostics import (
    DecisionTrace,
    after_exit,
    chance_calibration,
    diagnostics_report,
    discounted_returns,
    frequency_policy,
    planning_gain,
    realised_returns,
    value_error,
)
from micro.validation.evaluate import evaluate
from micro.validation.report import diagnostics_lines
from tests.unit.env_markets import hand_market, random_walk_market
from tests.unit.mcts_models import BanditModel, ChanceModel

L = 30  # session bars
CONFIG = replace(Config(), **{"validation.simulations": 200})  # the bandit needs 200 to buy


def rising_market(sessions: int = 4):
    """Closes rise 1 pip a bar, never touching a stop: a long earns, a short loses."""
    close = 150.0 + 0.01 * np.arange(sessions * L)
    return hand_market(close, session_bars=L), np.arange(sessions, dtype=np.int64) * L


def test_a_perfect_forecast_scores_brier_0_and_the_base_rates_score_skill_0() -> None:
    labels = np.array([UP, DOWN, NEUTRAL, UP, UP, -1])  # the last is unknown: left out
    perfect = np.eye(3)[np.maximum(labels, 0)]
    perfect[-1] = np.nan

    report = chance_calibration(perfect, labels)

    assert report["decisions"] == 5 and report["brier"] == 0.0 and report["brier_skill"] == 1.0
    base = np.array([1, 1, 3]) / 5  # DOWN, NEUTRAL, UP frequencies of the five known
    # Forecasting the base rates: Σ_c (b_c − 1[y = c])² averaged = 1 − Σ_c b_c².
    assert report["brier_climatology"] == pytest.approx(1.0 - np.sum(base**2))
    climatology = chance_calibration(np.tile(base, (5, 1)), labels[:5])
    assert climatology["brier"] == pytest.approx(report["brier_climatology"])
    assert climatology["brier_skill"] == pytest.approx(0.0, abs=1e-12)
    assert report["observed"] == pytest.approx({"DOWN": 0.2, "NEUTRAL": 0.2, "UP": 0.6})


def test_a_calibrated_forecaster_has_a_diagonal_reliability_table_and_positive_skill() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=40_000)  # [D, 3] varied forecasts
    labels = (rng.random(40_000)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)  # y ~ probs

    report = chance_calibration(probs, labels)

    for name in ("DOWN", "NEUTRAL", "UP"):
        rows = report["reliability"][name]
        assert sum(row["decisions"] for row in rows) == 40_000
        for row in rows:
            low, high = row["bin"]
            assert low <= row["predicted"] <= high
            if row["decisions"] > 1000:  # the observed frequency follows the forecast
                assert row["observed"] == pytest.approx(row["predicted"], abs=0.03)
    assert report["brier_skill"] > 0.1
    overconfident = chance_calibration(np.eye(3)[(labels + 1) % 3], labels)  # always wrong
    assert overconfident["brier"] == pytest.approx(2.0) and overconfident["brier_skill"] < 0
    json.dumps(report, allow_nan=False)


def test_returns_are_discounted_to_the_session_end() -> None:
    reward = np.array([[1.0, 0.0], [2.0, 1.0], [4.0, -1.0]])  # [D=3, S=2]
    returns = discounted_returns(reward, 0.5)
    assert returns[:, 0].tolist() == [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4.0]
    assert returns[:, 1].tolist() == [0 + 0.5 * 1 - 0.25, 1 - 0.5, -1.0]


def test_a_cut_session_end_bootstraps_from_the_networks_last_value() -> None:
    reward = np.array([[1.0, 0.0], [2.0, 1.0], [4.0, -1.0]])  # [D=3, S=2]
    value = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 20.0]])
    assert np.array_equal(
        realised_returns(reward, value, 0.5, "terminal"), discounted_returns(reward, 0.5)
    )
    cut = realised_returns(reward, value, 0.5, "bootstrap")
    # The last step's reward (its forced close) is left out; the value there stands for the rest.
    assert cut[:, 0].tolist() == [1 + 0.5 * 2 + 0.25 * 10, 2 + 0.5 * 10, 10.0]
    assert cut[:, 1].tolist() == [0 + 0.5 * 1 + 0.25 * 20, 1 + 0.5 * 20, 20.0]


def trace_of(network_value: np.ndarray, reward: np.ndarray, side: np.ndarray) -> DecisionTrace:
    d, s = reward.shape
    return DecisionTrace(
        sigma=np.full((d, s, 3), np.nan, np.float32),
        outcome=np.full((d, s), -1, np.int8),
        network_value=network_value.astype(np.float32),
        search_value=network_value.astype(np.float32),
        reward=reward.astype(np.float32),
        side=side.astype(np.int8),
        action_counts=np.zeros((2, 4), np.int64),
    )


def test_the_value_error_splits_flat_and_held_and_shows_what_h_space_decoding_makes_of_noise() -> (
    None
):
    # One decision per session (D = 1, γ irrelevant, terminal): the realised return is the reward.
    # Flat sessions realise a steady +20; held ones +20 on average, as -20 or +60 (noisy).
    rewards = np.array([[20.0, 20.0, -20.0, 60.0, -20.0, 60.0]])
    side = np.array([[0, 0, 1, 1, -1, -1]])
    values = np.array([[15.0, 15.0, 10.0, 10.0, 10.0, 10.0]])
    report = value_error(trace_of(values, rewards, side), 0.99, "terminal")
    flat, held = report["flat"], report["in_position"]
    assert flat["decisions"] == 2 and held["decisions"] == 4
    assert flat["realised_mean_pips"] == pytest.approx(20) == held["realised_mean_pips"]
    assert flat["value_mean_pips"] == pytest.approx(15) and flat["bias_pips"] == pytest.approx(-5)
    assert held["bias_pips"] == pytest.approx(-10)
    # Steady returns decode to their mean in h-space; the noisy ones of the same mean far under it.
    assert flat["realised_h_mean_pips"] == pytest.approx(20, abs=1e-3)
    assert 0 < held["realised_h_mean_pips"] < 15
    assert report["bias_pips"] == pytest.approx((2 * -5 + 4 * -10) / 6)
    assert report["session_end"] == "terminal"
    json.dumps(report, allow_nan=False)
    empty = value_error(trace_of(*(np.zeros((0, 0)),) * 3), 0.99, "bootstrap")
    assert empty["mae_pips"] is None and empty["flat"]["realised_h_mean_pips"] is None
    json.dumps(empty, allow_nan=False)


def test_the_summary_line_gives_both_biases_and_reads_reports_written_before_them() -> None:
    rewards = np.array([[20.0, -20.0]])
    report = {
        "planning_gain": planning_gain(empty_trades(), empty_trades(), empty_trades()),
        "chance_calibration": chance_calibration(np.full((1, 2, 3), np.nan), np.zeros((1, 2))),
        "value_error": value_error(
            trace_of(np.array([[15.0, 0.0]]), rewards, np.array([[0, 1]])), 0.99
        ),
    }
    report["after_exit"] = {
        "horizons": [{"bars": 60, "all": {"exits": 7, "mean_pips": 4.25, "stderr_pips": 1.5}}]
    }
    (line,) = diagnostics_lines(report)
    assert "(bias flat -5.00, in a position 20.00)" in line
    assert "the side after its 7 exits: 4.25 pips in 60 bars (± 1.50)" in line
    for key in ("flat", "in_position"):  # a report written before the split
        del report["value_error"][key]
    del report["after_exit"]  # and before the after-exit section
    (line,) = diagnostics_lines(report)
    assert "(bias flat n/a, in a position n/a)" in line and "exits" not in line


def test_after_the_exits_each_sides_move_is_measured_inside_its_session() -> None:
    """Closes rise 1 pip a bar: after a long's exit its side makes +h in h bars, a short's −h;
    a stop-out is not the agent's exit, and a horizon past the session's end is left out."""
    market = hand_market(150.0 + 0.01 * np.arange(400), session_bars=200)
    trades = empty_trades(4)
    for i, (side, exit_row, held, reason) in enumerate(
        [(1, 50, 10, EXIT_AGENT), (-1, 100, 40, EXIT_AGENT), (1, 170, 5, EXIT_AGENT),
         (1, 60, 50, EXIT_STOP_LOSS)]
    ):  # fmt: skip
        trades[i] = (0, 0, side, exit_row - held, exit_row, 0, 0, 0, 0, 0, held, 0, reason)

    report = after_exit(trades, market)

    assert report["agent_exits"] == 3 and report["young_bars"] == 30
    by_bars = {h["bars"]: h for h in report["horizons"]}
    assert sorted(by_bars) == [15, 30, 60]
    fifteen = by_bars[15]  # all three fit: +15, −15, +15
    assert fifteen["all"]["exits"] == 3 and fifteen["all"]["mean_pips"] == pytest.approx(5.0)
    assert fifteen["all"]["stderr_pips"] == pytest.approx(np.std([15, -15, 15], ddof=1) / 3**0.5)
    assert fifteen["young"] == {"exits": 2, "mean_pips": pytest.approx(15.0), "stderr_pips": 0.0}
    assert fifteen["older"] == {"exits": 1, "mean_pips": pytest.approx(-15.0), "stderr_pips": None}
    sixty = by_bars[60]  # the exit at 170 has 29 bars left in its session
    assert sixty["all"]["exits"] == 2 and sixty["all"]["mean_pips"] == pytest.approx(0.0)
    assert sixty["young"]["mean_pips"] == pytest.approx(60.0)
    assert sixty["older"]["mean_pips"] == pytest.approx(-60.0)
    none = after_exit(empty_trades(), market)["horizons"][0]
    assert none["all"] == {"exits": 0, "mean_pips": None, "stderr_pips": None}
    json.dumps(report, allow_nan=False)


def test_planning_gain_compares_search_with_the_prior_and_random() -> None:
    def trades(pips: list[float]) -> np.ndarray:
        out = empty_trades(len(pips))
        out["pips"] = pips
        return out

    gain = planning_gain(trades([5.0, -1.0, 2.0]), trades([-3.0]), empty_trades())

    assert gain["search"] == {
        "trades": 3, "expectancy_pips": 2.0, "total_pips": 6.0, "win_rate": pytest.approx(2 / 3)
    }  # fmt: skip
    assert gain["search_minus_prior_total_pips"] == 9.0
    assert gain["search_minus_prior_expectancy_pips"] == 5.0
    assert gain["random"]["expectancy_pips"] is None
    assert gain["search_minus_random_total_pips"] == 6.0
    assert gain["search_minus_random_expectancy_pips"] is None
    json.dumps(gain, allow_nan=False)


def test_the_random_policy_acts_legally_at_the_agents_own_rates() -> None:
    market = random_walk_market(4000, 200)
    env = TradingEnv(market, CONFIG, 2000)
    observation = env.reset(np.zeros(2000, dtype=np.int64) + 100)
    counts = np.array([[90, 6, 4, 0], [80, 0, 0, 20]])  # flat / in a position
    policy = frequency_policy(counts, np.random.default_rng(1))

    flat_actions = policy(observation)  # every env starts flat
    assert set(np.unique(flat_actions).tolist()) <= {HOLD, BUY, SELL}
    assert np.mean(flat_actions == BUY) == pytest.approx(0.06, abs=0.015)
    assert np.mean(flat_actions == SELL) == pytest.approx(0.04, abs=0.015)
    held = env.step(np.full(2000, BUY)).observation  # now every env is long
    long_actions = policy(held)
    assert set(np.unique(long_actions).tolist()) <= {HOLD, CLOSE}
    assert np.mean(long_actions == CLOSE) == pytest.approx(0.2, abs=0.03)
    never = frequency_policy(np.array([[10, 0, 0, 0], [0, 0, 0, 0]]), np.random.default_rng(2))
    assert set(np.unique(never(held)).tolist()) == {HOLD, CLOSE}  # no counts: uniform legal


def test_greedy_scoring_records_the_trace_and_trades_the_sessions_by_prior_and_at_random() -> None:
    market, starts = rising_market()

    evaluation = evaluate(BanditModel(), market, CONFIG, starts)

    extra = evaluation.diagnostics
    assert extra is not None
    assert extra.trace.sigma.shape == (L - 1, starts.size, 3)
    assert extra.trace.action_counts.sum() == evaluation.decisions
    assert np.array_equal(extra.trace.action_counts.sum(axis=0), evaluation.action_counts)
    # The search buys (Q long +5) and rides the rise; the prior alone loves SELL and loses.
    assert np.all(evaluation.trades["side"] == 1) and np.all(extra.prior_trades["side"] == -1)
    report = diagnostics_report(extra, evaluation.trades, CONFIG, market)
    gain = report["planning_gain"]
    assert gain["search"]["total_pips"] > 0 > gain["policy_prior"]["total_pips"]
    assert gain["search_minus_prior_total_pips"] > 0
    assert gain["random"]["trades"] == extra.random_trades.size
    # The env's mtm rewards of a session sum to its trades' pips (γ = 1 makes G_0 that sum).
    session_sum = discounted_returns(extra.trace.reward, 1.0)[0]  # [S]
    assert session_sum.sum() == pytest.approx(evaluation.trades["pips"].sum(), abs=1e-3)
    value = report["value_error"]
    assert value["decisions"] == evaluation.decisions and value["reward"] == "mtm"
    assert value["mae_pips"] == pytest.approx(value["zero_mae_pips"])  # the table's value is 0
    closed = int(np.sum(evaluation.trades["exit_reason"] == EXIT_AGENT))
    assert report["after_exit"]["agent_exits"] == closed
    json.dumps(report, allow_nan=False)

    plain = evaluate(BanditModel(), market, CONFIG, starts, diagnostics=False)
    assert plain.diagnostics is None and np.array_equal(plain.trades, evaluation.trades)


def test_the_chance_heads_sigma_is_scored_against_the_bars_outcomes() -> None:
    market, starts = rising_market()
    outcome = np.where(np.arange(market.close.size) % 3 == 0, DOWN, UP).astype(np.int8)
    market = hand_market(market.close, session_bars=L, outcome=outcome)
    model = ChanceModel(p_up=0.7)  # σ = (0.25, 0.05, 0.7) at every afterstate

    extra = evaluate(model, market, CONFIG, starts).diagnostics
    assert extra is not None

    rows = starts[None, :] + np.arange(L - 1)[:, None]  # [D, S] decision rows
    assert np.array_equal(extra.trace.outcome, outcome[rows])
    np.testing.assert_allclose(extra.trace.sigma, np.broadcast_to([0.25, 0.05, 0.7], (L - 1, 4, 3)))
    report = chance_calibration(extra.trace.sigma, extra.trace.outcome)
    labels = outcome[rows].ravel()
    expected = np.mean(np.sum((np.array([0.25, 0.05, 0.7]) - np.eye(3)[labels]) ** 2, axis=1))
    assert report["brier"] == pytest.approx(expected, rel=1e-6)
    (up,) = report["reliability"]["UP"]  # one forecast: one bin holds every decision
    assert up["bin"][0] <= 0.7 <= up["bin"][1] and up["decisions"] == labels.size
    assert up["predicted"] == pytest.approx(0.7) and up["observed"] == np.mean(labels == UP)
