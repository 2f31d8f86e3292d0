"""`Agent.act`: legal actions, the rationale, and what explore and greedy change."""

from __future__ import annotations

import numpy as np
import pytest

from micro.config import MctsConfig
from micro.env.actions import BUY, CLOSE, HOLD, SELL, legal_mask
from micro.mcts.agent import Agent, Observations, Rationale
from micro.mcts.policies import dirichlet_noise, puct_root_choice, sample_from_visits
from tests.unit.mcts_models import BanditModel, TinySearchModel, observations

CONFIGS = {
    "puct": MctsConfig(simulations=16),
    "gumbel": MctsConfig(simulations=16, root_selection="gumbel"),
}


def _observations(batch: int = 12, seed: int = 0, dtype: type = np.float32) -> Observations:
    window, static, legal, side = observations(batch, seed=seed, dtype=dtype)
    return Observations(window=window, static=static, legal=legal, side=side)


@pytest.mark.parametrize("mode", ["explore", "greedy"])
@pytest.mark.parametrize("selection", sorted(CONFIGS))
def test_actions_are_always_legal_and_the_rationale_has_its_shapes(
    selection: str, mode: str
) -> None:
    obs = _observations()
    agent = Agent(TinySearchModel(), CONFIGS[selection])
    actions, why = agent.act(obs, mode, np.random.default_rng(0))
    assert actions.shape == (12,) and actions.dtype == np.int64
    assert obs.legal[np.arange(12), actions].all()
    assert why.visit_counts.dtype == np.int32 and why.visit_counts.shape == (12, 4)
    assert (why.visit_counts.sum(axis=1) == 16).all()
    assert (why.visit_counts[~obs.legal] == 0).all()
    for name in ("q", "prior", "policy_target"):
        assert getattr(why, name).shape == (12, 4) and getattr(why, name).dtype == np.float32
    assert why.chance_probs.shape == (12, 4, 3) and why.chance_probs.dtype == np.float32
    assert why.value.shape == why.network_value.shape == (12,)
    assert np.isnan(why.q[why.visit_counts == 0]).all()
    assert np.isnan(why.chance_probs[why.visit_counts == 0]).all()
    np.testing.assert_allclose(why.chance_probs[why.visit_counts > 0].sum(axis=-1), 1, rtol=1e-5)
    np.testing.assert_allclose(why.prior.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(why.policy_target.sum(axis=1), 1, rtol=1e-5)
    assert (why.prior[~obs.legal] == 0).all() and (why.policy_target[~obs.legal] == 0).all()


def test_greedy_search_uses_no_randomness() -> None:
    obs = _observations()
    agent = Agent(TinySearchModel(), CONFIGS["puct"])
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    first, why_first = agent.act(obs, "greedy", rng)
    assert rng.bit_generator.state == before
    second, why_second = agent.act(obs, "greedy", np.random.default_rng(2))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(why_first.visit_counts, why_second.visit_counts)
    chosen = why_first.visit_counts[np.arange(12), first]
    np.testing.assert_array_equal(chosen, why_first.visit_counts.max(axis=1))


@pytest.mark.parametrize("selection", sorted(CONFIGS))
def test_root_noise_changes_the_search_only_when_exploring(selection: str) -> None:
    # Values within `q_floor_pips` of each other: the search's Q differences do not swamp the
    # noise, so Gumbel noise (which only reorders sequential halving) changes whole decisions,
    # not merely the last bits of a float.
    obs = _observations(batch=24)
    agent = Agent(TinySearchModel(value_scale=0.1), CONFIGS[selection])
    greedy_actions, greedy = agent.act(obs, "greedy", np.random.default_rng(0))
    actions_a, noisy_a = agent.act(obs, "explore", np.random.default_rng(5))
    actions_a_again, noisy_a_again = agent.act(obs, "explore", np.random.default_rng(5))
    actions_b, noisy_b = agent.act(obs, "explore", np.random.default_rng(6))
    np.testing.assert_array_equal(actions_a, actions_a_again)
    np.testing.assert_array_equal(noisy_a.visit_counts, noisy_a_again.visit_counts)
    np.testing.assert_array_equal(noisy_a.policy_target, noisy_a_again.policy_target)

    def changed(actions: np.ndarray, why: Rationale, others: np.ndarray, other: Rationale) -> int:
        """Positions whose decision or visit counts differ (integers: no float noise)."""
        visits = (why.visit_counts != other.visit_counts).any(axis=1)
        return int((visits | (actions != others)).sum())

    assert changed(actions_a, noisy_a, greedy_actions, greedy) >= 3
    assert changed(actions_a, noisy_a, actions_b, noisy_b) >= 3
    # The network's prior in the rationale is the prior before noise.
    np.testing.assert_array_equal(noisy_a.prior, greedy.prior)


def test_identical_seeds_give_identical_actions_and_different_seeds_different_noise() -> None:
    obs = _observations(batch=32)
    agent = Agent(TinySearchModel(), CONFIGS["puct"])
    first = agent.act(obs, "explore", np.random.default_rng(7))
    again = agent.act(obs, "explore", np.random.default_rng(7))
    np.testing.assert_array_equal(first[0], again[0])
    other = agent.act(obs, "explore", np.random.default_rng(8))
    assert (first[0] != other[0]).any() or (first[1].visit_counts != other[1].visit_counts).any()
    noise_a = dirichlet_noise(np.random.default_rng(7), obs.legal, 0.3)
    noise_b = dirichlet_noise(np.random.default_rng(8), obs.legal, 0.3)
    assert not np.allclose(noise_a, noise_b)
    assert (noise_a[~obs.legal] == 0).all()
    np.testing.assert_allclose(noise_a.sum(axis=1), 1.0)


def test_explore_samples_actions_in_proportion_to_visits() -> None:
    visits = np.tile(np.array([[6, 0, 2, 0]], np.int32), (20_000, 1))
    actions = sample_from_visits(visits, 1.0, np.random.default_rng(0))
    assert set(np.unique(actions)) == {HOLD, SELL}
    assert abs((actions == HOLD).mean() - 0.75) < 0.02
    cold = sample_from_visits(visits, 0.05, np.random.default_rng(0))
    assert (cold == HOLD).mean() > 0.99
    hot = sample_from_visits(visits, 10.0, np.random.default_rng(0))
    assert 0.4 < (hot == HOLD).mean() < 0.6


def test_most_visited_ties_go_to_the_higher_q_then_the_lower_action() -> None:
    visits = np.array([[3, 3, 0, 0], [0, 4, 4, 0], [2, 0, 0, 2]], np.int32)
    q = np.array([[1.0, 2.0, np.nan, np.nan], [np.nan, 0.5, 0.5, np.nan], [-1.0, 9, 9, -1.0]])
    target = np.zeros((3, 4))
    best = np.zeros(3, np.int64)
    puct_root_choice(visits, q, target, best)
    assert best.tolist() == [BUY, BUY, HOLD]
    np.testing.assert_allclose(target[1], [0, 0.5, 0.5, 0])


def test_greedy_bandit_agent_buys_and_explore_still_only_trades_legally() -> None:
    window, static, legal, side = observations(4, seed=0, sides=np.zeros(4, np.int8))
    obs = Observations(window=window, static=static, legal=legal, side=side)
    agent = Agent(BanditModel(), MctsConfig(), num_simulations=200)
    actions, _ = agent.act(obs, "greedy", np.random.default_rng(0))
    assert (actions == BUY).all()
    actions, _ = agent.act(obs, "explore", np.random.default_rng(0), temperature=0.5)
    assert legal_mask(side)[np.arange(4), actions].all() and not (actions == CLOSE).any()


def test_bad_mode_temperature_or_simulations_are_refused() -> None:
    obs = _observations(batch=2)
    agent = Agent(TinySearchModel(), CONFIGS["puct"])
    with pytest.raises(ValueError, match="mode"):
        agent.act(obs, "live", np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        agent.act(obs, "explore", np.random.default_rng(0), temperature=0.0)
    with pytest.raises(ValueError, match="num_simulations"):
        Agent(TinySearchModel(), CONFIGS["puct"], num_simulations=0)


def test_the_simulation_count_defaults_to_the_config() -> None:
    assert Agent(TinySearchModel(), MctsConfig(simulations=5)).num_simulations == 5
    assert Agent(TinySearchModel(), MctsConfig(simulations=5), 9).num_simulations == 9


@pytest.mark.parametrize("selection", sorted(CONFIGS))
@pytest.mark.parametrize("calm_side", ["held", "flat"])
def test_a_side_without_exploration_decides_as_greedy_while_the_other_explores(
    calm_side: str, selection: str
) -> None:
    # `train.exit_exploration = 0` (held) or `train.entry_exploration = 0` (flat): those
    # positions get no root noise (Dirichlet or Gumbel) and no sampled action, so they decide
    # exactly as greedy does; the other side keeps both.
    obs = _observations(batch=48)
    calm = (obs.side != 0) if calm_side == "held" else (obs.side == 0)
    assert calm.any() and (~calm).any()
    knob = "exit_exploration" if calm_side == "held" else "entry_exploration"
    agent = Agent(TinySearchModel(value_scale=0.1), CONFIGS[selection])
    greedy, why_greedy = agent.act(obs, "greedy", np.random.default_rng(0))
    changed_other = 0
    for seed in range(4):
        actions, why = agent.act(
            obs, "explore", np.random.default_rng(seed), temperature=1.0, **{knob: 0.0}
        )
        np.testing.assert_array_equal(actions[calm], greedy[calm])
        np.testing.assert_array_equal(why.visit_counts[calm], why_greedy.visit_counts[calm])
        changed_other += int((actions[~calm] != greedy[~calm]).sum())
    assert changed_other > 0  # the other side still explores
    explored, _ = agent.act(obs, "explore", np.random.default_rng(0), temperature=1.0)
    assert (explored[calm] != greedy[calm]).any()  # the default explores both sides
    both, _ = agent.act(
        obs, "explore", np.random.default_rng(5), exit_exploration=0.0, entry_exploration=0.0
    )
    np.testing.assert_array_equal(both, greedy)  # neither explores: self-play plays greedy


def test_exit_exploration_is_a_chance_per_held_decision() -> None:
    # Between 0 and 1 some held positions explore and the rest decide greedily; the default (1)
    # draws no extra random numbers, so seeded self-play is unchanged by the knob's existence.
    obs = _observations(batch=48)
    held = obs.side != 0
    agent = Agent(TinySearchModel(value_scale=0.1), CONFIGS["puct"])
    greedy, _ = agent.act(obs, "greedy", np.random.default_rng(0))

    def explored(chance: float, seed: int) -> int:
        """Held positions whose decision differs from greedy's."""
        rng = np.random.default_rng(seed)
        actions, _ = agent.act(obs, "explore", rng, exit_exploration=chance)
        return int((actions != greedy)[held].sum())

    differ = [explored(chance, seed) for chance in (0.0, 0.5, 1.0) for seed in range(6)]
    assert sum(differ[:6]) == 0 and 0 < sum(differ[6:12]) < sum(differ[12:])
    default, _ = agent.act(obs, "explore", np.random.default_rng(3))
    same, _ = agent.act(obs, "explore", np.random.default_rng(3), exit_exploration=1.0)
    np.testing.assert_array_equal(default, same)
