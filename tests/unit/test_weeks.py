"""The FX-week check of a file's time zone: edges found, shift measured, zone named."""

from __future__ import annotations

import pandas as pd
import pytest

from micro.data import weeks, zones
from tests.samples.make_samples import fx_week_times


def test_utc_weeks_fit_the_fx_week_through_a_daylight_saving_change() -> None:
    fit = weeks.week_fit(pd.Series(fx_week_times("2022-03-06", 3)))
    assert len(fit.opens) == 2 and len(fit.closes) == 2
    assert fit.shift_hours == 0


@pytest.mark.parametrize(("hours", "likely"), [(3, "Etc/GMT-3"), (-5, "Etc/GMT+5")])
def test_a_fixed_shift_is_measured_and_named(hours: int, likely: str) -> None:
    times = fx_week_times("2022-07-10", 2) + pd.Timedelta(hours=hours)  # summer weeks
    fit = weeks.week_fit(pd.Series(times))
    assert fit.shift_hours == hours
    offsets = {e.at: 0.0 for e in fit.edges}  # read as UTC
    # +3 in summer is also broker server time; -5 in summer is not New York (-4)
    expected = weeks.BROKER_ZONE if hours == 3 else likely
    assert weeks.likely_zone(fit, offsets) == expected


def test_a_file_ending_inside_the_closed_weekend_counts_as_a_late_close() -> None:
    times = pd.date_range("2022-09-29 13:43", "2022-09-30 23:58", freq="1min")  # CADJPY's span
    fit = weeks.week_fit(pd.Series(times))
    assert [e.kind for e in fit.edges] == ["close"]
    assert fit.shift_hours == 3


def test_a_file_ending_on_a_weekday_has_no_edges() -> None:
    times = pd.date_range("2022-09-28 00:00", "2022-09-30 12:00", freq="1min")
    assert weeks.week_fit(pd.Series(times)).edges == ()


def test_broker_zone_is_new_york_plus_seven_hours() -> None:
    assert zones.zone_shift(weeks.BROKER_ZONE) == ("America/New_York", 7)
    assert zones.zone_shift("Etc/GMT+5") == ("Etc/GMT+5", 0)
    assert zones.zone_offset_hours(weeks.BROKER_ZONE, pd.Timestamp("2022-07-01")) == 3
    assert zones.zone_offset_hours(weeks.BROKER_ZONE, pd.Timestamp("2022-01-03")) == 2


def test_a_holiday_early_close_beside_on_time_opens_is_no_shift() -> None:
    """Christmas week: Friday closes 3 h early; with one open and one close the median was -1.5."""
    times = fx_week_times("2022-12-18", 2)
    friday = times[0] + pd.Timedelta(days=5)
    holiday = (times >= friday - pd.Timedelta(hours=3)) & (times < friday)
    fit = weeks.week_fit(pd.Series(times[~holiday]))
    assert [round(e.error_hours) for e in fit.edges] == [-3, 0]
    assert fit.shift_hours == 0
    assert [e.kind for e in fit.deviating()] == ["close"]
    assert fit.typical("open") == [(f"{times[0]:%a %H:%M}", 1)]
