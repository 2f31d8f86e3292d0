"""Numba kernels of the batched trading env: one call steps or resets all B envs.

The semantics (decision rows, fills, stop-loss, rewards) are documented in `micro.env.trading`;
the stop and close rules live in `micro.env.fills` and the position arithmetic in
`micro.env.position`, both shared with the live trader, the sim broker and the baselines.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from micro.env.actions import BUY, CLOSE, FLAT, LONG, SELL, SHORT
from micro.env.costs import gross_pips
from micro.env.fills import adverse_price, round_trip_pips, stop_fill, stop_level, worst_excursion
from micro.env.position import mark, unrealised_pips, write_static
from micro.env.trades import EXIT_AGENT, EXIT_SESSION_END, EXIT_STOP_LOSS

REWARD_MTM, REWARD_AMDDP1 = 0, 1
NO_OUTCOME = -1


@njit(cache=True)
def reset_kernel(
    env_ids: np.ndarray,  # [R] int64 envs to restart
    starts: np.ndarray,  # [R] int64 their session start rows
    start: np.ndarray,  # [B] int64 state, written in place from here on
    row: np.ndarray,  # [B] int64
    done: np.ndarray,  # [B] bool
    side: np.ndarray,  # [B] int8
    entry_row: np.ndarray,  # [B] int64
    entry_price: np.ndarray,  # [B] float64
    stop_price: np.ndarray,  # [B] float64
    unrealised: np.ndarray,  # [B] float64 pips
    peak: np.ndarray,  # [B] float64 pips
    max_drawdown: np.ndarray,  # [B] float64 pips
    accumulated: np.ndarray,  # [B] float64 pips
    mae: np.ndarray,  # [B] float64 pips
    static: np.ndarray,  # [B, 6] float32
) -> None:
    """Put the chosen envs flat at the first decision row of their new sessions."""
    for j in range(env_ids.shape[0]):
        i = env_ids[j]
        start[i] = starts[j]
        row[i] = starts[j]
        done[i] = False
        side[i] = FLAT
        entry_row[i] = -1
        entry_price[i] = np.nan
        stop_price[i] = np.nan
        unrealised[i] = 0.0
        peak[i] = 0.0
        max_drawdown[i] = 0.0
        accumulated[i] = 0.0
        mae[i] = 0.0
        static[i, :] = 0.0


@njit(cache=True)
def _record_trade(
    trades: np.ndarray,
    k: int,
    env: int,
    session: int,
    side: int,
    entry_row: int,
    exit_row: int,
    ts: np.ndarray,
    entry_price: float,
    exit_price: float,
    net_pips: float,
    mae: float,
    exit_reason: int,
) -> None:
    """Write one round trip into `trades[k]`."""
    trades[k].env = env
    trades[k].session = session
    trades[k].side = side
    trades[k].entry_row = entry_row
    trades[k].exit_row = exit_row
    trades[k].entry_ts = ts[entry_row]
    trades[k].exit_ts = ts[exit_row]
    trades[k].entry_price = entry_price
    trades[k].exit_price = exit_price
    trades[k].pips = net_pips
    trades[k].bars_held = exit_row - entry_row
    trades[k].mae_pips = mae
    trades[k].exit_reason = exit_reason


@njit(cache=True)
def step_kernel(
    actions: np.ndarray,  # [B] int64, legal for every env that is not done
    open_: np.ndarray,  # [T] float64 mid
    high: np.ndarray,  # [T] float64 mid
    low: np.ndarray,  # [T] float64 mid
    close: np.ndarray,  # [T] float64 mid
    ts: np.ndarray,  # [T] int64 s UTC, bar open time
    outcome: np.ndarray,  # [T] int8 chance outcome of the move t -> t+1
    pip: float,
    entry_cost: float,  # pips paid at entry
    exit_cost: float,  # pips paid at exit
    stop_pips: float,  # stop distance from the entry price (pips)
    use_stop: bool,
    reward_kind: int,  # REWARD_MTM or REWARD_AMDDP1
    drawdown_penalty: float,  # k of amddp1
    session_bars: int,  # L
    start: np.ndarray,  # [B] int64 state, updated in place from here on
    row: np.ndarray,  # [B] int64
    done: np.ndarray,  # [B] bool
    side: np.ndarray,  # [B] int8
    entry_row: np.ndarray,  # [B] int64
    entry_price: np.ndarray,  # [B] float64
    stop_price: np.ndarray,  # [B] float64
    unrealised: np.ndarray,  # [B] float64 pips net of entry costs at the last mark
    peak: np.ndarray,  # [B] float64 pips
    max_drawdown: np.ndarray,  # [B] float64 pips
    accumulated: np.ndarray,  # [B] float64 pips
    mae: np.ndarray,  # [B] float64 pips, gross, ≥ 0
    static: np.ndarray,  # [B, 6] float32 position features at the new row
    reward: np.ndarray,  # [B] float32 out: pips
    step_outcome: np.ndarray,  # [B] int8 out: outcome of the decision row (-1 for done envs)
    trades: np.ndarray,  # [B] TRADE_DTYPE out: trades closed this step, packed from 0
) -> int:
    """Apply one action per env at its decision row and move to the next row; returns #trades."""
    n_trades = 0
    for i in range(actions.shape[0]):
        if done[i]:
            reward[i] = 0.0
            step_outcome[i] = NO_OUTCOME
            continue
        t = row[i]
        c = close[t]
        action = actions[i]
        step_outcome[i] = outcome[t]
        mtm = 0.0  # pips this step, net of the costs paid in it
        closed = False
        closed_pips = 0.0

        # The decision at the close of row t.
        if side[i] == FLAT and (action == BUY or action == SELL):
            s = LONG if action == BUY else SHORT
            side[i] = s
            entry_row[i] = t
            entry_price[i] = c
            stop_price[i] = stop_level(s, c, stop_pips, pip)
            unrealised[i] = -entry_cost
            peak[i] = -entry_cost
            max_drawdown[i] = 0.0
            accumulated[i] = 0.0
            mae[i] = 0.0
            mtm -= entry_cost
        elif side[i] != FLAT and action == CLOSE:
            s = side[i]
            closed_pips = round_trip_pips(s, entry_price[i], c, pip, entry_cost, exit_cost)
            _record_trade(
                trades, n_trades, i, start[i], s, entry_row[i], t, ts,
                entry_price[i], c, closed_pips, mae[i], EXIT_AGENT,
            )  # fmt: skip
            n_trades += 1
            closed = True
            mtm -= exit_cost
            side[i] = FLAT

        # The market moves to row t + 1 with the position held over it.
        t1 = t + 1
        last = start[i] + session_bars - 1
        if side[i] != FLAT:
            s = side[i]
            exit_price = close[t1]
            reason = EXIT_SESSION_END if t1 == last else -1
            adverse = adverse_price(s, high[t1], low[t1])  # worst price seen during the bar
            if use_stop:
                fill = stop_fill(s, stop_price[i], open_[t1], high[t1], low[t1], pip)
                if not np.isnan(fill):
                    exit_price = fill
                    reason = EXIT_STOP_LOSS
                    adverse = fill  # nothing after the fill belongs to the trade
            mae[i] = worst_excursion(mae[i], s, entry_price[i], adverse, pip)
            u = unrealised_pips(s, entry_price[i], exit_price, pip, entry_cost)
            peak[i], max_drawdown[i], accumulated[i] = mark(
                u, unrealised[i], peak[i], max_drawdown[i], accumulated[i]
            )
            unrealised[i] = u
            mtm += gross_pips(s, c, exit_price, pip)
            if reason >= 0:
                closed_pips = round_trip_pips(
                    s, entry_price[i], exit_price, pip, entry_cost, exit_cost
                )
                _record_trade(
                    trades, n_trades, i, start[i], s, entry_row[i], t1, ts,
                    entry_price[i], exit_price, closed_pips, mae[i], reason,
                )  # fmt: skip
                n_trades += 1
                closed = True
                mtm -= exit_cost
                side[i] = FLAT

        row[i] = t1
        done[i] = t1 == last
        if reward_kind == REWARD_MTM:
            reward[i] = mtm
        elif closed:
            reward[i] = closed_pips - drawdown_penalty * max_drawdown[i]
        else:
            reward[i] = 0.0
        write_static(
            side[i], unrealised[i], t1 - entry_row[i], peak[i], max_drawdown[i], accumulated[i],
            static[i],
        )  # fmt: skip
    return n_trades
