"""Actions, position sides and legality: shared by the environment, the search tree and live.

One unit, net, no hedging. Flat: HOLD, BUY, SELL are legal. In a position: HOLD, CLOSE.
"""

from __future__ import annotations

import numpy as np
from numba import njit

HOLD, BUY, SELL, CLOSE = 0, 1, 2, 3
NUM_ACTIONS = 4
ACTION_NAMES = ("HOLD", "BUY", "SELL", "CLOSE")

SHORT, FLAT, LONG = -1, 0, 1

DOWN, NEUTRAL, UP = 0, 1, 2
NUM_OUTCOMES = 3
OUTCOME_NAMES = ("DOWN", "NEUTRAL", "UP")

# In the mirror market (every price move negated) a buy is a sell and a rise a fall.
MIRROR_ACTION = np.array([HOLD, SELL, BUY, CLOSE], dtype=np.int64)  # [4] action -> mirrored
MIRROR_OUTCOME = np.array([UP, NEUTRAL, DOWN], dtype=np.int64)  # [3] outcome -> mirrored


@njit(cache=True)
def is_legal(side: int, action: int) -> bool:
    """Whether `action` is allowed for a position of `side` (-1 short, 0 flat, +1 long)."""
    if side == FLAT:
        return action == HOLD or action == BUY or action == SELL
    return action == HOLD or action == CLOSE


@njit(cache=True)
def next_side(side: int, action: int) -> int:
    """The position side after `action` (legal actions only): the deterministic part of a step."""
    if side == FLAT:
        if action == BUY:
            return LONG
        if action == SELL:
            return SHORT
        return FLAT
    if action == CLOSE:
        return FLAT
    return side


def legal_mask(side: np.ndarray) -> np.ndarray:
    """[B] int8 sides -> [B, 4] bool legality mask."""
    side = np.asarray(side)
    flat = side == FLAT
    mask = np.empty(side.shape + (NUM_ACTIONS,), dtype=bool)
    mask[..., HOLD] = True
    mask[..., BUY] = flat
    mask[..., SELL] = flat
    mask[..., CLOSE] = ~flat
    return mask
