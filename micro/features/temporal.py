"""The 9 temporal features of each bar, computed by one per-bar kernel offline and live.

For bar t (R = `features.range_bars`, F = `features.fast_momentum_bars`, pip from the
instrument, hi_R = max high[t−R+1..t], lo_R = min low[t−R+1..t], all over stored rows):

0 position_in_range   (close_t − lo_R) / max(hi_R − lo_R, 1 pip), clipped to [0, 1].
1 momentum            (close_t − close_{t−R}) in pips, min-max scaled with the train split's
                      0.1/99.9 percentiles: clip((x − lo)/(hi − lo), 0, 1) (see scaling.py).
2 rolling_range       (hi_R − lo_R) in pips, min-max scaled likewise.
3 momentum_fast       tanh((close_t − close_{t−F}) in pips / 10).
4 price_change        tanh((close_t − close_{t−1}) in pips / 10).
5 day_of_week_cos     cos(2π·d/7), d = weekday of the bar's open time (UTC, Monday = 0).
6 day_of_week_sin     sin(2π·d/7).
7 hour_of_week_cos    cos(2π·h/120), h = hours (minutes as a fraction) since the most recent
                      Sunday 21:00 UTC (the FX week's open), clipped to [0, 120 − 1/60].
8 hour_of_week_sin    sin(2π·h/120).

A bar needs max(R, F) earlier rows; before that its features are NaN. The batch path
(`raw_features` then `scale_features`) loops the kernel over all bars in numba; the incremental
path (`FeatureState.update`) keeps the last max(R, F) + 1 bars in a buffer and calls the same
kernel and the same scaling on the newest one, so both give bit-identical float32 rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from numba import njit

from micro.config import FeaturesConfig
from micro.features import NUM_FEATURES
from micro.features.scaling import MIN_SPAN_PIPS, FeatureScaling
from micro.instruments import instrument as instrument_facts

WEEK_SECONDS = 7 * 86400
# 1970-01-04 was a Sunday: Sunday 21:00 UTC as seconds since the epoch, the FX week's open.
SUNDAY_OPEN_REF = 3 * 86400 + 21 * 3600
WEEK_HOURS = 120.0
LAST_HOUR_OF_WEEK = WEEK_HOURS - 1.0 / 60.0
TANH_SCALE_PIPS = 10.0


def history_bars(cfg: FeaturesConfig) -> int:
    """Rows of history a bar needs before its features are defined."""
    return max(cfg.range_bars, cfg.fast_momentum_bars)


@njit(cache=True)
def _bar_features(
    ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    t: int,
    range_bars: int,
    fast_bars: int,
    pip: float,
    out: np.ndarray,
) -> None:
    """Raw features of bar t into out[9] (momentum and range still in pips, unscaled)."""
    hi = high[t]
    lo = low[t]
    for k in range(t - range_bars + 1, t):
        if high[k] > hi:
            hi = high[k]
        if low[k] < lo:
            lo = low[k]
    span = max(hi - lo, pip)
    out[0] = min(max((close[t] - lo) / span, 0.0), 1.0)
    out[1] = (close[t] - close[t - range_bars]) / pip
    out[2] = (hi - lo) / pip
    out[3] = np.tanh((close[t] - close[t - fast_bars]) / pip / TANH_SCALE_PIPS)
    out[4] = np.tanh((close[t] - close[t - 1]) / pip / TANH_SCALE_PIPS)
    weekday = (ts[t] // 86400 + 3) % 7  # 1970-01-01 was a Thursday
    day_angle = 2.0 * np.pi * weekday / 7.0
    out[5] = np.cos(day_angle)
    out[6] = np.sin(day_angle)
    hours = ((ts[t] - SUNDAY_OPEN_REF) % WEEK_SECONDS) / 3600.0
    hours = min(hours, LAST_HOUR_OF_WEEK)
    week_angle = 2.0 * np.pi * hours / WEEK_HOURS
    out[7] = np.cos(week_angle)
    out[8] = np.sin(week_angle)


@njit(cache=True)
def _scale_row(
    row: np.ndarray, momentum_lo: float, momentum_hi: float, range_lo: float, range_hi: float
) -> None:
    """Min-max scale row[1] (momentum) and row[2] (rolling range) in place, clipped to [0, 1]."""
    m_span = max(momentum_hi - momentum_lo, MIN_SPAN_PIPS)
    r_span = max(range_hi - range_lo, MIN_SPAN_PIPS)
    row[1] = min(max((row[1] - momentum_lo) / m_span, 0.0), 1.0)
    row[2] = min(max((row[2] - range_lo) / r_span, 0.0), 1.0)


@njit(cache=True)
def _raw_features_all(
    ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    range_bars: int,
    fast_bars: int,
    history: int,
    pip: float,
) -> np.ndarray:
    n = ts.shape[0]
    out = np.full((n, 9), np.nan)
    for t in range(history, n):
        _bar_features(ts, high, low, close, t, range_bars, fast_bars, pip, out[t])
    return out


@njit(cache=True)
def _scale_all(
    raw: np.ndarray, momentum_lo: float, momentum_hi: float, range_lo: float, range_hi: float
) -> np.ndarray:
    n = raw.shape[0]
    out = np.empty((n, 9), dtype=np.float32)
    row = np.empty(9)
    for t in range(n):
        for j in range(9):
            row[j] = raw[t, j]
        _scale_row(row, momentum_lo, momentum_hi, range_lo, range_hi)
        for j in range(9):
            out[t, j] = row[j]
    return out


def raw_features(
    ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    pip: float,
    cfg: FeaturesConfig,
) -> np.ndarray:
    """[T, 9] float64 features with momentum/range still raw pips; NaN for the first rows.

    ts: [T] int64 bar open time, seconds since the epoch (UTC); high/low/close: [T] float64 mid.
    """
    return _raw_features_all(
        np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(high, dtype=np.float64),
        np.ascontiguousarray(low, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        cfg.range_bars,
        cfg.fast_momentum_bars,
        history_bars(cfg),
        float(pip),
    )


def scale_features(raw: np.ndarray, scaling: FeatureScaling) -> np.ndarray:
    """[T, 9] raw (float64) → [T, 9] float32 with momentum and range min-max scaled."""
    return _scale_all(
        np.ascontiguousarray(raw, dtype=np.float64),
        scaling.momentum_lo,
        scaling.momentum_hi,
        scaling.range_lo,
        scaling.range_hi,
    )


def to_epoch_seconds(ts: int | np.integer | np.datetime64 | dt.datetime | pd.Timestamp) -> int:
    """A bar time as int seconds since the epoch (naive datetimes mean UTC)."""
    if isinstance(ts, int | np.integer):
        return int(ts)
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value // 1_000_000_000)  # .value is nanoseconds whatever the unit


class FeatureState:
    """The incremental (live) path: feed completed bars one at a time, read the newest features."""

    def __init__(self, instrument: str, features_cfg: FeaturesConfig, scaling: FeatureScaling):
        self.pip = instrument_facts(instrument).pip
        self.cfg = features_cfg
        self.scaling = scaling
        self.history = history_bars(features_cfg)
        size = self.history + 1
        self._ts = np.zeros(size, dtype=np.int64)  # [H+1] seconds, oldest first
        self._high = np.zeros(size)  # [H+1]
        self._low = np.zeros(size)  # [H+1]
        self._close = np.zeros(size)  # [H+1]
        self._rows = np.full((features_cfg.window, NUM_FEATURES), np.nan, dtype=np.float32)
        self._raw = np.empty(NUM_FEATURES)
        self.bars = 0
        self.last_ts: int | None = None

    @property
    def ready(self) -> bool:
        """Whether every row of `window()` is defined (enough bars have been fed)."""
        return self.bars >= self.history + self.cfg.window

    def update(
        self,
        ts: int | np.datetime64 | dt.datetime | pd.Timestamp,
        open: float,
        high: float,
        low: float,
        close: float,
    ) -> np.ndarray | None:
        """Add the bar opening at `ts` (UTC); its [9] float32 features (None until warm)."""
        seconds = to_epoch_seconds(ts)
        if self.last_ts is not None and seconds <= self.last_ts:
            raise ValueError(
                f"bar at {pd.Timestamp(seconds, unit='s')} UTC is not after the last bar "
                f"({pd.Timestamp(self.last_ts, unit='s')} UTC); feed bars in time order, once each"
            )
        for buf, value in ((self._ts, seconds), (self._high, high), (self._low, low)):
            buf[:-1] = buf[1:]
            buf[-1] = value
        self._close[:-1] = self._close[1:]
        self._close[-1] = close
        self.last_ts = seconds
        self.bars += 1
        self._rows[:-1] = self._rows[1:]
        if self.bars <= self.history:
            self._rows[-1] = np.nan
            return None
        _bar_features(
            self._ts,
            self._high,
            self._low,
            self._close,
            self.history,
            self.cfg.range_bars,
            self.cfg.fast_momentum_bars,
            self.pip,
            self._raw,
        )
        s = self.scaling
        _scale_row(self._raw, s.momentum_lo, s.momentum_hi, s.range_lo, s.range_hi)
        row = self._raw.astype(np.float32)
        self._rows[-1] = row
        return row

    def window(self) -> np.ndarray:
        """[window, 9] float32: newest `features.window` rows, oldest first; NaN until ready."""
        return self._rows.copy()
