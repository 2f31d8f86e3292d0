"""The array tree's kernels and the per-node rules, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from micro.env.actions import BUY, CLOSE, DOWN, FLAT, HOLD, LONG, NEUTRAL, SELL, UP
from micro.mcts.policies import (
    chance_outcome,
    completed_q_transform,
    considered_visits,
    considered_visits_table,
    puct_action,
)
from micro.mcts.tree import (
    LEAF_AFTERSTATE,
    LEAF_DECISION,
    ROOT_INDEX,
    UNVISITED,
    expand_afterstates,
    expand_decisions,
    init_roots,
    new_tree,
    root_statistics,
    select_leaves,
)

FLAT_LEGAL = np.array([True, True, True, False])


def _flat_root(value: float, logits: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)):
    tree = new_tree(batch=1, num_simulations=3)
    init_roots(
        tree,
        np.array([FLAT], np.int8),
        FLAT_LEGAL[None],
        np.array([logits], float),
        np.array([value]),
        np.zeros((1, 4)),
        0.0,
        np.zeros((1, 4)),
    )
    return tree


def _leaf(parent: int, edge: int, index: int):
    return (
        np.array([parent], np.int32),
        np.array([edge], np.int8),
        np.array([index], np.int32),
    )


def test_new_tree_has_one_slot_per_simulation_plus_the_root() -> None:
    tree = new_tree(batch=5, num_simulations=7)
    assert tree.node_visits.shape == (5, 8)
    assert tree.children_index.shape == (5, 8, 4)
    assert tree.chance_children.shape == (5, 8, 3)
    assert (tree.children_index == UNVISITED).all()
    assert tree.nbytes == sum(a.nbytes for a in tree)


def test_root_starts_with_one_visit_of_the_network_value_and_a_legal_prior() -> None:
    tree = _flat_root(2.0, logits=(0.0, 0.0, 0.0, 50.0))
    assert tree.node_visits[0, ROOT_INDEX] == 1
    assert tree.node_value_sum[0, ROOT_INDEX] == 2.0
    np.testing.assert_allclose(tree.priors[0, ROOT_INDEX], [1 / 3, 1 / 3, 1 / 3, 0.0])


def test_dirichlet_noise_is_mixed_into_the_root_prior_with_the_exploration_fraction() -> None:
    tree = new_tree(batch=1, num_simulations=1)
    noise = np.array([[0.0, 1.0, 0.0, 0.0]])
    init_roots(
        tree,
        np.array([FLAT], np.int8),
        FLAT_LEGAL[None],
        np.zeros((1, 4)),
        np.zeros(1),
        noise,
        0.25,
        np.zeros((1, 4)),
    )
    np.testing.assert_allclose(tree.priors[0, 0], [0.75 / 3, 0.75 / 3 + 0.25, 0.75 / 3, 0.0])


def test_backup_discounts_once_per_bar_and_puts_reward_on_the_chance_edge() -> None:
    discount = 0.5
    tree = _flat_root(2.0)
    # Simulation 1: BUY's afterstate, Q = 3.
    expand_afterstates(
        tree, np.array([0]), *_leaf(ROOT_INDEX, BUY, 0), np.array([[0.2, 0.3, 0.5]]),
        np.array([3.0]), discount,
    )  # fmt: skip
    assert tree.children_index[0, ROOT_INDEX, BUY] == 0
    assert (tree.afterstate_visits[0, 0], tree.afterstate_value_sum[0, 0]) == (1, 3.0)
    assert (tree.node_visits[0, 0], tree.node_value_sum[0, 0]) == (2, 5.0)
    # Simulation 2: the bar goes UP, reward 4, v = 10: the afterstate gets 4 + 0.5 * 10 = 9.
    expand_decisions(
        tree, np.array([0]), *_leaf(0, UP, 1), np.array([4.0]), np.zeros((1, 4)),
        np.array([10.0]), discount,
    )  # fmt: skip
    assert tree.chance_children[0, 0, UP] == 1
    assert tree.node_side[0, 1] == LONG
    assert tree.node_legal[0, 1].tolist() == [True, False, False, True]
    assert (tree.node_visits[0, 1], tree.node_value_sum[0, 1]) == (1, 10.0)
    assert (tree.afterstate_visits[0, 0], tree.afterstate_value_sum[0, 0]) == (2, 12.0)
    assert (tree.node_visits[0, 0], tree.node_value_sum[0, 0]) == (3, 14.0)
    # Simulation 3: CLOSE from the long position, Q = -2: node 1 gets -2 unchanged, the
    # afterstate above it 4 + 0.5 * -2 = 3, and the root the same 3.
    expand_afterstates(
        tree, np.array([0]), *_leaf(1, CLOSE, 1), np.array([[1 / 3, 1 / 3, 1 / 3]]),
        np.array([-2.0]), discount,
    )  # fmt: skip
    assert (tree.node_visits[0, 1], tree.node_value_sum[0, 1]) == (2, 8.0)
    assert (tree.afterstate_visits[0, 0], tree.afterstate_value_sum[0, 0]) == (3, 15.0)
    assert (tree.node_visits[0, 0], tree.node_value_sum[0, 0]) == (4, 17.0)

    visits = np.zeros((1, 4), np.int32)
    q = np.zeros((1, 4))
    sigma = np.zeros((1, 4, 3))
    value = np.zeros(1)
    root_statistics(tree, visits, q, sigma, value)
    assert visits.tolist() == [[0, 3, 0, 0]]
    assert q[0, BUY] == 5.0 and np.isnan(q[0, [HOLD, SELL, CLOSE]]).all()
    np.testing.assert_allclose(sigma[0, BUY], [0.2, 0.3, 0.5])
    assert np.isnan(sigma[0, HOLD]).all()
    assert value[0] == 17.0 / 4


def test_selection_walks_through_expanded_nodes_to_the_first_missing_one() -> None:
    tree = _flat_root(0.0, logits=(0.0, 5.0, 0.0, 0.0))
    outs = (
        np.zeros(1, np.int8),
        np.zeros(1, np.int32),
        np.zeros(1, np.int8),
        np.zeros(1, np.int32),
    )
    args = (False, considered_visits_table(3), 1.25, 19652.0, 1.0, 50.0, 1.0)
    select_leaves(tree, *args, *outs)
    kind, parent, edge, index = (o[0] for o in outs)
    assert (kind, parent, edge, index) == (LEAF_AFTERSTATE, ROOT_INDEX, BUY, 0)
    expand_afterstates(
        tree, np.array([0]), *outs[1:], np.array([[0.1, 0.2, 0.7]]), np.array([1.0]), 1.0
    )
    select_leaves(tree, *args, *outs)
    kind, parent, edge, index = (o[0] for o in outs)
    assert (kind, parent, edge, index) == (LEAF_DECISION, 0, UP, 1)


@pytest.mark.parametrize(
    ("sigma", "visits", "expected"),
    [
        ((0.2, 0.3, 0.5), (0, 0, 0), UP),
        ((0.2, 0.3, 0.5), (0, 0, 1), NEUTRAL),  # 0.3 / 1 > 0.5 / 2
        ((0.5, 0.0, 0.5), (0, 0, 0), DOWN),  # ties go to the lowest outcome
        ((0.5, 0.0, 0.5), (1, 0, 0), UP),
    ],
)
def test_chance_nodes_follow_sigma_over_visits_plus_one(sigma, visits, expected) -> None:
    assert chance_outcome(np.array(sigma), np.array(visits)) == expected


def test_puct_never_picks_an_illegal_action_whatever_its_prior() -> None:
    legal = np.array([True, False, False, True])
    prior = np.array([0.0, 1.0, 1.0, 0.0])
    action = puct_action(
        np.zeros(4), np.zeros(4, np.int64), prior, legal, 0.0, 1, 1.25, 19652.0, 1.0
    )
    assert action == HOLD


def test_puct_ties_go_to_the_lowest_legal_action() -> None:
    legal = np.array([False, True, True, False])
    action = puct_action(
        np.zeros(4), np.zeros(4, np.int64), np.full(4, 0.25), legal, 0.0, 1, 1.25, 19652.0, 1.0
    )
    assert action == BUY


def test_the_q_floor_keeps_sub_pip_differences_from_outweighing_the_prior() -> None:
    """Q of 0.0 vs 0.3 pips: with a 1-pip floor the prior decides, with a tiny floor the Q does."""
    q = np.array([0.0, 0.3, 0.0, 0.0])
    visits = np.array([1, 1, 0, 0])
    prior = np.array([0.7, 0.3, 0.0, 0.0])
    legal = np.array([True, True, False, False])
    args = (q, visits, prior, legal, 0.0, 3, 1.25, 19652.0)
    assert puct_action(*args, 1.0) == HOLD
    assert puct_action(*args, 1e-6) == BUY


def test_completed_q_fills_unvisited_actions_with_the_mixed_value() -> None:
    """Visited BUY (Q 4) with prior 1/2 and raw value 0: mixed value = (0 + 2·4) / 3."""
    q = np.array([0.0, 4.0, 0.0, 0.0])
    visits = np.array([0, 2, 0, 0])
    logits = np.zeros(4)
    legal = np.array([True, True, False, False])
    out = np.empty(4)
    completed_q_transform(q, visits, logits, legal, 0.0, 50.0, 1.0, 1.0, out)
    mixed = 8.0 / 3.0
    scale = (50.0 + 2) * 1.0
    np.testing.assert_allclose(out, [0.0, scale * (4.0 - mixed) / (4.0 - mixed), 0.0, 0.0])


@pytest.mark.parametrize(
    ("considered", "simulations", "expected"),
    [
        (8, 24, [0] * 8 + [1] * 4 + [2] * 4 + [3, 3, 4, 4, 5, 5, 6, 6]),
        (8, 13, [0] * 8 + [1] * 4 + [2]),
        (7, 24, [0] * 7 + [1, 1, 1, 2, 2, 2] + [3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8]),
        (3, 8, [0, 0, 0, 1, 1, 2, 2, 3]),
        (2, 5, [0, 0, 1, 1, 2]),
        (1, 4, [0, 1, 2, 3]),
    ],
)
def test_sequential_halving_schedule_matches_the_paper(considered, simulations, expected) -> None:
    assert list(considered_visits(considered, simulations)) == expected


def test_the_schedule_table_has_a_row_per_number_of_legal_actions() -> None:
    table = considered_visits_table(8)
    assert table.shape == (5, 8)
    assert table[3].tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
