"""Session cutting and time splits: gap-free, weekly-close-free, warm-up inside, ranges, embargo."""

from __future__ import annotations

import numpy as np
import pytest

from micro.config import DataConfig, FeaturesConfig
from micro.data.sessions import (
    block_starts,
    cut_sessions,
    gap_summary,
    split_zones,
    trading_week,
    warmup_rows,
)
from micro.data.synth import synthesize
from micro.features.outcomes import outcome_labels

PIP = 0.01
MONDAY = 1_641_168_000  # 2022-01-03 00:00 UTC
FEATURES = FeaturesConfig(window=4, range_bars=5, fast_momentum_bars=2, outcome_std_bars=3)
WARMUP = 3 + 5


def _data(**changes) -> DataConfig:
    base = {
        "session_bars": 40,
        "max_gap_minutes": 10,
        "min_session_range_pips": 5.0,
        "train_fraction": 0.98,
        "validation_fraction": 0.01,
        "embargo_minutes": 0,
    }
    base.update(changes)
    return DataConfig(**base)


def _zigzag(n: int, amplitude: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """high, low, close of a market swinging ±amplitude every 10 bars (lively, never dead)."""
    close = 150.0 + amplitude * np.sin(np.arange(n) * np.pi / 10)
    return close + 0.01, close - 0.01, close


def test_sessions_are_cut_greedily_after_the_warm_up_of_each_gap_free_block() -> None:
    ts = MONDAY + 60 * np.arange(300, dtype=np.int64)
    ts[150:] += 60 * 30  # a 31-minute gap before row 150
    high, low, close = _zigzag(300)
    outcome = outcome_labels(close, FEATURES)
    sessions = cut_sessions(ts, high, low, outcome, PIP, _data(), FEATURES)
    assert warmup_rows(FEATURES) == WARMUP
    assert sessions["train"].tolist() == [8, 48, 88, 158, 198, 238]
    assert sessions["validation"].size == 0 and sessions["test"].size == 0


def test_a_dead_market_gives_no_sessions_unless_the_minimum_range_is_zero() -> None:
    ts = MONDAY + 60 * np.arange(200, dtype=np.int64)
    high, low, close = _zigzag(200, amplitude=0.01)  # ~4 pips of range
    outcome = outcome_labels(close, FEATURES)
    assert cut_sessions(ts, high, low, outcome, PIP, _data(), FEATURES)["train"].size == 0
    lively = cut_sessions(ts, high, low, outcome, PIP, _data(min_session_range_pips=0.0), FEATURES)
    assert lively["train"].size == 4


def test_a_session_never_crosses_the_weekly_close_even_without_a_gap() -> None:
    friday_close = MONDAY + 4 * 86400 + 21 * 3600
    ts = friday_close - 60 * 100 + 60 * np.arange(200, dtype=np.int64)  # bars run on past 21:00
    high, low, close = _zigzag(200)
    outcome = outcome_labels(close, FEATURES)
    starts = cut_sessions(ts, high, low, outcome, PIP, _data(), FEATURES)["train"]
    assert starts.tolist() == [8, 48, 108, 148]
    for s in starts:
        assert trading_week(ts[s - WARMUP]) == trading_week(ts[s + 39])


def test_split_zones_follow_row_fractions_and_leave_out_the_embargo() -> None:
    ts = MONDAY + 60 * np.arange(1000, dtype=np.int64)
    zones = split_zones(ts, _data(train_fraction=0.7, validation_fraction=0.2, embargo_minutes=15))
    assert zones == {"train": (0, 700), "validation": (715, 900), "test": (915, 1000)}


def test_an_embargo_longer_than_a_split_leaves_that_split_empty() -> None:
    ts = MONDAY + 60 * np.arange(1000, dtype=np.int64)
    zones = split_zones(ts, _data(train_fraction=0.7, validation_fraction=0.2, embargo_minutes=500))
    assert zones["validation"] == (900, 900)
    assert zones["test"] == (1000, 1000)


def test_gap_summary_counts_gaps_inside_weeks_apart_from_weekly_closes() -> None:
    ts = MONDAY + 60 * np.arange(100, dtype=np.int64)
    ts[50:] += 60 * 20  # a 21-minute gap
    ts[80:] += 7 * 86400  # next week
    summary = gap_summary(ts, 10)
    assert (summary.gaps, summary.largest_gap_minutes, summary.weekly_closes) == (1, 21.0, 1)
    assert block_starts(ts, 10).nonzero()[0].tolist() == [0, 50, 80]


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, ...]:
    frame = synthesize("GBP_JPY", 60, 5, "random", "2022-01-03")
    ts = frame["ts"].to_numpy().astype("datetime64[s]").astype(np.int64)
    return ts, frame["high"].to_numpy(), frame["low"].to_numpy(), frame["close"].to_numpy()


def test_sessions_on_synthetic_data_keep_every_rule(synthetic) -> None:
    ts, high, low, close = synthetic
    data = DataConfig(embargo_minutes=720)
    features = FeaturesConfig()
    outcome = outcome_labels(close, features)
    sessions = cut_sessions(ts, high, low, outcome, PIP, data, features)
    zones = split_zones(ts, data)
    warmup = warmup_rows(features)
    length = data.session_bars
    assert all(sessions[s].size > 0 for s in ("train", "validation", "test"))
    everything = np.sort(np.concatenate(list(sessions.values())))
    assert (np.diff(everything) >= length).all()  # no overlaps
    for split, starts in sessions.items():
        zone_start, zone_end = zones[split]
        for s in starts:
            rows = slice(s - warmup, s + length)
            assert zone_start <= s - warmup and s + length <= zone_end
            assert (np.diff(ts[rows]) <= data.max_gap_minutes * 60).all()
            assert len(set(trading_week(ts[rows]).tolist())) == 1
            assert (outcome[s : s + length - 1] >= 0).all()
            span = high[s : s + length].max() - low[s : s + length].min()
            assert span >= data.min_session_range_pips * PIP * (1 - 1e-9)  # the code's rounding
    assert ts[zones["validation"][0]] >= ts[zones["train"][1]] + 720 * 60
    assert ts[zones["test"][0]] >= ts[zones["validation"][1]] + 720 * 60
