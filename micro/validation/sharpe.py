"""Sharpe and Sortino on daily P&L, and the Probabilistic and Deflated Sharpe Ratios.

Daily P&L: the trades' net pips summed by the UTC date of their exit, over a calendar of trading
days (normally the days the validation sessions cover, `metrics.covered_days`); a trading day
without a trade counts as 0 pips. Without a calendar: every Monday–Friday between the first and
last exit day, plus any other day with an exit.

- Sharpe (per period) = mean / std of the daily pips (sample std, ddof=1); annualised × √252
  (252 trading days a year, the usual convention; the ratio is unitless, so pips are fine).
- Sortino = mean / downside deviation × √252, downside deviation = √(mean over all days of
  min(x, 0)²) (Sortino & Price, target 0); None without a losing day.
- PSR (Bailey & López de Prado 2012): PSR(SR*) = Φ((SR − SR*)·√(n − 1) / √(1 − γ3·SR +
  (γ4 − 1)/4·SR²)) with SR the per-period Sharpe, n the number of days, γ3 the skewness and γ4
  the raw kurtosis (a normal has γ4 = 3), both population moments of the daily P&L.
- DSR (Bailey & López de Prado 2014): PSR(SR0) with SR0 = √V[SR_k] × ((1 − γ)Φ⁻¹(1 − 1/K) +
  γΦ⁻¹(1 − 1/(K·e))), γ the Euler–Mascheroni constant, over the per-period Sharpe ratios SR_k of
  the K checkpoints scored so far (V: sample variance). With K < 2 there was no selection: SR0 = 0.
  K may be the *effective* number of independent trials (`effective_trials`): correlated
  checkpoints (neighbours of one run) are fewer independent tries than their count.
- Effective trials (Bailey & López de Prado 2014, §"number of trials"; López de Prado 2018):
  N̂ = ρ̄ + (1 − ρ̄)·M for M trials whose returns have average pairwise correlation ρ̄ (here the
  per-session P&L of each checkpoint on the same sessions; ρ̄ floored at 0, so N̂ ∈ [1, M]).

Φ uses math.erfc; Φ⁻¹ is Acklam's rational approximation polished by one Halley step (error
~1e-15), so scipy is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from micro.validation.metrics import SECONDS_PER_DAY, ZERO_STD_RTOL, finite_or_none

TRADING_DAYS_PER_YEAR = 252
EULER_MASCHERONI = 0.5772156649015329

# Acklam's coefficients for the inverse normal CDF.
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)  # fmt: skip
_P_LOW = 0.02425


def normal_cdf(x: float) -> float:
    """Φ(x), the standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    """Φ⁻¹(p) for p in (0, 1): Acklam's approximation plus one Halley refinement."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal_ppf needs 0 < p < 1, got {p}")
    if p < _P_LOW or p > 1.0 - _P_LOW:
        q = math.sqrt(-2.0 * math.log(p if p < _P_LOW else 1.0 - p))
        x = (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
        )
        x = x if p < _P_LOW else -x
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5])
            * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)
        )
    # One Halley step on Φ(x) − p.
    e = normal_cdf(x) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


def daily_pnl(
    trades: np.ndarray, trading_days: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """([D] int64 UTC day numbers, [D] float64 pips): net pips by exit day, 0 on idle days."""
    exit_day = np.asarray(trades["exit_ts"], dtype=np.int64) // SECONDS_PER_DAY  # [N]
    pips = np.asarray(trades["pips"], dtype=np.float64)  # [N]
    if trading_days is None:
        if exit_day.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        span = np.arange(exit_day.min(), exit_day.max() + 1)
        weekday = (span + 3) % 7  # 1970-01-01 was a Thursday: 0 Monday … 6 Sunday
        calendar = span[weekday < 5]
    else:
        calendar = np.asarray(trading_days, dtype=np.int64)
    days = np.union1d(calendar, exit_day)  # [D] sorted, unique
    pnl = np.zeros(days.size)
    np.add.at(pnl, np.searchsorted(days, exit_day), pips)
    return days, pnl


def moments(x: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, sample std (ddof=1), skewness γ3, raw kurtosis γ4) of [n] values; NaN if undefined."""
    n = x.size
    if n < 2:
        return (float(x.mean()) if n else math.nan), math.nan, math.nan, math.nan
    mean = float(x.mean())
    d = x - mean
    m2 = float(np.mean(d * d))
    std = float(x.std(ddof=1))
    if m2 <= (ZERO_STD_RTOL * max(1.0, abs(mean))) ** 2:
        return mean, std, math.nan, math.nan
    return mean, std, float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def probabilistic_sharpe_ratio(
    sharpe: float, n: int, skewness: float, kurtosis: float, benchmark: float = 0.0
) -> float | None:
    """PSR(SR*): probability the true per-period Sharpe exceeds `benchmark`; γ4 raw kurtosis."""
    if n < 2 or not all(math.isfinite(v) for v in (sharpe, skewness, kurtosis, benchmark)):
        return None
    radicand = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if radicand <= 0.0:
        return None
    return normal_cdf((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(radicand))


def luck_threshold(variance: float, trials: float) -> float:
    """SR0 = √V × ((1 − γ)Φ⁻¹(1 − 1/K) + γΦ⁻¹(1 − 1/(K·e))): the best of K trials' luck.

    K may be fractional (an effective number of trials); below 1 + ε there is no selection, and
    SR0 is never below 0 (the formula dips under 0 for K close to 1).
    """
    if not trials > 1.0 or not variance > 0.0:
        return 0.0
    g = EULER_MASCHERONI
    return max(
        0.0,
        math.sqrt(variance)
        * (
            (1.0 - g) * normal_ppf(1.0 - 1.0 / trials)
            + g * normal_ppf(1.0 - 1.0 / (trials * math.e))
        ),
    )


def expected_max_sharpe(
    trial_sharpes: Sequence[float | None], effective: float | None = None
) -> float:
    """SR0 of the DSR from the per-period Sharpes of the K trials (None/NaN entries skipped).

    `effective`: the effective number of independent trials to use instead of K.
    """
    values = np.asarray([v for v in trial_sharpes if v is not None and math.isfinite(v)])
    if values.size < 2:
        return 0.0
    trials = float(values.size) if effective is None else float(effective)
    return luck_threshold(float(values.var(ddof=1)), trials)


def deflated_sharpe_ratio(
    sharpe: float,
    n: int,
    skewness: float,
    kurtosis: float,
    trial_sharpes: Sequence[float | None],
    effective: float | None = None,
) -> float | None:
    """DSR: PSR against the luck of the best of the K per-period Sharpes in `trial_sharpes`."""
    return probabilistic_sharpe_ratio(
        sharpe, n, skewness, kurtosis, benchmark=expected_max_sharpe(trial_sharpes, effective)
    )


def effective_trials(returns: np.ndarray) -> tuple[float, float | None]:
    """(N̂, ρ̄) of M trials from their [M, S] returns on the same S periods.

    ρ̄ is the mean Pearson correlation over the pairs of trials whose returns vary (a trial that
    never traded correlates with nothing); N̂ = ρ̄ + (1 − ρ̄)·M with ρ̄ floored at 0. Without a
    defined pair, the trials count as independent (N̂ = M, ρ̄ None).
    """
    returns = np.asarray(returns, dtype=np.float64)  # [M, S]
    m = int(returns.shape[0]) if returns.ndim == 2 else 0
    if m < 2 or returns.shape[1] < 2:
        return float(m), None
    centred = returns - returns.mean(axis=1, keepdims=True)  # [M, S]
    norms = np.sqrt((centred**2).sum(axis=1))  # [M]
    varies = norms > ZERO_STD_RTOL * np.maximum(1.0, np.abs(returns).max(axis=1))
    unit = centred[varies] / norms[varies, None]  # [M', S]
    if unit.shape[0] < 2:
        return float(m), None
    corr = unit @ unit.T  # [M', M']
    pairs = corr[np.triu_indices(unit.shape[0], k=1)]
    rho = float(np.clip(pairs.mean(), -1.0, 1.0))
    floored = max(rho, 0.0)
    return floored + (1.0 - floored) * m, rho


def sharpe_report(
    trades: np.ndarray,
    trading_days: np.ndarray | None = None,
    trial_sharpes: Sequence[float | None] = (),
) -> dict[str, Any]:
    """Sharpe, Sortino, PSR(0) and DSR of a trade list's daily P&L, JSON-able (None if undefined).

    `trial_sharpes`: per-period Sharpe ratios of every checkpoint scored so far, this one
    included (pass `sharpe_daily` of each report); the DSR deflates against them.
    """
    _, pnl = daily_pnl(trades, trading_days)
    n = int(pnl.size)
    mean, std, skewness, kurtosis = moments(pnl)
    defined = n >= 2 and math.isfinite(std) and std > ZERO_STD_RTOL * max(1.0, abs(mean))
    per_period = mean / std if defined else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(pnl, 0.0) ** 2))) if n else 0.0
    annual = math.sqrt(TRADING_DAYS_PER_YEAR)
    return {
        "days": n,
        "daily_mean_pips": finite_or_none(mean),
        "daily_std_pips": finite_or_none(std),
        "daily_skewness": finite_or_none(skewness),
        "daily_kurtosis": finite_or_none(kurtosis),
        "sharpe_daily": finite_or_none(per_period),
        "sharpe": finite_or_none(per_period * annual),
        "sortino": finite_or_none(mean / downside * annual) if downside > 0 else None,
        "psr": probabilistic_sharpe_ratio(per_period, n, skewness, kurtosis) if defined else None,
        "dsr": (
            deflated_sharpe_ratio(per_period, n, skewness, kurtosis, trial_sharpes)
            if defined
            else None
        ),
        "dsr_trials": sum(1 for v in trial_sharpes if v is not None and math.isfinite(v)),
        "expected_max_sharpe_daily": expected_max_sharpe(trial_sharpes),
    }
