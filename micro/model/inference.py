"""The contract between the search and the network: three batched inference calls.

All values are scalars in pips (already decoded from the categorical supports). Hidden states
stay torch tensors so the search can keep them in one [B, N, H] buffer without copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class InitialOutput:
    state: torch.Tensor  # [B, H] hidden state s (min-max scaled to [0, 1])
    policy_logits: torch.Tensor  # [B, 4] (illegal actions are masked by the caller)
    value: torch.Tensor  # [B] pips


@dataclass(frozen=True)
class AfterstateOutput:
    afterstate: torch.Tensor  # [B, H] afterstate as = φ(s, a)
    chance_probs: torch.Tensor  # [B, 3] σ over DOWN, NEUTRAL, UP
    q: torch.Tensor  # [B] pips: the afterstate's value Q(s, a)


@dataclass(frozen=True)
class RecurrentOutput:
    state: torch.Tensor  # [B, H] next hidden state s' = g(as, c)
    reward: torch.Tensor  # [B] pips on the chance -> state edge
    policy_logits: torch.Tensor  # [B, 4]
    value: torch.Tensor  # [B] pips


class SearchModel(Protocol):
    """What the search needs of a network (the real one, or a hand-made one in tests)."""

    def initial_inference(self, window: torch.Tensor, static: torch.Tensor) -> InitialOutput:
        """window [B, W, 9] float32, static [B, 6] float32 -> s, prior logits, value."""
        ...

    def afterstate_inference(self, state: torch.Tensor, action: torch.Tensor) -> AfterstateOutput:
        """state [B, H], action [B] int64 -> afterstate, σ, Q."""
        ...

    def recurrent_inference(
        self, afterstate: torch.Tensor, outcome: torch.Tensor
    ) -> RecurrentOutput:
        """afterstate [B, H], outcome [B] int64 (0 DOWN, 1 NEUTRAL, 2 UP) -> s', r, prior, value."""
        ...
