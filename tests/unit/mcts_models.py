"""Small hand-made `SearchModel`s for the search tests: a random network and two known answers."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from micro.env.actions import BUY, CLOSE, DOWN, HOLD, LONG, NUM_ACTIONS, SELL, SHORT, UP
from micro.model.inference import AfterstateOutput, InitialOutput, RecurrentOutput

WINDOW = 8  # bars in the test windows


class TinySearchModel(nn.Module):
    """A random little Stochastic MuZero: every output depends on state, action and outcome."""

    def __init__(self, hidden: int = 16, seed: int = 0, value_scale: float = 10.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.value_scale = value_scale
        self.represent = nn.Linear(WINDOW * 9 + 6, hidden)
        self.afterstate_dynamics = nn.Linear(hidden + NUM_ACTIONS, hidden)
        self.afterstate_heads = nn.Linear(hidden, 3 + 1)
        self.dynamics = nn.Linear(hidden + 3, hidden)
        self.heads = nn.Linear(hidden, 1 + NUM_ACTIONS + 1)
        with torch.no_grad():  # larger weights than torch's default: roots that differ clearly
            for parameter in self.parameters():
                parameter.mul_(4.0)

    def initial_inference(self, window: torch.Tensor, static: torch.Tensor) -> InitialOutput:
        state = torch.sigmoid(self.represent(torch.cat([window.flatten(1), static], dim=1)))
        _, logits, value = self._predict(state)
        return InitialOutput(state=state, policy_logits=logits, value=value)

    def afterstate_inference(self, state: torch.Tensor, action: torch.Tensor) -> AfterstateOutput:
        onehot = F.one_hot(action, NUM_ACTIONS).to(state.dtype)
        afterstate = torch.sigmoid(self.afterstate_dynamics(torch.cat([state, onehot], dim=1)))
        heads = self.afterstate_heads(afterstate)
        return AfterstateOutput(
            afterstate=afterstate,
            chance_probs=torch.softmax(heads[:, :3], dim=1),
            q=self.value_scale * torch.tanh(heads[:, 3]),
        )

    def recurrent_inference(
        self, afterstate: torch.Tensor, outcome: torch.Tensor
    ) -> RecurrentOutput:
        onehot = F.one_hot(outcome, 3).to(afterstate.dtype)
        state = torch.sigmoid(self.dynamics(torch.cat([afterstate, onehot], dim=1)))
        reward, logits, value = self._predict(state)
        return RecurrentOutput(state=state, reward=reward, policy_logits=logits, value=value)

    def _predict(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        heads = self.heads(state)
        reward = self.value_scale * torch.tanh(heads[:, 0])
        logits = heads[:, 1 : 1 + NUM_ACTIONS]
        value = self.value_scale * torch.tanh(heads[:, -1])
        return reward, logits, value


class TableModel(nn.Module):
    """A tabular model whose hidden state is [position side, last outcome sign, spare].

    The state knows its side so that legality and rewards follow the imagined position; the
    afterstate knows the side after the action. Subclasses set the tables.
    """

    logits = (0.0, 0.0, 0.0, 0.0)  # policy logits per action
    q_by_side = {SHORT: 0.0, 0: 0.0, LONG: 0.0}  # afterstate Q by the side after the action
    sigma = (1 / 3, 1 / 3, 1 / 3)  # σ over DOWN, NEUTRAL, UP
    drift_pips = 0.0  # reward of a bar = side × (drift_pips + move_pips × direction)
    move_pips = 0.0  # direction: +1 UP, 0 NEUTRAL, −1 DOWN

    def initial_inference(self, window: torch.Tensor, static: torch.Tensor) -> InitialOutput:
        side = static[:, 0]
        state = torch.stack([side, torch.zeros_like(side), torch.zeros_like(side)], dim=1)
        return InitialOutput(
            state=state, policy_logits=self._logits(state), value=torch.zeros_like(side)
        )

    def afterstate_inference(self, state: torch.Tensor, action: torch.Tensor) -> AfterstateOutput:
        side = state[:, 0].round().long()
        flat = side == 0
        new_side = side.clone()
        new_side[flat & (action == BUY)] = LONG
        new_side[flat & (action == SELL)] = SHORT
        new_side[action == CLOSE] = 0
        afterstate = state.clone()
        afterstate[:, 0] = new_side.to(state.dtype)
        q = torch.tensor([self.q_by_side[int(s)] for s in new_side], dtype=state.dtype)
        sigma = torch.tensor(self.sigma, dtype=state.dtype).expand(len(side), 3)
        return AfterstateOutput(afterstate=afterstate, chance_probs=sigma, q=q)

    def recurrent_inference(
        self, afterstate: torch.Tensor, outcome: torch.Tensor
    ) -> RecurrentOutput:
        direction = (outcome == UP).to(afterstate.dtype) - (outcome == DOWN).to(afterstate.dtype)
        state = afterstate.clone()
        state[:, 1] = direction
        reward = afterstate[:, 0] * (self.drift_pips + direction * self.move_pips)
        return RecurrentOutput(
            state=state,
            reward=reward,
            policy_logits=self._logits(state),
            value=torch.zeros_like(reward),
        )

    def _logits(self, state: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.logits, dtype=state.dtype).expand(len(state), NUM_ACTIONS)


class BanditModel(TableModel):
    """Being long earns 5 pips a bar whatever the outcome, short loses 5; the prior loves SELL."""

    logits = (0.0, -1.0, 3.0, 0.0)
    q_by_side = {SHORT: -5.0, 0: 0.0, LONG: 5.0}
    drift_pips = 5.0


class ChanceModel(TableModel):
    """Afterstates carry no value; the bar's outcome pays ±10 pips by side, with σ = `sigma`."""

    move_pips = 10.0

    def __init__(self, p_up: float) -> None:
        super().__init__()
        self.sigma = (1.0 - p_up - 0.05, 0.05, p_up)


def observations(
    batch: int, seed: int, sides: np.ndarray | None = None, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random window [B, W, 9], static [B, 6], legal [B, 4], side [B] with mixed sides."""
    rng = np.random.default_rng(seed)
    if sides is None:
        sides = np.array([(-1, 0, 1)[i % 3] for i in range(batch)], np.int8)
    window = rng.normal(size=(batch, WINDOW, 9)).astype(dtype)
    static = rng.uniform(-1, 1, size=(batch, 6)).astype(dtype)
    static[:, 0] = sides
    legal = np.zeros((batch, NUM_ACTIONS), bool)
    legal[:, HOLD] = True
    legal[:, BUY] = sides == 0
    legal[:, SELL] = sides == 0
    legal[:, CLOSE] = sides != 0
    return window, static, legal, np.asarray(sides, np.int8)
