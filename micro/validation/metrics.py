"""Trade-list metrics of one validation run: expectancy, win rate, SQN, drawdown, equity curve.

Every figure comes from a trade list (`micro.env.trades.TRADE_DTYPE`, pips net of costs) and is a
plain JSON-able float, int or None: None wherever a figure is undefined (no trades, no losses,
zero spread of outcomes), never NaN or inf.

Definitions (N trades with net pips x_1..x_N in exit order):

- expectancy = mean(x) pips; win rate = #(x > 0) / N (a 0-pip trade is neither win nor loss);
  profit factor = Σ wins / |Σ losses| (None without losses); payoff ratio = mean win / |mean loss|
  (None without wins or without losses).
- exposure = Σ bars_held / (sessions × decisions per session): the share of decision bars spent in
  a position. trades per day = N / trading days the sessions cover.
- equity curve C_k = x_1 + … + x_k, starting from C_0 = 0; max drawdown = max over k of
  (max_{j≤k} C_j − C_k) with the peak taken over C_0..C_k, in pips and in % of `account_pips`.
- Van Tharp's SQN = √N × mean(x) / std(x) with the sample std (ddof=1); `sqn_capped` uses
  √min(N, 100). In R-multiples (R = pips / stop_loss_pips) the SQN is the same number, because
  mean and std scale alike; `expectancy_r`, `r_mean` and `r_std` are reported for the reader.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SQN_CAP_TRADES = 100  # Van Tharp caps N at 100 so a long list does not inflate the SQN
EQUITY_SAMPLE_POINTS = 500  # most points of the sampled equity curve kept in reports
SECONDS_PER_DAY = 86_400
ZERO_STD_RTOL = 1e-9  # a std this small relative to max(1, |mean|) is float noise: treated as 0


def finite_or_none(value: float) -> float | None:
    """`value` as a plain float, or None where it is NaN or ±inf (JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


def sqn(mean: float, std: float, n: int, cap: int | None = None) -> float | None:
    """Van Tharp's SQN = √n × mean / std (n capped at `cap` if given); None when undefined."""
    if n < 2 or not math.isfinite(std) or std <= ZERO_STD_RTOL * max(1.0, abs(mean)):
        return None
    root_n = math.sqrt(min(n, cap) if cap is not None else n)
    return finite_or_none(root_n * mean / std)


def max_drawdown_pips(pips: np.ndarray) -> float:
    """Largest fall (pips, ≥ 0) of the cumulative pips curve from its running peak (start: 0)."""
    if pips.size == 0:
        return 0.0
    equity = np.cumsum(pips)  # [N]
    peak = np.maximum(np.maximum.accumulate(equity), 0.0)  # [N] the start C_0 = 0 is a peak
    return float(np.max(peak - equity))


def sampled_curve(
    equity: np.ndarray, points: int = EQUITY_SAMPLE_POINTS
) -> dict[str, list[int] | list[float]]:
    """At most ~`points` (trade number, cumulative pips) pairs that keep every bucket's min & max.

    The curve is cut into points/2 buckets of consecutive trades; each keeps its lowest and its
    highest point in trade order, so peaks and troughs (the drawdown) survive the thinning.
    Trade numbers are 1-based: the point (k, C_k) is the equity after trade k.
    """
    n = equity.size
    if n <= points:
        keep = np.arange(n)
    else:
        buckets = max(1, points // 2)
        edges = np.linspace(0, n, buckets + 1).astype(np.int64)  # [buckets + 1]
        starts = edges[:-1]
        lows = np.minimum.reduceat(equity, starts)  # [buckets]
        highs = np.maximum.reduceat(equity, starts)
        bucket_of = np.repeat(np.arange(buckets), np.diff(edges))  # [N]
        is_low = equity == lows[bucket_of]
        is_high = equity == highs[bucket_of]
        first_low = _first_per_bucket(is_low, bucket_of, buckets)
        first_high = _first_per_bucket(is_high, bucket_of, buckets)
        keep = np.unique(np.concatenate([first_low, first_high, [n - 1]]))
    return {
        "trade": (keep + 1).tolist(),
        "pips": [float(v) for v in equity[keep]],
    }


def _first_per_bucket(flags: np.ndarray, bucket_of: np.ndarray, buckets: int) -> np.ndarray:
    """[buckets] index of the first True of `flags` in each bucket (every bucket has one)."""
    idx = np.flatnonzero(flags)  # ascending, so bucket_of[idx] is non-decreasing
    b = bucket_of[idx]
    first = idx[np.r_[True, b[1:] != b[:-1]]]
    if first.size != buckets:
        raise AssertionError("every bucket holds its own min and max")
    return first


def covered_days(ts: np.ndarray, starts: np.ndarray, session_bars: int) -> np.ndarray:
    """[D] sorted UTC day numbers (days since 1970-01-01) holding a bar of any session.

    These are the trading days the sessions cover: the denominator of trades per day and the
    calendar of the daily P&L (days without a trade count as 0 there).
    """
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    rows = (starts[:, None] + np.arange(session_bars)[None, :]).ravel()  # [S * L]
    return np.unique(np.asarray(ts, dtype=np.int64)[rows] // SECONDS_PER_DAY)


def trade_metrics(
    trades: np.ndarray,
    *,
    stop_loss_pips: float,
    account_pips: float,
    sessions: int,
    decisions_per_session: int,
    session_days: float,
) -> dict[str, Any]:
    """The metrics of a trade list ([N] TRADE_DTYPE) as a JSON-able dict (see module docstring).

    sessions × decisions_per_session is the exposure's denominator (decision bars available);
    session_days the trading days the sessions cover (`len(covered_days(...))`).
    """
    if stop_loss_pips <= 0 or account_pips <= 0:
        raise ValueError("stop_loss_pips and account_pips must be > 0")
    pips = np.asarray(trades["pips"], dtype=np.float64)  # [N]
    bars = np.asarray(trades["bars_held"], dtype=np.float64)  # [N]
    n = int(pips.size)
    wins, losses = pips[pips > 0], pips[pips < 0]
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    mean = float(pips.mean()) if n else math.nan
    std = float(pips.std(ddof=1)) if n >= 2 else math.nan
    r = pips / stop_loss_pips  # [N] R-multiples
    equity = np.cumsum(pips)  # [N]
    drawdown = max_drawdown_pips(pips)
    decision_bars = sessions * decisions_per_session
    return {
        "trades": n,
        "wins": int(wins.size),
        "losses": int(losses.size),
        "expectancy_pips": finite_or_none(mean),
        "expectancy_r": finite_or_none(mean / stop_loss_pips),
        "std_pips": finite_or_none(std),
        "win_rate": wins.size / n if n else None,
        "profit_factor": gross_win / gross_loss if losses.size else None,
        "payoff_ratio": (
            float(wins.mean()) / float(-losses.mean()) if wins.size and losses.size else None
        ),
        "average_win_pips": float(wins.mean()) if wins.size else None,
        "average_loss_pips": float(losses.mean()) if losses.size else None,
        "gross_win_pips": gross_win,
        "gross_loss_pips": gross_loss,
        "average_bars_held": float(bars.mean()) if n else None,
        "exposure": float(bars.sum()) / decision_bars if decision_bars > 0 else None,
        "trades_per_day": n / session_days if session_days > 0 else None,
        "total_pips": float(pips.sum()),
        "max_drawdown_pips": drawdown,
        "max_drawdown_pct": 100.0 * drawdown / account_pips,
        "sqn": sqn(mean, std, n),
        "sqn_capped": sqn(mean, std, n, cap=SQN_CAP_TRADES),
        "sqn_r": sqn(mean / stop_loss_pips, std / stop_loss_pips, n),
        "sqn_r_capped": sqn(mean / stop_loss_pips, std / stop_loss_pips, n, cap=SQN_CAP_TRADES),
        "r_mean": finite_or_none(float(r.mean())) if n else None,
        "r_std": finite_or_none(float(r.std(ddof=1))) if n >= 2 else None,
        "stop_loss_pips": float(stop_loss_pips),
        "account_pips": float(account_pips),
        "sessions": int(sessions),
        "session_days": float(session_days),
        "equity_curve": [float(v) for v in equity],
        "equity_curve_sampled": sampled_curve(equity),
    }
