"""The 6 static (position) features the agent sees, for a batch of envs or one live position.

A position is marked at its entry fill and at every later bar close while it is open (and at its
exit price). Each mark is the unrealised pips net of entry costs:

    u = side × (price − entry_price) / pip − entry_cost_pips      (u = −entry_cost at the fill)

Running over the marks of one trade:

    peak                  = max of u so far
    pips_from_peak        = peak − u                                (≥ 0)
    max_drawdown          = max so far of (peak − u)                (≥ 0)
    accumulated_drawdown  = sum over marks of max(0, u_previous − u) (≥ 0)

The features, float32, in this order (all zeros when flat):

    0 side                  −1 short, 0 flat, +1 long
    1 tanh(u / 100)
    2 tanh(bars since entry / 100)      bars = current row − entry row
    3 tanh(pips_from_peak / 100)
    4 tanh(max_drawdown / 100)
    5 tanh(accumulated_drawdown / 100)

The env calls the scalar kernels inside its step; the live trader calls the batched ones with
B = 1 (or `replay_position` to rebuild the marks of a position from the closes since its entry).
"""

from __future__ import annotations

import numpy as np
from numba import njit

NUM_STATIC = 6
STATIC_NAMES = (
    "side",
    "unrealised_pips",
    "bars_since_entry",
    "pips_from_peak",
    "max_drawdown_pips",
    "accumulated_drawdown_pips",
)
FEATURE_SCALE = 100.0  # pips (or bars) that map to tanh(1)


@njit(cache=True)
def unrealised_pips(
    side: int, entry_price: float, price: float, pip: float, entry_cost_pips: float
) -> float:
    """Unrealised pips of a position marked at `price`, net of the entry costs already paid."""
    return side * (price - entry_price) / pip - entry_cost_pips


@njit(cache=True)
def mark(
    unrealised: float, last_unrealised: float, peak: float, max_drawdown: float, accumulated: float
) -> tuple[float, float, float]:
    """(peak, max_drawdown, accumulated_drawdown) after one more mark at `unrealised` pips."""
    peak = max(peak, unrealised)
    max_drawdown = max(max_drawdown, peak - unrealised)
    accumulated += max(0.0, last_unrealised - unrealised)
    return peak, max_drawdown, accumulated


@njit(cache=True)
def write_static(
    side: int,
    unrealised: float,
    bars_since_entry: int,
    peak: float,
    max_drawdown: float,
    accumulated: float,
    out: np.ndarray,  # [6] float32, written in place
) -> None:
    """Write the 6 position features of one env into `out` (zeros when flat)."""
    if side == 0:
        out[:] = 0.0
        return
    out[0] = side
    out[1] = np.tanh(unrealised / FEATURE_SCALE)
    out[2] = np.tanh(bars_since_entry / FEATURE_SCALE)
    out[3] = np.tanh((peak - unrealised) / FEATURE_SCALE)
    out[4] = np.tanh(max_drawdown / FEATURE_SCALE)
    out[5] = np.tanh(accumulated / FEATURE_SCALE)


@njit(cache=True)
def mark_positions(
    side: np.ndarray,  # [B] int8
    entry_price: np.ndarray,  # [B] float64
    price: np.ndarray,  # [B] float64 price of this mark (a bar close, or the exit fill)
    pip: float,
    entry_cost_pips: float,
    unrealised: np.ndarray,  # [B] float64 pips, updated in place
    peak: np.ndarray,  # [B] float64 pips, updated in place
    max_drawdown: np.ndarray,  # [B] float64 pips, updated in place
    accumulated: np.ndarray,  # [B] float64 pips, updated in place
) -> None:
    """Mark every open position at `price` and update its running drawdown statistics."""
    for i in range(side.shape[0]):
        if side[i] == 0:
            continue
        u = unrealised_pips(side[i], entry_price[i], price[i], pip, entry_cost_pips)
        peak[i], max_drawdown[i], accumulated[i] = mark(
            u, unrealised[i], peak[i], max_drawdown[i], accumulated[i]
        )
        unrealised[i] = u


@njit(cache=True)
def static_features(
    side: np.ndarray,  # [B] int8
    unrealised: np.ndarray,  # [B] float64 pips
    bars_since_entry: np.ndarray,  # [B] int64 bars
    peak: np.ndarray,  # [B] float64 pips
    max_drawdown: np.ndarray,  # [B] float64 pips
    accumulated: np.ndarray,  # [B] float64 pips
) -> np.ndarray:
    """[B, 6] float32 position features (see the module docstring)."""
    out = np.zeros((side.shape[0], NUM_STATIC), dtype=np.float32)
    for i in range(side.shape[0]):
        write_static(
            side[i],
            unrealised[i],
            bars_since_entry[i],
            peak[i],
            max_drawdown[i],
            accumulated[i],
            out[i],
        )
    return out


@njit(cache=True)
def replay_position(
    side: int,
    entry_price: float,
    closes: np.ndarray,  # [n] float64 closes of the bars after the entry bar, in order
    pip: float,
    entry_cost_pips: float,
) -> np.ndarray:
    """[n + 1, 6] float32 features of one position at its entry and after each later close."""
    n = closes.shape[0]
    out = np.zeros((n + 1, NUM_STATIC), dtype=np.float32)
    u = -entry_cost_pips
    peak, max_drawdown, accumulated = u, 0.0, 0.0
    write_static(side, u, 0, peak, max_drawdown, accumulated, out[0])
    for k in range(n):
        new_u = unrealised_pips(side, entry_price, closes[k], pip, entry_cost_pips)
        peak, max_drawdown, accumulated = mark(new_u, u, peak, max_drawdown, accumulated)
        u = new_u
        write_static(side, u, k + 1, peak, max_drawdown, accumulated, out[k + 1])
    return out


def mirror_static(static: np.ndarray) -> np.ndarray:
    """[..., 6] position features → as in the mirror market (a copy): only the side flips.

    P&L, bars held, distance from the peak and drawdowns are the position's own pips and bars,
    the same for a long in a market as for the short in its mirror.
    """
    out = np.array(static, dtype=np.float32, copy=True)
    out[..., 0] = -out[..., 0]
    return out
