"""The operator's hand on a running trader, through files in live/: pause, resume, reset a halt.

- `micro live pause` writes `live/PAUSE` (time, reason); `micro live resume` removes it. While
  it exists no new entry is sent (the `pause` halt): an open position keeps its broker-side stop
  and the agent may still close it. The file outlives the process, so a restarted trader is
  still paused. Beside `live/KILL`, which also flattens.
- `micro live reset-halt` writes `live/RESET_HALT`. The trader (running, or at its next start)
  clears its drawdown halt, restarts the equity peak at the equity now (else the same drawdown
  halts the next bar again) and removes the file.

The trader looks at both before every bar and every poll; each change is journaled as a `risk`
line (`paused`, `resumed`, `halt_reset`) with the figures it changed, so the journal says who
lifted a halt and from what. The files are the interface, as for KILL, so the commands work the
same against a trader in another process or container.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from micro.atomic import read_json
from micro.home import Home
from micro.live.journal import Journal
from micro.live.risk import RiskGuard
from micro.volumes import pause_path, reset_halt_path

log = logging.getLogger("micro.live")

PAUSE = "pause"  # the halt a pause sets


class OperatorControl:
    """Applies live/PAUSE and live/RESET_HALT to the trader's halts and risk state."""

    def __init__(
        self,
        home: Home,
        halts: dict[str, str],  # the trader's entry halts: adds and removes "pause"
        risk: RiskGuard,
        journal: Journal,
    ) -> None:
        self.pause_path: Path = pause_path(home)
        self.reset_path: Path = reset_halt_path(home)
        self.halts = halts
        self.risk = risk
        self.journal = journal
        self.paused = False

    def check(self, open_pips: float) -> None:
        """Follow the pause file, and apply a halt reset if one was asked for."""
        self._follow_pause()
        if self.reset_path.exists():
            self._reset_halt(open_pips)

    def _follow_pause(self) -> None:
        present = self.pause_path.exists()
        if present == self.paused:
            return
        self.paused = present
        if present:
            asked = _request(self.pause_path)
            reason = str(asked.get("reason") or "paused by the operator")
            self.halts[PAUSE] = f"paused ({reason}); `micro live resume` to trade again"
            self.journal.record("risk", event="paused", reason=reason, asked_at=asked.get("time"))
            log.warning("paused: no new entries until `micro live resume`")
        else:
            self.halts.pop(PAUSE, None)
            self.journal.record("risk", event="resumed")
            log.warning("resumed: entries allowed again")

    def _reset_halt(self, open_pips: float) -> None:
        asked = _request(self.reset_path)
        state = self.risk.state
        equity = state.equity_pips + open_pips
        before = {
            "drawdown_halt": state.drawdown_halt,
            "equity_pips": round(equity, 3),
            "equity_peak_pips": round(state.equity_peak_pips, 3),
        }
        state.drawdown_halt = False
        state.equity_peak_pips = equity
        self.journal.record(
            "risk",
            event="halt_reset",
            halt="drawdown",
            was_set=before["drawdown_halt"],
            before=before,
            reason=asked.get("reason"),
            asked_at=asked.get("time"),
        )
        log.warning("drawdown halt reset by the operator (peak restarts at %.1f pips)", equity)
        try:
            self.reset_path.unlink()
        except FileNotFoundError:
            pass


def _request(path: Path) -> dict[str, Any]:
    """The request file's fields (time, reason); {} when it is empty or not JSON."""
    data = read_json(path)
    return data if isinstance(data, dict) else {}
