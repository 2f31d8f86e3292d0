"""The 9 temporal features, their scaling and the outcome labels: values, and batch == live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from micro.config import FeaturesConfig
from micro.features import FEATURE_NAMES, NUM_FEATURES
from micro.features.outcomes import DOWN, NEUTRAL, UNKNOWN, UP, outcome_labels
from micro.features.scaling import FeatureScaling, fit_scaling
from micro.features.temporal import (
    FeatureState,
    history_bars,
    raw_features,
    scale_features,
    to_epoch_seconds,
)

PIP = 0.01
MONDAY = 1_641_168_000  # 2022-01-03 00:00 UTC, a Monday
SUNDAY_OPEN = MONDAY - 3 * 3600  # 2022-01-02 21:00 UTC
IDENTITY = FeatureScaling(0.0, 1.0, 0.0, 1.0)


def _bars(close: np.ndarray, start: int = MONDAY) -> tuple[np.ndarray, ...]:
    ts = start + 60 * np.arange(len(close), dtype=np.int64)
    return ts, close + 0.02, close - 0.03, close


def test_features_are_nan_until_the_range_lookback_is_filled() -> None:
    cfg = FeaturesConfig(range_bars=10, fast_momentum_bars=3)
    ts, high, low, close = _bars(150.0 + 0.01 * np.arange(30))
    raw = raw_features(ts, high, low, close, PIP, cfg)
    assert raw.shape == (30, NUM_FEATURES)
    assert np.isnan(raw[:10]).all()
    assert np.isfinite(raw[10:]).all()


def test_price_features_match_their_definitions_on_hand_made_bars() -> None:
    cfg = FeaturesConfig(range_bars=5, fast_momentum_bars=2)
    close = np.array([150.00, 150.10, 150.05, 150.20, 150.15, 150.30, 150.25])
    high = close + np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.02])
    low = close - np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.01])
    ts = MONDAY + 60 * np.arange(7, dtype=np.int64)
    raw = raw_features(ts, high, low, close, PIP, cfg)
    t = 6
    hi, lo = high[2:7].max(), low[2:7].min()  # rows t−R+1..t
    assert raw[t, 0] == pytest.approx((close[t] - lo) / (hi - lo))
    assert raw[t, 1] == pytest.approx((close[t] - close[t - 5]) / PIP)  # 25 pips
    assert raw[t, 2] == pytest.approx((hi - lo) / PIP)
    assert raw[t, 3] == pytest.approx(np.tanh((close[t] - close[t - 2]) / PIP / 10))
    assert raw[t, 4] == pytest.approx(np.tanh(-5 / 10))


def test_position_in_range_floors_the_range_at_one_pip() -> None:
    cfg = FeaturesConfig(range_bars=5, fast_momentum_bars=2)
    close = np.full(8, 150.0)
    ts = MONDAY + 60 * np.arange(8, dtype=np.int64)
    raw = raw_features(ts, close, close - 0.004, close, PIP, cfg)  # range 0.4 pips
    assert raw[7, 0] == pytest.approx(0.4)  # 0.004 / max(0.004, 0.01)
    assert raw[7, 2] == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("stamp", "weekday", "hours"),
    [
        ("2022-01-02 21:00", 6, 0.0),  # the FX week opens: Sunday 21:00
        ("2022-01-03 00:00", 0, 3.0),  # Monday midnight
        ("2022-01-05 12:30", 2, 63.5),  # Wednesday 12:30
        ("2022-01-07 20:59", 4, 119 + 59 / 60),  # the last minute before the weekly close
        ("2022-01-08 12:00", 5, 120 - 1 / 60),  # a stray weekend bar is clipped
    ],
)
def test_calendar_features_use_the_weekday_and_a_120_hour_fx_week(
    stamp: str, weekday: int, hours: float
) -> None:
    cfg = FeaturesConfig(range_bars=5, fast_momentum_bars=2)
    end = to_epoch_seconds(pd.Timestamp(stamp))
    ts = end - 60 * np.arange(6, dtype=np.int64)[::-1]
    close = np.full(6, 150.0)
    raw = raw_features(ts, close, close, close, PIP, cfg)
    assert raw[5, 5] == pytest.approx(np.cos(2 * np.pi * weekday / 7), abs=1e-12)
    assert raw[5, 6] == pytest.approx(np.sin(2 * np.pi * weekday / 7), abs=1e-12)
    assert raw[5, 7] == pytest.approx(np.cos(2 * np.pi * hours / 120), abs=1e-12)
    assert raw[5, 8] == pytest.approx(np.sin(2 * np.pi * hours / 120), abs=1e-12)


def test_scaling_bounds_come_from_percentiles_and_values_are_clipped_to_unit_range() -> None:
    rng = np.random.default_rng(0)
    momentum = rng.normal(0.0, 20.0, 100_000)
    ranges = rng.uniform(5.0, 80.0, 100_000)
    scaling = fit_scaling(momentum, ranges)
    assert scaling.momentum_lo == pytest.approx(np.percentile(momentum, 0.1))
    assert scaling.range_hi == pytest.approx(np.percentile(ranges, 99.9))
    raw = np.zeros((3, NUM_FEATURES))
    raw[:, 1] = [scaling.momentum_lo - 50, 0.0, scaling.momentum_hi + 50]
    raw[:, 2] = [0.0, (scaling.range_lo + scaling.range_hi) / 2, 1e6]
    scaled = scale_features(raw, scaling)
    assert scaled.dtype == np.float32
    assert scaled[:, 1].tolist() == pytest.approx([0.0, 0.5, 1.0], abs=0.01)
    assert scaled[:, 2].tolist() == pytest.approx([0.0, 0.5, 1.0], abs=1e-6)
    assert FeatureScaling.from_dict(scaling.to_dict()) == scaling


def test_outcome_labels_classify_the_next_move_against_the_rolling_std() -> None:
    cfg = FeaturesConfig(outcome_std_bars=4, outcome_threshold=0.5)
    # changes: +1, -1, +1, -1 (std 1, threshold 0.5), then the next move decides the label
    close = np.array([100.0, 101.0, 100.0, 101.0, 100.0, 100.8, 100.9, 99.0])
    labels = outcome_labels(close, cfg)
    assert labels.dtype == np.int8
    assert labels[:4].tolist() == [UNKNOWN] * 4  # fewer than 4 changes behind them
    assert labels[4] == UP  # +0.8 > 0.5
    changes = np.diff(close)[2:6]  # window ending at t = 5
    assert labels[5] == (UP if 0.1 > 0.5 * changes.std() else NEUTRAL)
    assert labels[6] == DOWN  # -1.9
    assert labels[7] == UNKNOWN  # no next bar


def test_a_flat_market_labels_by_the_sign_of_the_move_alone() -> None:
    cfg = FeaturesConfig(outcome_std_bars=3, outcome_threshold=0.33)
    close = np.array([100.0, 100.0, 100.0, 100.0, 100.0, 100.01, 100.01, 100.01, 100.01, 99.99])
    labels = outcome_labels(close, cfg)
    assert labels[3] == NEUTRAL  # std 0, no move
    assert labels[4] == UP  # std 0, any rise is UP
    assert labels[8] == DOWN  # std 0 again (three flat changes), any fall is DOWN


def test_feature_state_stays_none_until_warm_and_window_fills_last() -> None:
    cfg = FeaturesConfig(range_bars=5, fast_momentum_bars=2, window=4)
    state = FeatureState("GBP_JPY", cfg, IDENTITY)
    ts, high, low, close = _bars(150.0 + 0.01 * np.arange(12))
    outputs = [state.update(ts[i], close[i], high[i], low[i], close[i]) for i in range(12)]
    assert all(o is None for o in outputs[:5])
    assert all(o is not None and o.shape == (NUM_FEATURES,) for o in outputs[5:])
    assert not state.ready or np.isfinite(state.window()).all()
    assert state.ready and state.window().shape == (4, NUM_FEATURES)
    np.testing.assert_array_equal(state.window()[-1], outputs[-1])


def test_feature_state_refuses_a_bar_that_is_not_newer() -> None:
    state = FeatureState("GBP_JPY", FeaturesConfig(), IDENTITY)
    state.update(MONDAY, 150.0, 150.1, 149.9, 150.0)
    with pytest.raises(ValueError, match="time order"):
        state.update(MONDAY, 150.0, 150.1, 149.9, 150.0)


def test_feature_state_accepts_timestamps_as_well_as_epoch_seconds() -> None:
    assert to_epoch_seconds(pd.Timestamp("2022-01-03")) == MONDAY
    assert to_epoch_seconds(pd.Timestamp("2022-01-03 01:00", tz="Europe/London")) == MONDAY + 3600
    assert to_epoch_seconds(np.datetime64("2022-01-03T00:00")) == MONDAY
    assert to_epoch_seconds(np.int64(MONDAY)) == MONDAY


def _eurusd(shared_data: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        shared_data / "EURUSD_M1_2022_mt4.csv",
        header=None,
        names=["date", "time", "open", "high", "low", "close", "volume"],
    )
    stamps = pd.to_datetime(frame["date"] + " " + frame["time"], format="%Y.%m.%d %H:%M")
    frame["ts"] = stamps.to_numpy().astype("datetime64[s]").astype(np.int64)
    return frame


def test_incremental_features_equal_the_batch_path_on_every_bar_of_a_real_file(
    shared_data: Path,
) -> None:
    frame = _eurusd(shared_data)
    cfg = FeaturesConfig()
    pip = 0.0001
    ts = frame["ts"].to_numpy()
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    close, open_ = frame["close"].to_numpy(), frame["open"].to_numpy()
    raw = raw_features(ts, high, low, close, pip, cfg)
    train = len(ts) * 7 // 10
    scaling = fit_scaling(raw[:train, 1], raw[:train, 2])
    batch = scale_features(raw, scaling)
    state = FeatureState("EUR_USD", cfg, scaling)
    live = np.full_like(batch, np.nan)
    for i in range(len(ts)):
        row = state.update(int(ts[i]), open_[i], high[i], low[i], close[i])
        if row is not None:
            live[i] = row
        if i == 500:
            np.testing.assert_array_equal(state.window(), batch[i - cfg.window + 1 : i + 1])
    np.testing.assert_array_equal(live, batch)  # bit-identical, NaN rows included
    defined = batch[history_bars(cfg) :]
    assert np.isfinite(defined).all()
    assert (defined[:, :3] >= 0).all() and (defined[:, :3] <= 1).all()
    assert (np.abs(defined[:, 3:]) <= 1).all()
    assert len(FEATURE_NAMES) == batch.shape[1]
