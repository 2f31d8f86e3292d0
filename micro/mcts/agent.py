"""The one decision function: self-play, validation and live trading all call `Agent.act`.

Only the mode differs. `explore` draws root noise (Dirichlet for pUCT, Gumbel for Gumbel root
selection) from the caller's RNG and, under pUCT, samples the action from the visit counts with
a temperature; `greedy` draws nothing and takes the search's best action. This is the only place
that knows about modes: the search itself takes the noise as plain arrays. Under Gumbel root
selection the action is the sequential-halving winner in both modes (the Gumbel noise is the
exploration), so `temperature` only applies to pUCT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from micro.config import MctsConfig
from micro.env.actions import FLAT, NUM_ACTIONS
from micro.mcts.policies import dirichlet_noise, gumbel_noise, sample_from_visits
from micro.mcts.search import SearchFn, SearchResult, root_legal, search
from micro.model.inference import SearchModel

Mode = Literal["explore", "greedy"]


@dataclass(frozen=True)
class Observations:
    """What the agent sees of B positions: the same arrays in backtest and live."""

    window: np.ndarray  # [B, W, 9] float32 (float64 accepted: the model's dtype decides)
    static: np.ndarray  # [B, 6] float32
    legal: np.ndarray  # [B, 4] bool
    side: np.ndarray  # [B] int8 (-1 short, 0 flat, +1 long)


@dataclass(frozen=True)
class Rationale:
    """Why the agent acted: the root of each search, for training targets, journals and logs."""

    visit_counts: np.ndarray  # [B, 4] int32
    q: np.ndarray  # [B, 4] float32 pips (NaN unvisited/illegal)
    prior: np.ndarray  # [B, 4] float32 network prior over legal actions (before noise)
    chance_probs: (
        np.ndarray
    )  # [B, 4, 3] float32 σ of each root action's afterstate (NaN if unexpanded)
    value: np.ndarray  # [B] float32 root search value (pips)
    network_value: np.ndarray  # [B] float32 raw value prediction at the root
    policy_target: np.ndarray  # [B, 4] float32
    best_action: np.ndarray  # [B] int64 the search's best action (what greedy play takes)


class Agent:
    """Picks an action for each of B positions by searching with `model`."""

    def __init__(
        self,
        model: SearchModel,
        mcts: MctsConfig,
        num_simulations: int | None = None,
        *,
        search_fn: SearchFn = search,
    ) -> None:
        self.model = model
        self.mcts = mcts
        self.num_simulations = mcts.simulations if num_simulations is None else num_simulations
        if self.num_simulations < 1:
            raise ValueError(f"num_simulations must be >= 1, got {self.num_simulations}")
        self.search_fn = search_fn  # the batched search; tests and the bench pass the reference

    def act(
        self,
        observations: Observations,
        mode: Mode,
        rng: np.random.Generator,
        temperature: float = 1.0,
        exit_exploration: float = 1.0,
        entry_exploration: float = 1.0,
    ) -> tuple[np.ndarray, Rationale]:
        """Actions [B] int64 (always legal) and the rationale of each decision.

        `exit_exploration` (explore mode): the chance that a held position's hold-or-close
        decision explores like a flat one (pUCT: root Dirichlet noise, action sampled from the
        visits; Gumbel: root Gumbel noise); otherwise it gets no noise and takes the search's
        best action. Below 1 an exploratory entry is held for longer than a coin flip per bar
        allows. `entry_exploration` is the same chance for a flat position's decision to enter or
        stay out. At 1 (both) no extra random numbers are drawn.
        """
        if mode not in ("explore", "greedy"):
            raise ValueError(f"mode must be 'explore' or 'greedy', got {mode!r}")
        legal = root_legal(observations.legal, observations.side)
        explore = mode == "explore"
        gumbel_root = self.mcts.root_selection == "gumbel"
        dirichlet = None
        gumbel = None
        if explore and not gumbel_root and self.mcts.exploration_fraction > 0.0:
            dirichlet = dirichlet_noise(rng, legal, self.mcts.dirichlet_alpha)
        calm = np.zeros(legal.shape[0], dtype=bool)  # [B] decisions taken greedily
        if explore and min(exit_exploration, entry_exploration) < 1.0:
            held = np.asarray(observations.side) != FLAT
            chance = np.where(held, exit_exploration, entry_exploration)
            calm = rng.random(legal.shape[0]) >= chance
            if dirichlet is not None:
                dirichlet[calm] = 0.0
        if explore and gumbel_root:
            gumbel = gumbel_noise(rng, legal.shape[0], self.mcts.gumbel_scale)
            gumbel[calm] = 0.0  # no noise: sequential halving's choice is greedy's
        result = self.search_fn(
            self.model,
            observations.window,
            observations.static,
            legal,
            observations.side,
            self.mcts,
            self.num_simulations,
            dirichlet=dirichlet,
            gumbel=gumbel,
        )
        if explore and not gumbel_root:
            actions = sample_from_visits(result.visit_counts, temperature, rng)
            actions[calm] = result.best_action[calm]
        else:
            actions = result.best_action.astype(np.int64)
        illegal = np.flatnonzero(~legal[np.arange(len(actions)), actions])
        if illegal.size:  # never expected: the search masks them; guards the callers' promise
            raise RuntimeError(
                f"search chose illegal action {actions[illegal[0]]} in env {illegal[0]}"
            )
        return actions, rationale(result)


def rationale(result: SearchResult) -> Rationale:
    """The search result as the float32 rationale callers store and print."""
    return Rationale(
        visit_counts=result.visit_counts.astype(np.int32),
        q=result.q.astype(np.float32),
        prior=result.prior.astype(np.float32),
        chance_probs=result.chance_probs.astype(np.float32).reshape(-1, NUM_ACTIONS, 3),
        value=result.value.astype(np.float32),
        network_value=result.network_value.astype(np.float32),
        policy_target=result.policy_target.astype(np.float32),
        best_action=result.best_action.astype(np.int64),
    )
