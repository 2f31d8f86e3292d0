"""Per-instrument facts: pip size, display precision, and a typical price level.

Below both `micro.data` (imports, downloads, prepare) and `micro.features` (pips of a price move).
"""

from __future__ import annotations

from dataclasses import dataclass

from micro.errors import DataError

# Typical mid price of each instrument; used only to catch a file whose price scale is off by a
# power of ten (e.g. EUR_USD quotes imported as GBP_JPY, or prices in points).
TYPICAL_PRICE = {
    "GBP_JPY": 170.0,
    "EUR_JPY": 140.0,
    "USD_JPY": 120.0,
    "CAD_JPY": 95.0,
    "AUD_JPY": 85.0,
    "CHF_JPY": 130.0,
    "NZD_JPY": 80.0,
    "EUR_USD": 1.15,
    "GBP_USD": 1.35,
    "AUD_USD": 0.72,
    "NZD_USD": 0.66,
    "USD_CAD": 1.30,
    "USD_CHF": 0.95,
    "EUR_GBP": 0.86,
    "XAU_USD": 1800.0,
}


@dataclass(frozen=True)
class Instrument:
    name: str
    pip: float
    """Price of one pip: 0.01 for JPY-quoted pairs, 0.0001 otherwise."""
    precision: int
    """Decimals OANDA accepts in prices (3 for JPY pairs, 5 otherwise)."""
    typical_price: float | None

    def to_pips(self, price_change: float) -> float:
        return price_change / self.pip


def instrument(name: str) -> Instrument:
    """Facts about `name` (OANDA spelling BASE_QUOTE, e.g. GBP_JPY)."""
    parts = name.split("_")
    if len(parts) != 2 or not all(len(p) == 3 and p.isalpha() and p.isupper() for p in parts):
        raise DataError(
            f"instrument {name!r}: expected OANDA spelling BASE_QUOTE in capitals, e.g. GBP_JPY"
        )
    if parts[1] == "JPY":
        return Instrument(name, 0.01, 3, TYPICAL_PRICE.get(name))
    if parts[0] == "XAU":
        return Instrument(name, 0.01, 2, TYPICAL_PRICE.get(name))
    return Instrument(name, 0.0001, 5, TYPICAL_PRICE.get(name))
