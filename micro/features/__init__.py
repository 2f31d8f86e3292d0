"""Feature and chance-outcome functions: one code path offline (batch) and live (incremental).

`FEATURE_VERSION` is stamped into the store by `micro data prepare`; bump it whenever the feature
or outcome code changes meaning, so stale stores are detected and rebuilt.
"""

from __future__ import annotations

FEATURE_VERSION = 2

FEATURE_NAMES = (
    "position_in_range",
    "momentum",
    "rolling_range",
    "momentum_fast",
    "price_change",
    "day_of_week_cos",
    "day_of_week_sin",
    "hour_of_week_cos",
    "hour_of_week_sin",
)
NUM_FEATURES = len(FEATURE_NAMES)
