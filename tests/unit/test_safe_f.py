"""Bandy's safe-f and CAR25 against cases solvable by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from micro.config import Config, replace
from micro.validation.sizing import (
    _simulate_parallel,
    _simulate_serial,
    configured_safe_f,
    drawdown_percentile,
    horizon_trades,
    safe_f,
)

ACCOUNT = 1000.0


def test_when_every_trade_loses_the_same_pips_safe_f_has_a_closed_form() -> None:
    # n losers of L pips draw the equity down 1 − (1 − f·L/A)^n; set it equal to the tolerance.
    loss, n, tolerance = 10.0, 50, 0.20
    expected = ACCOUNT / loss * (1.0 - (1.0 - tolerance) ** (1.0 / n))

    report = safe_f(
        np.full(30, -loss), account_pips=ACCOUNT, horizon=n, horizon_years=2.0,
        tolerance=tolerance, runs=50, seed=1,
    )  # fmt: skip

    assert report["safe_f"] == pytest.approx(expected, rel=1e-7)
    assert report["hit_f_max"] is False
    assert report["drawdown_p95"] == pytest.approx(tolerance, rel=1e-6)
    # Every run ends 20% down after 2 years: CAR = 0.8^(1/2) − 1 at every percentile.
    for q in (5, 25, 50, 75, 95):
        assert report[f"car{q}"] == pytest.approx(math.sqrt(0.8) - 1.0, rel=1e-5)


def test_a_list_of_winners_only_reaches_f_max_and_compounds_by_hand() -> None:
    report = safe_f(
        np.full(20, 5.0), account_pips=ACCOUNT, horizon=100, horizon_years=2.0, f_max=0.5,
        runs=50, seed=1,
    )  # fmt: skip

    assert report["safe_f"] == 0.5 and report["hit_f_max"] is True
    assert report["drawdown_p95"] == 0.0
    # Each trade adds 0.5 × 5 / 1000 = 0.25%: E = 1.0025^100 over 2 years.
    assert report["car25"] == pytest.approx(1.0025 ** (100 / 2) - 1.0, rel=1e-9)


def test_a_higher_drawdown_tolerance_allows_a_larger_safe_f() -> None:
    pips = np.random.default_rng(0).normal(1.0, 15.0, 400)
    fs = [
        safe_f(pips, account_pips=ACCOUNT, horizon=2000, horizon_years=2.0, tolerance=t,
               runs=300, seed=2)["safe_f"]
        for t in (0.1, 0.2, 0.3)
    ]  # fmt: skip
    assert 0.0 < fs[0] < fs[1] < fs[2] < 1.0


def test_the_drawdown_percentile_grows_with_f() -> None:
    pips = np.random.default_rng(1).normal(0.5, 15.0, 300)
    dd = [
        drawdown_percentile(pips, f, account_pips=ACCOUNT, horizon=1000, runs=200, seed=3)
        for f in (0.05, 0.1, 0.2, 0.4, 0.8)
    ]
    assert dd == sorted(dd) and dd[0] < dd[-1]


def test_safe_f_is_reproducible_by_seed_and_the_seed_matters() -> None:
    pips = np.random.default_rng(2).normal(1.0, 15.0, 200)
    kwargs = dict(account_pips=ACCOUNT, horizon=500, horizon_years=2.0, runs=200)
    assert safe_f(pips, seed=4, **kwargs) == safe_f(pips, seed=4, **kwargs)
    assert safe_f(pips, seed=4, **kwargs)["safe_f"] != safe_f(pips, seed=5, **kwargs)["safe_f"]


def test_a_trade_that_loses_more_than_the_account_ruins_rather_than_breaking_the_math() -> None:
    # One loss of 2000 pips at f = 1 takes the equity below 0: the run is ruined (drawdown 1).
    report = safe_f(
        np.full(5, -2000.0), account_pips=ACCOUNT, horizon=3, horizon_years=1.0, runs=20, seed=0
    )
    assert report["safe_f"] == pytest.approx(ACCOUNT / 2000.0 * (1 - 0.8 ** (1 / 3)), rel=1e-7)
    assert (
        drawdown_percentile(
            np.full(5, -2000.0), 1.0, account_pips=ACCOUNT, horizon=3, runs=20, seed=0
        )
        == 1.0
    )
    json.dumps(report, allow_nan=False)


def test_no_trades_give_no_safe_f() -> None:
    report = safe_f(np.zeros(0), account_pips=ACCOUNT, horizon=10, horizon_years=2.0)
    assert report["safe_f"] is None and report["car25"] is None
    json.dumps(report, allow_nan=False)


def test_the_horizon_is_the_years_at_the_observed_trade_rate() -> None:
    assert horizon_trades(10.0, 2.0) == 10 * 252 * 2
    assert horizon_trades(0.001, 0.5) == 1  # never an empty horizon


def test_a_tolerance_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        safe_f(np.ones(3), account_pips=ACCOUNT, horizon=5, horizon_years=1.0, tolerance=1.5)


def test_the_threaded_and_the_single_threaded_simulations_agree_exactly() -> None:
    returns = np.random.default_rng(3).normal(1.0, 15.0, 100) / ACCOUNT
    serial = _simulate_serial(returns, 0.7, 300, 64, 11, 1.0)
    threaded = _simulate_parallel(returns, 0.7, 300, 64, 11, 1.0)
    assert np.array_equal(serial[0], threaded[0]) and np.array_equal(serial[1], threaded[1])


def test_the_configured_safe_f_uses_the_validation_section() -> None:
    validation = replace(
        Config(), **{"validation.safe_f_max": 0.3, "validation.bootstrap_runs": 50}
    ).validation
    report = configured_safe_f(np.full(10, 4.0), 2.0, validation)

    assert report["horizon_trades"] == 2 * 252 * 2 and report["horizon_years"] == 2.0
    assert report["f_max"] == 0.3 and report["safe_f"] == 0.3 and report["runs"] == 50
    assert report["drawdown_tolerance"] == validation.safe_f_drawdown_tolerance
    assert configured_safe_f(np.zeros(0), None, validation)["safe_f"] is None
