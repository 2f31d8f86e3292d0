"""The batched search finds known answers, respects legality and batches its network calls."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from micro.config import MctsConfig
from micro.env.actions import BUY, CLOSE, FLAT, HOLD, LONG, SELL, SHORT
from micro.mcts import search as search_module
from micro.mcts.search import run_simulations, search
from micro.mcts.tree import ROOT_INDEX, UNVISITED
from tests.unit.mcts_models import BanditModel, ChanceModel, TinySearchModel, observations

PUCT = MctsConfig()
GUMBEL = MctsConfig(root_selection="gumbel")


def _flat(batch: int = 1):
    return observations(batch, seed=0, sides=np.zeros(batch, np.int8))


@pytest.mark.parametrize("config", [PUCT, GUMBEL], ids=["puct", "gumbel"])
def test_bandit_search_finds_the_best_action_against_the_prior(config: MctsConfig) -> None:
    model = BanditModel()
    window, static, legal, side = _flat()
    prior = search(model, window, static, legal, side, config, 1).prior[0]
    assert prior.argmax() == SELL and prior[SELL] > 0.9 and prior[BUY] < 0.02
    result = search(model, window, static, legal, side, config, 200)
    assert result.best_action[0] == BUY
    assert result.q[0, BUY] > result.q[0, HOLD] > result.q[0, SELL]


@pytest.mark.parametrize("config", [PUCT, GUMBEL], ids=["puct", "gumbel"])
def test_the_chance_distribution_decides_between_buy_and_sell(config: MctsConfig) -> None:
    window, static, legal, side = _flat()
    up = search(ChanceModel(p_up=0.9), window, static, legal, side, config, 48)
    down = search(ChanceModel(p_up=0.1), window, static, legal, side, config, 48)
    assert up.best_action[0] == BUY and down.best_action[0] == SELL
    np.testing.assert_allclose(up.chance_probs[0, BUY], [0.05, 0.05, 0.9])
    assert up.q[0, BUY] > 0 > up.q[0, SELL]
    assert down.q[0, SELL] > 0 > down.q[0, BUY]


def test_every_simulation_adds_one_visit_to_one_root_action() -> None:
    window, static, legal, side = observations(9, seed=1, dtype=np.float64)
    result = search(TinySearchModel().double(), window, static, legal, side, PUCT, 13)
    assert (result.visit_counts.sum(axis=1) == 13).all()
    np.testing.assert_allclose(result.policy_target, result.visit_counts / 13)


@pytest.mark.parametrize("config", [PUCT, GUMBEL], ids=["puct", "gumbel"])
def test_positions_never_visit_illegal_actions_at_the_root_or_inside(config: MctsConfig) -> None:
    sides = np.array([LONG, SHORT, FLAT, LONG, FLAT, SHORT], np.int8)
    window, static, legal, side = observations(6, seed=2, sides=sides)
    tree, _ = run_simulations(TinySearchModel(), window, static, legal, side, config, 40)
    visits = np.zeros((6, 4), int)
    for b in range(6):
        for a in range(4):
            child = tree.children_index[b, ROOT_INDEX, a]
            visits[b, a] = 0 if child == UNVISITED else tree.afterstate_visits[b, child]
    in_position = sides != FLAT
    assert (visits[in_position][:, [BUY, SELL]] == 0).all()
    assert (visits[in_position][:, [HOLD, CLOSE]] > 0).all()
    assert (visits[~in_position][:, CLOSE] == 0).all()
    # Inside the tree every edge taken is legal for the imagined position it leaves.
    for b in range(6):
        for node in range(tree.num_nodes[b]):
            for a in range(4):
                if tree.children_index[b, node, a] != UNVISITED:
                    assert tree.node_legal[b, node, a]
                    node_side = tree.node_side[b, node]
                    assert a in ((HOLD, BUY, SELL) if node_side == FLAT else (HOLD, CLOSE))


def test_positions_after_buy_inside_the_tree_are_long_and_only_hold_or_close() -> None:
    window, static, legal, side = _flat()
    tree, _ = run_simulations(BanditModel(), window, static, legal, side, PUCT, 60)
    buy = tree.children_index[0, ROOT_INDEX, BUY]
    children = [c for c in tree.chance_children[0, buy] if c != UNVISITED]
    assert children, "the search should look past BUY"
    for child in children:
        assert tree.node_side[0, child] == LONG
        used = [a for a in range(4) if tree.children_index[0, child, a] != UNVISITED]
        assert used and set(used) <= {HOLD, CLOSE}


def test_the_observation_mask_can_forbid_more_than_the_side_does() -> None:
    window, static, legal, side = _flat(2)
    legal[:, [BUY, SELL]] = False  # e.g. no new entries near the weekly close
    result = search(BanditModel(), window, static, legal, side, PUCT, 10)
    assert (result.visit_counts[:, [BUY, SELL, CLOSE]] == 0).all()
    assert (result.best_action == HOLD).all()


class _CountingModel:
    """Wraps a model and records the batch size of every call by kind."""

    def __init__(self, model: TinySearchModel) -> None:
        self.model = model
        self.calls: list[tuple[str, int]] = []

    def initial_inference(self, window: torch.Tensor, static: torch.Tensor):
        self.calls.append(("initial", len(window)))
        return self.model.initial_inference(window, static)

    def afterstate_inference(self, state: torch.Tensor, action: torch.Tensor):
        self.calls.append(("afterstate", len(state)))
        return self.model.afterstate_inference(state, action)

    def recurrent_inference(self, afterstate: torch.Tensor, outcome: torch.Tensor):
        self.calls.append(("recurrent", len(afterstate)))
        return self.model.recurrent_inference(afterstate, outcome)


def test_each_simulation_makes_at_most_one_call_per_node_kind_covering_every_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch, simulations = 16, 12
    model = _CountingModel(TinySearchModel())
    select = search_module.select_leaves

    def marked_select(*args):  # marks where each simulation starts in the call log
        model.calls.append(("select", 0))
        return select(*args)

    monkeypatch.setattr(search_module, "select_leaves", marked_select)
    window, static, legal, side = observations(batch, seed=3, dtype=np.float32)
    search(model, window, static, legal, side, PUCT, simulations)
    assert model.calls[0] == ("initial", batch)
    per_simulation: list[list[tuple[str, int]]] = []
    for kind, size in model.calls[1:]:
        if kind == "select":
            per_simulation.append([])
        else:
            per_simulation[-1].append((kind, size))
    assert len(per_simulation) == simulations
    for calls in per_simulation:
        assert 1 <= len(calls) == len({kind for kind, _ in calls}) <= 2
        assert sum(size for _, size in calls) == batch
    assert any(len(calls) == 2 for calls in per_simulation)


def test_float32_and_float64_models_give_the_same_search() -> None:
    window, static, legal, side = observations(8, seed=4, dtype=np.float64)
    single = search(TinySearchModel(), window.astype(np.float32), static, legal, side, PUCT, 8)
    double = search(TinySearchModel().double(), window, static, legal, side, PUCT, 8)
    np.testing.assert_allclose(single.network_value, double.network_value, rtol=1e-4, atol=1e-4)
    assert single.visit_counts.sum() == double.visit_counts.sum() == 8 * 8


def test_search_refuses_a_root_without_legal_actions() -> None:
    window, static, legal, side = _flat(2)
    legal[1] = False
    with pytest.raises(ValueError, match="environment 1 has no legal action"):
        search(BanditModel(), window, static, legal, side, PUCT, 4)


def test_discount_shrinks_the_value_of_distant_rewards() -> None:
    window, static, legal, side = _flat()
    model = BanditModel()
    patient = search(model, window, static, legal, side, PUCT, 60)
    myopic_config = dataclasses.replace(PUCT, discount=0.5)
    myopic = search(model, window, static, legal, side, myopic_config, 60)
    assert myopic.q[0, BUY] < patient.q[0, BUY]
