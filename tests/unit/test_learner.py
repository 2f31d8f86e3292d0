from __future__ import annotations

import numpy as np
import pytest
import torch

from micro.config import Config, replace
from micro.model.networks import StochasticMuZeroNet
from micro.train.learner import LOSS_TERMS, Learner, learning_rate, scale_gradient
from micro.train.replay import ReplayBuffer, Trajectory


def small_config() -> Config:
    return replace(
        Config(),
        **{
            "model.tcn_channels": 16,
            "model.hidden": 32,
            "model.mlp_hidden": 32,
            "model.static_hidden": 16,
            "train.batch_size": 32,
            "train.unroll_steps": 3,
            "train.n_step": 3,
            "train.learning_rate": 3e-3,
        },
    )


def filled_replay(config: Config, rng: np.random.Generator) -> ReplayBuffer:
    replay = ReplayBuffer(
        1000, unroll_steps=config.train.unroll_steps, n_step=config.train.n_step, discount=0.99
    )
    for e in range(4):
        t = 40
        side = rng.integers(-1, 2, size=t).astype(np.int8)
        actions = np.where(
            side == 0, rng.integers(0, 3, size=t), np.where(rng.random(t) < 0.5, 0, 3)
        )
        replay.add(
            Trajectory(
                rows=np.arange(100 + e * 50, 100 + e * 50 + t, dtype=np.int64),
                static=rng.normal(size=(t, 6)).astype(np.float32),
                side=side,
                actions=actions.astype(np.int8),
                rewards=rng.normal(0, 3, size=t).astype(np.float32),
                outcomes=rng.integers(0, 3, size=t).astype(np.int8),
                root_values=rng.normal(0, 5, size=t).astype(np.float32),
                policies=np.full((t, 4), 0.25, np.float32),
                weight_version=0,
                actor=0,
            )
        )
    return replay


def test_learner_overfits_a_fixed_batch_and_reports_every_term() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    config = small_config()
    net = StochasticMuZeroNet(config.model, window=config.features.window)
    learner = Learner(net, config)
    batch = filled_replay(config, rng).sample(32, rng)
    windows = rng.normal(size=(32, config.features.window, 9)).astype(np.float32)
    first, _ = learner.step(batch, windows)
    for _ in range(60):
        last, errors = learner.step(batch, windows)
    assert set(LOSS_TERMS) <= set(first)
    assert all(np.isfinite(v) for v in last.values())
    assert last["total"] < 0.6 * first["total"]
    assert errors.shape == (32,)
    assert learner.steps == 61


def test_illegal_actions_get_no_policy_mass_in_the_loss() -> None:
    """A target on an illegal action cannot be learned: masked logits give it no probability."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    config = small_config()
    net = StochasticMuZeroNet(config.model, window=config.features.window)
    learner = Learner(net, config)
    batch = filled_replay(config, rng).sample(8, rng)
    windows = rng.normal(size=(8, config.features.window, 9)).astype(np.float32)
    report, _ = learner.step(batch, windows)
    assert np.isfinite(report["policy"]) and report["policy"] < 5.0  # ~log(3), not 1e9


def test_scale_gradient_halves_the_gradient_only() -> None:
    x = torch.tensor([2.0], requires_grad=True)
    y = scale_gradient(x * 3, 0.5)
    y.backward()
    assert float(y.detach()) == 6.0 and float(x.grad) == 1.5


def test_reanalysis_bootstraps_targets_from_the_current_networks_values() -> None:
    # `train.reanalyze`: each bootstrap term's stored value is replaced by the network's own
    # value of that position: the best legal afterstate Q (`best`) or the state value
    # (`search`), as the search's inference path computes them.
    from micro.env.actions import NUM_ACTIONS, legal_mask
    from micro.train.learner import fresh_values

    config = small_config()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    net = StochasticMuZeroNet(config.model, config.features.window).eval()
    replay = filled_replay(config, rng)
    batch = replay.sample(32, rng)
    points = replay.bootstrap_points(batch.ids)
    assert len(points.target) > 0
    windows = rng.normal(size=(len(points.rows), config.features.window, 9)).astype(np.float32)
    out = net.initial_inference(torch.from_numpy(windows), torch.from_numpy(points.static))
    q = np.stack(
        [
            net.afterstate_inference(out.state, torch.full((len(windows),), a)).q.numpy()
            for a in range(NUM_ACTIONS)
        ],
        axis=1,
    )
    best = np.where(legal_mask(points.side), q, -np.inf).max(axis=1)
    for kind, expected in (("best", best), ("search", out.value.numpy())):
        fresh = fresh_values(net, windows, points.static, points.side, kind)
        np.testing.assert_allclose(fresh, expected, rtol=1e-5, atol=1e-4)
        learner = Learner(net, replace(config, **{"train.value_bootstrap": kind}))
        refreshed = learner.reanalyse(batch, points, windows)
        change = np.zeros(batch.value_target.size, np.float32)
        np.add.at(change, points.target, points.weight * (expected - points.stored))
        np.testing.assert_allclose(
            refreshed.value_target - batch.value_target, change.reshape(batch.value_target.shape),
            rtol=1e-5, atol=1e-4,
        )  # fmt: skip
    assert not np.array_equal(best, out.value.numpy())


def test_learning_rate_is_constant_then_decays_linearly_to_its_end() -> None:
    constant = small_config()
    assert learning_rate(constant, 0) == learning_rate(constant, 10**6) == 3e-3
    decaying = replace(
        constant,
        **{
            "train.learning_rate_end": 1e-3,
            "train.learning_rate_decay_start": 100,
            "train.learning_rate_decay_episodes": 400,
        },
    )
    rates = [learning_rate(decaying, e) for e in (0, 100, 300, 500, 10**6)]
    np.testing.assert_allclose(rates, [3e-3, 3e-3, 2e-3, 1e-3, 1e-3])


def test_learner_steps_at_the_scheduled_rate() -> None:
    # The rate is set from the episode count on every step (so a resumed run continues on the
    # schedule) and an Adam step's size follows it: a parameter moves about lr per step.
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    config = replace(
        small_config(),
        **{
            "train.weight_decay": 0.0,
            "train.learning_rate_end": 3e-5,
            "train.learning_rate_decay_start": 0,
            "train.learning_rate_decay_episodes": 10,
        },
    )
    net = StochasticMuZeroNet(config.model, window=config.features.window)
    learner = Learner(net, config)
    batch = filled_replay(config, rng).sample(32, rng)
    windows = rng.normal(size=(32, config.features.window, 9)).astype(np.float32)
    moves = {}
    for episodes in (0, 10):
        before = [p.detach().clone() for p in net.parameters()]
        report, _ = learner.step(batch, windows, episodes)
        assert report["learning_rate"] == learning_rate(config, episodes)
        after = [p.detach() for p in net.parameters()]
        pairs = zip(after, before, strict=True)
        moves[episodes] = max(float((a - b).abs().max()) for a, b in pairs)
    assert moves[0] == pytest.approx(3e-3, rel=0.05)
    assert moves[10] < 0.05 * moves[0]


def test_weight_average_follows_the_learner_as_an_exponential_moving_average() -> None:
    # Off: the acting network is the learner's own. On: after each step the average moves by
    # (1 − decay) toward the learner's new weights, and the learner itself is untouched by it.
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    plain = small_config()
    net = StochasticMuZeroNet(plain.model, window=plain.features.window)
    assert Learner(net, plain).acting is net
    config = replace(plain, **{"train.weight_average": 0.9})
    learner = Learner(net, config)
    start = [p.detach().clone() for p in net.parameters()]
    batch = filled_replay(config, rng).sample(32, rng)
    windows = rng.normal(size=(32, config.features.window, 9)).astype(np.float32)
    learner.step(batch, windows)  # the first update copies the learner's weights
    for a, p in zip(learner.acting.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(a, p)
    previous = [p.detach().clone() for p in learner.acting.parameters()]
    learner.step(batch, windows)
    pairs = zip(learner.acting.parameters(), previous, net.parameters(), strict=True)
    for a, before, p in pairs:
        torch.testing.assert_close(a, 0.9 * before + 0.1 * p.detach())
    assert any(not torch.equal(p, s) for p, s in zip(net.parameters(), start, strict=True))
    assert learner.acting is not net
    assert learner.acting.state_dict().keys() == net.state_dict().keys()
