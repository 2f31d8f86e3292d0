"""The mirror market (every price move negated) is as valid as the market: nothing favours a side.

Features, rewards, trade records and the search must treat the mirror symmetrically (BUY ↔
SELL, DOWN ↔ UP), or a learner would see a side bet where there is none. Each test builds the
mirror from real candles and runs the real code on both.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from micro.config import Config, replace
from micro.data.instruments import instrument
from micro.data.synth import synthesize
from micro.env.actions import BUY, CLOSE, HOLD, MIRROR_ACTION, MIRROR_OUTCOME, SELL, legal_mask
from micro.env.position import mirror_static
from micro.env.trading import TradingEnv
from micro.features.mirror import mirror_candles, mirror_windows
from micro.features.outcomes import outcome_labels
from micro.features.scaling import fit_scaling
from micro.features.temporal import raw_features, scale_features
from micro.mcts.agent import Agent, Observations
from micro.model.inference import AfterstateOutput, InitialOutput, RecurrentOutput
from micro.train.replay import Batch, mirror_batch
from tests.unit.env_markets import hand_market
from tests.unit.mcts_models import TinySearchModel, observations

GBP_JPY = instrument("GBP_JPY")


def candles(regime: str = "trend", days: int = 10, seed: int = 3) -> dict[str, np.ndarray]:
    frame = synthesize("GBP_JPY", days, seed, regime, "2022-01-03")
    ts = (frame["ts"].astype("int64") // 1_000_000_000).to_numpy()
    return {"ts": ts, **{c: frame[c].to_numpy() for c in ("open", "high", "low", "close")}}


def mirrored(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every move negated around the first close (`mirror_candles`): high and low swap roles."""
    o, h, lo, cl = mirror_candles(c["open"], c["high"], c["low"], c["close"])
    return {"ts": c["ts"], "open": o, "high": h, "low": lo, "close": cl}


def features(c: dict[str, np.ndarray]) -> tuple[np.ndarray, object]:
    cfg = Config().features
    raw = raw_features(c["ts"], c["high"], c["low"], c["close"], GBP_JPY.pip, cfg)
    scaling = fit_scaling(raw[: len(raw) * 7 // 10, 1], raw[: len(raw) * 7 // 10, 2])
    return scale_features(raw, scaling), scaling


def test_prepared_features_of_the_mirror_market_follow_the_mirror_rules() -> None:
    market = candles()
    feats, scaling = features(market)
    mirror_feats, mirror_scaling = features(mirrored(market))
    # Momentum bounds are symmetric, so both markets scale momentum identically.
    assert scaling.momentum_lo == -scaling.momentum_hi
    assert mirror_scaling.momentum_hi == pytest.approx(scaling.momentum_hi)
    ok = np.isfinite(feats).all(axis=1)
    assert ok.sum() > 10_000
    expected = mirror_windows(feats[ok][None])[0]
    np.testing.assert_allclose(mirror_feats[ok], expected, atol=2e-5)


def test_asymmetric_percentiles_still_give_symmetric_momentum_bounds() -> None:
    drifting = np.r_[np.linspace(-5, 40, 1000)]  # a training period that only rose
    scaling = fit_scaling(drifting, np.abs(drifting))
    assert scaling.momentum_lo == -scaling.momentum_hi
    assert scaling.momentum_hi == pytest.approx(np.percentile(drifting, 99.9))


def test_outcome_labels_swap_down_and_up_in_the_mirror() -> None:
    market = candles(days=5)
    cfg = Config().features
    labels = outcome_labels(market["close"], cfg)
    mirror_labels = outcome_labels(mirrored(market)["close"], cfg)
    known = labels >= 0
    assert known.sum() > 1000
    np.testing.assert_array_equal(mirror_labels[known], MIRROR_OUTCOME[labels[known]])


def test_the_env_pays_the_mirror_trade_exactly_what_it_paid_the_trade() -> None:
    c = candles(days=4, seed=9)
    n = 3000
    original = hand_market(c["close"][:n], open_=c["open"][:n], high=c["high"][:n],
                           low=c["low"][:n], session_bars=n)  # fmt: skip
    m = mirrored({k: v[:n] for k, v in c.items()})
    mirror = hand_market(m["close"], open_=m["open"], high=m["high"], low=m["low"], session_bars=n)
    config = replace(Config(), **{"risk.stop_loss_pips": 15.0})  # stops happen on both sides
    rng = np.random.default_rng(0)
    envs = (TradingEnv(original, config, 4), TradingEnv(mirror, config, 4))
    obs = [env.reset(np.zeros(4, np.int64)) for env in envs]
    rewards = ([], [])
    trades = ([], [])
    for _ in range(n - 1):
        flat = obs[0].side == 0
        pick = rng.random(4)
        actions = np.where(flat, np.where(pick < 0.05, BUY, np.where(pick < 0.1, SELL, HOLD)),
                           np.where(pick < 0.03, CLOSE, HOLD))  # fmt: skip
        np.testing.assert_array_equal(obs[1].side, -obs[0].side)
        np.testing.assert_allclose(obs[1].static, mirror_static(obs[0].static), atol=1e-6)
        results = [envs[0].step(actions), envs[1].step(MIRROR_ACTION[actions])]
        for i, result in enumerate(results):
            rewards[i].append(result.reward)
            trades[i].append(result.trades)
        obs = [r.observation for r in results]
    np.testing.assert_allclose(np.array(rewards[1]), np.array(rewards[0]), atol=1e-6)
    t0, t1 = np.concatenate(trades[0]), np.concatenate(trades[1])
    assert t0.size > 50 and (t0["side"] > 0).any() and (t0["side"] < 0).any()
    np.testing.assert_array_equal(t1["side"], -t0["side"])
    np.testing.assert_allclose(t1["pips"], t0["pips"], atol=1e-6)
    np.testing.assert_array_equal(t1["bars_held"], t0["bars_held"])


class MirroredModel(torch.nn.Module):
    """`model` as it would answer in the mirror market: inputs mirrored, outputs swapped back."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.actions = torch.from_numpy(MIRROR_ACTION)
        self.outcomes = torch.from_numpy(MIRROR_OUTCOME)

    def initial_inference(self, window: torch.Tensor, static: torch.Tensor) -> InitialOutput:
        w = torch.from_numpy(mirror_windows(window.numpy())).to(window.dtype)
        s = torch.from_numpy(mirror_static(static.numpy())).to(static.dtype)
        out = self.model.initial_inference(w, s)
        return InitialOutput(out.state, out.policy_logits[:, self.actions], out.value)

    def afterstate_inference(self, state: torch.Tensor, action: torch.Tensor) -> AfterstateOutput:
        out = self.model.afterstate_inference(state, self.actions[action])
        return AfterstateOutput(out.afterstate, out.chance_probs[:, self.outcomes], out.q)

    def recurrent_inference(
        self, afterstate: torch.Tensor, outcome: torch.Tensor
    ) -> RecurrentOutput:
        out = self.model.recurrent_inference(afterstate, self.outcomes[outcome])
        return RecurrentOutput(out.state, out.reward, out.policy_logits[:, self.actions], out.value)


@pytest.mark.parametrize("selection", ["puct", "gumbel"])
def test_the_search_in_the_mirror_market_swaps_buy_and_sell_and_nothing_else(
    selection: str,
) -> None:
    model = TinySearchModel(seed=4).double().eval()
    mcts = replace(Config(), **{"mcts.root_selection": selection}).mcts
    window, static, legal, side = observations(48, seed=2)
    agent = Agent(model, mcts, num_simulations=16)
    mirror_agent = Agent(MirroredModel(model), mcts, num_simulations=16)
    rng = np.random.default_rng(0)
    actions, why = agent.act(Observations(window, static, legal, side), "greedy", rng)
    m_window = mirror_windows(window).astype(np.float64)
    m_static = mirror_static(static).astype(np.float64)
    m_actions, m_why = mirror_agent.act(
        Observations(m_window, m_static, legal, -side), "greedy", rng
    )
    np.testing.assert_array_equal(m_actions, MIRROR_ACTION[actions])
    np.testing.assert_array_equal(m_why.visit_counts, why.visit_counts[:, MIRROR_ACTION])
    np.testing.assert_allclose(m_why.value, why.value, rtol=1e-5, atol=1e-5)
    assert (actions == BUY).any() and (actions == SELL).any()


def test_a_mirrored_batch_swaps_sides_actions_outcomes_and_policies_and_is_an_involution() -> None:
    rng = np.random.default_rng(1)
    b, k = 16, 3
    side = rng.integers(-1, 2, (b, k + 1)).astype(np.int8)
    policy = rng.random((b, k + 1, 4)).astype(np.float32)
    batch = Batch(
        ids=np.arange(b), rows=np.arange(b), static=rng.random((b, 6)).astype(np.float32),
        actions=rng.integers(0, 4, (b, k)), outcomes=rng.integers(0, 3, (b, k)),
        outcome_mask=np.ones((b, k), np.float32), legal=legal_mask(side),
        value_target=rng.random((b, k + 1)).astype(np.float32),
        reward_target=rng.random((b, k)).astype(np.float32), policy_target=policy,
        state_mask=np.ones((b, k + 1), np.float32), weights=np.ones(b, np.float32),
    )  # fmt: skip
    windows = rng.random((b, 8, 9)).astype(np.float32)
    flip = np.arange(b) % 2 == 0
    m, w = mirror_batch(batch, windows, flip)
    np.testing.assert_array_equal(m.actions[flip], MIRROR_ACTION[batch.actions[flip]])
    np.testing.assert_array_equal(m.actions[~flip], batch.actions[~flip])
    np.testing.assert_array_equal(m.outcomes[flip], MIRROR_OUTCOME[batch.outcomes[flip]])
    np.testing.assert_array_equal(m.policy_target[flip][..., BUY], policy[flip][..., SELL])
    np.testing.assert_array_equal(m.static[flip, 0], -batch.static[flip, 0])
    np.testing.assert_array_equal(m.reward_target, batch.reward_target)
    np.testing.assert_array_equal(w[~flip], windows[~flip])
    back, w2 = mirror_batch(m, w, flip)
    for name in ("actions", "outcomes", "policy_target", "static"):
        np.testing.assert_allclose(getattr(back, name), getattr(batch, name), atol=1e-6)
    np.testing.assert_allclose(w2, windows, atol=1e-6)
