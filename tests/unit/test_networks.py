"""The Stochastic MuZero networks: shapes, scaling, the fast TCN path, gradients, the protocol."""

from __future__ import annotations

import pytest
import torch

from micro.config import ModelConfig
from micro.model.inference import AfterstateOutput, InitialOutput, RecurrentOutput, SearchModel
from micro.model.networks import StochasticMuZeroNet

B = 6
SMALL = ModelConfig(tcn_channels=16, static_hidden=8, hidden=24, mlp_hidden=32)


def _inputs(batch: int = B, window: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, window, 9, generator=g), torch.randn(batch, 6, generator=g)


def _net(cfg: ModelConfig = SMALL, window: int = 32, seed: int = 0) -> StochasticMuZeroNet:
    torch.manual_seed(seed)
    return StochasticMuZeroNet(cfg, window)


H = ModelConfig().hidden  # the default hidden size (128)


@pytest.fixture(scope="module")
def default_net() -> StochasticMuZeroNet:
    return _net(ModelConfig())


def test_raw_calls_return_logits_of_the_configured_sizes(default_net: StochasticMuZeroNet) -> None:
    net = default_net
    window, static = _inputs()
    state = net.represent(window, static)
    assert state.shape == (B, H) and state.dtype == torch.float32
    policy_logits, value_logits = net.predict(state)
    assert policy_logits.shape == (B, 4) and value_logits.shape == (B, 33)
    afterstate = net.afterstate(state, torch.arange(B) % 4)
    assert afterstate.shape == (B, H) and afterstate.dtype == torch.float32
    chance_logits, q_logits = net.afterstate_predict(afterstate)
    assert chance_logits.shape == (B, 3) and q_logits.shape == (B, 33)
    next_state, reward_logits = net.dynamics(afterstate, torch.arange(B) % 3)
    assert next_state.shape == (B, H) and reward_logits.shape == (B, 17)
    for t in (policy_logits, value_logits, chance_logits, q_logits, reward_logits, next_state):
        assert t.dtype == torch.float32


def test_inference_calls_return_the_protocol_outputs_in_float32(
    default_net: StochasticMuZeroNet,
) -> None:
    net: SearchModel = default_net
    window, static = _inputs()
    initial = net.initial_inference(window, static)
    assert isinstance(initial, InitialOutput)
    assert initial.state.shape == (B, H)
    assert initial.policy_logits.shape == (B, 4)
    assert initial.value.shape == (B,)
    after = net.afterstate_inference(initial.state, torch.arange(B) % 4)
    assert isinstance(after, AfterstateOutput)
    assert after.afterstate.shape == (B, H)
    assert after.chance_probs.shape == (B, 3)
    assert after.q.shape == (B,)
    recurrent = net.recurrent_inference(after.afterstate, torch.arange(B) % 3)
    assert isinstance(recurrent, RecurrentOutput)
    assert recurrent.state.shape == (B, H)
    assert recurrent.reward.shape == (B,)
    assert recurrent.policy_logits.shape == (B, 4)
    assert recurrent.value.shape == (B,)
    for out in (initial, after, recurrent):
        for t in vars(out).values():
            assert t.dtype == torch.float32
            assert not t.requires_grad


def test_hidden_states_and_afterstates_are_min_max_scaled_per_sample() -> None:
    net = _net()
    window, static = _inputs()
    state = net.represent(window * 50.0, static)  # scale of inputs must not matter
    afterstate = net.afterstate(state, torch.tensor([0, 1, 2, 3, 0, 1]))
    next_state = net.dynamics(afterstate, torch.tensor([0, 1, 2, 0, 1, 2])).state
    for hidden in (state, afterstate, next_state):
        assert hidden.min() >= 0.0 and hidden.max() <= 1.0
        torch.testing.assert_close(hidden.amin(-1), torch.zeros(B))
        torch.testing.assert_close(hidden.amax(-1), torch.ones(B))


def test_fast_representation_equals_the_full_causal_forward_at_the_default_sizes(
    default_net: StochasticMuZeroNet,
) -> None:
    window, static = _inputs(batch=32)
    with torch.no_grad():
        fast = default_net.represent(window, static)
        full = default_net.represent_full(window, static)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("window", "kernel", "dilations"),
    [
        (32, 3, (1, 2, 4)),
        (8, 3, (1, 2, 4)),  # window shorter than the receptive field: zero padding is read
        (4, 3, (1, 2, 4, 8)),
        (20, 2, (1, 1, 2, 8)),
        (40, 5, (3, 1)),
        (16, 4, (2,)),
    ],
)
def test_fast_representation_equals_the_full_forward_for_any_tcn_shape(
    window: int, kernel: int, dilations: tuple[int, ...]
) -> None:
    cfg = ModelConfig(
        tcn_channels=16,
        tcn_kernel=kernel,
        tcn_dilations=dilations,
        static_hidden=8,
        hidden=24,
        mlp_hidden=32,
    )
    net = _net(cfg, window=window)
    inputs = _inputs(window=window)
    with torch.no_grad():
        torch.testing.assert_close(
            net.represent(*inputs), net.represent_full(*inputs), rtol=1e-5, atol=2e-6
        )


def test_fast_representation_has_the_same_gradients_as_the_full_forward() -> None:
    net = _net()
    window, static = _inputs()
    weights = torch.linspace(-1.0, 1.0, SMALL.hidden)
    grads = []
    for forward in (net.represent, net.represent_full):
        net.zero_grad()
        (forward(window, static) * weights).sum().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    fast, full = grads
    assert fast.keys() == full.keys() and len(fast) > 0
    for name in fast:
        torch.testing.assert_close(fast[name], full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_representation_reads_exactly_the_receptive_field_of_the_last_bar() -> None:
    net = _net()
    rf = net.representation.receptive_field
    assert rf == 15  # 1 + 2·(1 + 2 + 4)
    window, static = _inputs()
    base = net.represent(window, static)
    older = window.clone()
    older[:, : 32 - rf] += 10.0  # bars before the receptive field
    torch.testing.assert_close(net.represent(older, static), base)
    torch.testing.assert_close(net.represent_full(older, static), base, rtol=1e-5, atol=2e-6)
    oldest_seen = window.clone()
    oldest_seen[:, 32 - rf] += 10.0
    assert not torch.allclose(net.represent(oldest_seen, static), base)


def test_position_features_change_the_hidden_state() -> None:
    net = _net()
    window, static = _inputs()
    flipped = static.clone()
    flipped[:, 0] = -flipped[:, 0]
    assert not torch.allclose(net.represent(window, static), net.represent(window, flipped))


def test_gradients_reach_every_parameter_through_an_unroll() -> None:
    net = _net()
    window, static = _inputs()
    state = net.represent(window, static)
    loss = torch.zeros(())
    for step in range(3):
        policy_logits, value_logits = net.predict(state)
        afterstate = net.afterstate(state, torch.full((B,), step % 4))
        chance_logits, q_logits = net.afterstate_predict(afterstate)
        state, reward_logits = net.dynamics(afterstate, torch.full((B,), step % 3))
        for logits in (policy_logits, value_logits, chance_logits, q_logits, reward_logits):
            loss = loss + torch.log_softmax(logits, -1)[:, 0].sum()
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing
    silent = [n for n, p in net.named_parameters() if p.grad.abs().max() == 0]
    # Embedding rows of actions/outcomes never taken get no gradient; all else must.
    assert all(n.endswith("category.weight") for n in silent), silent


def test_same_seed_gives_the_same_network_and_outputs() -> None:
    window, static = _inputs()
    a, b, other = _net(seed=3), _net(seed=3), _net(seed=4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    out_a, out_b = a.initial_inference(window, static), b.initial_inference(window, static)
    assert torch.equal(out_a.state, out_b.state)
    assert torch.equal(out_a.value, out_b.value)
    assert not torch.equal(out_a.state, other.initial_inference(window, static).state)


def test_inference_values_are_the_decoded_raw_logits() -> None:
    net = _net()
    window, static = _inputs()
    actions, outcomes = torch.tensor([0, 1, 2, 3, 1, 2]), torch.tensor([2, 1, 0, 0, 1, 2])
    with torch.no_grad():
        state = net.represent(window, static)
        prediction = net.predict(state)
        afterstate = net.afterstate(state, actions)
        after_prediction = net.afterstate_predict(afterstate)
        transition = net.dynamics(afterstate, outcomes)
        next_prediction = net.predict(transition.state)
    initial = net.initial_inference(window, static)
    torch.testing.assert_close(initial.state, state)
    torch.testing.assert_close(initial.policy_logits, prediction.policy_logits)
    torch.testing.assert_close(initial.value, net.value_support.to_scalar(prediction.value_logits))
    after = net.afterstate_inference(initial.state, actions)
    torch.testing.assert_close(after.afterstate, afterstate)
    torch.testing.assert_close(after.chance_probs, after_prediction.chance_logits.softmax(-1))
    torch.testing.assert_close(after.q, net.value_support.to_scalar(after_prediction.q_logits))
    recurrent = net.recurrent_inference(after.afterstate, outcomes)
    torch.testing.assert_close(recurrent.state, transition.state)
    torch.testing.assert_close(
        recurrent.reward, net.reward_support.to_scalar(transition.reward_logits)
    )
    torch.testing.assert_close(recurrent.policy_logits, next_prediction.policy_logits)
    torch.testing.assert_close(
        recurrent.value, net.value_support.to_scalar(next_prediction.value_logits)
    )


def test_a_fresh_network_predicts_near_zero_pips_and_near_uniform_priors(
    default_net: StochasticMuZeroNet,
) -> None:
    window, static = _inputs()
    initial = default_net.initial_inference(window, static)
    after = default_net.afterstate_inference(initial.state, torch.zeros(B, dtype=torch.int64))
    recurrent = default_net.recurrent_inference(after.afterstate, torch.ones(B, dtype=torch.int64))
    for pips in (initial.value, after.q, recurrent.reward, recurrent.value):
        assert pips.abs().max() < 0.5
    torch.testing.assert_close(
        initial.policy_logits.softmax(-1), torch.full((B, 4), 0.25), atol=0.01, rtol=0
    )
    torch.testing.assert_close(after.chance_probs, torch.full((B, 3), 1 / 3), atol=0.01, rtol=0)


def test_actions_and_outcomes_lead_to_different_states() -> None:
    net = _net()
    window, static = _inputs(batch=1)
    state = net.represent(window, static).expand(4, -1)
    afterstates = net.afterstate(state, torch.arange(4))
    assert torch.cdist(afterstates, afterstates).fill_diagonal_(1.0).min() > 1e-3
    next_states = net.dynamics(afterstates[:1].expand(3, -1), torch.arange(3)).state
    assert torch.cdist(next_states, next_states).fill_diagonal_(1.0).min() > 1e-3


def test_inference_leaves_the_training_mode_and_autograd_alone() -> None:
    net = _net().train()
    window, static = _inputs()
    net.initial_inference(window, static)
    assert net.training
    state = net.represent(window, static)
    assert state.requires_grad


def test_a_window_of_the_wrong_length_is_refused() -> None:
    net = _net()
    with pytest.raises(ValueError, match=r"\[B, 32, 9\]"):
        net.represent(*_inputs(window=31))
