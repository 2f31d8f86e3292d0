"""Howard Bandy's safe-f and CAR25: how big a position the trade list supports, and what it earns.

Model (Bandy, "Modeling Trading System Performance", 2011, as adapted to pips):

- A trade's return on the account at position fraction f is r = f × pips / account_pips, where
  `account_pips` is the account expressed in pips of one unit (validation.account_pips). f = 1
  trades one unit per account_pips of equity; f = 0.5 half of that. Equity compounds:
  E_k = E_{k−1} × (1 + r_k), E_0 = 1; an equity that reaches 0 is ruined and stays there.
- A horizon is `horizon_trades` trades (the horizon in years × the observed trades per year; see
  `horizon_trades`), drawn with replacement from the trade list. `runs` such sequences are
  simulated; the drawdown of a sequence is its largest fall from a running peak, 1 − E_k / max E.
- safe-f is the largest f in (0, f_max] whose 95th-percentile drawdown stays within the tolerance.
  Each run's drawdown grows with f (it is a maximum of convex functions of f that vanish at 0),
  so a bisection finds it; every f sees the same resampled sequences (common random numbers).
- CAR25 is the 25th percentile over the runs of the compound annual growth rate at safe-f:
  E_T^(1 / years) − 1 (−1 for a ruined run).

Sequences come from a counter-based generator (splitmix64 of seed, run and step): a numba loop
regenerates them for every f with no [runs, horizon] array in memory and no global RNG state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from micro.config import ValidationConfig
from micro.validation.metrics import finite_or_none
from micro.validation.sharpe import TRADING_DAYS_PER_YEAR

BISECTION_STEPS = 30  # halves (0, f_max] to ~1e-9 of f_max
DRAWDOWN_PERCENTILE = 95.0
PARALLEL_STEPS = 2_000_000  # simulated trades from which threads pay for their start-up

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)


@njit(cache=True)
def _splitmix64(x: np.uint64) -> np.uint64:
    """One splitmix64 output for the counter `x` (a well-mixed 64-bit hash)."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def _draw(base: np.uint64, step: int, n: np.uint64) -> int:
    """Index in [0, n) of trade `step` of the run keyed `base` (Lemire's multiply-shift)."""
    return int(((_splitmix64(base + np.uint64(step)) >> _S32) * n) >> _S32)


@njit(cache=True)
def _one_run(
    returns: np.ndarray, f: float, horizon: int, base: np.uint64, stop_above: float
) -> tuple[float, float]:
    """(max drawdown, final equity) of one resampled horizon; stops once drawdown > stop_above.

    A run that stopped early reports that drawdown, a lower bound of its full one, and the
    equity where it stopped.
    """
    n = np.uint64(returns.shape[0])
    equity = 1.0
    peak = 1.0
    worst = 0.0
    for step in range(horizon):
        equity *= 1.0 + f * returns[_draw(base, step, n)]
        if equity <= 0.0:
            return 1.0, 0.0  # ruined
        if equity > peak:
            peak = equity
        elif 1.0 - equity / peak > worst:
            worst = 1.0 - equity / peak
            if worst > stop_above:
                break
    return worst, equity


@njit(cache=True)
def _simulate_serial(
    returns: np.ndarray, f: float, horizon: int, runs: int, seed: int, stop_above: float
) -> tuple[np.ndarray, np.ndarray]:
    """`_simulate` on one thread (cheaper for small jobs: no thread start-up)."""
    drawdown = np.zeros(runs)
    final = np.zeros(runs)
    key = _splitmix64(np.uint64(seed))
    for run in range(runs):
        drawdown[run], final[run] = _one_run(
            returns, f, horizon, _splitmix64(key ^ np.uint64(run)), stop_above
        )
    return drawdown, final


@njit(cache=True, parallel=True)
def _simulate_parallel(
    returns: np.ndarray, f: float, horizon: int, runs: int, seed: int, stop_above: float
) -> tuple[np.ndarray, np.ndarray]:
    """`_simulate` with the runs spread over threads (identical results)."""
    drawdown = np.zeros(runs)
    final = np.zeros(runs)
    key = _splitmix64(np.uint64(seed))
    for run in prange(runs):
        drawdown[run], final[run] = _one_run(
            returns, f, horizon, _splitmix64(key ^ np.uint64(run)), stop_above
        )
    return drawdown, final


def _simulate(
    returns: np.ndarray,  # [N] float64 account return of each trade at f = 1
    f: float,
    horizon: int,
    runs: int,
    seed: int,
    stop_above: float,  # a run stops once its drawdown exceeds this (1.0: full runs)
) -> tuple[np.ndarray, np.ndarray]:
    """[runs] max drawdown (fraction) and [runs] final equity (E_0 = 1) of resampled horizons."""
    kernel = _simulate_parallel if runs * horizon >= PARALLEL_STEPS else _simulate_serial
    return kernel(returns, float(f), int(horizon), int(runs), int(seed), float(stop_above))


def horizon_trades(
    trades_per_day: float, horizon_years: float, days_per_year: int = TRADING_DAYS_PER_YEAR
) -> int:
    """Trades in a horizon of `horizon_years` at `trades_per_day` (at least 1)."""
    return max(1, int(round(trades_per_day * days_per_year * horizon_years)))


def drawdown_percentile(
    trades_pips: np.ndarray,
    f: float,
    *,
    account_pips: float,
    horizon: int,
    runs: int,
    seed: int,
    percentile: float = DRAWDOWN_PERCENTILE,
) -> float:
    """The `percentile` of the max drawdown (fraction of equity) over simulated horizons at f."""
    returns = np.asarray(trades_pips, dtype=np.float64) / account_pips  # [N]
    drawdown, _ = _simulate(returns, float(f), int(horizon), int(runs), int(seed), 1.0)
    return float(np.percentile(drawdown, percentile, method="inverted_cdf"))


def safe_f(
    trades_pips: np.ndarray,
    *,
    account_pips: float,
    horizon: int,
    horizon_years: float,
    tolerance: float = 0.20,
    f_max: float = 1.0,
    runs: int = 1000,
    seed: int = 12345,
) -> dict[str, Any]:
    """Bandy's safe-f and CAR25 of [N] trade pips over `horizon` trades (= `horizon_years`).

    Returns JSON-able figures: safe_f, whether it hit f_max, the 95th-percentile drawdown there,
    CAR25 (and CAR5/50/75/95 for context) as fractions per year; all None with no trades.
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"drawdown tolerance must lie in (0, 1), got {tolerance}")
    if f_max <= 0 or account_pips <= 0 or horizon < 1 or runs < 1 or horizon_years <= 0:
        raise ValueError("f_max, account_pips, horizon, runs and horizon_years must be > 0")
    returns = np.asarray(trades_pips, dtype=np.float64).ravel() / account_pips  # [N]
    report: dict[str, Any] = {
        "horizon_trades": int(horizon),
        "horizon_years": float(horizon_years),
        "drawdown_tolerance": float(tolerance),
        "f_max": float(f_max),
        "runs": int(runs),
        "seed": int(seed),
    }
    if returns.size == 0:
        report.update(safe_f=None, hit_f_max=None, drawdown_p95=None)
        report.update({f"car{q}": None for q in (5, 25, 50, 75, 95)})
        return report

    allowed = math.floor(runs * (1.0 - DRAWDOWN_PERCENTILE / 100.0) + 1e-9)  # breaching runs

    def within(f: float) -> bool:
        """At most 5% of the runs draw down beyond the tolerance at fraction f."""
        drawdown, _ = _simulate(returns, f, int(horizon), int(runs), int(seed), tolerance)
        return int(np.count_nonzero(drawdown > tolerance)) <= allowed

    if within(f_max):
        best = f_max
    else:
        low, high = 0.0, f_max  # within(low), not within(high)
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (low + high)
            if within(mid):
                low = mid
            else:
                high = mid
        best = low
    drawdown, final = _simulate(returns, best, int(horizon), int(runs), int(seed), 1.0)
    car = np.power(final, 1.0 / horizon_years) - 1.0  # [runs] per year; ruin: −1
    report.update(
        safe_f=float(best),
        hit_f_max=bool(best == f_max),
        drawdown_p95=float(np.percentile(drawdown, DRAWDOWN_PERCENTILE, method="inverted_cdf")),
    )
    for q in (5, 25, 50, 75, 95):
        report[f"car{q}"] = finite_or_none(np.percentile(car, q))
    return report


def configured_safe_f(
    trades_pips: np.ndarray, trades_per_day: float | None, validation: ValidationConfig
) -> dict[str, Any]:
    """safe-f and CAR25 with the configured horizon, tolerance, f_max, account, runs and seed.

    The horizon is `safe_f_horizon_years` at the observed `trades_per_day`; with no trade rate
    (no trades) the figures are None.
    """
    years = validation.safe_f_horizon_years
    rate = trades_per_day if trades_per_day and trades_per_day > 0 else 0.0
    return safe_f(
        trades_pips if rate > 0 else np.zeros(0),
        account_pips=validation.account_pips,
        horizon=horizon_trades(rate, years),
        horizon_years=years,
        tolerance=validation.safe_f_drawdown_tolerance,
        f_max=validation.safe_f_max,
        runs=validation.bootstrap_runs,
        seed=validation.seed,
    )
