"""What a checkpoint's score does not say: does search add anything, and are its heads right?

Three diagnostics of one checkpoint, taken from the greedy scoring pass itself
(`micro.validation.evaluate` records a `DecisionTrace` at every decision) and from two cheap
extra passes over the same sessions:

- Planning gain. The same sessions traded three ways: by the greedy search (the scored run), by
  the raw policy prior without search (argmax of the network's prior over the legal actions, one
  network call per decision), and at random (each decision drawn from the greedy run's own action
  frequencies, counted apart when flat and in a position, over the legal actions; seeded by
  `validation.seed`), so the random trader is about as active as the agent. Each: trades,
  expectancy, total pips, win rate; and what search adds over the prior and over random.
- Calibration of the chance head. At each decision σ of the chosen action's afterstate predicts
  the bar's outcome (`micro.features.outcomes`: DOWN / NEUTRAL / UP against k × the rolling std),
  which the step then reveals. Reported: the multi-class Brier score Σ_c (σ_c − 1[y = c])²
  averaged over decisions (0 perfect, 2 worst), the Brier score of always forecasting the
  sample's own outcome frequencies (the climatology) and the skill 1 − Brier / climatology (> 0:
  better than the base rates), the log loss, and a reliability table per outcome: σ_c cut into
  10 equal bins, each with its decisions, mean predicted probability and observed frequency.
- Value error. The network's value of each root, and the search's root value, against the return
  that followed: G_t = Σ_k γ^k r_{t+k} with the env's reward (`env.reward`, pips) and γ =
  `mcts.discount`: the units the value head is trained on (its n-step targets bootstrap towards
  this). The session's end is what `train.session_end` made it in training: a true terminal
  (the sum runs to it), or a cut (`bootstrap`: the sum runs to the last decision and adds the
  network's value there, as the targets bootstrap through the cut). Reported: mean absolute
  error and bias (predicted − realised) in pips, the mean |G| a value of 0 would miss by, for
  scale, and flat and in-position decisions apart, each with the mean the realised returns
  decode to when a categorical head reads them in h-space (`model.support_mean` h): how much of
  a bias is that decoding's shrinkage of noisy returns rather than the play.
- After the exits. For each trade the agent closed itself, what its side made over the next
  15, 30 and 60 bars (gross pips from the exit's close; only exits with that many bars left in
  the session): mean and standard error, and trades younger than 30 bars at the exit and older
  apart. Above 0 the move went on without the agent (it closes too early); below 0 it got out
  in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from micro.config import Config
from micro.env.actions import NUM_ACTIONS
from micro.env.trades import EXIT_AGENT
from micro.env.trading import Observation, run_sessions
from micro.features.outcomes import DOWN, NEUTRAL, UP
from micro.mcts.search import model_dtype_device, root_legal, to_numpy
from micro.model.inference import SearchModel
from micro.model.support import h_inverse_numpy, h_numpy
from micro.validation.metrics import finite_or_none

if TYPE_CHECKING:
    from micro.data.market import Market

OUTCOME_NAMES = {DOWN: "DOWN", NEUTRAL: "NEUTRAL", UP: "UP"}
RELIABILITY_BINS = 10
AFTER_EXIT_BARS = (15, 30, 60)  # horizons of the after-exit moves
YOUNG_TRADE_BARS = 30  # a trade closed before this many bars held is young
FLAT_ROW, IN_POSITION_ROW = 0, 1  # rows of DecisionTrace.action_counts


@dataclass(frozen=True)
class DecisionTrace:
    """What the greedy pass predicted and then met at each of its D decisions in S sessions."""

    sigma: np.ndarray  # [D, S, 3] float32 σ of the chosen action's afterstate (NaN: unexpanded)
    outcome: np.ndarray  # [D, S] int8 the outcome the bar then had (−1: unknown)
    network_value: np.ndarray  # [D, S] float32 pips, the network's value of the root
    search_value: np.ndarray  # [D, S] float32 pips, the search's value of the root
    reward: np.ndarray  # [D, S] float32 pips, the env's reward of the step
    side: np.ndarray  # [D, S] int8 the position before the decision (0 flat, ±1)
    action_counts: np.ndarray  # [2, 4] int64 actions chosen when flat / in a position


class TraceRecorder:
    """Collects a `DecisionTrace` one decision at a time (a few arrays per bar: cheap)."""

    def __init__(self) -> None:
        self._sigma: list[np.ndarray] = []
        self._outcome: list[np.ndarray] = []
        self._network_value: list[np.ndarray] = []
        self._search_value: list[np.ndarray] = []
        self._reward: list[np.ndarray] = []
        self._side: list[np.ndarray] = []
        self._counts = np.zeros((2, NUM_ACTIONS), dtype=np.int64)

    def record(
        self,
        side: np.ndarray,  # [S] int8 before the decision
        actions: np.ndarray,  # [S] int64
        chance_probs: np.ndarray,  # [S, 4, 3] σ of each root action's afterstate
        network_value: np.ndarray,  # [S] pips
        search_value: np.ndarray,  # [S] pips
        reward: np.ndarray,  # [S] pips of the step the actions took
        outcome: np.ndarray,  # [S] int8 outcome of that step
    ) -> None:
        self._sigma.append(chance_probs[np.arange(actions.size), actions].astype(np.float32))
        self._outcome.append(np.asarray(outcome, dtype=np.int8))
        self._network_value.append(np.asarray(network_value, dtype=np.float32))
        self._search_value.append(np.asarray(search_value, dtype=np.float32))
        self._reward.append(np.asarray(reward, dtype=np.float32))
        self._side.append(np.asarray(side, dtype=np.int8))
        np.add.at(self._counts, (np.where(side == 0, FLAT_ROW, IN_POSITION_ROW), actions), 1)

    def trace(self) -> DecisionTrace:
        def stack(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            return np.stack(parts) if parts else np.zeros(shape, dtype=dtype)

        return DecisionTrace(
            sigma=stack(self._sigma, (0, 0, 3), np.float32),
            outcome=stack(self._outcome, (0, 0), np.int8),
            network_value=stack(self._network_value, (0, 0), np.float32),
            search_value=stack(self._search_value, (0, 0), np.float32),
            reward=stack(self._reward, (0, 0), np.float32),
            side=stack(self._side, (0, 0), np.int8),
            action_counts=self._counts.copy(),
        )


@dataclass(frozen=True)
class Diagnostics:
    """The greedy pass's trace and the same sessions traded without search and at random."""

    trace: DecisionTrace
    prior_trades: np.ndarray  # [K] TRADE_DTYPE, argmax of the policy prior
    random_trades: np.ndarray  # [K] TRADE_DTYPE, the greedy run's action frequencies
    seconds: float  # wall seconds of the two extra passes


def prior_policy(model: SearchModel, market: Market) -> Callable[[Observation], np.ndarray]:
    """A policy that takes the argmax of the network's prior over the legal actions: no search."""

    def policy(observation: Observation) -> np.ndarray:
        window = market.windows(observation.rows)  # [B, W, F]
        legal = root_legal(observation.legal, observation.side)  # [B, 4]
        dtype, device = model_dtype_device(model, window)
        with torch.inference_mode():
            out = model.initial_inference(
                torch.as_tensor(window, dtype=dtype, device=device),
                torch.as_tensor(observation.static, dtype=dtype, device=device),
            )
        logits = np.where(legal, to_numpy(out.policy_logits), -np.inf)  # [B, 4]
        best: np.ndarray = np.argmax(logits, axis=1).astype(np.int64)  # [B]
        return best

    return policy


def frequency_policy(
    action_counts: np.ndarray, rng: np.random.Generator
) -> Callable[[Observation], np.ndarray]:
    """A random policy with `action_counts`' frequencies ([2, 4]: flat, in a position), legal only.

    Where the counts give no legal action any weight (e.g. never in a position), all legal
    actions are equally likely.
    """
    counts = np.asarray(action_counts, dtype=np.float64)

    def policy(observation: Observation) -> np.ndarray:
        legal = root_legal(observation.legal, observation.side)  # [B, 4]
        weights = counts[np.where(observation.side == 0, FLAT_ROW, IN_POSITION_ROW)] * legal
        none = weights.sum(axis=1) <= 0
        weights[none] = legal[none]
        cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)  # [B, 4]
        draws: np.ndarray = rng.random((legal.shape[0], 1))  # [B, 1]
        actions = np.minimum(np.sum(cdf <= draws, axis=1), NUM_ACTIONS - 1)  # [B]
        chosen: np.ndarray = np.where(
            legal[np.arange(actions.size), actions], actions, np.argmax(legal, axis=1)
        ).astype(np.int64)
        return chosen

    return policy


def comparison_passes(
    model: SearchModel,
    market: Market,
    config: Config,
    starts: np.ndarray,
    trace: DecisionTrace,
    seed: int,
) -> Diagnostics:
    """Trade `starts` by the policy prior and at random; bundle them with the greedy `trace`."""
    began = time.perf_counter()
    prior = run_sessions(market, config, starts, prior_policy(model, market))
    rng = np.random.default_rng(seed)
    random = run_sessions(market, config, starts, frequency_policy(trace.action_counts, rng))
    return Diagnostics(trace, prior, random, time.perf_counter() - began)


def _trade_summary(trades: np.ndarray) -> dict[str, Any]:
    pips = np.asarray(trades["pips"], dtype=np.float64)  # [K]
    n = int(pips.size)
    return {
        "trades": n,
        "expectancy_pips": float(pips.mean()) if n else None,
        "total_pips": float(pips.sum()),
        "win_rate": float(np.mean(pips > 0)) if n else None,
    }


def planning_gain(
    search_trades: np.ndarray, prior_trades: np.ndarray, random_trades: np.ndarray
) -> dict[str, Any]:
    """Trades, expectancy, total and win rate of each way of trading, and search's gains."""
    search = _trade_summary(search_trades)
    prior = _trade_summary(prior_trades)
    random = _trade_summary(random_trades)

    def gain(key: str, other: dict[str, Any]) -> float | None:
        if search[key] is None or other[key] is None:
            return None
        return float(search[key] - other[key])

    return {
        "search": search,
        "policy_prior": prior,
        "random": random,
        "search_minus_prior_total_pips": gain("total_pips", prior),
        "search_minus_prior_expectancy_pips": gain("expectancy_pips", prior),
        "search_minus_random_total_pips": gain("total_pips", random),
        "search_minus_random_expectancy_pips": gain("expectancy_pips", random),
    }


def chance_calibration(
    sigma: np.ndarray, outcome: np.ndarray, bins: int = RELIABILITY_BINS
) -> dict[str, Any]:
    """Brier score, climatology, skill, log loss and reliability table of σ ([..., 3]) vs
    the outcomes ([...] int, −1 unknown); decisions with an unknown outcome or no σ are left out.
    """
    probs = np.asarray(sigma, dtype=np.float64).reshape(-1, 3)  # [D, 3]
    labels = np.asarray(outcome, dtype=np.int64).ravel()  # [D]
    keep = (labels >= 0) & np.isfinite(probs).all(axis=1)
    probs, labels = probs[keep], labels[keep]
    n = int(labels.size)
    report: dict[str, Any] = {"decisions": n}
    names = [OUTCOME_NAMES[c] for c in (DOWN, NEUTRAL, UP)]
    if n == 0:
        report.update(
            brier=None, brier_climatology=None, brier_skill=None, log_loss=None,
            observed={k: None for k in names}, predicted={k: None for k in names},
            reliability={k: [] for k in names},
        )  # fmt: skip
        return report
    onehot = np.eye(3)[labels]  # [D, 3]
    base = onehot.mean(axis=0)  # [3] the sample's outcome frequencies
    brier = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    climatology = float(np.mean(np.sum((base[None, :] - onehot) ** 2, axis=1)))
    chosen = np.clip(probs[np.arange(n), labels], 1e-12, 1.0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    reliability: dict[str, list[dict[str, Any]]] = {}
    for c, name in enumerate(names):
        which = np.clip(np.searchsorted(edges, probs[:, c], "right") - 1, 0, bins - 1)  # [D]
        count = np.bincount(which, minlength=bins)
        predicted = np.bincount(which, weights=probs[:, c], minlength=bins)
        observed = np.bincount(which, weights=onehot[:, c], minlength=bins)
        reliability[name] = [
            {
                "bin": [float(edges[b]), float(edges[b + 1])],
                "decisions": int(count[b]),
                "predicted": float(predicted[b] / count[b]),
                "observed": float(observed[b] / count[b]),
            }
            for b in range(bins)
            if count[b]
        ]
    report.update(
        brier=brier,
        brier_climatology=climatology,
        brier_skill=finite_or_none(1.0 - brier / climatology) if climatology > 0 else None,
        log_loss=float(-np.mean(np.log(chosen))),
        observed={name: float(base[c]) for c, name in enumerate(names)},
        predicted={name: float(probs[:, c].mean()) for c, name in enumerate(names)},
        reliability=reliability,
    )
    return report


def discounted_returns(reward: np.ndarray, discount: float) -> np.ndarray:
    """[D, S] G_t = Σ_k γ^k r_{t+k} over the rest of each session (0 after its last step)."""
    rewards = np.asarray(reward, dtype=np.float64)  # [D, S]
    out = np.zeros_like(rewards)
    after = np.zeros(rewards.shape[1:])  # [S]
    for t in range(rewards.shape[0] - 1, -1, -1):
        after = rewards[t] + discount * after
        out[t] = after
    return out


def realised_returns(
    reward: np.ndarray, network_value: np.ndarray, discount: float, session_end: str
) -> np.ndarray:
    """[D, S] what each decision's value is trained towards, as greedy play realised it.

    `terminal`: G_t to the session end (`discounted_returns`). `bootstrap`: the end is a cut, so
    G_t = Σ_{k=t}^{D−2} γ^{k−t} r_k + γ^{D−1−t} v_{D−1}, the rewards to the last decision and then
    the network's value there (the last step's reward is left out: its forced close is no end).
    """
    if session_end == "terminal" or len(reward) == 0:
        return discounted_returns(reward, discount)
    # The last decision's value takes the place of the last reward: G_{D−1} = v_{D−1}.
    return discounted_returns(np.concatenate([reward[:-1], network_value[-1:]]), discount)


def value_error(
    trace: DecisionTrace, discount: float, session_end: str = "terminal"
) -> dict[str, Any]:
    """Mean absolute error and bias (pips) of the network's and the search's root values, and
    the network's flat and in-position decisions apart (module docstring)."""
    realised = realised_returns(trace.reward, trace.network_value, discount, session_end)
    n = int(realised.size)
    report: dict[str, Any] = {
        "decisions": n, "discount": float(discount), "session_end": session_end,
    }  # fmt: skip
    network = trace.network_value.astype(np.float64) - realised  # [D, S]
    search = trace.search_value.astype(np.float64) - realised
    report.update(
        mae_pips=_mean(np.abs(network)),
        bias_pips=_mean(network),
        search_mae_pips=_mean(np.abs(search)),
        search_bias_pips=_mean(search),
        realised_mean_pips=_mean(realised),
        zero_mae_pips=_mean(np.abs(realised)),
    )
    flat = trace.side == 0  # [D, S]
    for name, where in (("flat", flat), ("in_position", ~flat)):
        returns = realised[where]
        report[name] = {
            "decisions": int(returns.size),
            "value_mean_pips": _mean(trace.network_value[where].astype(np.float64)),
            "realised_mean_pips": _mean(returns),
            "bias_pips": _mean(network[where]),
            "realised_h_mean_pips": (
                float(h_inverse_numpy(np.mean(h_numpy(returns)))) if returns.size else None
            ),
        }
    return report


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if values.size else None


def _spread(values: np.ndarray) -> dict[str, Any]:
    """Count, mean and standard error of the mean (None where too few to say)."""
    n = int(values.size)
    stderr = float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else None
    return {"exits": n, "mean_pips": _mean(values), "stderr_pips": stderr}


def after_exit(trades: np.ndarray, market: Market) -> dict[str, Any]:
    """What the side of each trade the agent closed made after the exit (module docstring)."""
    mine = trades[trades["exit_reason"] == EXIT_AGENT]
    close = np.asarray(market.close, dtype=np.float64)
    last_row = mine["session"] + int(market.session_bars) - 1  # [K] each trade's session end
    horizons = []
    for bars in AFTER_EXIT_BARS:
        kept = mine[mine["exit_row"] + bars <= last_row]
        exit_row = kept["exit_row"]
        move = kept["side"] * (close[exit_row + bars] - close[exit_row]) / float(market.pip)
        young = kept["bars_held"] < YOUNG_TRADE_BARS
        horizons.append(
            {
                "bars": bars,
                "all": _spread(move),
                "young": _spread(move[young]),
                "older": _spread(move[~young]),
            }
        )
    return {"agent_exits": int(mine.size), "young_bars": YOUNG_TRADE_BARS, "horizons": horizons}


def diagnostics_report(
    diagnostics: Diagnostics, search_trades: np.ndarray, config: Config, market: Market
) -> dict[str, Any]:
    """The report's `diagnostics` section (JSON-able): planning gain, σ calibration, value
    error, and what the sides made after the agent's exits."""
    trace = diagnostics.trace
    value = value_error(trace, config.mcts.discount, config.train.session_end)
    value["reward"] = config.env.reward
    return {
        "planning_gain": planning_gain(
            search_trades, diagnostics.prior_trades, diagnostics.random_trades
        ),
        "chance_calibration": chance_calibration(trace.sigma, trace.outcome),
        "value_error": value,
        "after_exit": after_exit(search_trades, market),
    }
