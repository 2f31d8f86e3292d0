"""Trading costs in pips: what one round trip of one unit pays, and when.

Entry pays spread + commission + slippage (the spread is a round-trip figure, charged once when
the position opens); exit pays slippage only. A pip is the instrument's pip size (0.01 for JPY
quote pairs, 0.0001 otherwise), so the gross pips of a trade are side × (exit − entry) / pip.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba import njit

from micro.config import Config


@dataclass(frozen=True)
class Costs:
    """Cost schedule of one instrument (pips per unit)."""

    spread_pips: float  # round trip, paid on entry
    commission_pips: float  # round trip, paid on entry
    slippage_pips: float  # per fill: paid on entry and again on exit

    @property
    def entry_pips(self) -> float:
        """Pips paid when a position opens: spread + commission + slippage."""
        return self.spread_pips + self.commission_pips + self.slippage_pips

    @property
    def exit_pips(self) -> float:
        """Pips paid when a position closes (agent, stop-loss or session end): slippage."""
        return self.slippage_pips

    @property
    def round_trip_pips(self) -> float:
        """All pips one round trip pays: what a trade must make gross to break even."""
        return self.entry_pips + self.exit_pips

    def net_pips(self, gross_pips: float) -> float:
        """Pips of a round trip after all its costs."""
        return gross_pips - self.round_trip_pips


def costs_for(config: Config, instrument: str | None = None) -> Costs:
    """The cost schedule of `instrument` (default: the configured one) from config."""
    return Costs(
        spread_pips=float(config.spread_pips(instrument)),
        commission_pips=float(config.env.commission_pips),
        slippage_pips=float(config.env.slippage_pips),
    )


@njit(cache=True)
def gross_pips(side: int, entry_price: float, exit_price: float, pip: float) -> float:
    """Pips a position of `side` (+1 long, −1 short) makes from entry to exit, before costs."""
    return side * (exit_price - entry_price) / pip
