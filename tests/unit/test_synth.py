"""Synthetic candles: deterministic, consistent, GBP_JPY-like, and each regime as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from micro.data.sessions import gap_summary
from micro.data.synth import days_for_bars, market_open, synthesize
from micro.errors import UserError

DAYS = 90
SPREAD_PIPS = 4.0


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {
        r: synthesize("GBP_JPY", DAYS, 3, r, "2022-01-03")
        for r in ("random", "trend", "meanrevert")
    }


def _pips(frame: pd.DataFrame) -> np.ndarray:
    return frame["close"].to_numpy() / 0.01


def _autocorr(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[1:] * x[:-1]).sum() / (x * x).sum())


def _seconds(frame: pd.DataFrame) -> np.ndarray:
    return frame["ts"].to_numpy().astype("datetime64[s]").astype(np.int64)


def _momentum_pips_per_trade(close_pips: np.ndarray, bars: int = 20) -> float:
    """Every `bars` bars hold the sign of the last `bars` bars' move; net of a 4-pip spread."""
    idx = np.arange(bars, len(close_pips) - bars, bars)
    side = np.sign(close_pips[idx] - close_pips[idx - bars])
    pnl = side * (close_pips[idx + bars] - close_pips[idx])
    entries = int(np.sum(np.r_[True, side[1:] != side[:-1]] & (side != 0)))
    return float((pnl.sum() - SPREAD_PIPS * entries) / entries)


def _fade_pips_per_trade(close_pips: np.ndarray, mean_bars: int = 480, hold: int = 120) -> float:
    """Every `hold` bars fade a deviation over 10 pips from the rolling mean; net of the spread."""
    mean = np.convolve(close_pips, np.ones(mean_bars) / mean_bars, "valid")
    idx = np.arange(mean_bars, len(close_pips) - hold, hold)
    deviation = close_pips[idx] - mean[idx - mean_bars + 1]
    side = -np.sign(deviation) * (np.abs(deviation) > 10.0)
    pnl = side * (close_pips[idx + hold] - close_pips[idx])
    entries = int(np.sum((side != 0) & np.r_[True, side[1:] != side[:-1]]))
    return float((pnl.sum() - SPREAD_PIPS * entries) / max(entries, 1))


def test_same_seed_gives_an_identical_frame() -> None:
    a = synthesize("GBP_JPY", 10, 11, "trend", "2022-01-03")
    b = synthesize("GBP_JPY", 10, 11, "trend", "2022-01-03")
    pd.testing.assert_frame_equal(a, b)


def test_different_seeds_give_different_prices() -> None:
    a = synthesize("GBP_JPY", 10, 1, "random", "2022-01-03")
    b = synthesize("GBP_JPY", 10, 2, "random", "2022-01-03")
    n = min(len(a), len(b))
    assert not np.allclose(a["close"].to_numpy()[:n], b["close"].to_numpy()[:n])


@pytest.mark.parametrize("regime", ["random", "trend", "meanrevert"])
def test_bars_are_consistent_ohlc_with_positive_volume(frames, regime: str) -> None:
    f = frames[regime]
    assert (f["high"] >= f[["open", "close"]].max(axis=1)).all()
    assert (f["low"] <= f[["open", "close"]].min(axis=1)).all()
    assert (f["volume"] > 0).all()
    assert f["ts"].is_monotonic_increasing and f["ts"].is_unique
    assert (f["ts"].dt.second == 0).all()


def test_no_bars_while_the_market_is_closed_for_the_weekend(frames) -> None:
    ts = frames["random"]["ts"]
    weekday, hour = ts.dt.day_of_week, ts.dt.hour
    closed = ((weekday == 4) & (hour >= 21)) | (weekday == 5) | ((weekday == 6) & (hour < 21))
    assert not closed.any()
    assert ((weekday == 6) & (hour == 21)).any()  # the week opens Sunday 21:00 UTC
    assert market_open(_seconds(frames["random"])).all()


def test_some_minutes_are_missing_and_some_gaps_exceed_ten_minutes(frames) -> None:
    ts = _seconds(frames["random"])
    steps = np.diff(ts)
    assert (steps == 120).sum() > 50  # single missing minutes
    summary = gap_summary(ts, 10)
    assert summary.gaps >= 5  # outages inside trading weeks
    assert summary.weekly_closes == DAYS // 7 or summary.weekly_closes == DAYS // 7 + 1


@pytest.mark.parametrize("regime", ["random", "trend", "meanrevert"])
def test_price_level_and_pip_scale_volatility_look_like_gbp_jpy(frames, regime: str) -> None:
    f = frames[regime]
    assert 150.0 < f["close"].min() and f["close"].max() < 190.0
    steps = np.diff(_pips(f))
    assert 1.0 < steps.std() < 2.2  # pips per minute
    kurtosis = float(np.mean((steps - steps.mean()) ** 4) / steps.var() ** 2)
    assert kurtosis > 4.0  # fat tails (a normal has 3)


def test_volatility_clusters_and_follows_the_trading_day(frames) -> None:
    f = frames["random"]
    steps = np.abs(np.diff(_pips(f)))
    assert _autocorr(steps) > 0.05  # big moves follow big moves
    hour = f["ts"].dt.hour.to_numpy()[1:]
    overlap = steps[(hour >= 12) & (hour < 16)].mean()
    asia = steps[(hour >= 0) & (hour < 6)].mean()
    assert overlap > 1.5 * asia


def test_random_regime_has_no_autocorrelation_and_no_edge(frames) -> None:
    close = _pips(frames["random"])
    assert abs(_autocorr(np.diff(close))) < 0.02
    assert abs(_autocorr(np.diff(close[::10]))) < 0.05
    assert _momentum_pips_per_trade(close) < 0.0  # the spread eats a momentum rule


def test_trend_regime_has_persistent_multi_bar_moves_a_momentum_rule_can_trade(frames) -> None:
    close = _pips(frames["trend"])
    assert _autocorr(np.diff(close[::10])) > 0.2
    assert _momentum_pips_per_trade(close) > 2.0


def test_meanrevert_regime_pulls_back_and_fading_beats_the_spread(frames) -> None:
    close = _pips(frames["meanrevert"])
    assert _autocorr(np.diff(close[::30])) < -0.03
    assert _fade_pips_per_trade(close) > 2.0


def test_days_for_bars_holds_at_least_that_many_bars() -> None:
    frame = synthesize("GBP_JPY", days_for_bars(200_000), 0, "random", "2022-01-03")
    assert len(frame) >= 200_000


def test_non_yen_instruments_get_their_own_level_and_precision() -> None:
    frame = synthesize("EUR_USD", 5, 0, "random", "2022-01-03")
    assert 1.0 < frame["close"].mean() < 1.3
    assert np.allclose(frame["close"], frame["close"].round(5))


def test_bad_regime_and_bad_start_are_user_errors() -> None:
    with pytest.raises(UserError, match="regime"):
        synthesize("GBP_JPY", 5, 0, "sideways", "2022-01-03")
    with pytest.raises(UserError, match="YYYY-MM-DD"):
        synthesize("GBP_JPY", 5, 0, "random", "the third of January")
