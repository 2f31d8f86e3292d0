"""Chance outcome labels: the class of each bar's next close-to-close move (DOWN, NEUTRAL, UP).

outcome[t] classifies d = close_{t+1} − close_t against thr = k · std_t, where k =
`features.outcome_threshold` and std_t is the population standard deviation (ddof 0) of the
N = `features.outcome_std_bars` close-to-close changes ending at t (close_j − close_{j−1},
j = t−N+1..t): d > thr → 2 UP, d < −thr → 0 DOWN, otherwise 1 NEUTRAL. When std_t is 0 the
threshold is 0: a bar is NEUTRAL only if d is exactly 0, else UP/DOWN by its sign. −1 (unknown)
for the last bar (no next close) and for t < N (not enough changes for the std). Labels go by
stored rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from micro.config import FeaturesConfig

DOWN, NEUTRAL, UP, UNKNOWN = 0, 1, 2, -1


@njit(cache=True)
def _outcome_labels(close: np.ndarray, std_bars: int, threshold: float) -> np.ndarray:
    n = close.shape[0]
    out = np.full(n, -1, dtype=np.int8)
    for t in range(std_bars, n - 1):
        mean = 0.0
        for j in range(t - std_bars + 1, t + 1):
            mean += close[j] - close[j - 1]
        mean /= std_bars
        var = 0.0
        for j in range(t - std_bars + 1, t + 1):
            dev = close[j] - close[j - 1] - mean
            var += dev * dev
        thr = threshold * np.sqrt(var / std_bars)
        d = close[t + 1] - close[t]
        if d > thr:
            out[t] = UP
        elif d < -thr:
            out[t] = DOWN
        else:
            out[t] = NEUTRAL
    return out


def outcome_labels(close: np.ndarray, cfg: FeaturesConfig) -> np.ndarray:
    """[T] int8 chance outcome of bar t → t+1: 0 DOWN, 1 NEUTRAL, 2 UP, −1 unknown.

    close: [T] float64 mid closes in time order.
    """
    return _outcome_labels(
        np.ascontiguousarray(close, dtype=np.float64), cfg.outcome_std_bars, cfg.outcome_threshold
    )
