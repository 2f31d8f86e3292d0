"""The Stochastic MuZero networks: TCN representation, afterstate dynamics, dynamics, predictions.

    s = h(window, static)        representation: causal TCN over the window + MLP over position
    as = φ(s, a)                 afterstate dynamics (the action's deterministic effect)
    (σ, Q) = ψ(as)               afterstate prediction: chance outcome logits, afterstate value
    (s', r) = g(as, c)           dynamics: the bar's chance outcome c gives the next state, reward
    (p, v) = f(s)                prediction: policy logits over the 4 actions, value

Hidden states and afterstates are min-max scaled to [0, 1] per sample (MuZero appendix G).
Values and rewards are logits over `Support`s in h-space; the `*_inference` calls of the
`SearchModel` protocol decode them to pips.

The TCN's output is only read at the last time step, whose receptive field is
1 + (k−1)·Σ dilations bars (15 for kernel 3, dilations 1, 2, 4), so `represent` computes each
layer only at the positions that output depends on (11 conv positions instead of 96, and the
first layer on the 9 raw features); `represent_full` is the plain full causal forward that a
test holds it equal to.
"""

from __future__ import annotations

import math
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from micro.config import ModelConfig
from micro.env.actions import NUM_ACTIONS, NUM_OUTCOMES
from micro.model.inference import AfterstateOutput, InitialOutput, RecurrentOutput
from micro.model.support import Support

N_FEATURES = 9  # temporal features per bar
N_STATIC = 6  # position features
HEAD_INIT_STD = 1e-3  # heads' last layers start near zero: uniform priors, values ≈ 0 pips
SCALE_FLOOR = 1e-5  # min-max scaling never divides by a smaller range


class Prediction(NamedTuple):
    policy_logits: torch.Tensor  # [B, 4]
    value_logits: torch.Tensor  # [B, 2n_v+1]


class AfterstatePrediction(NamedTuple):
    chance_logits: torch.Tensor  # [B, 3] σ over DOWN, NEUTRAL, UP
    q_logits: torch.Tensor  # [B, 2n_v+1]


class Transition(NamedTuple):
    state: torch.Tensor  # [B, H] s' in [0, 1]
    reward_logits: torch.Tensor  # [B, 2n_r+1]


def scale_hidden(x: torch.Tensor) -> torch.Tensor:
    """[B, H] -> [B, H] min-max scaled to [0, 1] per sample."""
    low = x.amin(dim=-1, keepdim=True)
    high = x.amax(dim=-1, keepdim=True)
    return (x - low) / (high - low).clamp_min(SCALE_FLOOR)


def _head(in_features: int, out_features: int) -> nn.Linear:
    """A last layer initialised near zero (not exactly: gradients must reach the trunk)."""
    layer = nn.Linear(in_features, out_features)
    nn.init.normal_(layer.weight, std=HEAD_INIT_STD)
    nn.init.zeros_(layer.bias)
    return layer


class CausalConv(nn.Module):
    """A dilated causal convolution, weights kept as [k, C_in, C_out] for the gather path.

    Tap j reads position t − j·dilation: out[t] = bias + Σ_j x[t − j·d] @ weight[j].
    """

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.dilation = dilation
        bound = 1.0 / math.sqrt(kernel * channels)  # nn.Conv1d's default init
        self.weight = nn.Parameter(torch.empty(kernel, channels, channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound))

    def conv1d_weight(self) -> torch.Tensor:
        """The same weights in nn.Conv1d's layout [C_out, C_in, k] (last tap = newest bar)."""
        return self.weight.flip(0).permute(2, 1, 0)


class _TcnLayerPlan(NamedTuple):
    taps: torch.Tensor  # [P_out, k] int64 rows of the layer's input read by each output
    centre: torch.Tensor  # [P_out] int64 rows of the input at the output positions (residual)
    padded: bool  # whether the input gets a zero row 0 (a tap falls before the window)


def _plan_positions(
    window: int, kernel: int, dilations: tuple[int, ...]
) -> tuple[torch.Tensor, list[_TcnLayerPlan]]:
    """Which positions each layer must compute for the last bar's output, and what they read.

    Walks back from the last time step: layer l's input is held only at the positions later
    layers need (sorted), with a zero row in front when some tap falls before the window (the
    causal zero padding). Returns the window rows the first layer reads (+1: row 0 of the
    padded window is zero) and one plan per layer.
    """
    needed = [window - 1]  # output positions of the last layer
    per_layer: list[tuple[list[int], list[int], int]] = []  # (inputs, outputs, dilation)
    for d in reversed(dilations):
        inputs = sorted({p - j * d for p in needed for j in range(kernel)})
        per_layer.append((inputs, needed, d))
        needed = [p for p in inputs if p >= 0]
    per_layer.reverse()
    plans = []
    for inputs, outputs, d in per_layer:
        kept = [p for p in inputs if p >= 0]
        padded = len(kept) < len(inputs)
        row = {p: i + int(padded) for i, p in enumerate(kept)}  # missing (p < 0) -> row 0
        taps = [[row.get(p - j * d, 0) for j in range(kernel)] for p in outputs]
        plans.append(
            _TcnLayerPlan(
                taps=torch.tensor(taps, dtype=torch.int64),
                centre=torch.tensor([row[p] for p in outputs], dtype=torch.int64),
                padded=padded,
            )
        )
    first_inputs = per_layer[0][0]
    first_rows = ([0] if plans[0].padded else []) + [p + 1 for p in first_inputs if p >= 0]
    return torch.tensor(first_rows, dtype=torch.int64), plans


class Representation(nn.Module):
    """s = h(window [B, W, 9], static [B, 6]) -> [B, H]: causal TCN + static MLP, min-max scaled."""

    _window_rows: torch.Tensor  # [P_0] int64 window rows the first layer reads (a buffer)

    def __init__(self, cfg: ModelConfig, window: int, n_features: int, n_static: int) -> None:
        super().__init__()
        channels = cfg.tcn_channels
        self.window = window
        self.input_projection = nn.Linear(n_features, channels)  # per bar: 9 -> C
        self.convs = nn.ModuleList(
            CausalConv(channels, cfg.tcn_kernel, d) for d in cfg.tcn_dilations
        )
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in cfg.tcn_dilations)
        self.static_mlp = nn.Sequential(
            nn.Linear(n_static, cfg.static_hidden),
            nn.ReLU(),
            nn.Linear(cfg.static_hidden, cfg.static_hidden),
            nn.ReLU(),
        )
        self.output = nn.Linear(channels + cfg.static_hidden, cfg.hidden)
        window_rows, plans = _plan_positions(window, cfg.tcn_kernel, tuple(cfg.tcn_dilations))
        self._padded = tuple(plan.padded for plan in plans)
        self.register_buffer("_window_rows", window_rows, persistent=False)
        for i, plan in enumerate(plans):
            self.register_buffer(f"_taps{i}", plan.taps, persistent=False)
            self.register_buffer(f"_centre{i}", plan.centre, persistent=False)

    @property
    def receptive_field(self) -> int:
        """Bars the last time step's output depends on: 1 + (k−1)·Σ dilations."""
        return 1 + sum((c.kernel - 1) * c.dilation for c, _ in self._layers())

    def _layers(self) -> list[tuple[CausalConv, nn.LayerNorm]]:
        """Each TCN layer's convolution and its norm (the module lists, typed)."""
        return [
            (cast(CausalConv, conv), cast(nn.LayerNorm, norm))
            for conv, norm in zip(self.convs, self.norms, strict=True)
        ]

    def _finish(self, last: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """TCN output at the last bar [B, C] + static [B, 6] -> scaled state [B, H]."""
        joined = torch.cat((last, self.static_mlp(static)), dim=-1)
        return scale_hidden(self.output(joined))

    def forward(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """Fast path: each layer only at the positions the last bar's output depends on."""
        batch = window.shape[0]
        # A constant 1 beside the 9 features carries the projection's bias, so the padding row
        # (all zeros) stays exactly zero after projection, as in the full causal forward.
        bars = torch.cat((window, window.new_ones(batch, window.shape[1], 1)), dim=-1)
        bars = F.pad(bars, (0, 0, 1, 0))[:, self._window_rows]  # [B, P_0, 10] row 0 of pad: 0
        projection = torch.cat(
            (self.input_projection.weight.t(), self.input_projection.bias.unsqueeze(0))
        )  # [10, C]
        x = bars
        for i, (conv, norm) in enumerate(self._layers()):
            taps: torch.Tensor = getattr(self, f"_taps{i}")  # [P_out, k]
            centre: torch.Tensor = getattr(self, f"_centre{i}")  # [P_out]
            if i > 0 and self._padded[i]:
                x = F.pad(x, (0, 0, 1, 0))
            if i == 0:
                # The first layer reads the projected bars: fold the projection into its weights
                # and run it on the 10 raw inputs instead of C channels.
                weight = torch.matmul(projection, conv.weight)  # [k, 10, C]
                residual = x[:, centre] @ projection  # [B, P_out, C]
            else:
                weight = conv.weight  # [k, C, C]
                residual = x[:, centre]  # [B, P_out, C]
            p_out = taps.shape[0]
            flat = x[:, taps].reshape(batch * p_out, -1)  # [B·P_out, k·C_in]
            y = torch.addmm(conv.bias, flat, weight.reshape(flat.shape[1], -1))  # [B·P_out, C]
            x = residual + torch.relu(norm(y.view(batch, p_out, -1)))  # [B, P_out, C]
        return self._finish(x[:, -1], static)

    def forward_full(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """Plain reference: the full causal forward over every bar, output read at the last."""
        x = self.input_projection(window).transpose(1, 2)  # [B, C, W]
        for conv, norm in self._layers():
            pad = (conv.kernel - 1) * conv.dilation
            y = F.conv1d(
                F.pad(x, (pad, 0)), conv.conv1d_weight(), conv.bias, dilation=conv.dilation
            )
            y = torch.relu(norm(y.transpose(1, 2))).transpose(1, 2)  # LayerNorm over channels
            x = x + y
        return self._finish(x[:, :, -1], static)


class _ConditionedMlp(nn.Module):
    """x [B, H] and a category [B] (one-hot as an embedding row) -> hidden [B, M], ReLU."""

    def __init__(self, hidden: int, mlp_hidden: int, categories: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, mlp_hidden)
        # Concatenating a one-hot and a linear layer == adding one row of a matrix: an embedding.
        self.category = nn.Embedding(categories, mlp_hidden)
        nn.init.uniform_(self.category.weight, -1.0 / math.sqrt(hidden), 1.0 / math.sqrt(hidden))
        self.norm = nn.LayerNorm(mlp_hidden)

    def forward(self, x: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.linear(x) + self.category(category)))


class _Mlp(nn.Module):
    """x [B, H] -> hidden [B, M]: Linear, LayerNorm, ReLU."""

    def __init__(self, hidden: int, mlp_hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, mlp_hidden)
        self.norm = nn.LayerNorm(mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.linear(x)))


class StochasticMuZeroNet(nn.Module):
    """The five Stochastic MuZero functions; implements `SearchModel` for the search."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        window: int,
        n_features: int = N_FEATURES,
        n_static: int = N_STATIC,
    ) -> None:
        super().__init__()
        hidden, mlp_hidden = model_cfg.hidden, model_cfg.mlp_hidden
        self.config = model_cfg
        self.window = window
        self.n_features = n_features
        self.n_static = n_static
        self.value_support = Support(model_cfg.value_support, model_cfg.support_mean)
        self.reward_support = Support(model_cfg.reward_support, model_cfg.support_mean)
        self.representation = Representation(model_cfg, window, n_features, n_static)
        # φ(s, a): residual update of s by the action, then rescaled.
        self.afterstate_mlp = _ConditionedMlp(hidden, mlp_hidden, NUM_ACTIONS)
        self.afterstate_out = nn.Linear(mlp_hidden, hidden)
        # ψ(as): σ over the outcomes and Q.
        self.afterstate_head = _Mlp(hidden, mlp_hidden)
        self.chance_logits = _head(mlp_hidden, NUM_OUTCOMES)
        self.q_logits = _head(mlp_hidden, self.value_support.size)
        # g(as, c): residual update of as by the outcome, rescaled; reward from the same layer.
        self.dynamics_mlp = _ConditionedMlp(hidden, mlp_hidden, NUM_OUTCOMES)
        self.dynamics_out = nn.Linear(mlp_hidden, hidden)
        self.reward_logits = _head(mlp_hidden, self.reward_support.size)
        # f(s): policy and value.
        self.prediction_head = _Mlp(hidden, mlp_hidden)
        self.policy_logits = _head(mlp_hidden, NUM_ACTIONS)
        self.value_logits = _head(mlp_hidden, self.value_support.size)

    # ------------------------------------------------------------ raw (logits, for the learner)

    def represent(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """window [B, W, 9], static [B, 6] float32 -> s [B, H] in [0, 1]."""
        self._check_window(window)
        state: torch.Tensor = self.representation(window, static)
        return state

    def represent_full(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """Same as `represent` by the plain full causal TCN forward (the reference; slower)."""
        self._check_window(window)
        return self.representation.forward_full(window, static)

    def predict(self, state: torch.Tensor) -> Prediction:
        """f: s [B, H] -> policy logits [B, 4], value logits [B, 2n_v+1]."""
        x = self.prediction_head(state)
        return Prediction(self.policy_logits(x), self.value_logits(x))

    def afterstate(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """φ: s [B, H], action [B] int64 -> afterstate [B, H] in [0, 1]."""
        x = self.afterstate_mlp(state, action)
        return scale_hidden(state + self.afterstate_out(x))

    def afterstate_predict(self, afterstate: torch.Tensor) -> AfterstatePrediction:
        """ψ: afterstate [B, H] -> chance logits [B, 3], Q logits [B, 2n_v+1]."""
        x = self.afterstate_head(afterstate)
        return AfterstatePrediction(self.chance_logits(x), self.q_logits(x))

    def dynamics(self, afterstate: torch.Tensor, outcome: torch.Tensor) -> Transition:
        """g: afterstate [B, H], outcome [B] int64 -> s' [B, H] in [0, 1], reward logits."""
        x = self.dynamics_mlp(afterstate, outcome)
        state = scale_hidden(afterstate + self.dynamics_out(x))
        return Transition(state, self.reward_logits(x))

    # ------------------------------------------------------------ SearchModel (pips, no grad)

    @torch.inference_mode()
    def initial_inference(self, window: torch.Tensor, static: torch.Tensor) -> InitialOutput:
        """window [B, W, 9], static [B, 6] -> s, prior logits, value (pips)."""
        state = self.represent(window, static)
        prediction = self.predict(state)
        value = self.value_support.to_scalar(prediction.value_logits)
        return InitialOutput(state=state, policy_logits=prediction.policy_logits, value=value)

    @torch.inference_mode()
    def afterstate_inference(self, state: torch.Tensor, action: torch.Tensor) -> AfterstateOutput:
        """state [B, H], action [B] int64 -> afterstate, σ probabilities, Q (pips)."""
        afterstate = self.afterstate(state, action)
        prediction = self.afterstate_predict(afterstate)
        return AfterstateOutput(
            afterstate=afterstate,
            chance_probs=torch.softmax(prediction.chance_logits, dim=-1),
            q=self.value_support.to_scalar(prediction.q_logits),
        )

    @torch.inference_mode()
    def recurrent_inference(
        self, afterstate: torch.Tensor, outcome: torch.Tensor
    ) -> RecurrentOutput:
        """afterstate [B, H], outcome [B] int64 -> s', reward (pips), prior logits, value (pips)."""
        transition = self.dynamics(afterstate, outcome)
        prediction = self.predict(transition.state)
        return RecurrentOutput(
            state=transition.state,
            reward=self.reward_support.to_scalar(transition.reward_logits),
            policy_logits=prediction.policy_logits,
            value=self.value_support.to_scalar(prediction.value_logits),
        )

    def _check_window(self, window: torch.Tensor) -> None:
        if (
            window.dim() != 3
            or window.shape[1] != self.window
            or window.shape[2] != self.n_features
        ):
            raise ValueError(
                f"window must be [B, {self.window}, {self.n_features}], got {list(window.shape)}"
            )
