"""What the HTML report draws: the report's `charts` data and the page built from a report."""

from __future__ import annotations

import numpy as np
import pytest

from micro.config import Config
from micro.env.actions import CLOSE, HOLD, SELL
from micro.env.trading import run_sessions
from micro.pages import PLOTLY_ASSET
from micro.validation.baselines import baselines_report, cumulative_session_band
from micro.validation.charts import (
    ACTED_DTYPE,
    ActedRecorder,
    charts_report,
    drawn_choice,
    equity_fan,
)
from micro.validation.html import distribution_figure, read_report, report_html
from micro.validation.montecarlo import bootstrap
from tests.unit.env_markets import coin_flipper as flip_coins
from tests.unit.env_markets import random_walk_market

CONFIG = Config()
L = 120  # session bars


def coin_flipper(seed: int):
    """Enters and exits at random: a trade list with wins, losses, stops and session ends."""
    return flip_coins(seed, buy=0.05, sell=0.04, close=0.08)


def played(sessions: int = 10, seed: int = 0):
    market = random_walk_market(sessions * L + 50, L, seed=seed)
    starts = np.arange(sessions, dtype=np.int64) * L + 50
    return market, starts, run_sessions(market, CONFIG, starts, coin_flipper(seed))


@pytest.mark.parametrize("block", [0, 5])
def test_the_fan_is_the_bootstraps_own_runs_its_last_point_their_total_pips(block: int) -> None:
    pips = np.random.default_rng(1).normal(0.4, 12.0, 700)
    fan = equity_fan(pips, runs=300, seed=7, block_size=block, points=50, paths=4)
    boot = bootstrap(pips, runs=300, seed=7, block_size=block)
    assert fan["trade"][0] == 1 and fan["trade"][-1] == 700 and len(fan["trade"]) == 50
    for q in (5, 25, 50, 75, 95):
        assert fan[f"p{q}"][-1] == pytest.approx(boot["total_pips"][f"p{q}"], abs=0.006)
        assert len(fan[f"p{q}"]) == 50
    assert len(fan["paths"]) == 4 and all(len(p) == 50 for p in fan["paths"])
    assert all(a <= b for a, b in zip(fan["p5"], fan["p95"], strict=True))
    # drawdown from the running peak: never negative, and its 95th percentile at the end is
    # at most the bootstrap's 95th-percentile max drawdown (the max over the whole path)
    assert min(fan["drawdown_p50"]) >= 0
    assert fan["drawdown_p95"][-1] <= boot["max_drawdown_pips"]["p95"] + 0.01


def test_the_fan_of_no_trades_is_empty() -> None:
    fan = equity_fan(np.zeros(0), runs=100, seed=1)
    assert fan["trade"] == [] and fan["paths"] == [] and fan["p50"] == []


def test_the_drawn_sessions_are_the_worst_median_and_best_in_time_order() -> None:
    market, starts, trades = played(sessions=9)
    pnl = {int(s): float(trades["pips"][trades["session"] == s].sum()) for s in starts}
    traded = sorted((p, s) for s, p in pnl.items() if (trades["session"] == s).any())
    chosen = drawn_choice(starts, trades)
    assert chosen == sorted(chosen) and len(chosen) == 3
    assert traded[0][1] in chosen and traded[-1][1] in chosen  # the worst and the best
    assert drawn_choice(starts, trades[:0]) == [int(starts[0])]  # no trades: candles anyway
    assert drawn_choice(starts[:0], trades[:0]) == []


def test_the_random_band_carries_each_traders_total_through_sessions_without_trades() -> None:
    starts = np.array([100, 200, 300, 400], dtype=np.int64)
    sessions = np.array([100, 100, 300], dtype=np.int64)  # nothing in 200 and 400
    pips = np.array([[1.0, 2.0, 3.0], [-1.0, -1.0, 10.0], [0.0, 0.0, 0.0]])  # [R=3, N=3]
    band = cumulative_session_band(pips, sessions, starts)
    assert band["p50"] == [0.0, 0.0, 6.0, 6.0]
    totals = np.array([[3, 3, 6, 6], [-2, -2, 8, 8], [0, 0, 0, 0]], dtype=float)
    assert band["p95"] == pytest.approx(np.percentile(totals, 95, axis=0).round(2).tolist())
    assert cumulative_session_band(np.zeros((0, 0)), np.zeros(0), starts)["p5"] == [0.0] * 4


def test_the_rule_baselines_carry_their_pips_per_session_in_time_order() -> None:
    market, starts, trades = played(sessions=6, seed=2)
    report = baselines_report(market, CONFIG, starts, trades, runs=50, seed=3)
    for key in ("moving_average_crossover", "buy_and_hold"):
        per_session = report[key]["session_pnl_pips"]
        assert len(per_session) == starts.size
        assert sum(per_session) == pytest.approx(report[key]["total_pips"], abs=0.05)
    band = report["random_entry"]["cumulative_session_pips"]
    assert all(len(band[k]) == starts.size for k in ("p5", "p50", "p95"))


def test_only_entries_and_exits_are_recorded_with_the_chosen_actions_sigma() -> None:
    recorder = ActedRecorder(np.array([10, 20, 30]))
    sigma = np.arange(3 * 4 * 3, dtype=np.float32).reshape(3, 4, 3)
    recorder.record(
        np.array([15, 25, 35]), np.array([HOLD, SELL, CLOSE]), np.ones((3, 4)),
        np.zeros((3, 4)), np.full((3, 4), 0.25), sigma, np.array([1.0, 2.0, 3.0]),
        np.array([0.5, 0.6, 0.7]),
    )  # fmt: skip
    acted = recorder.acted()
    assert acted.dtype == ACTED_DTYPE and acted.size == 2
    assert acted["session"].tolist() == [20, 30] and acted["row"].tolist() == [25, 35]
    assert acted["action"].tolist() == [SELL, CLOSE]
    assert acted["sigma"].tolist() == [sigma[1, SELL].tolist(), sigma[2, CLOSE].tolist()]
    assert acted["value"].tolist() == pytest.approx([2.0, 3.0])


def scored_report(trades: np.ndarray, market, starts) -> dict:
    """A report as the HTML builder reads it, its sections made by the real functions."""
    pips = trades["pips"]
    equity = np.cumsum(pips)
    return {
        "schema_version": 1,
        "status": "ok",
        "error": None,
        "episode": 5,
        "split": "validation",
        "created_at": "2026-01-01T00:00:00+00:00",
        "micro_version": "test",
        "checkpoint": {"file": "ckpt_ep0000005.pth"},
        "sessions": {
            "count": int(starts.size),
            "trading_days": 3,
            "start_utc": [
                f"2026-01-0{1 + k // 4}T{k % 4:02d}:00+00:00" for k in range(starts.size)
            ],
            "pnl_pips": [float(pips[trades["session"] == s].sum()) for s in starts],
        },
        "evaluation": {"simulations": 2},
        "metrics": {
            "trades": int(pips.size),
            "expectancy_pips": float(pips.mean()),
            "win_rate": 0.5,
            "profit_factor": 1.0,
            "sqn": 0.1,
            "max_drawdown_pips": 10.0,
            "max_drawdown_pct": 1.0,
        },  # fmt: skip
        "bootstrap": bootstrap(pips, runs=50, seed=1),
        "baselines": baselines_report(market, CONFIG, starts, trades, runs=50, seed=3),
        "diagnostics": None,
        "equity_curve": {"trade": list(range(1, pips.size + 1)), "pips": equity.tolist()},
        "charts": charts_report(market, starts, trades, None, runs=50, seed=1, block_size=0),
        "promotion": {
            "promoted": False,
            "reason": "too few <trades>",
            "gates": [
                {"name": "min_trades", "value": 3, "threshold": 30, "passed": False, "line": "x"}
            ],
        },
    }


def test_the_page_holds_every_chart_escapes_text_and_loads_plotly_from_the_shared_asset() -> None:
    market, starts, trades = played(sessions=8, seed=4)
    report = scored_report(trades, market, starts)
    page = report_html(report)
    assert f"<script src='{PLOTLY_ASSET}'></script>" in page
    assert "cdn" not in page.lower() and "https://" not in page and "http://" not in page
    for div in ("equity", "fan", "distribution", "session-0"):
        assert f'id="{div}"' in page
    assert 'id="planning"' not in page and 'id="test"' not in page  # no data: not drawn
    assert "too few &lt;trades&gt;" in page and "<trades>" not in page
    assert "<table id='gates'>" in page and "FAIL" in page
    assert len(distribution_figure(report).data[0].x) == trades.size  # every trade's result


def test_a_failed_report_gets_a_page_with_its_error_and_no_charts() -> None:
    report = {
        "schema_version": 1, "status": "failed", "error": "truncated or corrupt", "episode": 3,
        "split": "validation", "checkpoint": {"file": "ckpt_ep0000003.pth"},
        "promotion": {"promoted": False, "reason": "not scored (failed)"},
    }  # fmt: skip
    page = report_html(report)
    assert (
        "truncated or corrupt" in page and "js-plotly-plot" not in page and 'id="fan"' not in page
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ('{"a": 1}', "not a validation report"),
        ('{"schema_version": 9, "status": "ok", "checkpoint": {}}', "schema version 9"),
    ],
    ids=["missing", "not-json", "not-a-report", "future-schema"],
)
def test_what_is_not_a_report_is_refused_with_one_line(tmp_path, content, expected) -> None:
    from micro.errors import UserError

    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as caught:
        read_report(path)
    message = str(caught.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_a_report_from_before_the_charts_still_gets_a_page_of_what_it_holds() -> None:
    market, starts, trades = played(sessions=6, seed=5)
    report = scored_report(trades, market, starts)
    del report["charts"]
    for key in ("moving_average_crossover", "buy_and_hold"):
        del report["baselines"][key]["session_pnl_pips"]
    del report["baselines"]["random_entry"]["cumulative_session_pips"]
    page = report_html(report)
    assert 'id="equity"' in page and "Promotion gates" in page
    assert 'id="fan"' not in page and 'id="distribution"' not in page
    assert 'id="session-0"' not in page
