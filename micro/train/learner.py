"""The learner: Stochastic MuZero's unrolled loss and one optimiser step.

For a start position with window and position features, the network is unrolled K steps along
the actions actually taken and the true chance outcomes (known labels, so no VQ encoder):

    s_0 = h(window, static)
    for k in 0..K:   (p_k, v_k) = f(s_k)                 policy CE, value CE (two-hot)
      if k < K:      as_k = φ(s_k, a_k); (σ_k, Q_k) = ψ(as_k)   σ CE vs c_k, Q CE vs z_k
                     (s_{k+1}, r_k) = g(as_k, c_k)        reward CE vs r_k

The afterstate's Q target is the same n-step value target z_k as its state. The
gradient into each next hidden state is halved (MuZero's scaling), and every term is averaged
over the unroll so K does not change the loss scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from micro.config import Config
from micro.env.actions import NUM_ACTIONS, legal_mask
from micro.model.support import Support
from micro.train.replay import Batch, BootstrapPoints

LOSS_TERMS = ("policy", "value", "reward", "chance", "afterstate_q")


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; gradient multiplied by `scale` backward."""
    return x * scale + x.detach() * (1.0 - scale)


@dataclass(frozen=True)
class LossOutput:
    total: torch.Tensor  # scalar, weighted sum of the terms
    terms: dict[str, float]  # each term's mean (unweighted)
    value_errors: np.ndarray  # [B] |predicted v_0 − z_0| pips, for prioritised replay


def unroll_loss(
    net: torch.nn.Module,
    batch: Batch,
    windows: np.ndarray,
    config: Config,
    value_support: Support,
    reward_support: Support,
) -> LossOutput:
    """The weighted Stochastic MuZero loss of one batch (windows: [B, W, 9] for batch.rows)."""
    train = config.train
    k_steps = batch.actions.shape[1]
    window = torch.from_numpy(windows)
    static = torch.from_numpy(batch.static)
    actions = torch.from_numpy(batch.actions)
    outcomes = torch.from_numpy(batch.outcomes)
    outcome_mask = torch.from_numpy(batch.outcome_mask)
    legal = torch.from_numpy(batch.legal)
    value_target = torch.from_numpy(batch.value_target)
    reward_target = torch.from_numpy(batch.reward_target)
    policy_target = torch.from_numpy(batch.policy_target)
    state_mask = torch.from_numpy(batch.state_mask)
    weights = torch.from_numpy(batch.weights)

    state = net.represent(window, static)
    sums = {term: torch.zeros(len(weights)) for term in LOSS_TERMS}
    value_errors = np.zeros(len(weights), np.float32)
    for k in range(k_steps + 1):
        policy_logits, value_logits = net.predict(state)
        legal_k = legal[:, k]
        log_probs = F.log_softmax(policy_logits.masked_fill(~legal_k, -1e9), dim=-1)
        target = policy_target[:, k] * legal_k  # illegal actions never carry policy mass
        target = target / target.sum(-1, keepdim=True).clamp_min(1e-8)
        policy_ce = -(target * log_probs.masked_fill(~legal_k, 0.0)).sum(-1)
        sums["policy"] += policy_ce * state_mask[:, k]
        sums["value"] += value_support.cross_entropy(value_logits, value_target[:, k])
        if k == 0:
            with torch.no_grad():
                v0 = value_support.to_scalar(value_logits)
                value_errors = (v0 - value_target[:, 0]).abs().numpy()
        if k == k_steps:
            break
        afterstate = net.afterstate(state, actions[:, k])
        chance_logits, q_logits = net.afterstate_predict(afterstate)
        chance_ce = F.cross_entropy(chance_logits, outcomes[:, k], reduction="none")
        sums["chance"] += chance_ce * outcome_mask[:, k]
        q_ce = value_support.cross_entropy(q_logits, value_target[:, k])
        sums["afterstate_q"] += q_ce * state_mask[:, k]
        state, reward_logits = net.dynamics(afterstate, outcomes[:, k])
        sums["reward"] += reward_support.cross_entropy(reward_logits, reward_target[:, k])
        state = scale_gradient(state, 0.5)

    per_term = {
        "policy": sums["policy"] / (k_steps + 1),
        "value": sums["value"] / (k_steps + 1),
        "reward": sums["reward"] / k_steps,
        "chance": sums["chance"] / k_steps,
        "afterstate_q": sums["afterstate_q"] / k_steps,
    }
    loss_weights = {
        "policy": train.loss_policy,
        "value": train.loss_value,
        "reward": train.loss_reward,
        "chance": train.loss_chance,
        "afterstate_q": train.loss_afterstate_q,
    }
    total = sum(loss_weights[t] * (per_term[t] * weights).mean() for t in LOSS_TERMS)
    terms = {t: float(per_term[t].mean().detach()) for t in LOSS_TERMS}
    return LossOutput(total=total, terms=terms, value_errors=value_errors)


def fresh_values(
    net: torch.nn.Module, windows: np.ndarray, static: np.ndarray, side: np.ndarray, kind: str
) -> np.ndarray:
    """[M] pips: the network's own value of M positions, no search (`train.value_bootstrap`).

    `search`: the predicted state value v. `best`: the highest afterstate Q among the legal
    actions, the value of acting greedily from there as the network sees it now.
    """
    root = net.initial_inference(torch.from_numpy(windows), torch.from_numpy(static))
    if kind == "search":
        value: np.ndarray = root.value.numpy()
        return value
    count = len(windows)
    q = torch.stack(
        [
            net.afterstate_inference(root.state, torch.full((count,), a, dtype=torch.int64)).q
            for a in range(NUM_ACTIONS)
        ],
        dim=1,
    )
    legal = torch.from_numpy(legal_mask(side))
    return q.masked_fill(~legal, -torch.inf).max(dim=1).values.numpy()


def learning_rate(config: Config, episodes: int) -> float:
    """The learning rate after `episodes`: constant, then linear to its end over the decay."""
    train = config.train
    if train.learning_rate_decay_episodes <= 0:
        return train.learning_rate
    done = (episodes - train.learning_rate_decay_start) / train.learning_rate_decay_episodes
    share = min(max(done, 0.0), 1.0)
    return train.learning_rate + share * (train.learning_rate_end - train.learning_rate)


class Learner:
    """Owns the optimiser; `step(batch, windows)` applies one clipped AdamW update.

    With `train.weight_average` > 0 it also keeps an exponential moving average of the weights
    (torch's `AveragedModel`); `acting` is the network the actors and checkpoints get.
    """

    def __init__(self, net: torch.nn.Module, config: Config) -> None:
        self.net = net
        self.config = config
        self.value_support = Support(config.model.value_support, config.model.support_mean)
        self.reward_support = Support(config.model.reward_support, config.model.support_mean)
        self.optimizer = torch.optim.AdamW(
            net.parameters(),
            lr=config.train.learning_rate,
            weight_decay=config.train.weight_decay,
        )
        decay = config.train.weight_average
        self.average = (
            AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay)) if decay > 0 else None
        )
        self.steps = 0
        self.reanalysis_shift: float | None = None  # mean |fresh − stored| of the last batch

    @property
    def acting(self) -> torch.nn.Module:
        """The weights that leave the learner: the moving average when on, else the network."""
        if self.average is None:
            return self.net
        return self.average.module

    def reanalyse(self, batch: Batch, points: BootstrapPoints, windows: np.ndarray) -> Batch:
        """`batch` with its value targets bootstrapped from the current network's values of
        `points` (windows: [M, W, 9] for points.rows) instead of the values stored at play time:
        the value half of MuZero Reanalyze (`train.reanalyze`)."""
        if len(points.target) == 0:
            return batch
        self.net.eval()
        fresh = fresh_values(
            self.net, windows, points.static, points.side, self.config.train.value_bootstrap
        )
        self.reanalysis_shift = float(np.abs(fresh - points.stored).mean())
        target = batch.value_target.copy()
        flat = target.reshape(-1)  # a view: writes land in `target`
        flat[points.target] += points.weight * (fresh - points.stored)
        return dataclasses.replace(batch, value_target=target)

    def step(
        self, batch: Batch, windows: np.ndarray, episodes: int = 0
    ) -> tuple[dict[str, float], np.ndarray]:
        """One gradient step at the learning rate after `episodes` of training; returns (losses
        by term + total + grad_norm + learning_rate, value errors [B])."""
        rate = learning_rate(self.config, episodes)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.net.train()
        out = unroll_loss(
            self.net, batch, windows, self.config, self.value_support, self.reward_support
        )
        self.optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.net.parameters(), self.config.train.grad_clip
        )
        self.optimizer.step()
        if self.average is not None:
            self.average.update_parameters(self.net)
        self.steps += 1
        self.net.eval()
        report = dict(out.terms)
        report["total"] = float(out.total.detach())
        report["grad_norm"] = float(grad_norm)
        report["learning_rate"] = rate
        return report, out.value_errors
