"""The soak's end-of-run comparison of the book (state.json) with the broker's trades."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.soak import mismatches

T = 1_641_204_000  # 2022-01-03 10:00 UTC, the open of the trader's last bar


def state(position: bool = True, pending: bool = False) -> dict[str, Any]:
    held = {"trade_id": "42", "side": 1, "units": 1000} if position else None
    return {
        "position": held,
        "pending_order": {"client_id": "micro-1-B"} if pending else None,
        "last_bar": {"ts": T, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0},
    }


def closed(close_ts: int, stop_state: str = "FILLED") -> dict[str, Any]:
    when = pd.Timestamp(close_ts, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return {"id": "42", "closeTime": when, "stopLossOrder": {"state": stop_state}}


def test_a_book_equal_to_the_broker_has_no_mismatch() -> None:
    open_trade = {"id": "42", "currentUnits": "1000"}
    assert mismatches(state(), [open_trade], []) == (0, 0)
    assert mismatches(state(position=False), [], []) == (0, 0)


def test_a_stop_filled_on_a_bar_the_trader_never_read_is_counted_apart_not_as_a_mismatch() -> None:
    assert mismatches(state(), [], [closed(T + 120)]) == (0, 1)


def test_a_stop_filled_on_the_last_bar_the_trader_read_is_a_mismatch() -> None:
    assert mismatches(state(), [], [closed(T + 60)]) == (1, 0)  # it should have booked it


def test_a_position_closed_otherwise_or_unknown_to_the_broker_is_a_mismatch() -> None:
    assert mismatches(state(), [], [closed(T + 120, stop_state="CANCELLED")]) == (1, 0)
    assert mismatches(state(), [], []) == (1, 0)


def test_other_differences_are_mismatches() -> None:
    stranger = {"id": "43", "currentUnits": "-1000"}
    assert mismatches(state(position=False), [stranger], []) == (1, 0)
    assert mismatches(state(), [{"id": "42", "currentUnits": "-1000"}], []) == (1, 0)
    assert mismatches(state(position=False, pending=True), [], []) == (1, 0)
