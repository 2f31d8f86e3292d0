"""Batched chance-node MCTS (Stochastic MuZero) over array trees for B environments at once.

Rules (the plain reference search in `reference.py` follows the same ones, and tests hold the
two equal):

- Tree: decision nodes [B, N] and afterstate (chance) nodes [B, M], N = M = simulations + 1;
  the root is node 0. A decision node knows its position side (root: the observation's; child:
  `next_side(side, action)`), so legality inside the tree follows the imagined position.
  The root's legal actions are the observation's mask.
- Root: s, logits, v = h(window, static); prior = softmax of the logits over legal actions.
  When Dirichlet noise is passed (explore mode, pUCT) the prior becomes (1 − f)·p + f·noise;
  a row of zeros leaves that root's prior as it is.
- Per simulation, for the whole batch (numba): from the root, at a decision node pick an
  action (pUCT, or Gumbel rules below); at an afterstate pick the outcome argmax σ(c)/(N(c)+1)
  (deterministic, ties → lowest c). The walk stops at the first missing node: either an
  afterstate (one batched `afterstate_inference(s, a)` over those environments; its Q is the
  value backed up) or a decision node (one batched `recurrent_inference(as, c)`; the reward is
  stored on the new node, its v is the value backed up).
- Backup (numba): G = v at a new decision node; crossing a chance -> state edge into the parent
  afterstate G = r + γ·G (γ once per real step); afterstate -> parent decision node G unchanged.
  Visits and value sums grow on both node kinds; Q(s, a) = the afterstate child's mean value.
- pUCT: Q̂(s,a) + P(s,a)·√N(s)/(1 + N(s,a))·(c1 + log((N(s) + c2 + 1)/c2)), N(s) the node's own
  visits; Q̂ min-max normalised over the node's value and its visited children's Q, dividing
  by max(max − min, q_floor_pips); an unvisited child's Q is the node's value; illegal actions
  are never chosen; ties → lowest action.
- Gumbel (`root_selection = "gumbel"`, Danihelka et al. 2022): the root considers all legal
  actions and runs sequential halving on argmax g + logits + σ(q̂); interior nodes pick
  argmax π'(a) − N(a)/(1 + ΣN) with π' = softmax(logits + σ(completed q̂)). σ(q̂) =
  (c_visit + max N)·c_scale·q̂ with unvisited Q completed by the mixed value and the min-max
  range floored at q_floor_pips (pips, like pUCT, instead of mctx's 1e-8).
- Result: root visit counts, Q, σ, value; policy target = visit distribution (pUCT) or
  softmax(logits + σ(completed q̂)) (Gumbel); best action = most visited (ties → higher Q, then
  lower index) or the sequential-halving winner.

The search has no mode: noise arrays come in from the caller (`Agent.act`), which is where
explore and greedy differ. The network runs under `torch.inference_mode` in its own dtype and
device (float32 or float64 inputs are both accepted); the tree statistics are float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from micro.config import MctsConfig
from micro.env.actions import NUM_ACTIONS, legal_mask
from micro.mcts.policies import considered_visits_table, gumbel_root_choice, puct_root_choice
from micro.mcts.tree import (
    LEAF_AFTERSTATE,
    LEAF_DECISION,
    ROOT_INDEX,
    Tree,
    expand_afterstates,
    expand_decisions,
    init_roots,
    new_tree,
    root_statistics,
    select_leaves,
)
from micro.model.inference import SearchModel


@dataclass(frozen=True)
class SearchResult:
    """What a search concluded at each root (float64; the agent casts for its rationale)."""

    visit_counts: np.ndarray  # [B, 4] int32
    q: np.ndarray  # [B, 4] pips, NaN where unvisited or illegal
    prior: np.ndarray  # [B, 4] network prior over legal actions (before noise)
    chance_probs: np.ndarray  # [B, 4, 3] σ of each root action's afterstate, NaN if unexpanded
    value: np.ndarray  # [B] pips: root search value
    network_value: np.ndarray  # [B] pips: the network's value of the root
    policy_target: np.ndarray  # [B, 4] visit distribution (puct) or improved policy (gumbel)
    best_action: np.ndarray  # [B] int64 the search's own choice (greedy)


# model, window [B, W, 9], static [B, 6], legal [B, 4], side [B], config, simulations,
# dirichlet [B, 4] | None, gumbel [B, 4] | None -> SearchResult
SearchFn = Callable[..., SearchResult]


@dataclass
class HiddenStates:
    """Torch buffers of the tree's hidden states, indexed like the tree's nodes."""

    states: torch.Tensor  # [B, N, H] decision-node states s
    afterstates: torch.Tensor | None  # [B, M, H] afterstates as (allocated on first use)

    @property
    def nbytes(self) -> int:
        """Bytes held by both buffers."""
        total = self.states.numel() * self.states.element_size()
        if self.afterstates is not None:
            total += self.afterstates.numel() * self.afterstates.element_size()
        return total


def search(
    model: SearchModel,
    window: np.ndarray,
    static: np.ndarray,
    legal: np.ndarray,
    side: np.ndarray,
    config: MctsConfig,
    num_simulations: int,
    dirichlet: np.ndarray | None = None,
    gumbel: np.ndarray | None = None,
) -> SearchResult:
    """Run the batched search for B roots and summarise each root (see the module docstring)."""
    tree, _ = run_simulations(
        model, window, static, legal, side, config, num_simulations, dirichlet, gumbel
    )
    return summarise(tree, config)


def run_simulations(
    model: SearchModel,
    window: np.ndarray,  # [B, W, 9]
    static: np.ndarray,  # [B, 6]
    legal: np.ndarray,  # [B, 4] bool
    side: np.ndarray,  # [B] int8
    config: MctsConfig,
    num_simulations: int,
    dirichlet: np.ndarray | None = None,  # [B, 4] noise over legal actions, or None
    gumbel: np.ndarray | None = None,  # [B, 4] root Gumbel noise, or None (zeros)
) -> tuple[Tree, HiddenStates]:
    """Grow B trees: per simulation one select, at most 2 batched network calls, one expand."""
    if num_simulations < 1:
        raise ValueError(f"num_simulations must be >= 1, got {num_simulations}")
    legal = root_legal(legal, side)
    batch = legal.shape[0]
    dtype, device = model_dtype_device(model, window)
    tree = new_tree(batch, num_simulations)
    table = considered_visits_table(num_simulations)
    leaf_kind = np.zeros(batch, np.int8)
    leaf_parent = np.zeros(batch, np.int32)
    leaf_edge = np.zeros(batch, np.int8)
    leaf_index = np.zeros(batch, np.int32)
    with torch.inference_mode():
        root = model.initial_inference(
            torch.as_tensor(window, dtype=dtype, device=device),
            torch.as_tensor(static, dtype=dtype, device=device),
        )
        hidden = HiddenStates(
            states=root.state.new_empty((batch, num_simulations + 1, root.state.shape[-1])),
            afterstates=None,
        )
        hidden.states[:, ROOT_INDEX] = root.state
        init_roots(
            tree,
            np.asarray(side, np.int8),
            legal,
            to_numpy(root.policy_logits),
            to_numpy(root.value),
            np.zeros((batch, NUM_ACTIONS)) if dirichlet is None else np.asarray(dirichlet, float),
            0.0 if dirichlet is None else config.exploration_fraction,
            np.zeros((batch, NUM_ACTIONS)) if gumbel is None else np.asarray(gumbel, float),
        )
        for _ in range(num_simulations):
            select_leaves(
                tree,
                config.root_selection == "gumbel",
                table,
                config.pb_c_init,
                config.pb_c_base,
                config.q_floor_pips,
                config.gumbel_c_visit,
                config.gumbel_c_scale,
                leaf_kind,
                leaf_parent,
                leaf_edge,
                leaf_index,
            )
            envs = np.flatnonzero(leaf_kind == LEAF_AFTERSTATE)
            if envs.size:
                at = _index_tensors(device, envs, leaf_parent, leaf_edge, leaf_index)
                out = model.afterstate_inference(hidden.states[at.envs, at.parent], at.edge)
                if hidden.afterstates is None:
                    hidden.afterstates = out.afterstate.new_empty(
                        (batch, num_simulations + 1, out.afterstate.shape[-1])
                    )
                hidden.afterstates[at.envs, at.index] = out.afterstate
                expand_afterstates(
                    tree,
                    envs,
                    leaf_parent,
                    leaf_edge,
                    leaf_index,
                    to_numpy(out.chance_probs),
                    to_numpy(out.q),
                    config.discount,
                )
            envs = np.flatnonzero(leaf_kind == LEAF_DECISION)
            if envs.size:
                at = _index_tensors(device, envs, leaf_parent, leaf_edge, leaf_index)
                assert hidden.afterstates is not None  # a decision leaf hangs off an afterstate
                step = model.recurrent_inference(hidden.afterstates[at.envs, at.parent], at.edge)
                hidden.states[at.envs, at.index] = step.state
                expand_decisions(
                    tree,
                    envs,
                    leaf_parent,
                    leaf_edge,
                    leaf_index,
                    to_numpy(step.reward),
                    to_numpy(step.policy_logits),
                    to_numpy(step.value),
                    config.discount,
                )
    return tree, hidden


def summarise(tree: Tree, config: MctsConfig) -> SearchResult:
    """Root visit counts, Q, σ, values, policy target and best action of every environment."""
    batch = tree.node_visits.shape[0]
    visit_counts = np.zeros((batch, NUM_ACTIONS), np.int32)
    q = np.zeros((batch, NUM_ACTIONS))
    chance_probs = np.zeros((batch, NUM_ACTIONS, 3))
    value = np.zeros(batch)
    root_statistics(tree, visit_counts, q, chance_probs, value)
    legal = tree.node_legal[:, ROOT_INDEX]  # [B, 4]
    logits = tree.prior_logits[:, ROOT_INDEX]  # [B, 4]
    network_value = tree.node_raw_value[:, ROOT_INDEX].copy()  # [B]
    policy_target = np.zeros((batch, NUM_ACTIONS))
    best_action = np.zeros(batch, np.int64)
    if config.root_selection == "gumbel":
        gumbel_root_choice(
            visit_counts,
            q,
            logits,
            legal,
            network_value,
            tree.root_gumbel,
            config.gumbel_c_visit,
            config.gumbel_c_scale,
            config.q_floor_pips,
            policy_target,
            best_action,
        )
    else:
        puct_root_choice(visit_counts, q, policy_target, best_action)
    return SearchResult(
        visit_counts=visit_counts,
        q=q,
        prior=network_prior(logits, legal),
        chance_probs=chance_probs,
        value=value,
        network_value=network_value,
        policy_target=policy_target,
        best_action=best_action,
    )


def network_prior(logits: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """[B, 4] softmax of logits [B, 4] over the legal actions (illegal → 0)."""
    masked = np.where(legal, logits, -np.inf)
    masked = masked - masked.max(axis=1, keepdims=True)
    weights = np.exp(masked)
    prior: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return prior


def root_legal(legal: np.ndarray, side: np.ndarray) -> np.ndarray:
    """[B, 4] bool: the observation's mask, restricted to what the side allows; never empty."""
    legal = np.asarray(legal, dtype=bool)
    side = np.asarray(side)
    if legal.ndim != 2 or legal.shape[1] != NUM_ACTIONS or side.shape != legal.shape[:1]:
        raise ValueError(f"legal must be [B, 4] and side [B], got {legal.shape} and {side.shape}")
    allowed = legal & legal_mask(side)
    empty = np.flatnonzero(~allowed.any(axis=1))
    if empty.size:
        raise ValueError(f"environment {int(empty[0])} has no legal action at the root")
    return np.ascontiguousarray(allowed)


def model_dtype_device(model: SearchModel, window: np.ndarray) -> tuple[torch.dtype, torch.device]:
    """The dtype and device the model computes in (its parameters'; else the input's, on CPU)."""
    if isinstance(model, torch.nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype, tensor.device
    return torch.as_tensor(np.asarray(window)).dtype, torch.device("cpu")


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A network output as a contiguous float64 numpy array on the CPU."""
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float64).numpy())


@dataclass(frozen=True)
class _IndexTensors:
    envs: torch.Tensor  # [K] int64
    parent: torch.Tensor  # [K] int64 node whose hidden state feeds the call
    edge: torch.Tensor  # [K] int64 action or outcome
    index: torch.Tensor  # [K] int64 slot of the new node


def _index_tensors(
    device: torch.device,
    envs: np.ndarray,
    leaf_parent: np.ndarray,
    leaf_edge: np.ndarray,
    leaf_index: np.ndarray,
) -> _IndexTensors:
    """Gather/scatter indices of the leaves of one kind as int64 tensors on the model's device."""

    def as_tensor(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values.astype(np.int64)).to(device)

    return _IndexTensors(
        envs=as_tensor(envs),
        parent=as_tensor(leaf_parent[envs]),
        edge=as_tensor(leaf_edge[envs]),
        index=as_tensor(leaf_index[envs]),
    )
