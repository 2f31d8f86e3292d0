"""Synthetic candles: deterministic, consistent, GBP_JPY-like, and each regime as documented."""

from __future__ import annotations

import hashlib
from functools import cache

import numpy as np
import pandas as pd
import pytest

from micro.cli import build_parser
from micro.data.sessions import gap_summary
from micro.data.synth import (
    days_for_bars,
    market_open,
    synthesize,
    synthesize_with_hidden_state,
)
from micro.errors import UserError
from tests.conftest import run_micro

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


# sha256 (first 16 hex digits) of 30 days from seed 7, computed before the knobs existed.
PINNED_HASHES = {
    ("GBP_JPY", "random"): "757b1c2ad8dbbd04",
    ("GBP_JPY", "trend"): "4187ade18fb48cca",
    ("GBP_JPY", "meanrevert"): "cbb158e2396e9f70",
    ("EUR_USD", "trend"): "94c22cf1bf55d173",
}


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of the timestamps (int64 seconds) and every OHLCV column's float64 bytes."""
    digest = hashlib.sha256()
    digest.update(_seconds(frame).tobytes())
    for column in ("open", "high", "low", "close", "volume"):
        digest.update(np.ascontiguousarray(frame[column].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()[:16]


@cache
def knobbed(regime: str, drift: float | None = None, bars: float | None = None, noise=1.0):
    """90 days from seed 3 with the given knobs: (close in pips, hidden state)."""
    frame, hidden = synthesize_with_hidden_state(
        "GBP_JPY", DAYS, 3, regime, "2022-01-03",
        drift_pips=drift, regime_bars=bars, noise_scale=noise,
    )  # fmt: skip
    return _pips(frame), hidden


def _mean_run_bars(state: np.ndarray) -> float:
    """Mean length in bars of the runs of equal consecutive values of `state`."""
    return state.size / (np.count_nonzero(np.diff(state)) + 1)


@pytest.mark.parametrize(("instrument", "regime"), sorted(PINNED_HASHES))
def test_default_knobs_reproduce_the_markets_made_before_the_knobs_existed(
    instrument: str, regime: str
) -> None:
    frame = synthesize(instrument, 30, 7, regime, "2022-01-03")
    assert frame_hash(frame) == PINNED_HASHES[(instrument, regime)]


@pytest.mark.parametrize(
    ("regime", "drift", "bars"), [("trend", 0.6, 60), ("meanrevert", 0.2, 120)]
)
def test_the_default_knobs_given_explicitly_change_nothing(
    regime: str, drift: float, bars: int
) -> None:
    explicit = synthesize(
        "GBP_JPY", 30, 7, regime, "2022-01-03", drift_pips=drift, regime_bars=bars,
        noise_scale=1.0,
    )  # fmt: skip
    assert frame_hash(explicit) == PINNED_HASHES[("GBP_JPY", regime)]


def test_the_hidden_state_is_the_drift_sign_behind_each_kept_bar() -> None:
    frame, hidden = synthesize_with_hidden_state("GBP_JPY", 10, 11, "trend", "2022-01-03")
    pd.testing.assert_frame_equal(frame, synthesize("GBP_JPY", 10, 11, "trend", "2022-01-03"))
    assert hidden.shape == (len(frame),)
    assert set(np.unique(hidden).tolist()) == {-1.0, 0.0, 1.0}


def test_a_lower_drift_to_noise_ratio_weakens_the_autocorrelation_of_20_bar_returns() -> None:
    def lag_one_of_20_bar_returns(close: np.ndarray) -> float:
        return _autocorr(np.diff(close[::20]))

    base = lag_one_of_20_bar_returns(knobbed("trend")[0])
    half_drift = lag_one_of_20_bar_returns(knobbed("trend", drift=0.3)[0])
    double_noise = lag_one_of_20_bar_returns(knobbed("trend", noise=2.0)[0])
    both = lag_one_of_20_bar_returns(knobbed("trend", drift=0.3, noise=1.5)[0])

    assert base > 0.4
    assert half_drift < base - 0.15 and double_noise < base - 0.15  # the same ratio, 0.22
    assert abs(half_drift - double_noise) < 0.1
    assert 0.0 < both < half_drift - 0.05  # ratio 0.15: weaker still, but still a trend


def test_a_weaker_trend_is_still_there_but_a_momentum_rule_earns_less() -> None:
    assert _momentum_pips_per_trade(knobbed("trend", drift=0.3, noise=1.5)[0]) < (
        _momentum_pips_per_trade(knobbed("trend")[0]) - 1.0
    )


@pytest.mark.parametrize(("shorter", "longer"), [(20, 60), (60, 240)])
def test_longer_regime_bars_lengthen_the_trend_episodes(shorter: float, longer: float) -> None:
    short_runs = _mean_run_bars(knobbed("trend", bars=shorter)[1])
    long_runs = _mean_run_bars(knobbed("trend", bars=longer)[1])
    # Runs are longer than episodes (a new episode may draw the same sign) but scale with them.
    assert long_runs > 2.5 * short_runs
    assert shorter < short_runs < 2.5 * shorter


def test_a_longer_ou_time_constant_makes_the_deviation_slower_and_wider() -> None:
    fast = knobbed("meanrevert", bars=30)[1]
    base = knobbed("meanrevert")[1]
    slow = knobbed("meanrevert", bars=480)[1]
    assert _mean_run_bars(np.sign(fast)) < _mean_run_bars(np.sign(base))
    assert _mean_run_bars(np.sign(base)) < _mean_run_bars(np.sign(slow))
    assert fast.std() < base.std() < slow.std()  # stationary std ≈ σ·√(L/2)
    assert _autocorr(fast) == pytest.approx(1 - 1 / 30, abs=0.01)
    assert _autocorr(slow) == pytest.approx(1 - 1 / 480, abs=0.002)


def test_a_wandering_anchor_buries_the_reversion_of_meanrevert() -> None:
    base = _autocorr(np.diff(knobbed("meanrevert")[0][::30]))
    buried = _autocorr(np.diff(knobbed("meanrevert", drift=2.0)[0][::30]))
    assert base < -0.08 and base < buried - 0.04 < 0.0

    def fade_signal_to_noise(close: np.ndarray) -> float:
        """Mean / std of the gross pips of the fade rule's 120-bar trades (as in the doc)."""
        mean = np.convolve(close, np.ones(480) / 480, "valid")
        idx = np.arange(480, len(close) - 120, 120)
        deviation = close[idx] - mean[idx - 480 + 1]
        side = -np.sign(deviation) * (np.abs(deviation) > 10.0)
        pnl = (side * (close[idx + 120] - close[idx]))[side != 0]
        return float(pnl.mean() / pnl.std())

    clear = fade_signal_to_noise(knobbed("meanrevert")[0])
    assert clear > 0.4
    assert fade_signal_to_noise(knobbed("meanrevert", drift=2.0)[0]) < 0.5 * clear


@pytest.mark.parametrize("regime", ["random", "trend", "meanrevert"])
def test_noise_scale_multiplies_the_per_bar_noise(regime: str) -> None:
    def noise(close: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        drift = 0.6 * hidden[1:] if regime == "trend" else 0.0  # the trend's drift is not noise
        return np.diff(close) - drift

    base = noise(*knobbed(regime))
    loud = noise(*knobbed(regime, noise=2.0))
    ratio = np.median(np.abs(loud)) / np.median(np.abs(base))  # the weekly jumps stay as they are
    assert ratio == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize(
    ("regime", "knobs", "message"),
    [
        ("trend", {"drift_pips": -0.1}, "--drift-pips -0.1: expected 0 to 20"),
        ("trend", {"drift_pips": float("nan")}, "--drift-pips nan"),
        ("trend", {"regime_bars": 0.5}, "--regime-bars 0.5: expected 1 to 100000 bars"),
        ("meanrevert", {"regime_bars": float("inf")}, "--regime-bars inf"),
        ("meanrevert", {"noise_scale": 0.0}, "--noise-scale 0: expected 0.05 to 20"),
        ("random", {"drift_pips": 0.6}, "--drift-pips 0.6: the random regime has no drift"),
        ("random", {"regime_bars": 60}, "--regime-bars 60: the random regime"),
    ],
)
def test_knobs_out_of_range_are_user_errors_naming_the_flag(
    regime: str, knobs: dict, message: str
) -> None:
    with pytest.raises(UserError) as raised:
        synthesize("GBP_JPY", 5, 0, regime, "2022-01-03", **knobs)
    assert str(raised.value).startswith(message)


def test_the_synth_command_takes_the_knobs_and_refuses_a_bad_one_in_one_line(tmp_path) -> None:
    args = build_parser().parse_args(
        ["data", "synth", "--regime", "trend", "--drift-pips", "0.25", "--regime-bars", "240",
         "--noise-scale", "1.5"]
    )  # fmt: skip
    assert (args.drift_pips, args.regime_bars, args.noise_scale) == (0.25, 240.0, 1.5)
    defaults = build_parser().parse_args(["data", "synth"])
    assert (defaults.drift_pips, defaults.regime_bars, defaults.noise_scale) == (None, None, None)

    result = run_micro(tmp_path, "data", "synth", "--days", "3", "--noise-scale", "-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "micro: error: --noise-scale -1: expected 0.05 to 20 × σ_base"
    ]
    assert not (tmp_path / "data" / "market.duckdb").exists()  # nothing half-written
