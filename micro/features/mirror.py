"""The mirror market: every price move negated. What the agent sees there, feature by feature.

Negating every move maps close → −close, swaps high and low, and leaves spreads and times alone.
Each temporal feature then maps exactly (`FEATURE_NAMES` order):

    position_in_range   x → 1 − x        (close − lo)/(hi − lo) seen from the other end
    momentum            x → 1 − x        min-max scaled over symmetric bounds (scaling.py)
    rolling_range       x → x            a range has no sign
    momentum_fast       x → −x           tanh is odd
    price_change        x → −x
    day/hour of week    x → x            time is not mirrored

A learner that trains on both a market and its mirror cannot learn the training period's drift
as a side bet; a test holds the prepared features of a mirrored market to these rules.
"""

from __future__ import annotations

import numpy as np

from micro.features import FEATURE_NAMES

COMPLEMENTED = tuple(FEATURE_NAMES.index(n) for n in ("position_in_range", "momentum"))
NEGATED = tuple(FEATURE_NAMES.index(n) for n in ("momentum_fast", "price_change"))


def mirror_windows(windows: np.ndarray) -> np.ndarray:
    """[..., W, 9] feature windows → the same windows as the mirror market shows them (a copy)."""
    out = np.array(windows, dtype=np.float32, copy=True)
    out[..., COMPLEMENTED] = 1.0 - out[..., COMPLEMENTED]
    out[..., NEGATED] = -out[..., NEGATED]
    return out


def mirror_candles(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """[T] mid OHLC → the mirror market's OHLC: every move negated around the first close.

    High and low swap roles (the mirror's high is where the market was lowest).
    """
    level = float(close[0])
    return 2 * level - open_, 2 * level - low, 2 * level - high, 2 * level - close
