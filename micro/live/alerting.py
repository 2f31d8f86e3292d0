"""What in the live trader alerts the operator: journal lines, and the broker link's outages.

The journal is the trader's one record of what happened, so the alerts are read off it
(`JournalAlerts` is a journal listener): every risk halt (drawdown, daily loss, circuit breaker
open, an unknown position), the kill switch, a reconciliation mismatch, an order whose outcome
is unknown or that the broker never received, the operator's pause, resume and halt reset, and
the daily summary when the FX day rolls. `LinkWatch` times the broker link: down (the last
request failed, or the price stream is not connected) for `alerts.disconnect_seconds` sends one
alert, and its return after such an outage another. Delivery is `micro.alerts.Alerter`'s:
deduplicated, rate-limited and off the trading thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from micro.alerts import Alerter, Level

# risk events that halt entries or orders: (title, level)
HALTS: dict[str, tuple[str, Level]] = {
    "drawdown_halt": ("drawdown halt: entries stopped until `micro live reset-halt`", "failure"),
    "daily_loss_halt": ("daily loss limit hit: entries stopped until the next FX day", "failure"),
    "circuit_open": ("circuit breaker open: broker errors in a row, no orders", "failure"),
    "unknown_position": ("unknown position at the broker: not trading", "failure"),
}
OPERATOR: dict[str, tuple[str, Level]] = {
    "kill": ("KILL switch on: flattening and halting", "failure"),
    "kill_cleared": ("kill switch cleared", "info"),
    "paused": ("paused by the operator: no new entries", "warning"),
    "resumed": ("resumed by the operator", "info"),
    "halt_reset": ("drawdown halt reset by the operator", "warning"),
}
SKIPPED = frozenset({"time", "kind", "event", "state", "config", "model"})  # not in a body


def _body(line: dict[str, Any]) -> str:
    """The line's scalar fields as `key: value` lines."""
    parts = []
    for key, value in line.items():
        if key in SKIPPED or value is None:
            continue
        if isinstance(value, dict | list):
            value = ", ".join(
                f"{k}={v}"
                for k, v in (value.items() if isinstance(value, dict) else enumerate(value))
            )
        parts.append(f"{key}: {value}")
    return "\n".join(parts)


class JournalAlerts:
    """A journal listener that turns the lines worth a human's attention into alerts."""

    def __init__(self, alerter: Alerter, instrument: str, daily_summary: bool = True) -> None:
        self.alerter = alerter
        self.instrument = instrument
        self.daily_summary = daily_summary

    def __call__(self, line: dict[str, Any]) -> None:
        kind, event = line.get("kind"), line.get("event")
        send = self.alerter.send
        where = self.instrument
        if kind == "risk" and event in HALTS:
            title, level = HALTS[str(event)]
            send("halt", f"{where} {title}", _body(line), key=f"halt:{event}", level=level)
        elif kind == "risk" and event in OPERATOR:
            title, level = OPERATOR[str(event)]
            send(str(event), f"{where} {title}", _body(line), key=f"operator:{event}", level=level)
        elif kind == "reconcile" and event == "mismatch":
            problems = "; ".join(map(str, line.get("problems") or []))
            send("mismatch", f"{where} reconciliation mismatch: entries halted", problems,
                 key=f"mismatch:{problems}", level="failure")  # fmt: skip
        elif kind == "error" and line.get("outcome_unknown"):
            send("unknown_order", f"{where} order in unknown state: looking it up", _body(line),
                 key="unknown_order", level="failure")  # fmt: skip
        elif kind == "reconcile" and line.get("resolution") == "not_received":
            client = line.get("client_id")
            send("unknown_order", f"{where} order {client} never reached the broker (fenced)",
                 _body(line), key=f"not_received:{client}", level="warning")  # fmt: skip
        elif kind == "day" and self.daily_summary:
            send("daily_summary", f"{where} daily summary", _day_body(line),
                 key=f"day:{line.get('trading_day')}", level="info")  # fmt: skip


def _day_body(line: dict[str, Any]) -> str:
    return (
        f"trades: {line.get('trades')}\n"
        f"model pips: {line.get('model_pips')}\n"
        f"broker pips: {line.get('broker_pips')}\n"
        f"broker P&L: {line.get('broker_pl')} (financing {line.get('financing')})"
    )


class LinkWatch:
    """Alerts once when the broker link has been down `seconds`, and when it is back."""

    def __init__(
        self,
        alerter: Alerter,
        instrument: str,
        seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.alerter = alerter
        self.instrument = instrument
        self.seconds = seconds
        self._monotonic = monotonic
        self.down_since: float | None = None  # monotonic s
        self.alerted = False
        self.outages = 0  # alerted outages since start

    def update(self, ok: bool, why: str | None = None) -> None:
        """The link's state now (`why`: what is wrong when not ok)."""
        now = self._monotonic()
        if ok:
            if self.alerted and self.down_since is not None:
                self.alerter.send(
                    "reconnected",
                    f"{self.instrument} broker link back after {now - self.down_since:.0f} s",
                    "trading resumes on the next bar",
                    key=f"reconnected:{self.outages}",
                    level="info",
                )
            self.down_since, self.alerted = None, False
            return
        if self.down_since is None:
            self.down_since = now
        if not self.alerted and now - self.down_since >= self.seconds:
            self.alerted = True
            self.outages += 1
            self.alerter.send(
                "disconnect",
                f"{self.instrument} broker link down for {now - self.down_since:.0f} s",
                why or "no answer from the broker",
                key=f"disconnect:{self.outages}",
                level="failure",
            )


def link_state(last_error: str | None, stream: dict[str, Any] | None) -> tuple[bool, str | None]:
    """(ok, why) of the broker link from the last request's error and the stream's status."""
    if last_error is not None:
        return False, last_error
    state = None if stream is None else stream.get("state")
    if stream is not None and state != "connected":
        return False, f"price stream {state}"
    return True, None
