"""The batched trading env: B sessions of one market stepped together, one numba call per step.

Semantics (pinned by tests/unit/test_env.py on hand-computed cases):

- A session is L = `market.session_bars` consecutive rows starting at `start`. The agent sees the
  close c_t of row t and acts at that close, for t = start .. start+L−2 (L−1 decisions); then the
  market moves to row t+1. After the decision at row start+L−2 the market moves to the last row
  start+L−1, any open position is closed at its close (exit_reason 2), and the session is done
  (a true terminal: no bootstrap beyond it).
- Actions (`micro.env.actions`): BUY / SELL open one unit long / short at c_t, CLOSE exits at
  c_t, HOLD keeps the position. One unit, net, no hedging. An illegal action for the current
  side raises ValueError: the agent must mask them. Envs that are done ignore their actions (send
  HOLD) and stay frozen, reward 0, until `reset_envs` restarts them.
- Costs (`micro.env.costs`, pips): entry pays spread + commission + slippage, exit pays slippage.
  Pips = price difference / pip, signed by the side: a short on a JPY pair from 150.000 to
  149.950 makes +5 pips gross.
- Stop-loss (`env.use_stop_loss`, distance `risk.stop_loss_pips`): every entry carries a stop at
  entry − side × distance, like the order the live trader sends. If during bar t+1 the low (long)
  or high (short) reaches the stop, the position closes at the stop price, or at bar t+1's open
  when the bar opened beyond the stop (a gap); exit_reason 1.
- Reward `mtm`: side × (p_{t+1} − c_t) / pip for a position held over bar t+1 (p_{t+1} is the
  close, or the stop fill), minus the costs paid in this step. The rewards of a round trip sum
  exactly to its net pips. Reward `amddp1`: 0 except on the step that closes a trade, which gets
  the trade's net pips − `env.drawdown_penalty` × its max drawdown (pips, as feature 4 of
  `micro.env.position`, including the mark at the exit fill). Rewards are float32 pips.
- The observation after a step is at row t+1: position features (`micro.env.position`), the
  legality mask (HOLD only for done envs), the side and the decisions left. `outcome` of a step is
  `market.outcome[t]`, the chance label of the move t -> t+1 the step just took.
- Trades closed in a step come back in `StepResult.trades` (`micro.env.trades`), in env order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from micro.config import Config
from micro.env.actions import ACTION_NAMES, HOLD, NUM_ACTIONS, legal_mask
from micro.env.costs import Costs, costs_for
from micro.env.kernels import REWARD_AMDDP1, REWARD_MTM, reset_kernel, step_kernel
from micro.env.position import NUM_STATIC, write_static
from micro.env.trades import EXIT_SESSION_END, TRADE_DTYPE, concatenate_trades

if TYPE_CHECKING:
    from micro.data.market import Market

REWARD_KINDS = {"mtm": REWARD_MTM, "amddp1": REWARD_AMDDP1}
SIDE_NAMES = {-1: "short", 0: "flat", 1: "long"}


@dataclass(frozen=True)
class Observation:
    """What the agent sees of each env at its current decision row."""

    rows: np.ndarray  # [B] int64 current decision row t (windows via market.windows(rows))
    static: np.ndarray  # [B, 6] float32 position features
    legal: np.ndarray  # [B, 4] bool
    side: np.ndarray  # [B] int8
    steps_left: np.ndarray  # [B] int32 decisions left in the session including this one


@dataclass(frozen=True)
class StepResult:
    """What one step returns: the new observation, rewards, terminals, outcomes and trades."""

    observation: Observation  # after the step (for done envs: their terminal observation)
    reward: np.ndarray  # [B] float32 pips
    done: np.ndarray  # [B] bool
    outcome: np.ndarray  # [B] int8 chance outcome of the step just taken (-1: env was done)
    trades: np.ndarray  # [K] TRADE_DTYPE closed during this step (any env)


class TradingEnv:
    """B sessions of `market` traded together under `config`'s costs, stop-loss and reward."""

    def __init__(self, market: Market, config: Config, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.market = market
        self.config = config
        self.batch_size = batch_size
        self.session_bars = int(market.session_bars)
        self.pip = float(market.pip)
        self.costs: Costs = costs_for(config, market.instrument)
        self.stop_loss_pips = float(config.risk.stop_loss_pips)
        self.use_stop_loss = bool(config.env.use_stop_loss)
        self.reward_kind = REWARD_KINDS[config.env.reward]
        self.drawdown_penalty = float(config.env.drawdown_penalty)
        self._open = np.ascontiguousarray(market.open, dtype=np.float64)  # [T]
        self._high = np.ascontiguousarray(market.high, dtype=np.float64)  # [T]
        self._low = np.ascontiguousarray(market.low, dtype=np.float64)  # [T]
        self._close = np.ascontiguousarray(market.close, dtype=np.float64)  # [T]
        self._ts = np.ascontiguousarray(market.ts, dtype=np.int64)  # [T]
        self._outcome = np.ascontiguousarray(market.outcome, dtype=np.int8)  # [T]
        b = batch_size
        self._start = np.zeros(b, dtype=np.int64)
        self._row = np.zeros(b, dtype=np.int64)
        self._done = np.ones(b, dtype=bool)  # nothing to step until reset
        self._side = np.zeros(b, dtype=np.int8)
        self._entry_row = np.full(b, -1, dtype=np.int64)
        self._entry_price = np.full(b, np.nan)
        self._stop_price = np.full(b, np.nan)
        self._unrealised = np.zeros(b)  # pips net of entry costs
        self._peak = np.zeros(b)  # pips
        self._max_drawdown = np.zeros(b)  # pips
        self._accumulated = np.zeros(b)  # pips
        self._mae = np.zeros(b)  # pips, gross
        self._static = np.zeros((b, NUM_STATIC), dtype=np.float32)
        self._reward = np.zeros(b, dtype=np.float32)
        self._step_outcome = np.zeros(b, dtype=np.int8)
        self._trades = np.zeros(b, dtype=TRADE_DTYPE)  # at most one closed trade per env per step

    def reset(self, session_starts: np.ndarray) -> Observation:
        """Start a new session in every env: [B] start rows."""
        starts = np.asarray(session_starts, dtype=np.int64)
        if starts.shape != (self.batch_size,):
            raise ValueError(f"reset needs {self.batch_size} session starts, got {starts.shape}")
        return self.reset_envs(np.arange(self.batch_size), starts)

    def reset_envs(self, env_ids: np.ndarray, session_starts: np.ndarray) -> Observation:
        """Start new sessions in the envs `env_ids` only ([R] ids, [R] start rows)."""
        ids = np.asarray(env_ids, dtype=np.int64)
        starts = np.asarray(session_starts, dtype=np.int64)
        if ids.ndim != 1 or starts.shape != ids.shape:
            raise ValueError(f"reset_envs: env_ids {ids.shape} and starts {starts.shape} differ")
        if ids.size and (ids.min() < 0 or ids.max() >= self.batch_size):
            raise ValueError(f"reset_envs: env ids must lie in [0, {self.batch_size})")
        if np.unique(ids).size != ids.size:
            raise ValueError("reset_envs: an env id appears twice")
        last = self._close.shape[0] - self.session_bars
        bad = (starts < 0) | (starts > last)
        if bad.any():
            raise ValueError(
                f"reset_envs: session start {starts[bad][0]} leaves no room for "
                f"{self.session_bars} bars in a market of {self._close.shape[0]} rows"
            )
        reset_kernel(
            ids, starts, self._start, self._row, self._done, self._side, self._entry_row,
            self._entry_price, self._stop_price, self._unrealised, self._peak,
            self._max_drawdown, self._accumulated, self._mae, self._static,
        )  # fmt: skip
        return self.observe()

    def observe(self) -> Observation:
        """The current observation of every env (copies: later steps do not change it)."""
        legal = legal_mask(self._side)
        legal[self._done] = False
        legal[self._done, HOLD] = True
        steps_left = self._start + (self.session_bars - 1) - self._row
        return Observation(
            rows=self._row.copy(),
            static=self._static.copy(),
            legal=legal,
            side=self._side.copy(),
            steps_left=steps_left.astype(np.int32),
        )

    def step(self, actions: np.ndarray) -> StepResult:
        """Apply [B] int64 actions at the current rows and move every live env one bar on."""
        actions = np.asarray(actions)
        if actions.shape != (self.batch_size,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"step needs [{self.batch_size}] integer actions, got {actions.dtype} "
                f"{actions.shape}"
            )
        actions = actions.astype(np.int64, copy=False)
        self._check_legal(actions)
        n = step_kernel(
            actions, self._open, self._high, self._low, self._close, self._ts, self._outcome,
            self.pip, self.costs.entry_pips, self.costs.exit_pips, self.stop_loss_pips,
            self.use_stop_loss, self.reward_kind, self.drawdown_penalty, self.session_bars,
            self._start, self._row, self._done, self._side, self._entry_row, self._entry_price,
            self._stop_price, self._unrealised, self._peak, self._max_drawdown,
            self._accumulated, self._mae, self._static, self._reward, self._step_outcome,
            self._trades,
        )  # fmt: skip
        return StepResult(
            observation=self.observe(),
            reward=self._reward.copy(),
            done=self._done.copy(),
            outcome=self._step_outcome.copy(),
            trades=self._trades[:n].copy(),
        )

    def uncut(self, trades: np.ndarray) -> Observation:
        """The current observation as if the session end had not closed any position.

        `trades` are the trades of the step just taken; an env whose position the session end
        closed in it is shown still holding that position at its last row (side, legal actions
        and the position features of its final mark at the last close), every other env as
        `observe` shows it, with the legal actions of its side. What the session's last bar is
        worth to a trader whose market goes on (`train.session_end` bootstrap).
        """
        observation = self.observe()
        side = observation.side
        static = observation.static
        for trade in trades[trades["exit_reason"] == EXIT_SESSION_END]:
            i = int(trade["env"])
            side[i] = trade["side"]
            write_static(
                int(side[i]), self._unrealised[i], int(self._row[i] - self._entry_row[i]),
                self._peak[i], self._max_drawdown[i], self._accumulated[i], static[i],
            )  # fmt: skip
        return Observation(
            rows=observation.rows,
            static=static,
            legal=legal_mask(side),
            side=side,
            steps_left=observation.steps_left,
        )

    def _check_legal(self, actions: np.ndarray) -> None:
        """Raise ValueError naming the first env whose action is illegal for its side."""
        live = ~self._done
        in_range = (actions >= 0) & (actions < NUM_ACTIONS)
        legal = np.zeros(self.batch_size, dtype=bool)
        legal[in_range] = legal_mask(self._side[in_range])[
            np.arange(int(in_range.sum())), actions[in_range]
        ]
        bad = np.flatnonzero(live & ~legal)
        if bad.size:
            i = int(bad[0])
            a = int(actions[i])
            name = ACTION_NAMES[a] if 0 <= a < NUM_ACTIONS else str(a)
            raise ValueError(
                f"env {i}: action {name} is illegal when {SIDE_NAMES[int(self._side[i])]} "
                f"at row {int(self._row[i])} ({bad.size} illegal in this batch); mask actions "
                "with Observation.legal"
            )


def run_sessions(
    market: Market,
    config: Config,
    starts: np.ndarray,
    policy_fn: Callable[[Observation], np.ndarray],
) -> np.ndarray:
    """Play the sessions at `starts` ([B] rows) to their end under `policy_fn`; [K] TRADE_DTYPE."""
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size == 0:
        return concatenate_trades([])
    env = TradingEnv(market, config, starts.size)
    observation = env.reset(starts)
    parts = []
    for _ in range(env.session_bars - 1):
        result = env.step(np.asarray(policy_fn(observation), dtype=np.int64))
        parts.append(result.trades)
        observation = result.observation
    return concatenate_trades(parts)
