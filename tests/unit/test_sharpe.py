"""Sharpe/Sortino on daily P&L, PSR and DSR against their formulas and published values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from micro.env.trades import empty_trades
from micro.validation.sharpe import (
    EULER_MASCHERONI,
    daily_pnl,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    luck_threshold,
    normal_cdf,
    normal_ppf,
    probabilistic_sharpe_ratio,
    sharpe_report,
)

DAY = 86_400
MONDAY = 19_723  # 2024-01-01 was a Monday (UTC day number)


def trades_on(days: list[int], pips: list[float]) -> np.ndarray:
    """Trades exiting at noon UTC of the given day numbers."""
    trades = empty_trades(len(days))
    trades["exit_ts"] = np.asarray(days, dtype=np.int64) * DAY + 12 * 3600
    trades["pips"] = pips
    return trades


# Φ and Φ⁻¹ at points whose values are tabulated (Abramowitz & Stegun; 15+ digits).
REFERENCE = [
    (0.0, 0.5),
    (1.0, 0.8413447460685429),
    (-1.0, 0.15865525393145707),
    (1.959963984540054, 0.975),
    (2.3263478740408408, 0.99),
    (3.090232306167813, 0.999),
    (-6.361340902404056, 1e-10),
]


@pytest.mark.parametrize(("x", "p"), REFERENCE)
def test_the_normal_cdf_and_its_inverse_match_tabulated_values(x: float, p: float) -> None:
    assert normal_cdf(x) == pytest.approx(p, rel=1e-12)
    assert normal_ppf(p) == pytest.approx(x, rel=1e-12, abs=1e-14)


def test_the_inverse_normal_round_trips_across_the_whole_range() -> None:
    for p in np.r_[
        np.logspace(-15, -1, 30), np.linspace(0.02, 0.98, 49), 1 - np.logspace(-1, -12, 20)
    ]:
        assert normal_cdf(normal_ppf(float(p))) == pytest.approx(p, rel=1e-12)
    with pytest.raises(ValueError):
        normal_ppf(1.0)


def test_psr_follows_its_formula_with_raw_kurtosis() -> None:
    # SR = 0.1, n = 101, γ3 = 0.05, γ4 = 3: the radicand 1 − 0.005 + 0.5·0.01 is exactly 1,
    # so z = 0.1·√100 = 1 and PSR = Φ(1).
    assert probabilistic_sharpe_ratio(0.1, 101, 0.05, 3.0) == pytest.approx(0.8413447460685429)
    # A normal (γ3 = 0, γ4 = 3): z = SR·√(n − 1) / √(1 + SR²/2), not √(1 − SR²/4) (excess).
    z = 0.2 * 5 / math.sqrt(1 + 0.02)
    assert probabilistic_sharpe_ratio(0.2, 26, 0.0, 3.0) == pytest.approx(normal_cdf(z))
    # Against a benchmark: SR − SR* enters the numerator only.
    z = (0.3 - 0.1) * math.sqrt(49) / math.sqrt(1 - (-0.5) * 0.3 + (5 - 1) / 4 * 0.09)
    assert probabilistic_sharpe_ratio(0.3, 50, -0.5, 5.0, 0.1) == pytest.approx(normal_cdf(z))


def test_psr_is_none_where_the_formula_has_no_value() -> None:
    assert probabilistic_sharpe_ratio(0.1, 1, 0.0, 3.0) is None  # one observation
    assert probabilistic_sharpe_ratio(2.0, 50, 5.0, 1.0) is None  # negative radicand
    assert probabilistic_sharpe_ratio(float("nan"), 50, 0.0, 3.0) is None


def test_dsr_reproduces_the_numerical_example_of_bailey_and_lopez_de_prado_2014() -> None:
    # 100 trials with V[SR] = 1/2 annualised, the best SR 2.5 annualised over 1250 days
    # (250 a year), skewness −3, kurtosis 10: SR0 = 0.1132 per day and DSR = 0.9004.
    sr0 = luck_threshold(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_the_luck_threshold_follows_its_formula_over_the_trials_given() -> None:
    trials = [0.1, 0.2, 0.3]  # sample variance 0.01
    g = EULER_MASCHERONI
    expected = 0.1 * ((1 - g) * normal_ppf(1 - 1 / 3) + g * normal_ppf(1 - 1 / (3 * math.e)))
    assert expected_max_sharpe(trials) == pytest.approx(expected)
    assert expected_max_sharpe([0.1, None, float("nan"), 0.2, 0.3]) == pytest.approx(expected)


def test_with_a_single_trial_the_dsr_is_the_psr_against_zero() -> None:
    psr = probabilistic_sharpe_ratio(0.15, 200, -0.2, 4.0)
    assert deflated_sharpe_ratio(0.15, 200, -0.2, 4.0, [0.15]) == psr
    assert deflated_sharpe_ratio(0.15, 200, -0.2, 4.0, []) == psr
    # More trials with spread raise the bar: the DSR falls below the PSR.
    assert deflated_sharpe_ratio(0.15, 200, -0.2, 4.0, [0.15, 0.0, 0.1, -0.05]) < psr


def test_daily_pnl_sums_by_exit_day_and_fills_idle_trading_days_with_zero() -> None:
    trades = trades_on([MONDAY, MONDAY, MONDAY + 2], [3.0, -1.0, 4.0])
    days, pnl = daily_pnl(trades, np.arange(MONDAY, MONDAY + 4))

    assert days.tolist() == [MONDAY, MONDAY + 1, MONDAY + 2, MONDAY + 3]
    assert pnl.tolist() == [2.0, 0.0, 4.0, 0.0]


def test_without_a_calendar_the_weekend_is_not_a_trading_day() -> None:
    friday, next_monday = MONDAY + 4, MONDAY + 7
    days, pnl = daily_pnl(trades_on([friday, next_monday], [1.0, 2.0]))

    assert days.tolist() == [friday, next_monday] and pnl.tolist() == [1.0, 2.0]


def test_sharpe_sortino_and_psr_of_a_hand_computed_daily_series() -> None:
    # Daily pips 1, 2, 3, 0 (no trade), −1: mean 1, sample variance 10 / 4, population m2 = 2,
    # m3 = 0, m4 = 6.8; downside deviation √(1 / 5).
    trades = trades_on([MONDAY, MONDAY + 1, MONDAY + 2, MONDAY + 4], [1.0, 2.0, 3.0, -1.0])
    report = sharpe_report(trades, np.arange(MONDAY, MONDAY + 5))

    sr = 1.0 / math.sqrt(2.5)
    assert report["days"] == 5
    assert report["sharpe_daily"] == pytest.approx(sr)
    assert report["sharpe"] == pytest.approx(sr * math.sqrt(252))
    assert report["sortino"] == pytest.approx(1.0 / math.sqrt(0.2) * math.sqrt(252))
    assert report["daily_skewness"] == pytest.approx(0.0, abs=1e-12)
    assert report["daily_kurtosis"] == pytest.approx(6.8 / 4)
    z = sr * 2 / math.sqrt(1 + (1.7 - 1) / 4 * sr**2)
    assert report["psr"] == pytest.approx(normal_cdf(z))
    assert report["dsr"] == pytest.approx(report["psr"])  # no other trials yet
    json.dumps(report, allow_nan=False)


def test_the_report_passes_the_trials_to_the_dsr() -> None:
    trades = trades_on(
        list(range(MONDAY, MONDAY + 40)), list(np.random.default_rng(0).normal(2, 5, 40))
    )
    alone = sharpe_report(trades)
    among = sharpe_report(trades, trial_sharpes=[alone["sharpe_daily"], 0.1, -0.2, 0.3])

    assert among["dsr_trials"] == 4 and among["dsr"] < alone["dsr"] == alone["psr"]


def test_degenerate_daily_series_report_none_not_nan() -> None:
    for trades in (empty_trades(), trades_on([MONDAY, MONDAY + 1], [2.0, 2.0])):
        report = sharpe_report(trades)
        assert report["sharpe"] is None and report["psr"] is None and report["dsr"] is None
        json.dumps(report, allow_nan=False)
    winners = sharpe_report(trades_on([MONDAY, MONDAY + 1], [1.0, 3.0]))
    assert winners["sortino"] is None and winners["sharpe"] is not None
