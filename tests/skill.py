"""A checkpoint with known skill, made by hand: a momentum trader written into the weights.

On a trending market, entering in the direction of the last few bars' move and leaving when the
move turns is real timing skill (the random-entry baseline with the same sides and holding
cannot match it); on a random walk it has none. Tests use it to show the promotion gates pass a
checkpoint that has an edge and refuse ones that do not, through the real validator.

The weights (everything else zero, so values, rewards and Q are 0 and the search follows the
prior):

- representation: the TCN's convolutions are zero, so its output at the last bar is the input
  projection of that bar: channel 0 = momentum_fast (tanh of the 5-bar move / 10 pips); the
  static MLP gives long = relu(side) and short = relu(−side); the hidden state before its
  min-max scaling is x = [momentum, long, short, 1, 0, …];
- prediction head: units u = ±(w · x) whose rows sum to zero, so the min-max scaling (x·a + b)
  drops out and the LayerNorm only rescales them (the ± pairs keep the mean 0);
- policy logits: BUY ∝ relu(m − θ), SELL ∝ relu(−m − θ), CLOSE ∝ relu(long − 1 − m − θc) +
  relu(short − 1 + m − θc), HOLD ∝ ε: flat, it enters with the move; in a position it holds
  until the move turns by θc.
"""

from __future__ import annotations

import torch

from micro.config import Config
from micro.env.actions import BUY, CLOSE, HOLD, SELL
from micro.features import FEATURE_NAMES
from micro.model.networks import StochasticMuZeroNet

ENTER = 0.45  # θ: |momentum_fast| to enter (tanh(Δ5 / 10 pips): a ~5-pip move over 5 bars)
EXIT = 0.2  # θc: the move against the position that closes it
HOLD_MARGIN = 0.02  # ε
SHARPNESS = 20.0  # K: how sharply the prior prefers the rule's action


@torch.no_grad()
def momentum_network(config: Config) -> StochasticMuZeroNet:
    """A StochasticMuZeroNet of `config`'s sizes that trades 5-bar momentum (module docstring)."""
    net = StochasticMuZeroNet(config.model, config.features.window)
    for parameter in net.parameters():
        parameter.zero_()
    rep = net.representation
    channels = config.model.tcn_channels
    rep.input_projection.weight[0, FEATURE_NAMES.index("momentum_fast")] = 1.0
    first, second = rep.static_mlp[0], rep.static_mlp[2]
    first.weight[0, 0], first.weight[1, 0] = 1.0, -1.0  # side -> long, short
    second.weight[0, 0], second.weight[1, 1] = 1.0, 1.0
    out = rep.output  # x = [momentum, long, short, 1, 0, ...]
    out.weight[0, 0] = 1.0
    out.weight[1, channels] = 1.0
    out.weight[2, channels + 1] = 1.0
    out.bias[3] = 1.0
    m, long_, short, one, zero = 0, 1, 2, 3, 4
    rows = [
        {m: 1.0, one: -ENTER},  # BUY
        {m: -1.0, one: -ENTER},  # SELL
        {long_: 1.0, m: -1.0, one: -1.0 - EXIT},  # CLOSE a long
        {short: 1.0, m: 1.0, one: -1.0 - EXIT},  # CLOSE a short
        {one: HOLD_MARGIN},  # HOLD
    ]
    head = net.prediction_head
    head.norm.weight.fill_(1.0)
    for unit, row in enumerate(rows):
        for sign, index in ((1.0, unit), (-1.0, unit + len(rows))):
            for j, w in row.items():
                head.linear.weight[index, j] = sign * w
            head.linear.weight[index, zero] = -sign * sum(row.values())  # rows sum to zero
    policy = net.policy_logits.weight  # [4, M]
    policy[BUY, 0] = policy[SELL, 1] = policy[CLOSE, 2] = policy[CLOSE, 3] = SHARPNESS
    policy[HOLD, 4] = SHARPNESS
    for norm in (net.afterstate_mlp.norm, net.afterstate_head.norm, net.dynamics_mlp.norm):
        norm.weight.fill_(1.0)
    return net.eval()
