"""Selection bias: the effective number of trials and the probability of backtest overfitting."""

from __future__ import annotations

import numpy as np
import pytest

from micro.validation.pbo import probability_of_overfitting, relative_rank
from micro.validation.sharpe import effective_trials, expected_max_sharpe, luck_threshold


def test_independent_trials_count_fully_and_identical_ones_once() -> None:
    rng = np.random.default_rng(0)
    independent = rng.normal(size=(20, 2000))
    n, rho = effective_trials(independent)
    assert abs(rho) < 0.01 and n == pytest.approx(20, abs=0.3)
    common = rng.normal(size=2000)
    clones = common + 1e-3 * rng.normal(size=(20, 2000))
    n, rho = effective_trials(clones)
    assert rho > 0.999 and n == pytest.approx(1.0, abs=0.03)


def test_the_effective_number_follows_rho_plus_one_minus_rho_times_m() -> None:
    rng = np.random.default_rng(1)
    shared, own = rng.normal(size=5000), rng.normal(size=(10, 5000))
    returns = 0.5 * shared + np.sqrt(0.75) * own  # pairwise correlation 0.25
    n, rho = effective_trials(returns)
    assert rho == pytest.approx(0.25, abs=0.03)
    assert n == pytest.approx(rho + (1 - rho) * 10)


def test_a_trial_that_never_traded_correlates_with_nothing() -> None:
    rng = np.random.default_rng(2)
    returns = np.vstack([rng.normal(size=(3, 50)), np.zeros((1, 50))])
    n, rho = effective_trials(returns)
    assert rho is not None and n == pytest.approx(max(rho, 0) + (1 - max(rho, 0)) * 4)
    assert effective_trials(np.zeros((3, 10))) == (3.0, None)


def test_fewer_effective_trials_lower_the_luck_threshold() -> None:
    sharpes = [0.1, -0.2, 0.3, 0.05, 0.15, -0.1, 0.2, 0.0]
    assert expected_max_sharpe(sharpes, 2.0) < expected_max_sharpe(sharpes)
    assert expected_max_sharpe(sharpes, 1.0) == 0.0 == luck_threshold(0.01, 1.0)
    assert luck_threshold(0.01, 1.05) >= 0.0  # never below zero near one trial


def test_the_relative_rank_averages_ties() -> None:
    values = np.array([1.0, 3.0, 3.0, 5.0])
    assert relative_rank(values, 3) == pytest.approx(4 / 5)
    assert relative_rank(values, 1) == pytest.approx(2.5 / 5)
    assert relative_rank(values, 0) == pytest.approx(1 / 5)


def test_pbo_is_high_when_the_best_is_picked_by_luck_and_low_with_a_real_edge() -> None:
    rng = np.random.default_rng(3)
    luck = rng.normal(size=(30, 64))  # 30 no-skill checkpoints, 64 sessions
    by_luck = probability_of_overfitting(luck, blocks=8)
    assert by_luck["combinations"] == 70 and by_luck["blocks"] == 8
    assert 0.3 < by_luck["pbo"] < 0.8
    edge = luck.copy()
    edge[7] += 1.5  # one checkpoint with a real edge in every block
    with_edge = probability_of_overfitting(edge, blocks=8)
    assert with_edge["pbo"] < 0.05 and with_edge["median_logit"] > 2


def test_pbo_is_undefined_without_a_choice_or_sessions_and_says_why() -> None:
    one = probability_of_overfitting(np.ones((1, 20)))
    assert one["pbo"] is None and "one checkpoint" in one["why"]
    short = probability_of_overfitting(np.ones((3, 1)))
    assert short["pbo"] is None and "too few" in short["why"]
    odd = probability_of_overfitting(np.random.default_rng(4).normal(size=(3, 5)), blocks=8)
    assert odd["blocks"] == 4 and odd["combinations"] == 6
