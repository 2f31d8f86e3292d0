"""h-space transform and categorical supports: exact inverse, two-hot targets, decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from micro.config import ModelConfig
from micro.model.support import Support, h, h_inverse, h_inverse_numpy, h_numpy

PIPS = [-1e6, -12345.6, -300.0, -17.5, -1.0, -0.3, -1e-4, 0.0, 1e-4, 0.3, 1.0, 17.5, 300.0, 1e6]


def test_h_inverse_undoes_h_in_float64_for_negative_zero_and_positive_pips() -> None:
    x = torch.tensor(PIPS, dtype=torch.float64)
    torch.testing.assert_close(h_inverse(h(x)), x, rtol=1e-12, atol=1e-12)


def test_h_inverse_undoes_h_in_float32_for_negative_zero_and_positive_pips() -> None:
    x = torch.tensor(PIPS, dtype=torch.float32)
    back = h_inverse(h(x))
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, x, rtol=2e-5, atol=1e-5)


def test_h_undoes_h_inverse_across_the_h_space_range() -> None:
    y = torch.linspace(-2000.0, 2000.0, 40_001, dtype=torch.float64)
    torch.testing.assert_close(h(h_inverse(y)), y, rtol=1e-12, atol=1e-12)


def test_h_matches_its_formula_and_is_odd() -> None:
    x = torch.tensor([4.0, 99.0], dtype=torch.float64)
    expected = torch.sqrt(x + 1) - 1 + 0.001 * x  # √5 − 1 + 0.004, 10 − 1 + 0.099
    torch.testing.assert_close(h(x), expected)
    torch.testing.assert_close(h(-x), -expected)
    assert h(torch.tensor(0.0)).item() == 0.0


def test_numpy_versions_agree_with_torch() -> None:
    x = np.array(PIPS, dtype=np.float64)
    np.testing.assert_allclose(h_numpy(x), h(torch.from_numpy(x)).numpy(), rtol=1e-15)
    np.testing.assert_allclose(h_inverse_numpy(h_numpy(x)), x, rtol=1e-12, atol=1e-12)


def test_two_hot_rows_sum_to_one_with_at_most_two_neighbouring_non_zeros() -> None:
    support = Support(16)
    x = torch.tensor([-1e4, -280.0, -37.2, -1.0, 0.0, 0.42, 3.0, 99.9, 280.0, 1e4])
    target = support.two_hot(x)
    assert target.shape == (10, 33)
    assert target.dtype == torch.float32
    torch.testing.assert_close(target.sum(-1), torch.ones(10))
    assert (target >= 0).all()
    for row in target:
        nonzero = torch.nonzero(row).flatten()
        assert 1 <= len(nonzero) <= 2
        if len(nonzero) == 2:
            assert nonzero[1] - nonzero[0] == 1


def test_two_hot_puts_the_expectation_at_h_of_x() -> None:
    support = Support(16)
    x = torch.tensor([-37.2, -1.0, 0.0, 0.42, 3.0, 99.9])
    expectation = support.two_hot(x) @ support.bins
    torch.testing.assert_close(expectation, h(x))


def test_two_hot_of_zero_is_the_centre_bin() -> None:
    support = Support(8)
    target = support.two_hot(torch.tensor([0.0]))
    assert target[0, 8] == 1.0
    assert target.sum() == 1.0


def test_values_beyond_the_support_clip_to_the_end_bins() -> None:
    support = Support(4)  # ±~24 pips
    target = support.two_hot(torch.tensor([-1e5, 1e5, support.max_pips]))
    assert target[0, 0] == 1.0
    assert target[1, -1] == 1.0
    assert target[2, -1] == pytest.approx(1.0, abs=1e-4)
    decoded = support.to_scalar(torch.log(target[:2]))
    torch.testing.assert_close(decoded, torch.tensor([-support.max_pips, support.max_pips]))


def test_two_hot_round_trip_recovers_pips_inside_the_support() -> None:
    support = Support(ModelConfig().value_support)
    x = torch.linspace(-support.max_pips, support.max_pips, 2001)
    decoded = support.to_scalar(torch.log(support.two_hot(x)))
    torch.testing.assert_close(decoded, x, rtol=1e-4, atol=1e-4)


def test_default_value_support_spans_about_three_hundred_pips() -> None:
    value = Support(ModelConfig().value_support)
    reward = Support(ModelConfig().reward_support)
    assert 250.0 < value.max_pips < 320.0
    assert 60.0 < reward.max_pips < 100.0  # a bar's move rarely exceeds this many pips


def test_uniform_logits_decode_to_zero_pips() -> None:
    support = Support(16)
    assert support.to_scalar(torch.zeros(3, 33)).abs().max().item() < 1e-5


def test_cross_entropy_is_smallest_at_the_two_hot_target() -> None:
    support = Support(16)
    x = torch.tensor([12.5])
    at_target = support.cross_entropy(torch.log(support.two_hot(x) + 1e-12), x)
    elsewhere = support.cross_entropy(torch.log(support.two_hot(-x) + 1e-12), x)
    uniform = support.cross_entropy(torch.zeros(1, 33), x)
    assert at_target.item() < uniform.item() < elsewhere.item()


def test_a_support_needs_at_least_one_bin_each_side() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        Support(0)


def test_the_pips_mean_two_hot_puts_the_expectation_at_x_in_pips_and_round_trips() -> None:
    support = Support(ModelConfig().value_support, "pips")
    x = torch.linspace(-support.max_pips, support.max_pips, 2001)
    target = support.two_hot(x)
    torch.testing.assert_close(target.sum(-1), torch.ones(2001))
    torch.testing.assert_close(target @ support.points, x, rtol=1e-4, atol=1e-3)
    decoded = support.to_scalar(torch.log(target))
    torch.testing.assert_close(decoded, x, rtol=1e-4, atol=1e-3)
    clipped = support.two_hot(torch.tensor([-1e5, 1e5]))
    assert clipped[0, 0] == 1.0 and clipped[1, -1] == 1.0


def test_a_noisy_target_decodes_to_its_mean_in_pips_and_below_it_in_h() -> None:
    # The distribution cross-entropy on two-hot targets is minimised by is the mean of the
    # targets' two-hots. For noisy returns (mean +20 pips, sd 40, like a held trend trade's) the
    # `h` decoding reads it as much less than +20 (Jensen: h is concave on each side of 0), the
    # `pips` decoding as +20.
    returns = 20.0 + 40.0 * torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    mean = float(returns.mean())
    decoded = {}
    for kind in ("h", "pips"):
        support = Support(ModelConfig().value_support, kind)
        best = support.two_hot(returns).mean(0, keepdim=True)
        decoded[kind] = float(support.to_scalar(torch.log(best))[0])
    assert decoded["pips"] == pytest.approx(mean, abs=0.05)
    assert decoded["h"] < mean - 5.0


def test_a_support_refuses_an_unknown_mean() -> None:
    with pytest.raises(ValueError, match="mean"):
        Support(8, "median")
