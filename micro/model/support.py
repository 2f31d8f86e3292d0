"""Categorical supports in h-space: two-hot targets and decoding of value/reward logits to pips.

MuZero (appendix F) squashes scalars with h(x) = sign(x)(√(|x|+1) − 1) + εx before putting them
on a categorical support, so one set of bins spans both a 0.3-pip reward and a 300-pip value.
The bins here are the integers −n..n in h-space; a scalar is a distribution over them.
"""

from __future__ import annotations

import numpy as np
import torch

EPSILON = 0.001  # ε of h: keeps h invertible and Lipschitz for large |x|


def h(x: torch.Tensor) -> torch.Tensor:
    """h(x) = sign(x)(√(|x|+1) − 1) + εx: pips -> h-space (same shape and dtype)."""
    return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1.0) - 1.0) + EPSILON * x


def h_inverse(y: torch.Tensor) -> torch.Tensor:
    """The exact inverse of h (Pohlen et al. 2018): h-space -> pips (same shape and dtype).

    With t = √(|x|+1), h is εt² + t − (1+ε) for x ≥ 0, so t is the positive root of that
    quadratic. The root is written as 2c / (√(1+4εc) + 1), c = |y|+1+ε, rather than
    (√(1+4εc) − 1) / 2ε: the same number without the cancellation that costs float32 its
    precision near zero.
    """
    c = torch.abs(y) + (1.0 + EPSILON)
    t = 2.0 * c / (torch.sqrt(1.0 + 4.0 * EPSILON * c) + 1.0)
    return torch.sign(y) * ((t - 1.0) * (t + 1.0))


def h_numpy(x: np.ndarray) -> np.ndarray:
    """h on numpy arrays (for targets built outside torch)."""
    out: np.ndarray = np.sign(x) * (np.sqrt(np.abs(x) + 1.0) - 1.0) + EPSILON * x
    return out


def h_inverse_numpy(y: np.ndarray) -> np.ndarray:
    """h⁻¹ on numpy arrays."""
    c = np.abs(y) + (1.0 + EPSILON)
    t = 2.0 * c / (np.sqrt(1.0 + 4.0 * EPSILON * c) + 1.0)
    out: np.ndarray = np.sign(y) * ((t - 1.0) * (t + 1.0))
    return out


SUPPORT_MEANS = ("h", "pips")


class Support:
    """Integer bins −n..n in h-space over a scalar in pips: two-hot targets and decoding.

    `mean` says what a distribution over the bins means. `h` (MuZero's): the two-hot splits a
    target between its two bins linearly in h-space, and a prediction decodes as h⁻¹ of its
    expectation in h-space, which for a spread-out distribution is less than its mean in pips
    (h is concave on each side of 0: Jensen). `pips`: each bin stands for h⁻¹ of itself in pips,
    the two-hot splits linearly in pips and a prediction decodes as its expectation in pips, so
    the value a noisy target is learned to is its mean (as DreamerV3's two-hot on its bins).
    """

    def __init__(self, n: int, mean: str = "h") -> None:
        if n < 1:
            raise ValueError(f"a support needs n >= 1 bins each side, got {n}")
        if mean not in SUPPORT_MEANS:
            raise ValueError(f"a support's mean is one of {SUPPORT_MEANS}, got {mean!r}")
        self.n = n
        self.size = 2 * n + 1
        self.mean = mean
        self.bins = torch.arange(-n, n + 1, dtype=torch.float32)  # [2n+1] h-space
        self.points = h_inverse(self.bins.to(torch.float64)).to(torch.float32)  # [2n+1] pips
        self.max_pips = float(h_inverse(torch.tensor(float(n), dtype=torch.float64)))

    def __repr__(self) -> str:
        return f"Support(n={self.n}, ±{self.max_pips:.1f} pips, mean={self.mean})"

    def two_hot(self, x: torch.Tensor) -> torch.Tensor:
        """x [B] pips -> [B, 2n+1] probabilities on the two bins around h(x) (clipped to ±n)."""
        x = x.to(torch.float32)
        y = h(x).clamp(-self.n, self.n)  # [B] h-space
        lower = torch.floor(y).clamp(max=self.n - 1)  # [B] the end bin takes weight 1 at +n
        if self.mean == "h":
            upper_weight = y - lower  # [B] in [0, 1]
        else:
            points = self._on(x.device)[1]
            left = points[(lower + self.n).to(torch.int64)]
            right = points[(lower + self.n + 1).to(torch.int64)]
            upper_weight = ((x - left) / (right - left)).clamp(0.0, 1.0)
        index = (lower + self.n).to(torch.int64).unsqueeze(-1)  # [B, 1]
        out = torch.zeros(*y.shape, self.size, dtype=torch.float32, device=x.device)
        out.scatter_add_(-1, index, (1.0 - upper_weight).unsqueeze(-1))
        out.scatter_add_(-1, index + 1, upper_weight.unsqueeze(-1))
        return out

    def to_scalar(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [B, 2n+1] -> [B] pips: the softmax's expectation (`mean`: h⁻¹ of it in h-space,
        or in pips)."""
        probs = torch.softmax(logits, dim=-1)
        bins, points = self._on(probs.device)
        if self.mean == "pips":
            return probs @ points.to(probs.dtype)
        return h_inverse(probs @ bins.to(probs.dtype))

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The bins (h-space) and their points (pips) on `device`: moved once, not per call."""
        if self.bins.device != device:
            self.bins, self.points = self.bins.to(device), self.points.to(device)
        return self.bins, self.points

    def cross_entropy(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """logits [B, 2n+1], target x [B] pips -> [B] cross-entropy against two_hot(x)."""
        target = self.two_hot(x).to(logits.dtype)
        return -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
