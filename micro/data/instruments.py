"""The instrument facts under their old address; they live in `micro.instruments`.

Kept so that callers of `micro.data.instruments` keep working: the facts sit below both data and
features, and `micro.data` and `micro.features` import `micro.instruments` directly.
"""

from __future__ import annotations

from micro.instruments import TYPICAL_PRICE, Instrument, instrument

__all__ = ["TYPICAL_PRICE", "Instrument", "instrument"]
