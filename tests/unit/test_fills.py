"""The one stop-fill and close engine every pricer calls: hand-computed cases on a JPY pair."""

from __future__ import annotations

import math

import pytest

from micro.env.fills import (
    STOP_TOUCH_PIPS,
    round_trip_pips,
    stop_fill,
    stop_level,
    worst_excursion,
)

PIP = 0.01


def test_the_stop_rests_the_stop_distance_against_the_position() -> None:
    assert stop_level(1, 150.0, 30.0, PIP) == pytest.approx(149.7)
    assert stop_level(-1, 150.0, 30.0, PIP) == pytest.approx(150.3)


@pytest.mark.parametrize(
    ("side", "bar", "fill"),
    [
        (1, (150.00, 150.10, 149.80), None),  # long, low above the stop: untouched
        (1, (150.00, 150.10, 149.70), 149.70),  # long, low reaches the stop: at the stop
        (1, (149.60, 149.65, 149.50), 149.60),  # long, the bar opens below the stop: at the open
        (-1, (150.00, 150.20, 149.90), None),  # short, high below the stop
        (-1, (150.00, 150.35, 149.90), 150.30),  # short, high beyond the stop: at the stop
        (-1, (150.40, 150.50, 150.38), 150.40),  # short, gapped above the stop: at the open
    ],
)
def test_a_stop_fills_at_the_stop_or_at_a_gapped_open_and_never_untouched(
    side: int, bar: tuple[float, float, float], fill: float | None
) -> None:
    stop = 149.70 if side > 0 else 150.30
    open_, high, low = bar
    got = stop_fill(side, stop, open_, high, low, PIP)
    assert (math.isnan(got) and fill is None) or got == pytest.approx(fill)


def test_float_noise_at_the_stop_counts_as_reaching_it() -> None:
    stop = 149.70
    just_short = stop + 0.1 * STOP_TOUCH_PIPS * PIP  # a low that misses the stop by float noise
    assert stop_fill(1, stop, 150.0, 150.1, just_short, PIP) == stop


def test_a_round_trip_nets_gross_pips_less_entry_and_exit_costs() -> None:
    assert round_trip_pips(1, 150.00, 150.25, PIP, 4.8, 0.3) == pytest.approx(25.0 - 5.1)
    assert round_trip_pips(-1, 150.00, 150.25, PIP, 4.0, 0.0) == pytest.approx(-25.0 - 4.0)


def test_the_adverse_excursion_only_grows_with_prices_against_the_position() -> None:
    assert worst_excursion(0.0, 1, 150.0, 149.9, PIP) == pytest.approx(10.0)
    assert worst_excursion(10.0, 1, 150.0, 150.5, PIP) == pytest.approx(10.0)
    assert worst_excursion(0.0, -1, 150.0, 150.05, PIP) == pytest.approx(5.0)
