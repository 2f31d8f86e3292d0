"""The position and fill engine: where a stop sits, when and where it fills, what a trade nets.

One copy of the rules, as compiled scalar functions, called by everything that prices a position:
the env's step kernel (`micro.env.kernels`), the live trader's book (`micro.live.book`), the
simulated broker (`micro.live.sim`) and the random-entry baselines (`micro.validation.baselines`).
Backtest and live agree because they run this code, and the parity tests hold them to it.

Prices are mid; pips are price / pip, signed by the side (+1 long, −1 short).

- The stop of an entry at `entry_price` rests `stop_pips` away: entry − side × stop_pips × pip.
- During a bar the stop fills at the bar's open when the bar opened beyond it (a gap), else at
  the stop when the bar's low (long) or high (short) reached it; a price within
  `STOP_TOUCH_PIPS` of the stop has reached it (float noise, not the market).
- A round trip nets its gross pips less all its costs: entry (spread + commission + slippage)
  and exit (slippage).
- A broker stop triggers on the side it exits at (bid for a long, ask for a short): the env's
  mid stop, moved half the spread further out (`quoted_stop`), triggers on the same bar at the
  same mid while the spread holds; an exit fill translates back to mid the same way
  (`mid_of_exit`).
- The maximum adverse excursion grows with the worst price seen while the trade is open (each
  bar's low or high, or the exit fill on the bar it fills in).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from micro.env.costs import gross_pips

STOP_TOUCH_PIPS = 1e-6  # a price this close to the stop has reached it (float noise, not market)


@njit(cache=True)
def stop_level(side: int, entry_price: float, stop_pips: float, pip: float) -> float:
    """The price a stop rests at: `stop_pips` against a position of `side` entered at a price."""
    return entry_price - side * stop_pips * pip


@njit(cache=True)
def quoted_stop(side: int, mid_stop: float, half_spread: float) -> float:
    """The price on the exit side (bid for a long, ask for a short) where a stop must rest to
    trigger when the mid reaches `mid_stop`: the bid is mid − half spread, the ask mid + it."""
    return mid_stop - side * half_spread


@njit(cache=True)
def mid_of_exit(side: int, exit_fill: float, half_spread: float) -> float:
    """The mid behind an exit fill of a position of `side` (a long sells at the bid)."""
    return exit_fill + side * half_spread


@njit(cache=True)
def stop_fill(side: int, stop: float, open_: float, high: float, low: float, pip: float) -> float:
    """Where a resting `stop` fills during a bar (open, high, low); NaN when the bar never
    reached it."""
    if side * (open_ - stop) / pip <= -STOP_TOUCH_PIPS:  # gapped past: filled at the open
        return open_
    adverse = low if side > 0 else high  # the worst price seen during the bar
    if side * (adverse - stop) / pip <= STOP_TOUCH_PIPS:  # reached: filled at the stop
        return stop
    return np.nan


@njit(cache=True)
def adverse_price(side: int, high: float, low: float) -> float:
    """The worst price of a bar for a position of `side`: its low (long) or high (short)."""
    return low if side > 0 else high


@njit(cache=True)
def worst_excursion(mae: float, side: int, entry_price: float, price: float, pip: float) -> float:
    """The maximum adverse excursion (pips, ≥ 0) after the position has seen `price`."""
    return max(mae, -gross_pips(side, entry_price, price, pip))


@njit(cache=True)
def round_trip_pips(
    side: int,
    entry_price: float,
    exit_price: float,
    pip: float,
    entry_cost: float,  # pips paid at entry
    exit_cost: float,  # pips paid at exit
) -> float:
    """Net pips of a round trip: gross pips less the entry and exit costs."""
    return gross_pips(side, entry_price, exit_price, pip) - (entry_cost + exit_cost)
