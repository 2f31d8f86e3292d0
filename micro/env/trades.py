"""Trade records: one row per round trip, a trade list is a numpy array of `TRADE_DTYPE`.

Fields (prices are mid; pips use the instrument's pip size):

    env          int32    env index in the batch that made the trade
    session      int64    start row of the session the trade belongs to
    side         int8     +1 long, −1 short
    entry_row    int64    row whose close filled the entry
    exit_row     int64    row whose close filled the exit (for a stop: the bar it filled in)
    entry_ts     int64    open time (s UTC) of the entry row's bar
    exit_ts      int64    open time (s UTC) of the exit row's bar
    entry_price  float64
    exit_price   float64  the close, the stop price, or the bar's open when it gapped past the stop
    pips         float64  side × (exit − entry) / pip − entry costs − exit costs
    bars_held    int32    exit_row − entry_row
    mae_pips     float64  maximum adverse excursion, gross, ≥ 0: the worst of side × (price −
                          entry) / pip over the bars held, using each bar's low (long) or high
                          (short), up to the exit fill; 0 when price never went against the trade
    exit_reason  int8     0 agent CLOSE, 1 stop-loss, 2 session end
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXIT_AGENT, EXIT_STOP_LOSS, EXIT_SESSION_END = 0, 1, 2
EXIT_REASON_NAMES = ("agent", "stop_loss", "session_end")

TRADE_DTYPE = np.dtype(
    [
        ("env", np.int32),
        ("session", np.int64),
        ("side", np.int8),
        ("entry_row", np.int64),
        ("exit_row", np.int64),
        ("entry_ts", np.int64),
        ("exit_ts", np.int64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("pips", np.float64),
        ("bars_held", np.int32),
        ("mae_pips", np.float64),
        ("exit_reason", np.int8),
    ]
)


def empty_trades(n: int = 0) -> np.ndarray:
    """A zeroed trade list of length `n` ([n] TRADE_DTYPE)."""
    return np.zeros(n, dtype=TRADE_DTYPE)


def concatenate_trades(parts: list[np.ndarray]) -> np.ndarray:
    """One trade list from many ([K] TRADE_DTYPE); empty when `parts` is."""
    if not parts:
        return empty_trades()
    return np.concatenate([np.asarray(p, dtype=TRADE_DTYPE) for p in parts])


def trade_fields(
    side: int,
    entry_ts: int,
    exit_ts: int,
    entry_price: float,
    exit_price: float,
    pips: float,
    bars_held: int,
    mae_pips: float,
    exit_reason: int,
) -> dict[str, Any]:
    """One round trip as the env records it, JSON-able, without the env's batch and row indices
    (the live trader's trades have none); exit_reason also by name."""
    return {
        "side": int(side),
        "entry_ts": int(entry_ts),
        "exit_ts": int(exit_ts),
        "entry_price": float(entry_price),
        "exit_price": float(exit_price),
        "pips": float(pips),
        "bars_held": int(bars_held),
        "mae_pips": float(mae_pips),
        "exit_reason": int(exit_reason),
        "exit_reason_name": EXIT_REASON_NAMES[exit_reason],
    }


def trade_dicts(trades: np.ndarray) -> list[dict[str, Any]]:
    """The trades as JSON-able dicts (plain ints/floats; exit_reason also by name)."""
    rows = []
    for record in trades:
        row = {name: record[name].item() for name in TRADE_DTYPE.names or ()}
        row["exit_reason_name"] = EXIT_REASON_NAMES[row["exit_reason"]]
        rows.append(row)
    return rows
