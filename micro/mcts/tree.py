"""The search tree as fixed-shape arrays for B environments, and its compiled kernels.

Two node kinds alternate: decision nodes (a position: the agent picks an action) and afterstate
nodes (the position after the action, before the market moves: a chance node whose children
are the three bar outcomes). Node 0 of every environment is its root decision node; a slot is
taken by each simulation's new node, so N = M = num_simulations + 1 always suffice.

Hidden states never enter here: the driver keeps them in torch buffers [B, N, H] and [B, M, H]
indexed by the same node numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from micro.env.actions import NUM_ACTIONS, NUM_OUTCOMES, is_legal, next_side
from micro.mcts.policies import (
    chance_outcome,
    gumbel_interior_action,
    gumbel_root_action,
    masked_softmax,
    puct_action,
)

ROOT_INDEX = 0
UNVISITED = -1  # an edge whose child node does not exist yet; the root's parent

LEAF_AFTERSTATE = 0  # the leaf is an afterstate to create: afterstate_inference(s, a)
LEAF_DECISION = 1  # the leaf is a decision node to create: recurrent_inference(as, c)


class Tree(NamedTuple):
    """Search statistics of B trees; each array's shape in its comment (N, M = sims + 1)."""

    # decision nodes
    node_visits: np.ndarray  # [B, N] int32
    node_value_sum: np.ndarray  # [B, N] float64 pips: sum of returns backed up through the node
    node_raw_value: np.ndarray  # [B, N] float64 pips: the network's value v of the node
    node_reward: np.ndarray  # [B, N] float64 pips: reward on the chance -> state edge into it
    node_side: np.ndarray  # [B, N] int8 position side (-1 short, 0 flat, +1 long)
    node_legal: np.ndarray  # [B, N, 4] bool legal actions (root: the observation's mask)
    node_parent: np.ndarray  # [B, N] int32 parent afterstate (UNVISITED at the root)
    node_outcome: np.ndarray  # [B, N] int8 the chance outcome leading into the node
    prior_logits: np.ndarray  # [B, N, 4] float64 network policy logits
    priors: np.ndarray  # [B, N, 4] float64 prior over legal actions (root: after noise)
    children_index: np.ndarray  # [B, N, 4] int32 afterstate child per action, or UNVISITED
    # afterstate (chance) nodes
    afterstate_visits: np.ndarray  # [B, M] int32
    afterstate_value_sum: np.ndarray  # [B, M] float64 pips: Q(s, a) = value_sum / visits
    afterstate_raw_q: np.ndarray  # [B, M] float64 pips: the network's Q of the afterstate
    afterstate_parent: np.ndarray  # [B, M] int32 parent decision node
    afterstate_action: np.ndarray  # [B, M] int8 the action leading into the afterstate
    chance_probs: np.ndarray  # [B, M, 3] float64 σ over DOWN, NEUTRAL, UP
    chance_children: np.ndarray  # [B, M, 3] int32 decision child per outcome, or UNVISITED
    # per environment
    num_nodes: np.ndarray  # [B] int32 decision nodes in use
    num_afterstates: np.ndarray  # [B] int32 afterstate nodes in use
    root_gumbel: np.ndarray  # [B, 4] float64 Gumbel noise of the root (zeros when greedy)

    @property
    def nbytes(self) -> int:
        """Bytes held by all arrays of the tree."""
        return sum(array.nbytes for array in self)


def new_tree(batch: int, num_simulations: int) -> Tree:
    """An empty tree for `batch` environments and `num_simulations` simulations."""
    n = m = num_simulations + 1
    return Tree(
        node_visits=np.zeros((batch, n), np.int32),
        node_value_sum=np.zeros((batch, n), np.float64),
        node_raw_value=np.zeros((batch, n), np.float64),
        node_reward=np.zeros((batch, n), np.float64),
        node_side=np.zeros((batch, n), np.int8),
        node_legal=np.zeros((batch, n, NUM_ACTIONS), np.bool_),
        node_parent=np.full((batch, n), UNVISITED, np.int32),
        node_outcome=np.full((batch, n), UNVISITED, np.int8),
        prior_logits=np.zeros((batch, n, NUM_ACTIONS), np.float64),
        priors=np.zeros((batch, n, NUM_ACTIONS), np.float64),
        children_index=np.full((batch, n, NUM_ACTIONS), UNVISITED, np.int32),
        afterstate_visits=np.zeros((batch, m), np.int32),
        afterstate_value_sum=np.zeros((batch, m), np.float64),
        afterstate_raw_q=np.zeros((batch, m), np.float64),
        afterstate_parent=np.full((batch, m), UNVISITED, np.int32),
        afterstate_action=np.full((batch, m), UNVISITED, np.int8),
        chance_probs=np.zeros((batch, m, NUM_OUTCOMES), np.float64),
        chance_children=np.full((batch, m, NUM_OUTCOMES), UNVISITED, np.int32),
        num_nodes=np.zeros(batch, np.int32),
        num_afterstates=np.zeros(batch, np.int32),
        root_gumbel=np.zeros((batch, NUM_ACTIONS), np.float64),
    )


@njit(cache=True)
def init_roots(
    tree: Tree,
    side: np.ndarray,  # [B] int8
    legal: np.ndarray,  # [B, 4] bool
    logits: np.ndarray,  # [B, 4] float64
    value: np.ndarray,  # [B] float64 pips
    dirichlet: np.ndarray,  # [B, 4] float64 noise over legal actions (a zero row: no noise)
    exploration_fraction: float,  # 0: no noise
    gumbel: np.ndarray,  # [B, 4] float64
) -> None:
    """Expand every root from the initial inference: prior (mixed with noise), one visit of v."""
    for b in range(side.shape[0]):
        tree.node_side[b, ROOT_INDEX] = side[b]
        for a in range(NUM_ACTIONS):
            tree.node_legal[b, ROOT_INDEX, a] = legal[b, a]
            tree.prior_logits[b, ROOT_INDEX, a] = logits[b, a]
            tree.root_gumbel[b, a] = gumbel[b, a]
        masked_softmax(logits[b], legal[b], tree.priors[b, ROOT_INDEX])
        if exploration_fraction > 0.0 and dirichlet[b].sum() > 0.0:
            for a in range(NUM_ACTIONS):
                prior = tree.priors[b, ROOT_INDEX, a]
                noisy = (1.0 - exploration_fraction) * prior + exploration_fraction * dirichlet[
                    b, a
                ]
                tree.priors[b, ROOT_INDEX, a] = noisy if legal[b, a] else 0.0
        tree.node_raw_value[b, ROOT_INDEX] = value[b]
        tree.node_visits[b, ROOT_INDEX] = 1
        tree.node_value_sum[b, ROOT_INDEX] = value[b]
        tree.num_nodes[b] = 1


@njit(cache=True)
def _children_stats(tree: Tree, b: int, node: int, q: np.ndarray, visits: np.ndarray) -> None:
    """Q and visit count of each action's afterstate child of `node` into q [4], visits [4]."""
    for a in range(NUM_ACTIONS):
        child = tree.children_index[b, node, a]
        if child == UNVISITED or tree.afterstate_visits[b, child] == 0:
            visits[a] = 0
            q[a] = 0.0
        else:
            visits[a] = tree.afterstate_visits[b, child]
            q[a] = tree.afterstate_value_sum[b, child] / visits[a]


@njit(cache=True)
def select_leaves(
    tree: Tree,
    gumbel_root: bool,  # False: pUCT everywhere; True: Gumbel root + improved-policy interior
    considered_table: np.ndarray,  # [5, S] int32 sequential-halving visit counts
    pb_c_init: float,
    pb_c_base: float,
    q_floor: float,
    c_visit: float,
    c_scale: float,
    leaf_kind: np.ndarray,  # [B] int8 out: LEAF_AFTERSTATE or LEAF_DECISION
    leaf_parent: np.ndarray,  # [B] int32 out: decision node (afterstate leaf) or afterstate
    leaf_edge: np.ndarray,  # [B] int8 out: action (afterstate leaf) or outcome (decision leaf)
    leaf_index: np.ndarray,  # [B] int32 out: the slot the new node will take
) -> None:
    """Walk every tree from its root to the edge where a new node is needed."""
    q = np.empty(NUM_ACTIONS)
    visits = np.empty(NUM_ACTIONS, np.int64)
    outcome_visits = np.empty(NUM_OUTCOMES, np.int64)
    for b in range(tree.node_visits.shape[0]):
        node = ROOT_INDEX
        while True:
            _children_stats(tree, b, node, q, visits)
            legal = tree.node_legal[b, node]
            value = tree.node_value_sum[b, node] / tree.node_visits[b, node]
            if not gumbel_root:
                action = puct_action(
                    q,
                    visits,
                    tree.priors[b, node],
                    legal,
                    value,
                    tree.node_visits[b, node],
                    pb_c_init,
                    pb_c_base,
                    q_floor,
                )
            elif node == ROOT_INDEX:
                num_legal = 0
                simulation = 0
                for a in range(NUM_ACTIONS):
                    num_legal += legal[a]
                    simulation += visits[a]
                action = gumbel_root_action(
                    q,
                    visits,
                    tree.prior_logits[b, node],
                    legal,
                    tree.node_raw_value[b, node],
                    tree.root_gumbel[b],
                    considered_table[num_legal, simulation],
                    c_visit,
                    c_scale,
                    q_floor,
                )
            else:
                action = gumbel_interior_action(
                    q,
                    visits,
                    tree.prior_logits[b, node],
                    legal,
                    tree.node_raw_value[b, node],
                    c_visit,
                    c_scale,
                    q_floor,
                )
            afterstate = tree.children_index[b, node, action]
            if afterstate == UNVISITED:
                leaf_kind[b] = LEAF_AFTERSTATE
                leaf_parent[b] = node
                leaf_edge[b] = action
                leaf_index[b] = tree.num_afterstates[b]
                break
            for c in range(NUM_OUTCOMES):
                child = tree.chance_children[b, afterstate, c]
                outcome_visits[c] = 0 if child == UNVISITED else tree.node_visits[b, child]
            outcome = chance_outcome(tree.chance_probs[b, afterstate], outcome_visits)
            child = tree.chance_children[b, afterstate, outcome]
            if child == UNVISITED:
                leaf_kind[b] = LEAF_DECISION
                leaf_parent[b] = afterstate
                leaf_edge[b] = outcome
                leaf_index[b] = tree.num_nodes[b]
                break
            node = child


@njit(cache=True)
def _backup_from_afterstate(tree: Tree, b: int, afterstate: int, g: float, discount: float) -> None:
    """Add return g (pips) at `afterstate`, then carry it up to the root.

    afterstate -> its parent decision node: g unchanged; decision node -> its parent afterstate
    (crossing a chance -> state edge, one real step): g = r + γ·g.
    """
    while True:
        tree.afterstate_visits[b, afterstate] += 1
        tree.afterstate_value_sum[b, afterstate] += g
        node = tree.afterstate_parent[b, afterstate]
        tree.node_visits[b, node] += 1
        tree.node_value_sum[b, node] += g
        if node == ROOT_INDEX:
            return
        g = tree.node_reward[b, node] + discount * g
        afterstate = tree.node_parent[b, node]


@njit(cache=True)
def expand_afterstates(
    tree: Tree,
    envs: np.ndarray,  # [K] int64 environments whose leaf is an afterstate
    leaf_parent: np.ndarray,  # [B] int32
    leaf_edge: np.ndarray,  # [B] int8
    leaf_index: np.ndarray,  # [B] int32
    chance_probs: np.ndarray,  # [K, 3] float64 σ
    q: np.ndarray,  # [K] float64 pips
    discount: float,
) -> None:
    """Create each new afterstate from ψ(as) and back its Q up to the root."""
    for k in range(envs.shape[0]):
        b = envs[k]
        afterstate = leaf_index[b]
        parent = leaf_parent[b]
        action = leaf_edge[b]
        tree.num_afterstates[b] = afterstate + 1
        tree.afterstate_parent[b, afterstate] = parent
        tree.afterstate_action[b, afterstate] = action
        tree.afterstate_raw_q[b, afterstate] = q[k]
        for c in range(NUM_OUTCOMES):
            tree.chance_probs[b, afterstate, c] = chance_probs[k, c]
        tree.children_index[b, parent, action] = afterstate
        _backup_from_afterstate(tree, b, afterstate, q[k], discount)


@njit(cache=True)
def expand_decisions(
    tree: Tree,
    envs: np.ndarray,  # [K] int64 environments whose leaf is a decision node
    leaf_parent: np.ndarray,  # [B] int32
    leaf_edge: np.ndarray,  # [B] int8
    leaf_index: np.ndarray,  # [B] int32
    reward: np.ndarray,  # [K] float64 pips
    logits: np.ndarray,  # [K, 4] float64
    value: np.ndarray,  # [K] float64 pips
    discount: float,
) -> None:
    """Create each new decision node from g(as, c) and f(s'), and back its value up."""
    for k in range(envs.shape[0]):
        b = envs[k]
        node = leaf_index[b]
        afterstate = leaf_parent[b]
        outcome = leaf_edge[b]
        parent = tree.afterstate_parent[b, afterstate]
        side = next_side(tree.node_side[b, parent], tree.afterstate_action[b, afterstate])
        tree.num_nodes[b] = node + 1
        tree.node_side[b, node] = side
        tree.node_parent[b, node] = afterstate
        tree.node_outcome[b, node] = outcome
        tree.node_reward[b, node] = reward[k]
        tree.node_raw_value[b, node] = value[k]
        for a in range(NUM_ACTIONS):
            tree.node_legal[b, node, a] = is_legal(side, a)
            tree.prior_logits[b, node, a] = logits[k, a]
        masked_softmax(logits[k], tree.node_legal[b, node], tree.priors[b, node])
        tree.chance_children[b, afterstate, outcome] = node
        # The new node's own visit, then up through its parent afterstate.
        tree.node_visits[b, node] = 1
        tree.node_value_sum[b, node] = value[k]
        g = reward[k] + discount * value[k]
        _backup_from_afterstate(tree, b, afterstate, g, discount)


@njit(cache=True)
def root_statistics(
    tree: Tree,
    visit_counts: np.ndarray,  # [B, 4] int32 out
    q: np.ndarray,  # [B, 4] float64 out: pips, NaN where unvisited or illegal
    chance_probs: np.ndarray,  # [B, 4, 3] float64 out: NaN where unexpanded
    value: np.ndarray,  # [B] float64 out: root search value, pips
) -> None:
    """What the search concluded at each root, for acting and for the rationale."""
    for b in range(tree.node_visits.shape[0]):
        value[b] = tree.node_value_sum[b, ROOT_INDEX] / tree.node_visits[b, ROOT_INDEX]
        for a in range(NUM_ACTIONS):
            child = tree.children_index[b, ROOT_INDEX, a]
            if child == UNVISITED:
                visit_counts[b, a] = 0
                q[b, a] = np.nan
                for c in range(NUM_OUTCOMES):
                    chance_probs[b, a, c] = np.nan
            else:
                visit_counts[b, a] = tree.afterstate_visits[b, child]
                q[b, a] = tree.afterstate_value_sum[b, child] / visit_counts[b, a]
                for c in range(NUM_OUTCOMES):
                    chance_probs[b, a, c] = tree.chance_probs[b, child, c]
