"""Baselines on the agent's own sessions: random-entry traders, a moving-average crossover, and
buy-and-hold. An agent worth promoting should beat all three on the same bars and costs.

Random-entry traders differ from the agent only in *when* they enter and *which way*. Each one
makes exactly the agent's trades per session, each held for the agent's *planned* holding (shuffled
within the session) and, by `sides`: "agent", the agent's side mix (the agent's sides shuffled
over all its trades), or "fair_coin", each trade's side drawn ±1 with probability 1/2. Against
the first the agent's rank measures timing alone (a side bet on the period's drift is given to
the random traders too); against the second it also credits the choice of side, so an agent that
only sells in a falling period ranks high there and middling against the first. With one seed
both place the same trades at the same rows; only the sides differ.

Planned, not realised, holding. A trade the agent closed (or the session end closed) was planned
for the bars it was held. A stopped trade was planned for at least the bars it lasted (the stop
fills during a bar, before the decision at its close), and by how much more is unknown: it is
drawn, per random trader, from the Kaplan–Meier estimate of the agent's planned holding (its
closes are events; its stops and session ends are censored) conditioned on lasting at least as
long (hold to the session end when the agent never closed a trade that long). A random trader
then faces the stop itself over its planned bars. Copying the realised holding instead and
applying the stop again cuts stopped trades twice: random traders spent ~0.74× the agent's bars
in the market, and with a 10-pip stop on a market drifting 1 pip a bar a third of no-skill
agents ranked above the 95th percentile (KS √n·D = 8.8); matched on the planned holding, the
ratio is ~1.0 and the ranks are uniform on flat and moderately drifting markets
(`tests/unit/test_baseline_uniformity.py`; a small tilt, √n·D ≈ 1.8, remains on that extreme
drift). With the stop off, planned = realised and nothing is drawn.

Placement. In a session of L rows with m trades of realised holding times s_1..s_m (bars), the
F = L − 1 − Σs free decision bars are spread before the trades by m independent uniform draws
from 0..F, sorted: trade j enters s_j free bars plus the earlier trades' realised holding times
after the session start, so slots never overlap and the last ends by the session's final row. A
trade holds its planned bars from its slot's start, unless its stop fills first; one whose plan
outlasts its slot (only possible for an imputed plan) runs on past it, to the session's last row
at most, so its time in the market matches the agent's rather than being cut to the slot (a
random trader may then hold two trades at once; waiting for the first instead tilted the ranks
more in a simulation).
A trade is priced like the env prices it (`micro.env`): entry at the close of its entry row
paying spread + commission + slippage, exit at the close `h` rows later (or at the session's
last row) paying slippage, or earlier at the stop-loss (at the stop, or at the open of a bar that
gapped past it), with the env's own fill functions (`micro.env.fills`). A parity test holds this
pricing equal to `TradingEnv` replaying the same trades.

The moving-average crossover (long when the fast SMA of closes is above the slow one, short when
below; a flip closes at once and re-enters on the next bar) and buy-and-hold (long at each
session's first decision, held to the session end unless stopped) are played by `run_sessions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from micro.config import Config
from micro.env.actions import BUY, CLOSE, FLAT, HOLD, SELL
from micro.env.costs import costs_for
from micro.env.fills import round_trip_pips, stop_fill, stop_level
from micro.env.trades import EXIT_AGENT, EXIT_STOP_LOSS
from micro.env.trading import Observation, run_sessions
from micro.validation.metrics import covered_days, trade_metrics
from micro.validation.montecarlo import percentiles

if TYPE_CHECKING:
    from micro.data.market import Market

SIDES = ("agent", "fair_coin")  # random traders' sides: the agent's shuffled, or a fair coin
HOLDING = "planned"  # random traders hold the agent's planned holding (module docstring)


@dataclass(frozen=True)
class RandomTraders:
    """R random-entry traders of N trades each (planned placement and what it earned)."""

    entry_rows: np.ndarray  # [R, N] int64 decision row of each entry
    slot_bars: np.ndarray  # [R, N] int64 the agent's realised holding whose slot the trade takes
    holding_bars: np.ndarray  # [R, N] int64 planned bars held (the agent's plan, shuffled)
    sides: np.ndarray  # [R, N] int8 +1 long, −1 short (the agent's shuffled, or fair coins)
    sessions: np.ndarray  # [N] int64 session start row of trade j (the same for every trader)
    pips: np.ndarray  # [R, N] float64 net of costs
    bars_held: np.ndarray  # [R, N] int64 realised (shorter than planned when stopped)
    imputed: int  # agent trades whose plan was drawn (stopped ones; 0 with the stop off)


@njit(cache=True)
def _price_trades(
    entry_rows: np.ndarray,  # [R, N] int64
    holding: np.ndarray,  # [R, N] int64 planned bars
    sides: np.ndarray,  # [R, N] int8
    last_rows: np.ndarray,  # [N] int64 last row of trade j's session
    open_: np.ndarray,  # [T] float64 mid
    high: np.ndarray,  # [T] float64 mid
    low: np.ndarray,  # [T] float64 mid
    close: np.ndarray,  # [T] float64 mid
    pip: float,
    entry_cost: float,  # pips
    exit_cost: float,  # pips
    stop_pips: float,
    use_stop: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """[R, N] net pips and [R, N] realised bars of scripted trades, with the env's stop rule."""
    runs, n = entry_rows.shape
    pips = np.empty((runs, n))
    bars = np.empty((runs, n), dtype=np.int64)
    for r in range(runs):
        for j in range(n):
            e = entry_rows[r, j]
            s = sides[r, j]
            entry = close[e]
            stop = stop_level(s, entry, stop_pips, pip)
            exit_row = min(e + holding[r, j], last_rows[j])
            exit_price = close[exit_row]
            for t in range(e + 1, exit_row + 1):
                if not use_stop:
                    break
                fill = stop_fill(s, stop, open_[t], high[t], low[t], pip)
                if not np.isnan(fill):
                    exit_row, exit_price = t, fill
                    break
            pips[r, j] = round_trip_pips(s, entry, exit_price, pip, entry_cost, exit_cost)
            bars[r, j] = exit_row - e
    return pips, bars


def planned_holding_survival(
    bars: np.ndarray, closed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Kaplan–Meier estimate of a planned holding H from trades held `bars` ([N] int).

    A trade `closed` ([N] bool) by the agent was planned for exactly its bars (an event); any
    other was planned for at least its bars, H ≥ bars, i.e. censored at bars − 1. Returns the
    event times [K] (ascending bars), the probability mass at each [K], and the mass beyond the
    last event (plans longer than any the agent closed; 1.0 when it closed none).
    """
    bars = np.asarray(bars, dtype=np.int64)
    closed = np.asarray(closed, dtype=bool)
    times, events = np.unique(bars[closed], return_counts=True)  # [K], [K]
    if times.size == 0:
        return times, np.zeros(0), 1.0
    done = np.sort(bars[closed])
    censored = np.sort(bars[~closed] - 1)  # H > bars − 1
    at_risk = (done.size - np.searchsorted(done, times, "left")) + (
        censored.size - np.searchsorted(censored, times, "left")
    )  # [K] trades whose plan is known to be ≥ t
    survival = np.cumprod(1.0 - events / at_risk)  # [K] P(H > t_k)
    mass = -np.diff(np.r_[1.0, survival])  # [K]
    return times, mass, float(survival[-1])


def draw_planned_holding(
    at_least: np.ndarray,  # [...] int64 bars the plan lasted at least
    times: np.ndarray,  # [K] int64 event times of `planned_holding_survival`
    mass: np.ndarray,  # [K]
    beyond: int,  # the plan drawn for the mass beyond the last event
    uniforms: np.ndarray,  # [...] U(0, 1)
) -> np.ndarray:
    """[...] int64 plans H drawn from the survival estimate given H ≥ `at_least` (inverse CDF)."""
    if times.size == 0:
        never: np.ndarray = np.maximum(np.full(np.shape(at_least), beyond, np.int64), at_least)
        return never
    cdf = np.cumsum(mass)  # [K] P(H ≤ t_k)
    if cdf[-1] > 1.0 - 1e-12:  # no mass beyond the last event: float noise must not make one
        cdf[-1] = 1.0
    first = np.searchsorted(times, at_least, "left")  # first event time ≥ at_least
    below = np.where(first > 0, cdf[np.maximum(first - 1, 0)], 0.0)
    target = below + uniforms * (1.0 - below)  # uniform over the mass at H ≥ at_least
    k = np.maximum(np.searchsorted(cdf, target, "right"), first)
    plan = np.where(k < times.size, times[np.minimum(k, times.size - 1)], beyond)
    drawn: np.ndarray = np.maximum(plan.astype(np.int64), at_least)
    return drawn


def random_traders(
    market: Market,
    config: Config,
    starts: np.ndarray,
    agent_trades: np.ndarray,
    runs: int = 1000,
    seed: int = 12345,
    sides: str = "agent",
) -> RandomTraders:
    """`runs` random-entry traders matched to the agent's trades on the sessions `starts`.

    Each holds the agent's planned holding (module docstring). `sides`: "agent" (the agent's
    sides, shuffled) or "fair_coin" (each side ±1 at 1/2).
    """
    if sides not in SIDES:
        raise ValueError(f"sides {sides!r}: expected one of {SIDES}")
    starts = np.sort(np.asarray(starts, dtype=np.int64))  # [S]
    length = int(market.session_bars)
    order = np.lexsort((agent_trades["entry_row"], agent_trades["session"]))
    trades = agent_trades[order]
    n = trades.size
    session = np.asarray(trades["session"], dtype=np.int64)  # [N]
    where = np.searchsorted(starts, session)  # [N] index of each trade's session in `starts`
    known = np.isin(session, starts)
    if not known.all():
        raise ValueError(
            f"agent_trades: session {session[~known][0]} is not in `starts`; pass the sessions "
            "the agent played"
        )
    hold = np.asarray(trades["bars_held"], dtype=np.int64)  # [N] realised
    if n and hold.min() < 1:
        raise ValueError("agent_trades holds a trade of fewer than 1 bar")
    used = np.bincount(where, weights=hold, minlength=starts.size)  # [S] bars
    free = (length - 1) - used.astype(np.int64)  # [S] free decision bars
    if np.any(free < 0):
        raise ValueError(
            f"agent_trades hold more than the {length - 1} bars of a session: they overlap"
        )
    reason = np.asarray(trades["exit_reason"], dtype=np.int64)  # [N]
    stopped = reason == EXIT_STOP_LOSS  # [N] plans known only to be ≥ the bars held
    rng = np.random.default_rng(seed)
    first_of = np.searchsorted(where, where)  # [N] index of the session's first trade
    shuffle = np.argsort(where[None, :] + rng.random((runs, n)), axis=1)  # [R, N] within session
    slots = hold[shuffle]  # [R, N]
    side_draws = rng.random((runs, n))  # [R, N] the same draws for both kinds: same placement
    if sides == "agent":
        side = np.asarray(trades["side"], dtype=np.int8)[np.argsort(side_draws, axis=1)]
    else:
        side = np.where(side_draws < 0.5, 1, -1).astype(np.int8)
    gaps = np.floor(rng.random((runs, n)) * (free[where] + 1)[None, :]).astype(np.int64)
    span = length + 1  # > any gap, so sorting keys keeps the sessions in order
    gaps = np.sort(where[None, :] * span + gaps, axis=1) - where[None, :] * span  # [R, N]
    before = np.cumsum(slots, axis=1) - slots  # [R, N] bars of earlier slots (all sessions)
    before -= before[:, first_of]  # only this session's
    entry_rows = starts[where][None, :] + gaps + before  # [R, N]
    plans = np.broadcast_to(hold, (runs, n)).copy()  # [R, N] planned = realised unless stopped
    if stopped.any():
        times, mass, _ = planned_holding_survival(hold, reason == EXIT_AGENT)
        cut = np.flatnonzero(stopped)
        drawn = draw_planned_holding(
            np.broadcast_to(hold[cut], (runs, cut.size)), times, mass, length,
            rng.random((runs, cut.size)),
        )  # fmt: skip
        plans[:, cut] = drawn
    holding = np.take_along_axis(plans, shuffle, axis=1)  # [R, N] each slot's plan
    costs = costs_for(config, market.instrument)
    pips, bars = _price_trades(
        entry_rows, holding, side, session + (length - 1),
        np.ascontiguousarray(market.open, dtype=np.float64),
        np.ascontiguousarray(market.high, dtype=np.float64),
        np.ascontiguousarray(market.low, dtype=np.float64),
        np.ascontiguousarray(market.close, dtype=np.float64),
        float(market.pip), costs.entry_pips, costs.exit_pips,
        float(config.risk.stop_loss_pips), bool(config.env.use_stop_loss),
    )  # fmt: skip
    return RandomTraders(entry_rows, slots, holding, side, session, pips, bars, int(stopped.sum()))


def percentile_rank(value: float, population: np.ndarray) -> float:
    """Percent of `population` below `value`, ties counted half (0 … 100)."""
    below = np.count_nonzero(population < value)
    ties = np.count_nonzero(population == value)
    return float(100.0 * (below + 0.5 * ties) / population.size)


def cumulative_session_band(
    pips: np.ndarray,  # [R, N] each trader's trades, in session order
    sessions: np.ndarray,  # [N] int64 session start row of trade j, ascending
    starts: np.ndarray,  # [S] int64 session start rows
) -> dict[str, list[float]]:
    """Percentiles 5/50/95 over the R traders of their cumulative pips at each session's end
    ([S] each, sessions in time order, rounded to 0.01): the band the report draws."""
    starts = np.sort(np.asarray(starts, dtype=np.int64))
    if pips.size == 0:  # no trades: every trader is at 0 after every session
        return {f"p{q}": [0.0] * starts.size for q in (5, 50, 95)}
    where = np.searchsorted(starts, np.asarray(sessions, dtype=np.int64))  # [N] ascending
    last = np.searchsorted(where, np.arange(starts.size), "right") - 1  # [S] last trade so far
    cumulative = np.cumsum(pips, axis=1)  # [R, N]
    at = np.where(last[None, :] >= 0, cumulative[:, np.maximum(last, 0)], 0.0)  # [R, S]
    rows = np.percentile(at, (5, 50, 95), axis=0)  # [3, S]
    return {
        f"p{q}": [round(float(v), 2) for v in row] for q, row in zip((5, 50, 95), rows, strict=True)
    }


def random_entry_percentile(
    market: Market,
    config: Config,
    starts: np.ndarray,
    agent_trades: np.ndarray,
    runs: int = 1000,
    seed: int = 12345,
    sides: str = "agent",
) -> dict[str, Any]:
    """The agent's percentile among `runs` random-entry traders, by expectancy (JSON-able).

    Also the random traders' expectancy and total-pips percentiles 5/25/50/75/95. Total pips
    rank the same as expectancy (every trader makes the agent's N trades). `sides`: as
    `random_traders`. `holding` says what the traders are matched on ("planned": the agent's
    planned holding), `imputed_plans` how many of the agent's trades (the stopped ones) had their
    plan drawn, and `time_in_market_ratio` the random traders' mean bars in the market over the
    agent's (~1 when matched; it was ~0.7 when the stop cut the realised holding a second time).
    `cumulative_session_pips`: the traders' cumulative pips after each session (percentiles
    5/50/95, `cumulative_session_band`), the band the HTML report draws the agent against.
    """
    if sides not in SIDES:
        raise ValueError(f"sides {sides!r}: expected one of {SIDES}")
    n = int(agent_trades.size)
    report: dict[str, Any] = {
        "runs": int(runs), "seed": int(seed), "trades": n, "sides": sides, "holding": HOLDING,
    }  # fmt: skip
    if n == 0:
        report.update(
            agent_expectancy_pips=None, agent_total_pips=0.0, agent_percentile=None,
            expectancy_pips=percentiles(np.zeros(0)), total_pips=percentiles(np.zeros(0)),
            imputed_plans=0, agent_bars_in_market=0, time_in_market_ratio=None,
            cumulative_session_pips=cumulative_session_band(np.zeros((0, 0)), np.zeros(0), starts),
        )  # fmt: skip
        return report
    traders = random_traders(market, config, starts, agent_trades, runs, seed, sides)
    expectancy = traders.pips.mean(axis=1)  # [R]
    agent = float(np.mean(agent_trades["pips"]))
    agent_bars = int(np.sum(agent_trades["bars_held"]))
    report.update(
        agent_expectancy_pips=agent,
        agent_total_pips=float(np.sum(agent_trades["pips"])),
        agent_percentile=percentile_rank(agent, expectancy),
        expectancy_pips=percentiles(expectancy),
        total_pips=percentiles(traders.pips.sum(axis=1)),
        imputed_plans=traders.imputed,
        agent_bars_in_market=agent_bars,
        time_in_market_ratio=float(np.mean(traders.bars_held.sum(axis=1)) / agent_bars),
        cumulative_session_pips=cumulative_session_band(traders.pips, traders.sessions, starts),
    )
    return report


def simple_moving_average(close: np.ndarray, bars: int) -> np.ndarray:
    """[T] mean of the `bars` closes ending at each row; NaN before `bars` closes exist."""
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] >= bars:
        window = np.lib.stride_tricks.sliding_window_view(close, bars)  # [T − bars + 1, bars]
        out[bars - 1 :] = window.mean(axis=1)
    return out


def moving_average_crossover(
    market: Market, config: Config, starts: np.ndarray, fast: int = 10, slow: int = 60
) -> np.ndarray:
    """Trades ([K] TRADE_DTYPE) of the fast/slow SMA crossover on the sessions `starts`."""
    if not 1 <= fast < slow:
        raise ValueError(f"moving-average crossover needs 1 <= fast < slow, got {fast}/{slow}")
    close = np.asarray(market.close, dtype=np.float64)
    trend = np.sign(simple_moving_average(close, fast) - simple_moving_average(close, slow))
    trend = np.nan_to_num(trend, nan=0.0).astype(np.int8)  # [T] +1 up, −1 down, 0 no signal

    def policy(observation: Observation) -> np.ndarray:
        want = trend[observation.rows]  # [B]
        side = observation.side
        action = np.full(side.shape, HOLD, dtype=np.int64)
        action[(side == FLAT) & (want > 0)] = BUY
        action[(side == FLAT) & (want < 0)] = SELL
        action[(side != FLAT) & (want == -side)] = CLOSE
        legal = observation.legal[np.arange(side.size), action]
        return np.where(legal, action, HOLD)

    return run_sessions(market, config, np.asarray(starts, dtype=np.int64), policy)


def buy_and_hold(market: Market, config: Config, starts: np.ndarray) -> np.ndarray:
    """Trades ([K] TRADE_DTYPE) of going long at each session's first decision and holding."""
    first = int(market.session_bars) - 1  # steps_left at the first decision

    def policy(observation: Observation) -> np.ndarray:
        enter = (observation.side == FLAT) & (observation.steps_left == first)
        return np.where(enter, BUY, HOLD).astype(np.int64)

    return run_sessions(market, config, np.asarray(starts, dtype=np.int64), policy)


def baselines_report(
    market: Market,
    config: Config,
    starts: np.ndarray,
    agent_trades: np.ndarray,
    *,
    runs: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """All baselines on `starts`: both random-entry rankings and the two rules' metrics.

    `random_entry` gives the random traders the agent's sides, `random_entry_fair_coin` a fair
    coin's (same shape, same seed, same placement). Runs, seed and the moving averages come from
    `config.validation` unless runs/seed are given.
    """
    v = config.validation
    fast, slow = v.ma_fast_bars, v.ma_slow_bars
    starts = np.asarray(starts, dtype=np.int64)
    ordered = np.sort(starts)  # [S]
    days = covered_days(market.ts, starts, int(market.session_bars))

    def metrics(trades: np.ndarray) -> dict[str, Any]:
        out = trade_metrics(
            trades,
            stop_loss_pips=config.risk.stop_loss_pips,
            account_pips=v.account_pips,
            sessions=int(starts.size),
            decisions_per_session=int(market.session_bars) - 1,
            session_days=float(days.size),
        )
        del out["equity_curve"]  # the sampled curve is enough for a baseline
        where = np.searchsorted(ordered, np.asarray(trades["session"], dtype=np.int64))
        pnl = np.bincount(where, weights=trades["pips"], minlength=ordered.size)  # [S]
        out["session_pnl_pips"] = [round(float(v), 2) for v in pnl]  # sessions in time order
        return out

    runs = v.random_baselines if runs is None else runs
    seed = v.seed if seed is None else seed
    return {
        "random_entry": random_entry_percentile(
            market, config, starts, agent_trades, runs=runs, seed=seed, sides="agent"
        ),
        "random_entry_fair_coin": random_entry_percentile(
            market, config, starts, agent_trades, runs=runs, seed=seed, sides="fair_coin"
        ),
        "moving_average_crossover": {
            "fast_bars": fast,
            "slow_bars": slow,
            **metrics(moving_average_crossover(market, config, starts, fast, slow)),
        },
        "buy_and_hold": metrics(buy_and_hold(market, config, starts)),
    }
