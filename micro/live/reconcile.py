"""Bringing the trader's book in line with the broker: unknown-outcome orders, stops, restarts.

The `Reconciler` owns the pending order and every change the broker makes to the book:

- an order whose outcome is unknown is looked up by its client id before anything else, and
  adopted if found; not found once `order_settle_seconds` have passed means it never was,
- every bar, a position gone at the broker was stopped out (booked as the env books its stop),
  and an open trade the book does not hold is adopted if the journal knows it (or
  `live.adopt_unknown_positions`), else new entries halt,
- at start-up, the position saved in state.json or known to the journal is adopted (and marked
  over the bars missed while away); one the journal does not know stops trading with a clear
  message; one that closed while away is booked.

It records each closed trade (the risk state, the journal) and each adopted fill, for the trader
too: the trader sends orders and closes, the reconciler books what the broker did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from micro.config import Config
from micro.errors import UserError
from micro.live.book import Book, Position
from micro.live.broker import Broker, BrokerError, BrokerTrade, Candle
from micro.live.health import BrokerHealth
from micro.live.journal import Journal
from micro.live.risk import RiskGuard
from micro.volumes import LiveState

log = logging.getLogger("micro.live")


@dataclass
class PendingOrder:
    """An entry sent (or about to be) whose outcome is not known yet; persisted before sending."""

    client_id: str
    side: int
    units: int
    bar: dict[str, Any]  # the decision candle: its close is the entry price
    sent_at: float  # wall clock, s UTC

    def candle(self) -> Candle:
        return Candle(**self.bar)


class Reconciler:
    """Books what the broker did: fills, stops, unknown orders, trades found at start-up."""

    def __init__(
        self,
        config: Config,
        broker: Broker,
        book: Book,
        journal: Journal,
        health: BrokerHealth,
        risk: RiskGuard,
        halts: dict[str, str],  # the trader's entry halts: adds "unknown_position"
        wall: Callable[[], float],  # s UTC
    ) -> None:
        self.config = config
        self.broker = broker
        self.book = book
        self.journal = journal
        self.health = health
        self.risk = risk
        self.halts = halts
        self.wall = wall
        self.pending: PendingOrder | None = None
        self.trades = 0  # round trips recorded since start

    # ------------------------------------------------------------ booking

    def adopt(
        self, trade: BrokerTrade, bar: Candle, entry_price: float | None, how: str
    ) -> Position:
        """Put a broker trade in the book (entry at `entry_price` mid, else its fill)."""
        position = self.book.open(
            trade.side,
            trade.units,
            bar,
            trade.trade_id,
            trade.client_id,
            trade.price,
            entry_price=entry_price if entry_price is not None else trade.price,
        )
        self.journal.record(
            "fill",
            how=how,
            trade_id=trade.trade_id,
            client_id=trade.client_id,
            side=trade.side,
            units=trade.units,
            entry_price=position.entry_price,
            entry_ts=position.entry_ts,
            fill_price=trade.price,
            stop_price=trade.stop_price,
        )
        return position

    def record_trade(self, trade: dict[str, Any], closed_by: str) -> None:
        """A closed round trip: into the risk state and the journal."""
        self.risk.record_trade(trade["pips"])
        self.trades += 1
        self.journal.record("trade", **trade, closed_by=closed_by)

    # ------------------------------------------------------------ every bar

    def resolve_pending(self, bar: Candle) -> None:
        """Look the unknown-outcome order up by client id: adopt it, or decide it never was."""
        pending = self.pending
        if pending is None:
            return
        try:
            trade = self.broker.trade_by_client_id(pending.client_id)
        except BrokerError as exc:
            self.health.failed("lookup", exc)
            return
        self.health.ok()
        if trade is None:
            waited = self.wall() - pending.sent_at
            settled = waited >= self.broker.order_settle_seconds
            self.journal.record(
                "reconcile",
                client_id=pending.client_id,
                found=False,
                settled=settled,
                waited_seconds=round(waited, 3),
            )
            if settled:
                self.pending = None
            return
        self.pending = None
        self.journal.record(
            "reconcile",
            client_id=pending.client_id,
            found=True,
            trade_id=trade.trade_id,
            state=trade.state,
        )
        decision_bar = pending.candle()
        self.adopt(trade, decision_bar, entry_price=decision_bar.close, how="lookup")
        if trade.state == "CLOSED":
            self._booked_closed_at_broker(bar, trade)

    def reconcile(self, bar: Candle) -> bool:
        """Bring the book in line with the broker at `bar`; False if the broker did not answer."""
        if not self.health.allow():
            return False
        if self.pending is not None:
            self.resolve_pending(bar)
        try:
            trades = self.broker.open_trades()
        except BrokerError as exc:
            self.health.failed("reconcile", exc)
            if self.book.position is not None:
                self.book.mark(bar)
            return False
        self.health.ok()
        position = self.book.position
        ours = [t for t in trades if position is not None and t.trade_id == position.trade_id]
        others = [t for t in trades if t not in ours]
        if position is not None and ours:
            self.book.mark(bar)
        elif position is not None:
            detail = None
            try:
                if position.client_id:
                    detail = self.broker.trade_by_client_id(position.client_id)
            except BrokerError as exc:
                self.health.failed("lookup", exc)
            self._booked_closed_at_broker(bar, detail)
        for trade in others:
            self._foreign_trade(trade, bar)
        return True

    def _booked_closed_at_broker(self, bar: Candle, detail: BrokerTrade | None) -> None:
        """The broker closed our trade (its stop): book it as the env would book the stop."""
        exit_mid = self.book.stop_exit(bar)
        if exit_mid is None:  # not the env's stop (a human, a margin call): the broker's price
            exit_mid = detail.close_price if detail and detail.close_price else bar.close
        self.book.mark(bar, exit_mid)
        fill = detail.close_price if detail is not None else None
        trade = self.book.close(bar, exit_mid, "stop_loss", fill)
        self.record_trade(trade, (detail.close_reason if detail else None) or "broker")

    def _foreign_trade(self, trade: BrokerTrade, bar: Candle) -> None:
        """An open trade the book does not hold: adopt it if allowed, else halt entries."""
        known = self.journal.fill_of(trade.trade_id, trade.client_id)
        if self.book.position is None and (known or self.config.live.adopt_unknown_positions):
            self.adopt(trade, bar, None, how="known" if known else "adopted_unknown")
            return
        reason = (
            f"broker holds trade {trade.trade_id} ({trade.units} units "
            f"{'long' if trade.side > 0 else 'short'}) that the journal does not know"
        )
        if "unknown_position" not in self.halts:
            self.journal.record("risk", event="unknown_position", reason=reason)
            log.error("%s; entries halted", reason)
        self.halts["unknown_position"] = reason

    # ------------------------------------------------------------ start-up

    def at_start(self, saved: LiveState, history: list[Candle]) -> None:
        """Adopt what the journal knows, book what closed while away, refuse what it does not.

        `saved` is the state written before the restart, `history` the warm-up candles (the
        last of them is the newest completed bar).
        """
        last_bar = history[-1] if history else None
        if saved.pending_order:
            self.pending = PendingOrder(**saved.pending_order)
            if last_bar is not None:
                self.resolve_pending(last_bar)
        saved_position = saved.position
        trades = self.broker.open_trades()
        for trade in trades:
            position = self.book.position
            if position is not None and trade.trade_id == position.trade_id:
                continue
            if position is None and saved_position and trade.trade_id == saved_position["trade_id"]:
                self.book.position = Position.from_dict(saved_position)
                last = (saved.last_bar or {}).get("ts", self.book.position.entry_ts)
                self._mark_since(last, history)
                self.journal.record("reconcile", adopted=trade.trade_id, source="state")
                continue
            known = self.journal.fill_of(trade.trade_id, trade.client_id)
            if position is None and known is not None:
                entry_bar = Candle(int(known["entry_ts"]), 0.0, 0.0, 0.0, known["entry_price"])
                self.adopt(trade, entry_bar, known["entry_price"], how="journal")
                self._mark_since(int(known["entry_ts"]), history)
                continue
            if position is None and self.config.live.adopt_unknown_positions:
                bar = last_bar or Candle(int(trade.open_time) // 60 * 60, 0, 0, 0, trade.price)
                self.adopt(trade, bar, None, how="adopted_unknown")
                continue
            message = (
                f"{self.broker.name} holds an open {self.config.data.instrument} trade "
                f"{trade.trade_id} ({trade.units} units {'long' if trade.side > 0 else 'short'}) "
                "that live/journal.jsonl does not know; close it at the broker or set "
                "live.adopt_unknown_positions = true to manage it"
            )
            self.journal.record("risk", event="unknown_position", reason=message)
            raise UserError(message)
        if saved_position and self.book.position is None:
            self.book.position = Position.from_dict(saved_position)
            detail = None
            if self.book.position.client_id:
                detail = self.broker.trade_by_client_id(self.book.position.client_id)
            bar = last_bar or Candle(self.book.position.entry_ts, 0, 0, 0, 0)
            self._booked_closed_at_broker(bar, detail)
            self.journal.record("reconcile", closed_while_away=saved_position["trade_id"])

    def _mark_since(self, ts: int, history: list[Candle]) -> None:
        """Mark the adopted position over the history bars after `ts` (missed while away)."""
        for candle in history:
            if candle.ts > ts and self.book.position is not None:
                self.book.mark(candle)
