"""Trade-list metrics against trade lists worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from micro.env.trades import empty_trades
from micro.validation.metrics import covered_days, max_drawdown_pips, sampled_curve, trade_metrics

DAY = 86_400


def trade_list(pips: list[float], bars: list[int] | None = None) -> np.ndarray:
    """A trade list with these net pips (and bars held; default 1 each)."""
    trades = empty_trades(len(pips))
    trades["pips"] = pips
    trades["bars_held"] = bars if bars is not None else [1] * len(pips)
    return trades


def metrics_of(trades: np.ndarray, **overrides: float) -> dict:
    kwargs = dict(
        stop_loss_pips=10.0, account_pips=1000.0, sessions=5, decisions_per_session=10,
        session_days=2.0,
    )  # fmt: skip
    kwargs.update(overrides)
    return trade_metrics(trades, **kwargs)


def test_five_trades_match_the_figures_worked_on_paper() -> None:
    # pips 10, −5, 20, −10, 5 ; bars 2, 4, 6, 8, 10 ; stop 10 pips ; account 1000 pips.
    m = metrics_of(trade_list([10, -5, 20, -10, 5], [2, 4, 6, 8, 10]))

    assert m["trades"] == 5 and m["wins"] == 3 and m["losses"] == 2
    assert m["expectancy_pips"] == pytest.approx(4.0)  # 20 / 5
    assert m["win_rate"] == pytest.approx(0.6)
    assert m["profit_factor"] == pytest.approx(35 / 15)  # (10 + 20 + 5) / (5 + 10)
    assert m["payoff_ratio"] == pytest.approx((35 / 3) / 7.5)
    assert m["average_bars_held"] == pytest.approx(6.0)
    assert m["exposure"] == pytest.approx(30 / 50)  # 30 bars held of 5 sessions × 10 decisions
    assert m["trades_per_day"] == pytest.approx(2.5)
    assert m["total_pips"] == pytest.approx(20.0)
    # Equity 10, 5, 25, 15, 20: the worst fall is 25 → 15.
    assert m["max_drawdown_pips"] == pytest.approx(10.0)
    assert m["max_drawdown_pct"] == pytest.approx(1.0)
    # Deviations 6, −9, 16, −14, 1: Σ² = 570, sample variance 570 / 4 = 142.5.
    assert m["std_pips"] == pytest.approx(math.sqrt(142.5))
    assert m["sqn"] == pytest.approx(math.sqrt(5) * 4.0 / math.sqrt(142.5))
    assert m["sqn_capped"] == pytest.approx(m["sqn"])  # N < 100: the cap changes nothing
    assert m["expectancy_r"] == pytest.approx(0.4)
    assert m["r_mean"] == pytest.approx(0.4)
    assert m["r_std"] == pytest.approx(math.sqrt(142.5) / 10.0)
    assert m["sqn_r"] == pytest.approx(m["sqn"])  # R-multiples scale mean and std alike
    assert m["equity_curve"] == pytest.approx([10, 5, 25, 15, 20])
    assert m["equity_curve_sampled"] == {"trade": [1, 2, 3, 4, 5], "pips": [10, 5, 25, 15, 20]}


def test_an_empty_trade_list_reports_zeros_and_nones_and_is_valid_json() -> None:
    m = metrics_of(empty_trades())

    assert m["trades"] == 0 and m["total_pips"] == 0.0 and m["max_drawdown_pips"] == 0.0
    for key in ("expectancy_pips", "win_rate", "profit_factor", "payoff_ratio", "sqn",
                "sqn_capped", "average_bars_held", "r_mean", "r_std"):  # fmt: skip
        assert m[key] is None, key
    assert m["exposure"] == 0.0 and m["trades_per_day"] == 0.0
    assert m["equity_curve"] == [] and m["equity_curve_sampled"] == {"trade": [], "pips": []}
    json.dumps(m, allow_nan=False)


def test_all_winners_have_no_profit_factor_no_payoff_and_no_drawdown() -> None:
    m = metrics_of(trade_list([5, 10, 15]))

    assert m["win_rate"] == 1.0
    assert m["profit_factor"] is None and m["payoff_ratio"] is None
    assert m["max_drawdown_pips"] == 0.0
    assert m["sqn"] == pytest.approx(math.sqrt(3) * 10 / 5)  # mean 10, sample std 5
    json.dumps(m, allow_nan=False)


def test_all_losers_have_zero_profit_factor_and_a_drawdown_from_the_start() -> None:
    m = metrics_of(trade_list([-2, -4, -6]))

    assert m["win_rate"] == 0.0
    assert m["profit_factor"] == 0.0 and m["payoff_ratio"] is None
    assert m["max_drawdown_pips"] == pytest.approx(12.0)  # from the starting 0 down to −12
    assert m["max_drawdown_pct"] == pytest.approx(1.2)
    assert m["sqn"] == pytest.approx(-math.sqrt(3) * 4 / 2)


def test_identical_trades_have_no_sqn_rather_than_an_infinite_one() -> None:
    m = metrics_of(trade_list([1.1] * 7))

    assert m["sqn"] is None and m["sqn_capped"] is None and m["sqn_r"] is None
    assert m["expectancy_pips"] == pytest.approx(1.1)
    json.dumps(m, allow_nan=False)


def test_sqn_caps_n_at_one_hundred() -> None:
    m = metrics_of(trade_list([3.0, -1.0] * 200))  # mean 1, deviations ±2

    std = math.sqrt(400 * 4 / 399)
    assert m["sqn"] == pytest.approx(math.sqrt(400) / std)
    assert m["sqn_capped"] == pytest.approx(math.sqrt(100) / std)
    assert m["sqn"] == pytest.approx(2 * m["sqn_capped"])


def test_max_drawdown_is_measured_from_the_running_peak() -> None:
    assert max_drawdown_pips(np.array([5.0, -3.0, 4.0, -8.0, 1.0])) == pytest.approx(8.0)
    assert max_drawdown_pips(np.array([-1.0, 2.0, -4.0])) == pytest.approx(4.0)  # peak 1 → −3


def test_the_sampled_equity_curve_is_short_and_keeps_the_extremes_and_the_end() -> None:
    rng = np.random.default_rng(3)
    equity = np.cumsum(rng.normal(0.0, 10.0, 5000))

    sampled = sampled_curve(equity)

    assert 2 <= len(sampled["trade"]) <= 501
    assert sampled["trade"] == sorted(sampled["trade"])
    assert max(sampled["pips"]) == equity.max() and min(sampled["pips"]) == equity.min()
    assert sampled["trade"][-1] == 5000 and sampled["pips"][-1] == equity[-1]
    assert [equity[k - 1] for k in sampled["trade"]] == sampled["pips"]


def test_covered_days_are_the_utc_dates_holding_a_session_bar() -> None:
    day0 = 19_723  # 2024-01-01
    ts = day0 * DAY + 60 * np.arange(3 * 1440, dtype=np.int64)  # three days of minutes
    starts = np.array([1440 - 2, 2 * 1440 + 5])  # one crosses midnight into day 1, one in day 2

    days = covered_days(ts, starts, session_bars=4)

    assert days.tolist() == [day0, day0 + 1, day0 + 2]
    assert covered_days(ts, np.array([], dtype=np.int64), 4).size == 0
