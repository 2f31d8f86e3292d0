"""The batched search equals the plain reference search, root statistics and whole trees.

The model runs in float64 so that batch-of-B and batch-of-1 forwards agree to ~1e-15 and no
near-tie can flip between the two searches; the trees must then match node for node.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from micro.config import MctsConfig, ModelConfig
from micro.mcts.agent import Agent, Observations
from micro.mcts.policies import (
    completed_q_transform,
    dirichlet_noise,
    gumbel_interior_action,
    gumbel_noise,
    gumbel_root_action,
    puct_action,
)
from micro.mcts.reference import (
    AfterstateNode,
    DecisionNode,
    completed_q,
    first_argmax,
    gumbel_scores,
    reference_search,
    reference_tree,
    select_action,
)
from micro.mcts.search import run_simulations, search
from micro.mcts.tree import ROOT_INDEX, UNVISITED, Tree
from micro.model.networks import StochasticMuZeroNet
from tests.unit.mcts_models import WINDOW, TinySearchModel, observations

BATCH = 12
SIMULATIONS = 24
CONFIGS = {
    "puct": MctsConfig(),
    "gumbel": MctsConfig(root_selection="gumbel"),
}

Stats = tuple[int, float]  # visits, value sum (pips)


def _noise(config: MctsConfig, legal: np.ndarray, explore: bool, seed: int):
    """The root noise the agent would draw in this mode (None, None when greedy)."""
    if not explore:
        return None, None
    rng = np.random.default_rng(seed)
    if config.root_selection == "gumbel":
        return None, gumbel_noise(rng, len(legal), config.gumbel_scale)
    return dirichlet_noise(rng, legal, config.dirichlet_alpha), None


def _batched_paths(tree: Tree, b: int) -> dict[tuple[int, ...], Stats]:
    """Every node of environment b's tree keyed by its path of actions and outcomes."""
    paths: dict[tuple[int, ...], Stats] = {}

    def visit(node: int, path: tuple[int, ...]) -> None:
        paths[path] = (int(tree.node_visits[b, node]), float(tree.node_value_sum[b, node]))
        for a in range(4):
            afterstate = tree.children_index[b, node, a]
            if afterstate == UNVISITED:
                continue
            stats = tree.afterstate_visits[b, afterstate], tree.afterstate_value_sum[b, afterstate]
            paths[(*path, a)] = (int(stats[0]), float(stats[1]))
            for c in range(3):
                child = tree.chance_children[b, afterstate, c]
                if child != UNVISITED:
                    visit(child, (*path, a, c))

    visit(ROOT_INDEX, ())
    return paths


def _reference_paths(root: DecisionNode) -> dict[tuple[int, ...], Stats]:
    """The same keys for the reference search's node objects."""
    paths: dict[tuple[int, ...], Stats] = {}

    def visit(node: DecisionNode | AfterstateNode, path: tuple[int, ...]) -> None:
        paths[path] = (node.visits, node.value_sum)
        for edge, child in node.children.items():
            visit(child, (*path, edge))

    visit(root, ())
    return paths


@pytest.mark.parametrize("explore", [False, True], ids=["greedy", "explore"])
@pytest.mark.parametrize("selection", sorted(CONFIGS))
def test_batched_search_equals_the_reference_at_every_root(selection: str, explore: bool) -> None:
    config = CONFIGS[selection]
    model = TinySearchModel(seed=11).double()
    window, static, legal, side = observations(BATCH, seed=5)
    dirichlet, gumbel = _noise(config, legal, explore, seed=17)
    args = (model, window, static, legal, side, config, SIMULATIONS, dirichlet, gumbel)
    batched = search(*args)
    reference = reference_search(*args)
    np.testing.assert_array_equal(batched.visit_counts, reference.visit_counts)
    np.testing.assert_array_equal(batched.best_action, reference.best_action)
    for field in ("q", "prior", "chance_probs", "value", "network_value", "policy_target"):
        np.testing.assert_allclose(
            getattr(batched, field), getattr(reference, field), rtol=1e-9, atol=1e-9, err_msg=field
        )
    assert len(set(batched.best_action.tolist())) > 1, "the roots should not all agree"


@pytest.mark.parametrize("explore", [False, True], ids=["greedy", "explore"])
@pytest.mark.parametrize("selection", sorted(CONFIGS))
def test_batched_trees_equal_the_reference_trees_node_for_node(
    selection: str, explore: bool
) -> None:
    config = CONFIGS[selection]
    model = TinySearchModel(seed=12).double()
    window, static, legal, side = observations(8, seed=6)
    dirichlet, gumbel = _noise(config, legal, explore, seed=18)
    tree, _ = run_simulations(model, window, static, legal, side, config, 20, dirichlet, gumbel)
    for b in range(8):
        root = reference_tree(
            model,
            window[b : b + 1],
            static[b : b + 1],
            legal[b],
            int(side[b]),
            config,
            20,
            None if dirichlet is None else dirichlet[b],
            None if gumbel is None else gumbel[b],
        )
        batched, reference = _batched_paths(tree, b), _reference_paths(root)
        assert batched.keys() == reference.keys()
        assert len(batched) == 1 + 20  # the root and one new node per simulation
        for path, (visits, value_sum) in reference.items():
            assert batched[path][0] == visits, path
            assert batched[path][1] == pytest.approx(value_sum, rel=1e-9, abs=1e-9), path


@pytest.mark.parametrize("selection", sorted(CONFIGS))
def test_agent_acts_identically_with_either_search(selection: str) -> None:
    config = dataclasses.replace(CONFIGS[selection], simulations=16)
    model = TinySearchModel(seed=13).double()
    window, static, legal, side = observations(BATCH, seed=7)
    obs = Observations(window=window, static=static, legal=legal, side=side)
    batched_agent = Agent(model, config)
    reference_agent = Agent(model, config, search_fn=reference_search)
    for mode in ("explore", "greedy"):
        actions, why = batched_agent.act(obs, mode, np.random.default_rng(99))
        ref_actions, ref_why = reference_agent.act(obs, mode, np.random.default_rng(99))
        np.testing.assert_array_equal(actions, ref_actions)
        np.testing.assert_array_equal(why.visit_counts, ref_why.visit_counts)
        np.testing.assert_allclose(why.value, ref_why.value, rtol=1e-6)
        np.testing.assert_allclose(why.policy_target, ref_why.policy_target, rtol=1e-6, atol=1e-7)


def _random_node(rng: np.random.Generator) -> tuple[DecisionNode, dict[str, np.ndarray | float]]:
    """A decision node with random children statistics, as reference objects and as arrays."""
    side = int(rng.choice([-1, 0, 1]))
    legal = np.array([True, side == 0, side == 0, side != 0])
    pips = float(rng.choice([0.1, 1.0, 5.0, 20.0]))  # so that the q floor sometimes binds
    logits = rng.normal(scale=2.0, size=4)
    visits = np.where(legal & (rng.random(4) < 0.7), rng.integers(1, 6, size=4), 0)
    q = rng.normal(scale=pips, size=4)
    node = DecisionNode(None, side, legal.tolist(), logits.tolist(), rng.normal(scale=pips), 0.0)
    node.prior = rng.dirichlet(np.ones(4)) * legal
    node.visits = 1 + int(visits.sum())
    node.value_sum = node.visits * rng.normal(scale=pips)
    node.gumbel = rng.gumbel(size=4).tolist()
    for a in np.flatnonzero(visits):
        child = AfterstateNode(None, int(a), [1 / 3] * 3, 0.0)
        child.visits, child.value_sum = int(visits[a]), float(q[a] * visits[a])
        node.children[int(a)] = child
    arrays = {
        "q": np.array(node.child_q()),
        "visits": visits.astype(np.int64),
        "legal": legal,
        "logits": logits,
    }
    return node, arrays


def test_per_node_rules_agree_between_compiled_and_reference_on_random_nodes() -> None:
    """pUCT, Gumbel interior and Gumbel root choices, node by node, over many random nodes."""
    rng = np.random.default_rng(2024)
    config = MctsConfig()
    floor, c_visit, c_scale = config.q_floor_pips, config.gumbel_c_visit, config.gumbel_c_scale
    gumbel_config = dataclasses.replace(config, root_selection="gumbel")
    for _ in range(400):
        node, x = _random_node(rng)
        expected = select_action(node, False, config, 8)
        actual = puct_action(
            x["q"], x["visits"], np.asarray(node.prior), x["legal"], node.value(), node.visits,
            config.pb_c_init, config.pb_c_base, floor,
        )  # fmt: skip
        assert actual == expected
        expected = select_action(node, False, gumbel_config, 8)
        actual = gumbel_interior_action(
            x["q"], x["visits"], x["logits"], x["legal"], node.raw_value, c_visit, c_scale, floor
        )
        assert actual == expected
        sigma_q = np.empty(4)
        completed_q_transform(
            x["q"], x["visits"], x["logits"], x["legal"], node.raw_value, c_visit, c_scale, floor,
            sigma_q,
        )  # fmt: skip
        reference = completed_q(node, node.child_visits(), node.child_q(), config)
        np.testing.assert_allclose(sigma_q, reference, rtol=1e-12, atol=1e-12)
        considered = int(rng.choice(x["visits"][x["legal"]]))
        expected = first_argmax(gumbel_scores(node, node.child_visits(), reference, considered))
        actual = gumbel_root_action(
            x["q"], x["visits"], x["logits"], x["legal"], node.raw_value, np.asarray(node.gumbel),
            considered, c_visit, c_scale, floor,
        )  # fmt: skip
        assert actual == expected


def test_the_real_network_searches_the_same_in_both_searches() -> None:
    """StochasticMuZeroNet (small sizes, float64) through both searches: identical roots."""
    model_config = ModelConfig(tcn_channels=8, static_hidden=8, hidden=16, mlp_hidden=16)
    torch.manual_seed(3)
    net = StochasticMuZeroNet(model_config, window=WINDOW).double().eval()
    window, static, legal, side = observations(BATCH, seed=8)
    for config in CONFIGS.values():
        dirichlet, gumbel = _noise(config, legal, explore=True, seed=19)
        args = (net, window, static, legal, side, config, 12, dirichlet, gumbel)
        batched, reference = search(*args), reference_search(*args)
        np.testing.assert_array_equal(batched.visit_counts, reference.visit_counts)
        np.testing.assert_allclose(batched.value, reference.value, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(batched.q, reference.q, rtol=1e-9, atol=1e-9)


def test_a_zero_noise_row_leaves_that_root_as_greedy_in_both_searches() -> None:
    # `train.exit_exploration` < 1 zeroes the Dirichlet rows of held positions that decide
    # greedily: both searches must leave those roots' priors unmixed and mix the others.
    config = CONFIGS["puct"]
    model = TinySearchModel(seed=13).double()
    window, static, legal, side = observations(BATCH, seed=7)
    dirichlet, _ = _noise(config, legal, explore=True, seed=20)
    calm = side != 0
    assert calm.any() and (~calm).any()
    dirichlet[calm] = 0.0
    args = (model, window, static, legal, side, config, SIMULATIONS)
    batched = search(*args, dirichlet, None)
    reference = reference_search(*args, dirichlet, None)
    greedy = search(*args, None, None)
    np.testing.assert_array_equal(batched.visit_counts, reference.visit_counts)
    np.testing.assert_array_equal(batched.visit_counts[calm], greedy.visit_counts[calm])
    assert (batched.visit_counts[~calm] != greedy.visit_counts[~calm]).any()
