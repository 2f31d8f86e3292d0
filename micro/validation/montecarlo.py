"""Monte Carlo bootstrap of a trade list: how much of a checkpoint's result is luck of the order.

Each run resamples the N trade P&Ls (pips) with replacement into a new list of the same length N:
i.i.d. by default, or a circular block bootstrap (Politis & Romano 1992) when `block_size` > 1,
which draws ⌈N / block⌉ blocks of `block_size` consecutive trades, each starting uniformly in
[0, N) and wrapping from the last trade to the first, and cuts the concatenation to N, so runs of
wins or losses (serial dependence) survive. Wrapping makes every trade equally likely to be drawn
(a moving block starting in [0, N − block] under-samples the first and last trades). A block that
is large against N leaves little to resample (at block ≥ N every run is a rotation of the list,
with the list's own mean), so the block is shrunk to ⌊N / MIN_BLOCKS⌋ trades (i.i.d. when that is
1) and the report says so (`block_size_requested`, `block_shrunk`, and a log line).
Per run: SQN (uncapped and N capped at 100, as `micro.validation.metrics.sqn`), expectancy, total
pips and max drawdown of the cumulative pips curve; reported as percentiles 5/25/50/75/95.

Fully vectorised over runs ([runs, N] arrays, processed in chunks that bound memory), seeded with
`np.random.default_rng(seed)`: the same seed gives the same report.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from micro.validation.metrics import SQN_CAP_TRADES, ZERO_STD_RTOL, finite_or_none

log = logging.getLogger("micro.validation")

PERCENTILES = (5, 25, 50, 75, 95)
MIN_BLOCKS = 10  # a resample holds at least this many blocks; a longer block is shrunk
CHUNK_ELEMENTS = 1 << 22  # resampled trades held at once (runs per chunk × N), ~32 MiB of float64


def block_size_for(n: int, requested: int) -> int:
    """The block length used for `n` trades: `requested`, shrunk to ⌊n / MIN_BLOCKS⌋; 0: i.i.d."""
    block = min(requested, n // MIN_BLOCKS)
    return block if block > 1 else 0


def resample_indices(
    n: int, runs: int, rng: np.random.Generator, block_size: int = 0
) -> np.ndarray:
    """[runs, n] int64 indices into the trade list: i.i.d., or circular blocks of `block_size`."""
    if block_size <= 1 or n <= 1:
        return rng.integers(0, n, size=(runs, n))
    block = min(block_size, n)
    blocks = -(-n // block)  # ⌈n / block⌉
    first = rng.integers(0, n, size=(runs, blocks))  # [runs, blocks] block starts, anywhere
    idx = (first[:, :, None] + np.arange(block)[None, None, :]) % n  # [runs, blocks, block]
    return idx.reshape(runs, blocks * block)[:, :n]


def run_statistics(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Per-run statistics of [R, N] resampled pips: [R] arrays (NaN where SQN is undefined)."""
    n = samples.shape[1]
    mean = samples.mean(axis=1)  # [R]
    std = samples.std(axis=1, ddof=1) if n >= 2 else np.full(samples.shape[0], np.nan)
    defined = np.isfinite(std) & (std > ZERO_STD_RTOL * np.maximum(1.0, np.abs(mean)))
    ratio = np.full_like(mean, np.nan)
    np.divide(mean, std, out=ratio, where=defined)
    equity = np.cumsum(samples, axis=1)  # [R, N]
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), 0.0)  # the start (0) is a peak
    return {
        "sqn": math.sqrt(n) * ratio,
        "sqn_capped": math.sqrt(min(n, SQN_CAP_TRADES)) * ratio,
        "expectancy_pips": mean,
        "total_pips": equity[:, -1].copy(),
        "max_drawdown_pips": np.max(peak - equity, axis=1),
    }


def percentiles(values: np.ndarray) -> dict[str, float | None]:
    """Percentiles 5/25/50/75/95 of the finite `values` ({"p5": …}); all None if none is finite."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {f"p{q}": None for q in PERCENTILES}
    qs = np.percentile(finite, PERCENTILES)
    return {f"p{q}": finite_or_none(v) for q, v in zip(PERCENTILES, qs, strict=True)}


def bootstrap(
    trades_pips: np.ndarray, runs: int = 1000, seed: int = 12345, block_size: int = 0
) -> dict[str, Any]:
    """Bootstrap [N] trade pips `runs` times; percentiles of SQN, expectancy, total, drawdown.

    `sqn_defined_runs` counts the runs whose SQN exists (resamples with a spread of outcomes);
    SQN percentiles are over those runs only, and None when there are none (e.g. every trade
    made the same pips). `probability_positive_expectancy` is the share of runs with mean > 0.
    `block_size` is the circular block used (0: i.i.d.), `block_size_requested` the one asked
    for, `block_shrunk` whether it was shrunk because N holds fewer than MIN_BLOCKS of it.
    """
    if runs < 1:
        raise ValueError(f"bootstrap runs must be >= 1, got {runs}")
    if block_size < 0:
        raise ValueError(f"block_size must be >= 0, got {block_size}")
    pips = np.asarray(trades_pips, dtype=np.float64).ravel()  # [N]
    n = int(pips.size)
    requested = int(block_size) if block_size > 1 else 0
    block = block_size_for(n, requested)
    shrunk = block < requested
    if shrunk and n:
        log.warning(
            "bootstrap: a block of %d trades is too long for %d trades (fewer than %d blocks); "
            "%s",
            requested, n, MIN_BLOCKS,
            f"shrunk to {block}" if block else "resampling trades i.i.d. instead",
        )  # fmt: skip
    report: dict[str, Any] = {
        "runs": int(runs),
        "seed": int(seed),
        "resampling": "circular_block" if block else "iid",
        "block_size": block,
        "block_size_requested": requested,
        "block_shrunk": shrunk,
        "trades": n,
    }
    names = ("sqn", "sqn_capped", "expectancy_pips", "total_pips", "max_drawdown_pips")
    if n == 0:
        report.update({name: percentiles(np.zeros(0)) for name in names})
        report["sqn_defined_runs"] = 0
        report["probability_positive_expectancy"] = None
        return report
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_ELEMENTS // n)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for first in range(0, runs, per_chunk):
        count = min(per_chunk, runs - first)
        samples = pips[resample_indices(n, count, rng, block)]  # [count, N]
        for name, values in run_statistics(samples).items():
            parts[name].append(values)
    stats = {name: np.concatenate(chunks) for name, chunks in parts.items()}  # [runs] each
    report.update({name: percentiles(stats[name]) for name in names})
    report["sqn_defined_runs"] = int(np.isfinite(stats["sqn"]).sum())
    report["probability_positive_expectancy"] = float(np.mean(stats["expectancy_pips"] > 0))
    return report


def bootstrap_seconds(n_trades: int = 5000, runs: int = 1000, seed: int = 0) -> float:
    """Wall seconds of one `bootstrap` of `runs` runs over `n_trades` synthetic trades (bench)."""
    rng = np.random.default_rng(seed)
    pips = rng.normal(0.5, 15.0, n_trades)  # [N] pips, a plausible scalper's spread of outcomes
    began = time.perf_counter()
    bootstrap(pips, runs=runs, seed=seed)
    return time.perf_counter() - began
