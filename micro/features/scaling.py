"""Min-max scaling of momentum_R and rolling_range_R, fitted on the train split only.

lo/hi are the 0.1 and 99.9 percentiles of the raw feature (pips) over the train rows, so no
information from validation or test leaks into the features; the value is clip((x − lo)/(hi −
lo), 0, 1). The fitted bounds are stored in the store's meta as `feature_scaling`.

Momentum's bounds are symmetric, −m..+m with m the larger magnitude of its two percentiles, so a
market with every price move negated sees 1 − the feature: a training period that happened to
drift one way does not make "no momentum" look like a slight move the other way (0.5 is always
zero momentum). The rolling range has no sign and keeps its percentiles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from micro.errors import DataError

LOW_PERCENTILE = 0.1
HIGH_PERCENTILE = 99.9
MIN_SPAN_PIPS = 1e-6  # a degenerate fit (hi == lo) divides by this instead of zero


@dataclass(frozen=True)
class FeatureScaling:
    """Bounds (pips) of the two min-max scaled features."""

    momentum_lo: float
    momentum_hi: float
    range_lo: float
    range_hi: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaling:
        """Bounds read back from the store's meta; a clear error when they are malformed."""
        try:
            return cls(**{k: float(data[k]) for k in cls.__dataclass_fields__})
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"feature_scaling {data!r} in the store is malformed; run `micro data prepare "
                "--force`"
            ) from None


def fit_scaling(momentum_pips: np.ndarray, range_pips: np.ndarray) -> FeatureScaling:
    """Percentile bounds of raw momentum_R and rolling_range_R over train rows ([N] pips)."""
    momentum = momentum_pips[np.isfinite(momentum_pips)]
    ranges = range_pips[np.isfinite(range_pips)]
    if len(momentum) == 0 or len(ranges) == 0:
        raise DataError(
            "the train split holds no bar with a full feature history; import or synthesise "
            "more candles (a few days at least)"
        )
    m_lo, m_hi = np.percentile(momentum, [LOW_PERCENTILE, HIGH_PERCENTILE])
    m = max(abs(float(m_lo)), abs(float(m_hi)))
    r_lo, r_hi = np.percentile(ranges, [LOW_PERCENTILE, HIGH_PERCENTILE])
    return FeatureScaling(-m, m, float(r_lo), float(r_hi))
