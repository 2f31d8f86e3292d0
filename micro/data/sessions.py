"""Sessions (episodes of consecutive bars) and the time-ordered train/validation/test splits.

Blocks. The stored rows are cut into gap-free blocks: a new block starts wherever the step from
the previous row is longer than `data.max_gap_minutes` or crosses the weekly close (Friday 21:00
UTC). Missing minutes inside a block stay missing: sessions count rows, not minutes.

Splits, by time: two UTC instants (`SplitBoundaries`) cut the bars into train (before the
validation start), validation (from it to the test start) and test (from the test start on).
They are fixed at the first prepare from the fractions of the bars then stored (the first
⌊T · train_fraction⌋ rows train, the next ⌊T · validation_fraction⌋ validation, the rest test)
and kept in the store's meta, so bars appended later fall into test and bars prepended into
train: no stored bar ever moves across a boundary unless they are recomputed on purpose (`micro
data prepare --resplit`). After each boundary the rows within `data.embargo_minutes` of it belong
to no split, so no window or feature lookback straddles two splits. The test split exists for
final reporting only.

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
from datetime import UTC, datetime
from typing import Any

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


@dataclass(frozen=True)
class SplitBoundaries:
    """The two instants (s UTC) that cut the bars into train < validation < test."""

    validation_start: int  # the first validation bar opens at or after it (before the embargo)
    test_start: int  # the first test bar opens at or after it (before the embargo)

    def to_dict(self) -> dict[str, Any]:
        return {
            "validation_start": utc_iso(self.validation_start),
            "test_start": utc_iso(self.test_start),
            "validation_start_unix": self.validation_start,
            "test_start_unix": self.test_start,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitBoundaries:
        return cls(int(data["validation_start_unix"]), int(data["test_start_unix"]))


def utc_iso(seconds: int) -> str:
    """ISO 8601 UTC (with offset) of unix seconds."""
    return datetime.fromtimestamp(int(seconds), UTC).isoformat()


def boundaries_from_fractions(ts: np.ndarray, cfg: DataConfig) -> SplitBoundaries:
    """Boundaries at the bars ⌊T · train_fraction⌋ and that + ⌊T · validation_fraction⌋ of ts."""
    n = len(ts)
    n_train = int(n * cfg.train_fraction)
    val_end = n_train + int(n * cfg.validation_fraction)
    after_last = int(ts[-1]) + 60 if n else 0  # a boundary past the data: an empty split

    def at(row: int) -> int:
        return int(ts[row]) if row < n else after_last

    return SplitBoundaries(at(n_train), at(val_end))


def split_zones(
    ts: np.ndarray, cfg: DataConfig, boundaries: SplitBoundaries | None = None
) -> dict[str, tuple[int, int]]:
    """Row range [start, end) of each split after the embargoes (ts: [T] seconds, sorted).

    `boundaries` None: the ones the fractions of `cfg` give on these bars (a first prepare).
    """
    if boundaries is None:
        boundaries = boundaries_from_fractions(ts, cfg)
    n = len(ts)
    n_train = int(np.searchsorted(ts, boundaries.validation_start, side="left"))
    val_end = max(int(np.searchsorted(ts, boundaries.test_start, side="left")), n_train)
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
    boundaries: SplitBoundaries | None = None,
) -> dict[str, np.ndarray]:
    """Split → [S] int64 first rows of its sessions, in time order.

    ts: [T] int64 seconds (UTC, sorted); high/low: [T] float64 mid; outcome: [T] int8 labels;
    `boundaries` as `split_zones` takes them.
    """
    starts = block_starts(ts, data_cfg.max_gap_minutes)
    # A tiny tolerance so a range of exactly the minimum is not lost to float rounding.
    min_range = data_cfg.min_session_range_pips * pip * (1.0 - 1e-9)
    sessions = {}
    for split, (zone_start, zone_end) in split_zones(ts, data_cfg, boundaries).items():
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
