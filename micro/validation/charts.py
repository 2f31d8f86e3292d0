"""What a report's pictures need that its figures do not hold: the report's `charts` section.

The HTML report (`micro.validation.html`) draws from the JSON report alone, so whatever a chart
needs beyond the statistics is added here, compactly (floats rounded, curves sampled):

- `trade_pips`: every trade's net pips in the report's trade order (that of `metrics`' equity
  curve and of the bootstrap): the result distribution, and the agent's equity trade by trade
  (its cumulative sum).
- `equity_fan`: the Monte Carlo fan of equity paths. The same resamples as the report's
  `bootstrap` (same seed, block and draws, so the fan's last point is `bootstrap.total_pips`),
  each run's cumulative pips taken at ≤ `FAN_POINTS` trade numbers: the percentiles 5/25/50/75/95
  of equity and the 50/95th of the drawdown from the running peak at each, and the first
  `FAN_PATHS` runs as drawn paths.
- `sessions`: up to `DRAWN_SESSIONS` sessions drawn as candles (the worst, the median and the
  best by net pips among those with trades; the first session when none has any), each with its
  trades, and for every entry and every agent exit the decision's rationale: visits, Q (pips), σ
  of the chosen action's afterstate, the search's and the network's root values, the prior.

The rationale comes from `ActedRecorder`, which the greedy evaluation feeds with every decision
that was not HOLD (a few numbers per trade, nothing recomputed).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from micro.env.actions import ACTION_NAMES, HOLD, NUM_ACTIONS, NUM_OUTCOMES
from micro.env.trades import EXIT_AGENT, EXIT_REASON_NAMES
from micro.instruments import instrument
from micro.validation.montecarlo import (
    CHUNK_ELEMENTS,
    PERCENTILES,
    block_size_for,
    resample_indices,
)

if TYPE_CHECKING:
    from micro.data.market import Market

FAN_POINTS = 100  # most trade numbers at which the fan's percentiles are kept
FAN_PATHS = 10  # bootstrap runs drawn as paths
DRAWN_SESSIONS = 3  # sessions drawn as candles
PIPS_DECIMALS = 2

ACTED_DTYPE = np.dtype(
    [
        ("session", np.int64),  # start row of the session
        ("row", np.int64),  # decision row (an entry's or an agent exit's row)
        ("action", np.int8),
        ("visits", np.int32, (NUM_ACTIONS,)),
        ("q", np.float32, (NUM_ACTIONS,)),  # pips, NaN unvisited or illegal
        ("prior", np.float32, (NUM_ACTIONS,)),
        ("sigma", np.float32, (NUM_OUTCOMES,)),  # σ of the chosen action's afterstate
        ("value", np.float32),  # the search's root value, pips
        ("network_value", np.float32),  # the network's root value, pips
    ]
)


class ActedRecorder:
    """Collects the rationale of every decision that was not HOLD ([A] ACTED_DTYPE)."""

    def __init__(self, starts: np.ndarray) -> None:
        self._starts = np.asarray(starts, dtype=np.int64)  # [S] session of env i
        self._parts: list[np.ndarray] = []

    def record(
        self,
        rows: np.ndarray,  # [S] int64 decision rows
        actions: np.ndarray,  # [S] int64
        visit_counts: np.ndarray,  # [S, 4]
        q: np.ndarray,  # [S, 4] pips
        prior: np.ndarray,  # [S, 4]
        chance_probs: np.ndarray,  # [S, 4, 3]
        value: np.ndarray,  # [S] pips
        network_value: np.ndarray,  # [S] pips
    ) -> None:
        acted = np.flatnonzero(actions != HOLD)  # [a]
        if acted.size == 0:
            return
        part = np.zeros(acted.size, dtype=ACTED_DTYPE)
        chosen = actions[acted]
        part["session"] = self._starts[acted]
        part["row"] = rows[acted]
        part["action"] = chosen
        part["visits"] = visit_counts[acted]
        part["q"] = q[acted]
        part["prior"] = prior[acted]
        part["sigma"] = chance_probs[acted, chosen]
        part["value"] = value[acted]
        part["network_value"] = network_value[acted]
        self._parts.append(part)

    def acted(self) -> np.ndarray:
        """[A] ACTED_DTYPE, in decision order."""
        return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=ACTED_DTYPE)


def _rounded(values: np.ndarray, decimals: int = PIPS_DECIMALS) -> list[float | None]:
    """Plain floats rounded to `decimals` (−0.0 as 0.0); None where not finite (JSON has no NaN)."""
    return [
        round(float(v), decimals) + 0.0 if math.isfinite(v) else None
        for v in np.asarray(values, np.float64)
    ]


def equity_fan(
    pips: np.ndarray,  # [N] net pips in the report's trade order
    runs: int,
    seed: int,
    block_size: int = 0,
    points: int = FAN_POINTS,
    paths: int = FAN_PATHS,
) -> dict[str, Any]:
    """The bootstrap's runs as equity paths: percentiles at ≤ `points` trade numbers, and paths.

    Draws exactly as `micro.validation.montecarlo.bootstrap` with the same arguments, so run r
    here is run r there.
    """
    pips = np.asarray(pips, dtype=np.float64).ravel()
    n = int(pips.size)
    fan: dict[str, Any] = {"runs": int(runs), "trade": []}
    fan.update({f"p{q}": [] for q in PERCENTILES})
    fan.update(drawdown_p50=[], drawdown_p95=[], paths=[])
    if n == 0 or runs < 1:
        return fan
    block = block_size_for(n, int(block_size) if block_size > 1 else 0)
    columns = np.unique(np.round(np.linspace(0, n - 1, min(n, points))).astype(np.int64))  # [P]
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_ELEMENTS // n)
    equity_parts, drawdown_parts = [], []
    for first in range(0, runs, per_chunk):
        count = min(per_chunk, runs - first)
        equity = np.cumsum(pips[resample_indices(n, count, rng, block)], axis=1)  # [count, N]
        peak = np.maximum(np.maximum.accumulate(equity, axis=1), 0.0)  # the start is a peak
        equity_parts.append(equity[:, columns])
        drawdown_parts.append((peak - equity)[:, columns])
    equity = np.concatenate(equity_parts)  # [runs, P]
    drawdown = np.concatenate(drawdown_parts)  # [runs, P]
    fan["trade"] = (columns + 1).tolist()
    for q, row in zip(PERCENTILES, np.percentile(equity, PERCENTILES, axis=0), strict=True):
        fan[f"p{q}"] = _rounded(row)
    fan["drawdown_p50"] = _rounded(np.percentile(drawdown, 50, axis=0))
    fan["drawdown_p95"] = _rounded(np.percentile(drawdown, 95, axis=0))
    fan["paths"] = [_rounded(path) for path in equity[:paths]]
    return fan


def _why(decision: np.void) -> dict[str, Any]:
    """One decision's rationale as JSON: per-action visits, Q, prior; σ; root values."""
    return {
        "action": ACTION_NAMES[int(decision["action"])],
        "visits": [int(v) for v in decision["visits"]],
        "q": _rounded(decision["q"]),
        "prior": _rounded(decision["prior"], 3),
        "sigma": _rounded(decision["sigma"], 3),
        "value": _rounded(np.array([decision["value"]]))[0],
        "network_value": _rounded(np.array([decision["network_value"]]))[0],
    }


def drawn_choice(starts: np.ndarray, trades: np.ndarray, count: int = DRAWN_SESSIONS) -> list[int]:
    """Start rows of the sessions to draw: worst, median and best by net pips among those with
    trades (fewer when fewer have any; the first session when none has), in time order."""
    starts = np.sort(np.asarray(starts, dtype=np.int64))
    if starts.size == 0:
        return []
    traded, index = np.unique(np.asarray(trades["session"], dtype=np.int64), return_inverse=True)
    if traded.size == 0:
        return [int(starts[0])]
    pnl = np.bincount(index, weights=np.asarray(trades["pips"], np.float64))  # [U]
    order = np.argsort(pnl, kind="stable")  # worst … best
    picks = np.round(np.linspace(0, order.size - 1, min(count, order.size))).astype(np.int64)
    return sorted({int(traded[order[p]]) for p in picks})


def drawn_sessions(
    market: Market, starts: np.ndarray, trades: np.ndarray, acted: np.ndarray | None
) -> list[dict[str, Any]]:
    """The sessions `drawn_choice` picks: candles, trades, and each entry's and exit's why."""
    length = int(market.session_bars)
    decimals = instrument(market.instrument).precision
    by_place: dict[tuple[int, int], np.void] = {}
    if acted is not None:
        for decision in acted:
            by_place[(int(decision["session"]), int(decision["row"]))] = decision
    out = []
    for start in drawn_choice(starts, trades):
        rows = slice(start, start + length)
        mine = trades[np.asarray(trades["session"]) == start]
        mine = mine[np.argsort(mine["entry_row"], kind="stable")]
        drawn_trades = []
        for trade in mine:
            reason = int(trade["exit_reason"])
            entry = by_place.get((start, int(trade["entry_row"])))
            exit_ = by_place.get((start, int(trade["exit_row"]))) if reason == EXIT_AGENT else None
            drawn_trades.append(
                {
                    "side": int(trade["side"]),
                    "entry_ts": int(trade["entry_ts"]),
                    "exit_ts": int(trade["exit_ts"]),
                    "entry_price": round(float(trade["entry_price"]), decimals),
                    "exit_price": round(float(trade["exit_price"]), decimals),
                    "pips": round(float(trade["pips"]), PIPS_DECIMALS),
                    "bars_held": int(trade["bars_held"]),
                    "exit_reason": EXIT_REASON_NAMES[reason],
                    "entry_why": None if entry is None else _why(entry),
                    "exit_why": None if exit_ is None else _why(exit_),
                }
            )
        out.append(
            {
                "start_row": int(start),
                "pnl_pips": round(float(np.sum(mine["pips"])), PIPS_DECIMALS),
                "candles": {
                    "ts": [int(t) for t in market.ts[rows]],
                    "open": _rounded(market.open[rows], decimals),
                    "high": _rounded(market.high[rows], decimals),
                    "low": _rounded(market.low[rows], decimals),
                    "close": _rounded(market.close[rows], decimals),
                },
                "trades": drawn_trades,
            }
        )
    return out


def charts_report(
    market: Market,
    starts: np.ndarray,
    trades: np.ndarray,
    acted: np.ndarray | None,
    *,
    runs: int,
    seed: int,
    block_size: int,
) -> dict[str, Any]:
    """The report's `charts` section (module docstring); `runs`/`seed`/`block_size` as the
    report's bootstrap."""
    pips = np.asarray(trades["pips"], dtype=np.float64)  # [K] the report's trade order
    return {
        "trade_pips": _rounded(pips),
        "equity_fan": equity_fan(pips, runs, seed, block_size),
        "sessions": drawn_sessions(market, starts, trades, acted),
    }
