"""Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation.

Bailey, Borwein, López de Prado & Zhu (2017), "The probability of backtest overfitting". The
trials are the N checkpoints scored on the same validation sessions; their per-session net pips
form a [N, T] matrix, T sessions in time order. The sessions are cut into S contiguous time
blocks (S even, at most `blocks`, at most T). For each of the C(S, S/2) ways to pick half of
the blocks as in-sample (the rest out-of-sample):

1. the in-sample best n* is the checkpoint with the highest mean per-session pips in-sample
   (the selection the validator makes);
2. ω = its relative rank out-of-sample, rank / (N + 1) (ties share their average rank);
3. λ = ln(ω / (1 − ω)).

PBO = the share of splits with λ ≤ 0: how often the in-sample winner is no better than the
median checkpoint out of sample. Near 0: selection carries over; near 0.5 or above: the winner
is picked by luck. `median_logit` is the median λ.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np


def relative_rank(values: np.ndarray, index: int) -> float:
    """ω of `values[index]` among [N] values: its average rank (1 = lowest) over N + 1."""
    below = float(np.sum(values < values[index]))
    equal = float(np.sum(values == values[index]))
    return (below + (equal + 1.0) / 2.0) / (values.size + 1.0)


def probability_of_overfitting(returns: np.ndarray, blocks: int = 8) -> dict[str, Any]:
    """PBO of selecting the best of N trials from [N, T] per-period returns (module docstring).

    Undefined (None, with `why`) for fewer than 2 trials or 2 periods.
    """
    returns = np.asarray(returns, dtype=np.float64)  # [N, T]
    n = int(returns.shape[0]) if returns.ndim == 2 else 0
    t = int(returns.shape[1]) if returns.ndim == 2 else 0
    s = min(blocks, t) // 2 * 2
    out: dict[str, Any] = {
        "pbo": None,
        "median_logit": None,
        "trials": n,
        "sessions": t,
        "blocks": s,
        "combinations": 0,
        "why": None,
    }
    if n < 2:
        out["why"] = "one checkpoint on this data: no selection to overfit"
        return out
    if s < 2:
        out["why"] = f"{t} session(s): too few to cut into time blocks"
        return out
    parts = np.array_split(np.arange(t), s)  # S contiguous blocks of session indices
    block_sums = np.stack([returns[:, p].sum(axis=1) for p in parts], axis=1)  # [N, S]
    block_sizes = np.array([p.size for p in parts], dtype=np.float64)  # [S]
    logits = []
    for chosen in itertools.combinations(range(s), s // 2):
        inside = np.zeros(s, dtype=bool)
        inside[list(chosen)] = True
        in_mean = block_sums[:, inside].sum(axis=1) / block_sizes[inside].sum()  # [N]
        out_mean = block_sums[:, ~inside].sum(axis=1) / block_sizes[~inside].sum()  # [N]
        omega = relative_rank(out_mean, int(np.argmax(in_mean)))
        logits.append(math.log(omega / (1.0 - omega)))
    lam = np.asarray(logits)
    out["pbo"] = float(np.mean(lam <= 0.0))
    out["median_logit"] = float(np.median(lam))
    out["combinations"] = int(lam.size)
    return out
