"""Sessions (episodes of consecutive bars) and the time-ordered train/validation/test splits.

Blocks. The stored rows are cut into gap-free blocks: a new block starts wherever the step from
the previous row is longer than `data.max_gap_minutes` or crosses the weekly close (Friday 21:00
UTC). Missing minutes inside a block stay missing: sessions count rows, not minutes.

Splits, by rows over all stored bars: rows [0, n_train) are train (n_train = ⌊T · train_fraction⌋),
the next ⌊T · validation_fraction⌋ rows validation, the rest test. After each boundary the rows
within `data.embargo_minutes` of the boundary bar's time belong to no split, so no window or
feature lookback straddles two splits. The test split exists for final reporting only.

Sessions. Within each (block ∩ split zone), starting from its first row, a session is the
`data.session_bars` (L) rows s..s+L−1 where the W = `features.window` − 1 + max(range_bars,
fast_momentum_bars) warm-up rows before s lie in the same block and zone (so every feature row
of every window is defined and gap-free), every outcome label of s..s+L−2 is defined (the last
bar's may be −1), and max high − min low over the session is at least
`data.min_session_range_pips`. Cut greedily: the first session starts W rows into the segment,
the next one right after it (a candidate that fails a test is skipped whole); none overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from micro.config import DataConfig, FeaturesConfig
from micro.features.temporal import WEEK_SECONDS, history_bars

SPLITS = ("train", "validation", "test")
# 1970-01-02 was a Friday: Friday 21:00 UTC as seconds since the epoch, the weekly close.
FRIDAY_CLOSE_REF = 86400 + 21 * 3600


def trading_week(ts: np.ndarray) -> np.ndarray:
    """[T] int64 index of the FX week (Friday 21:00 UTC to Friday 21:00 UTC) of each bar."""
    return (ts - FRIDAY_CLOSE_REF) // WEEK_SECONDS


def block_starts(ts: np.ndarray, max_gap_minutes: int) -> np.ndarray:
    """[T] bool: row i starts a gap-free block (a gap over the limit, or the weekly close)."""
    starts = np.ones(len(ts), dtype=bool)
    if len(ts) > 1:
        week = trading_week(ts)
        starts[1:] = (np.diff(ts) > max_gap_minutes * 60) | (week[1:] != week[:-1])
    return starts


@dataclass(frozen=True)
class GapSummary:
    """Gaps over the limit that are not the weekend closure, and the weekend closures."""

    gaps: int
    largest_gap_minutes: float
    weekly_closes: int


def gap_summary(ts: np.ndarray, max_gap_minutes: int) -> GapSummary:
    """Count and size of the gaps over `max_gap_minutes` inside trading weeks (ts: [T] seconds)."""
    if len(ts) < 2:
        return GapSummary(0, 0.0, 0)
    step = np.diff(ts)
    week = trading_week(ts)
    crosses = week[1:] != week[:-1]
    inside = (step > max_gap_minutes * 60) & ~crosses
    largest = float(step[inside].max() / 60.0) if inside.any() else 0.0
    return GapSummary(int(inside.sum()), largest, int(crosses.sum()))


def split_zones(ts: np.ndarray, cfg: DataConfig) -> dict[str, tuple[int, int]]:
    """Row range [start, end) of each split after the embargoes (ts: [T] seconds, sorted)."""
    n = len(ts)
    n_train = int(n * cfg.train_fraction)
    n_val = int(n * cfg.validation_fraction)
    val_end = n_train + n_val
    embargo = cfg.embargo_minutes * 60

    def after_embargo(boundary: int, end: int) -> int:
        if boundary >= n:
            return n
        first = int(np.searchsorted(ts, ts[boundary] + embargo, side="left"))
        return min(max(first, boundary), end)

    return {
        "train": (0, n_train),
        "validation": (after_embargo(n_train, val_end), val_end),
        "test": (after_embargo(val_end, n), n),
    }


def warmup_rows(features_cfg: FeaturesConfig) -> int:
    """Rows before a session's first bar that its windows and features read."""
    return features_cfg.window - 1 + history_bars(features_cfg)


@njit(cache=True)
def _cut(
    starts: np.ndarray,
    zone_start: int,
    zone_end: int,
    warmup: int,
    session_bars: int,
    high: np.ndarray,
    low: np.ndarray,
    outcome: np.ndarray,
    min_range: float,
) -> np.ndarray:
    """First rows of the sessions inside rows [zone_start, zone_end) (module docstring rules)."""
    found = np.empty(max((zone_end - zone_start) // session_bars + 1, 1), dtype=np.int64)
    count = 0
    segment_start = zone_start
    while segment_start < zone_end:
        segment_end = segment_start + 1
        while segment_end < zone_end and not starts[segment_end]:
            segment_end += 1
        s = segment_start + warmup
        while s + session_bars <= segment_end:
            ok = True
            hi = high[s]
            lo = low[s]
            for r in range(s, s + session_bars):
                if r < s + session_bars - 1 and outcome[r] < 0:
                    ok = False
                    break
                if high[r] > hi:
                    hi = high[r]
                if low[r] < lo:
                    lo = low[r]
            if ok and hi - lo >= min_range:
                found[count] = s
                count += 1
            s += session_bars
        segment_start = segment_end
    return found[:count].copy()


def cut_sessions(
    ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    outcome: np.ndarray,
    pip: float,
    data_cfg: DataConfig,
    features_cfg: FeaturesConfig,
) -> dict[str, np.ndarray]:
    """Split → [S] int64 first rows of its sessions, in time order.

    ts: [T] int64 seconds (UTC, sorted); high/low: [T] float64 mid; outcome: [T] int8 labels.
    """
    starts = block_starts(ts, data_cfg.max_gap_minutes)
    # A tiny tolerance so a range of exactly the minimum is not lost to float rounding.
    min_range = data_cfg.min_session_range_pips * pip * (1.0 - 1e-9)
    sessions = {}
    for split, (zone_start, zone_end) in split_zones(ts, data_cfg).items():
        sessions[split] = _cut(
            starts,
            zone_start,
            zone_end,
            warmup_rows(features_cfg),
            data_cfg.session_bars,
            np.ascontiguousarray(high, dtype=np.float64),
            np.ascontiguousarray(low, dtype=np.float64),
            np.ascontiguousarray(outcome, dtype=np.int8),
            min_range,
        )
    return sessions
