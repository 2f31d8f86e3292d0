"""The trader's own book of its position, kept in the env's conventions so live == backtest.

The env enters at the decision bar's mid close, marks the position at every later close with
`micro.env.position`'s arithmetic, tracks the maximum adverse excursion on each bar's low (long)
or high (short), and exits at the close (agent, session end) or at the stop / the gapped open
(stop-loss). The book does the same with the same numba functions (`micro.env.fills` for the
stop and the close, `micro.env.position` for the marks), so the 6 position features the agent
sees and the trade records (the env's trade fields, `micro.env.trades.trade_fields`) are
bit-identical to the env's on the same bars. The broker's numbers are kept beside them: its
fill prices, the pips between them (`broker_pips`, what the risk halts count), its realised P&L
and financing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from micro.env.costs import Costs
from micro.env.fills import (
    adverse_price,
    mid_of_exit,
    round_trip_pips,
    stop_fill,
    stop_level,
    worst_excursion,
)
from micro.env.position import NUM_STATIC, mark, static_features, unrealised_pips
from micro.env.trades import EXIT_AGENT, EXIT_SESSION_END, EXIT_STOP_LOSS, trade_fields
from micro.live.broker import Candle

EXIT_REASONS = {"agent": EXIT_AGENT, "stop_loss": EXIT_STOP_LOSS, "session_end": EXIT_SESSION_END}


@dataclass
class Position:
    """One open position in env terms (pips net of entry costs) plus its broker identity."""

    side: int  # +1 long, −1 short
    units: int
    entry_price: float  # the decision bar's mid close
    entry_ts: int  # open time of the decision bar (s UTC)
    stop_price: float  # mid stop level: entry − side × stop distance
    trade_id: str
    client_id: str | None
    fill_price: float  # the broker's entry fill
    bars: int = 0  # bars since entry
    unrealised: float = 0.0  # pips, net of entry costs
    peak: float = 0.0  # pips
    max_drawdown: float = 0.0  # pips
    accumulated: float = 0.0  # pips
    mae: float = 0.0  # pips, gross, ≥ 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        return cls(**data)


class Book:
    """The position (or none) and the arithmetic that moves it bar by bar."""

    def __init__(self, pip: float, costs: Costs, stop_loss_pips: float) -> None:
        self.pip = float(pip)
        self.costs = costs
        self.stop_loss_pips = float(stop_loss_pips)
        self.position: Position | None = None

    @property
    def side(self) -> int:
        return 0 if self.position is None else self.position.side

    @property
    def half_spread(self) -> float:
        """Half the configured spread, in price: mid − bid."""
        return 0.5 * self.costs.spread_pips * self.pip

    def broker_open_pips(self, mid: float) -> float:
        """Pips the broker would realise closing now at `mid` (the exit side's price less the
        entry fill): what the loss limits count while a position is open."""
        p = self.position
        if p is None:
            return 0.0
        exit_price = mid - p.side * self.half_spread
        return float(p.side * (exit_price - p.fill_price) / self.pip)

    def exit_mid(self, exit_fill: float) -> float:
        """The mid behind the broker's exit fill of the position (a long sells at the bid)."""
        side = self.side or 1
        return float(mid_of_exit(side, exit_fill, self.half_spread))

    def open(
        self,
        side: int,
        units: int,
        bar: Candle,
        trade_id: str,
        client_id: str | None,
        fill_price: float,
        entry_price: float | None = None,
    ) -> Position:
        """Enter at `bar`'s close (or `entry_price` for an adopted trade), as the env does."""
        entry = float(bar.close if entry_price is None else entry_price)
        cost = self.costs.entry_pips
        self.position = Position(
            side=int(side),
            units=int(units),
            entry_price=entry,
            entry_ts=int(bar.ts),
            stop_price=float(stop_level(side, entry, self.stop_loss_pips, self.pip)),
            trade_id=str(trade_id),
            client_id=client_id,
            fill_price=float(fill_price),
            unrealised=-cost,
            peak=-cost,
        )
        return self.position

    def mark(self, bar: Candle, price: float | None = None) -> None:
        """Mark the position over `bar` at its close (or at `price`, an exit fill)."""
        p = self.position
        if p is None:
            return
        adverse = adverse_price(p.side, bar.high, bar.low)
        if price is not None:
            adverse = price  # nothing after the fill belongs to the trade
        p.mae = float(worst_excursion(p.mae, p.side, p.entry_price, adverse, self.pip))
        mark_price = bar.close if price is None else price
        u = unrealised_pips(p.side, p.entry_price, mark_price, self.pip, self.costs.entry_pips)
        p.peak, p.max_drawdown, p.accumulated = mark(
            u, p.unrealised, p.peak, p.max_drawdown, p.accumulated
        )
        p.unrealised = u
        p.bars += 1

    def stop_exit(self, bar: Candle) -> float | None:
        """The env's stop fill during `bar` (the stop, or the open on a gap); None if untouched."""
        p = self.position
        if p is None:
            return None
        fill = float(stop_fill(p.side, p.stop_price, bar.open, bar.high, bar.low, self.pip))
        return None if np.isnan(fill) else fill

    def static(self) -> np.ndarray:
        """[6] float32 position features (zeros when flat)."""
        p = self.position
        if p is None:
            return np.zeros(NUM_STATIC, dtype=np.float32)
        features: np.ndarray = static_features(
            np.array([p.side], dtype=np.int8),
            np.array([p.unrealised]),
            np.array([p.bars], dtype=np.int64),
            np.array([p.peak]),
            np.array([p.max_drawdown]),
            np.array([p.accumulated]),
        )[0]
        return features

    def open_pips(self, price: float) -> float:
        """Unrealised pips (net of entry costs) if the position were marked at `price`."""
        p = self.position
        if p is None:
            return 0.0
        return float(unrealised_pips(p.side, p.entry_price, price, self.pip, self.costs.entry_pips))

    def close(
        self,
        bar: Candle,
        exit_price: float,
        reason: str,
        exit_fill: float | None,
        broker_pl: float | None = None,
        financing: float | None = None,
    ) -> dict[str, Any]:
        """Close at `exit_price` (mid, env convention) on `bar`; the trade record.

        The caller has marked the position over `bar` already (at the close, or at the stop fill).
        `pips` are the env's; `broker_pips`, `broker_pl` and `financing` the broker's.
        """
        p = self.position
        if p is None:
            raise RuntimeError("no position to close")
        code = EXIT_REASONS[reason]
        pips = round_trip_pips(
            p.side, p.entry_price, exit_price, self.pip, self.costs.entry_pips, self.costs.exit_pips
        )
        broker_pips = None
        if exit_fill is not None:
            broker_pips = p.side * (exit_fill - p.fill_price) / self.pip
        trade = {
            **trade_fields(
                p.side, p.entry_ts, bar.ts, p.entry_price, exit_price, pips, p.bars, p.mae, code
            ),
            "units": p.units,
            "trade_id": p.trade_id,
            "client_id": p.client_id,
            "entry_fill": p.fill_price,
            "exit_fill": exit_fill,
            "broker_pips": broker_pips,
            "broker_pl": broker_pl,
            "financing": financing,
        }
        self.position = None
        return trade
