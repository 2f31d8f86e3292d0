"""Bringing the trader's book in line with the broker: unknown orders, stops, mismatches, restarts.

The `Reconciler` owns the pending order and every change the broker makes to the book:

- An order whose outcome is unknown stays pending, and no new entry is sent, until the broker's
  own records resolve it (`Broker.find_order`): its trade, found by the client id (adopted), or
  its transactions after the last transaction id seen before the send (a fill adopted; a cancel
  or reject booked as no position, with the reason). It is looked up on every bar, after every
  broker error and on the reconciliation schedule, across restarts (state.json holds it, saved
  before the send). When the records still show no trace of it `order_settle_seconds` after the
  send, it was not received: entries resume, but its client id stays fenced (`lost`, in
  state.json too). The next entry reuses that id, so the broker itself refuses the lost order
  should it ever arrive (CLIENT_TRADE_ID_ALREADY_EXISTS); a late fill found while flat is ours
  and adopted. No delay can leave two positions or a forgotten one.
- Every bar, and on a schedule while no bar comes (`every_seconds`, and after any broker error),
  the book is compared with the broker's open trades. A position gone at the broker is booked
  only once the broker's record of the trade says it closed (its exit fill, realised P&L and
  financing); a record that is missing or unreadable never means flat. An open trade the book
  does not hold is adopted when it is ours (the journal's fill or order, the fenced id) and the
  book is flat. Anything else (a trade nobody knows, a position the broker has no record of,
  units that differ) is a mismatch: entries halt and the journal records both sides, until a
  later comparison finds them equal again.
- At start-up, the position saved in state.json or known to the journal is adopted (and marked
  over the bars missed while away); one the journal does not know stops trading with a clear
  message; one that closed while away is booked from the broker's record.

It records each closed trade (the risk state, the ledger, the journal) and each fill, for the
trader too: the trader sends orders and closes, the reconciler books what the broker did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from micro.config import Config
from micro.errors import UserError
from micro.live.accounting import Ledger
from micro.live.book import Book, Position
from micro.live.broker import Broker, BrokerError, BrokerTrade, Candle
from micro.live.health import BrokerHealth
from micro.live.journal import Journal
from micro.live.risk import RiskGuard
from micro.volumes import LiveState

log = logging.getLogger("micro.live")

RECONCILE_SECONDS = 30.0  # book vs broker at least this often while no bar comes (wall s)
MISMATCH = "mismatch"  # the halt a mismatch sets


@dataclass
class PendingOrder:
    """An entry sent (or about to be) whose outcome is not known yet; persisted before sending."""

    client_id: str
    side: int
    units: int
    bar: dict[str, Any]  # the decision candle: its close is the entry price
    sent_at: float  # wall clock, s UTC
    since_id: str | None = None  # the account's newest transaction id before the send
    stop_price: float | None = None  # the broker-side stop sent with it (exit side)
    spread_pips: float | None = None  # the quote's spread when it was sent

    def candle(self) -> Candle:
        return Candle(**self.bar)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingOrder:
        """The order saved in state.json (fields this version does not know are left out)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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
        halts: dict[str, str],  # the trader's entry halts: adds "mismatch"
        wall: Callable[[], float],  # s UTC
        ledger: Ledger | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.book = book
        self.journal = journal
        self.health = health
        self.risk = risk
        self.halts = halts
        self.wall = wall
        self.ledger = ledger or Ledger()
        self.pending: PendingOrder | None = None
        self.lost: PendingOrder | None = None  # not received: its client id is fenced
        self.trades = 0  # round trips recorded since start
        self.every_seconds = RECONCILE_SECONDS
        self.checked_at = wall()  # wall s of the last comparison with the broker

    # ------------------------------------------------------------ booking

    def adopt(
        self,
        trade: BrokerTrade,
        bar: Candle,
        entry_price: float | None,
        how: str,
        spread_pips: float | None = None,
    ) -> Position:
        """Put a broker trade in the book (entry at `entry_price` mid, else its fill).

        A market fill decided on `bar` (`how` fill, lookup, late) counts its slippage against
        the bar's close in the ledger.
        """
        position = self.book.open(
            trade.side,
            trade.units,
            bar,
            trade.trade_id,
            trade.client_id,
            trade.price,
            entry_price=entry_price if entry_price is not None else trade.price,
        )
        slippage = None
        if how in ("fill", "lookup", "late"):
            slippage = self.ledger.fill(trade.side, trade.price, bar.close, self.book.pip,
                                        spread_pips)  # fmt: skip
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
            bar_close=bar.close,
            slippage_pips=None if slippage is None else round(slippage, 3),
            spread_pips=spread_pips,
        )
        self.lift_fence(trade.client_id, how)
        return position

    def record_trade(self, trade: dict[str, Any], closed_by: str) -> None:
        """A closed round trip: into the risk state (the broker's pips), the ledger, the journal."""
        broker_pips = trade.get("broker_pips")
        self.risk.record_trade(float(trade["pips"] if broker_pips is None else broker_pips))
        self.ledger.trade(trade)
        self.trades += 1
        self.journal.record("trade", **trade, closed_by=closed_by)

    # ------------------------------------------------------------ orders whose outcome is unknown

    def resolve_pending(self, bar: Candle) -> bool:
        """Look the pending order up in the broker's records; whether it is resolved now."""
        pending = self.pending
        if pending is None:
            return True
        try:
            trace = self.broker.find_order(pending.client_id, pending.since_id)
        except BrokerError as exc:
            self.health.failed("lookup", exc)
            return False
        self.health.ok()
        waited = round(self.wall() - pending.sent_at, 3)
        if trace.state == "filled" and trace.trade is not None:
            self.pending = None
            self.journal.record(
                "reconcile",
                client_id=pending.client_id,
                found=True,
                trade_id=trace.trade.trade_id,
                state=trace.trade.state,
                waited_seconds=waited,
            )
            self._adopt_order(pending, trace.trade, bar, "lookup")
            return True
        if trace.state == "cancelled":
            self.pending = None
            self.journal.record(
                "rejected", client_id=pending.client_id, reason=trace.reason, how="records"
            )
            return True
        settled = waited >= self.broker.order_settle_seconds
        self.journal.record(
            "reconcile",
            client_id=pending.client_id,
            found=False,
            settled=settled,
            waited_seconds=waited,
            resolution="not_received" if settled else None,
        )
        if settled:  # no trace in the records: it never arrived; its id stays fenced
            self.pending = None
            self.lost = pending
            log.warning("order %s was not received by the broker", pending.client_id)
        return settled

    def check_lost(self, bar: Candle) -> str | None:
        """Look for the order found not received once more (it may have arrived late).

        Its trade is found by the client id whatever its state, open or closed: adopted (and
        booked closed) when the book is flat and the journal does not hold it yet. Returns
        the records' answer (`filled`, `cancelled`, `not_seen`), `error` when they could not
        be read, None when no id is fenced.
        """
        lost = self.lost
        if lost is None or self.pending is not None:
            return None
        try:
            trace = self.broker.find_order(lost.client_id, lost.since_id)
        except BrokerError as exc:
            self.health.failed("lookup", exc)
            return "error"
        self.health.ok()
        if trace.state == "not_seen" and self.broker.last_transaction_id is not None:
            lost.since_id = self.broker.last_transaction_id  # searched up to here: no trace
        if trace.state == "cancelled":
            self.lost = None
            self.journal.record(
                "rejected", client_id=lost.client_id, reason=trace.reason, how="records"
            )
        elif trace.state == "filled" and trace.trade is not None:
            self._found_lost(lost, trace.trade, bar)
        return trace.state

    def _found_lost(self, lost: PendingOrder, trade: BrokerTrade, bar: Candle) -> None:
        """The fenced id's trade is in the broker's records: book it unless it is booked."""
        position = self.book.position
        if position is not None and position.trade_id == trade.trade_id:
            self.lift_fence(lost.client_id, "in the book")
        elif self.journal.fill_of(trade.trade_id, None) is not None:
            self.lift_fence(lost.client_id, "booked before")  # never booked twice
        elif position is None:
            self._adopt_late(lost, trade, bar)
        # else the book holds another trade: the comparison with the broker's open trades
        # halts entries on it (a mismatch); the fence stays until the book is flat

    def passed(self, client_id: str) -> None:
        """An entry under the fenced `client_id` was refused: the fence's record search goes
        on after its transactions (its refusal is not the lost order's)."""
        lost = self.lost
        latest = self.broker.last_transaction_id
        if lost is not None and lost.client_id == client_id and latest is not None:
            lost.since_id = latest

    def fenced_client_id(self) -> str | None:
        """The client id the next entry must reuse (an order found not received), if any."""
        return self.lost.client_id if self.lost is not None else None

    def order_filled(self, client_id: str) -> None:
        """An entry under `client_id` filled: a fence on that id has done its work."""
        self.lift_fence(client_id, "fill")

    def lift_fence(self, client_id: str | None, how: str) -> None:
        """A trade under the fenced `client_id` is found (filled, adopted, booked by any path):
        the fence has done its work, and the next entry carries a new id. A fence left on an
        id whose trade exists would have every later entry refused by the broker."""
        lost = self.lost
        if lost is None or client_id is None or lost.client_id != client_id:
            return
        self.lost = None
        self.journal.record("reconcile", event="fence_lifted", client_id=client_id, how=how)

    def _adopt_late(self, lost: PendingOrder, trade: BrokerTrade, bar: Candle) -> None:
        """The lost order's trade found after all (a late fill) while the book is flat: book it."""
        self.lost = None
        self.journal.record(
            "reconcile", client_id=lost.client_id, found=True, late=True,
            trade_id=trade.trade_id, state=trade.state,
        )  # fmt: skip
        self._adopt_order(lost, trade, bar, "late")

    def _adopt_order(self, order: PendingOrder, trade: BrokerTrade, bar: Candle, how: str) -> None:
        decision_bar = order.candle()
        self.adopt(trade, decision_bar, decision_bar.close, how, order.spread_pips)
        if trade.state == "CLOSED":
            self._book_closed(bar, trade)

    # ------------------------------------------------------------ book vs broker

    def due(self) -> bool:
        """Whether a comparison is due without a bar: the schedule, or an error since the last."""
        return self.health.errors_since_check > 0 or (
            self.wall() - self.checked_at >= self.every_seconds
        )

    def reconcile(self, bar: Candle, new_bar: bool = True) -> bool:
        """Bring the book in line with the broker at `bar`; whether the position is confirmed.

        `new_bar` False: a check between bars (the schedule, after an error): nothing is marked,
        and a trade the broker closed is booked on the next bar.
        """
        if not self.health.allow():
            return False
        self.health.errors_since_check = 0
        self.checked_at = self.wall()
        if self.pending is not None:
            self.resolve_pending(bar)
        elif self.lost is not None and not new_bar:
            self.check_lost(bar)
        try:
            trades = self.broker.open_trades()
        except BrokerError as exc:
            self.health.failed("reconcile", exc)
            if new_bar and self.book.position is not None:
                self.book.mark(bar)
            return False
        self.health.ok()
        problems: list[str] = []
        position = self.book.position
        ours = [t for t in trades if position is not None and t.trade_id == position.trade_id]
        others = [t for t in trades if t not in ours]
        confirmed = True
        if position is not None and ours:
            if new_bar:
                self.book.mark(bar)
            held = ours[0].current_units
            if held is not None and held != position.units:
                problems.append(
                    f"trade {position.trade_id}: the book holds {position.units} units, "
                    f"the broker {held}"
                )
        elif position is not None:
            problem = self._gone_at_broker(bar, new_bar)
            if problem is not None:
                problems.append(problem)
                confirmed = False
        for trade in others:
            problem = self._foreign_trade(trade, bar)
            if problem is not None:
                problems.append(problem)
        self._note_mismatch(problems, trades)
        return confirmed

    def _gone_at_broker(self, bar: Candle, new_bar: bool) -> str | None:
        """Our trade is not among the open ones: book it from the broker's record of it, or say
        why not (the position stays in the book: a missing record is not flat)."""
        position = self.book.position
        assert position is not None
        try:
            detail = self.broker.trade_details(position.trade_id)
        except BrokerError as exc:
            self.health.failed("lookup", exc)
            return (
                f"trade {position.trade_id} is not among the broker's open trades and its "
                f"record could not be read ({exc})"
            )
        if detail is None:
            return f"the broker has no record of trade {position.trade_id} that the book holds"
        if detail.state == "OPEN":  # listed late: it is open after all
            if new_bar:
                self.book.mark(bar)
            return None
        if new_bar:
            self._book_closed(bar, detail)
        return None

    def _book_closed(self, bar: Candle, detail: BrokerTrade) -> None:
        """The broker closed our trade (its stop): book it as the env books its stop.

        The exit is the env's stop fill when the mid reached the env's stop during `bar`, else
        the mid behind the broker's exit fill (never the fill itself: the spread is paid once).
        """
        exit_mid = self.book.stop_exit(bar)
        if exit_mid is None:  # not the env's stop (a human, a wider spread): the broker's price
            fill = detail.close_price
            exit_mid = self.book.exit_mid(fill) if fill is not None else bar.close
        self.book.mark(bar, exit_mid)
        trade = self.book.close(
            bar, exit_mid, "stop_loss", detail.close_price, detail.realized_pl, detail.financing
        )
        self.record_trade(trade, detail.close_reason or "broker")

    def _foreign_trade(self, trade: BrokerTrade, bar: Candle) -> str | None:
        """An open trade the book does not hold: adopt it if it is ours and the book is flat."""
        pending = self.pending
        if pending is not None and trade.client_id == pending.client_id:
            return None  # the pending order's: resolved by its lookup
        flat = self.book.position is None and pending is None
        lost = self.lost
        if flat and lost is not None and trade.client_id == lost.client_id:
            self._adopt_late(lost, trade, bar)
            return None
        known = self.journal.fill_of(trade.trade_id, trade.client_id) or self._ordered(
            trade.client_id
        )
        if flat and (known or self.config.live.adopt_unknown_positions):
            self.adopt(trade, bar, None, how="known" if known else "adopted_unknown")
            return None
        return (
            f"broker holds trade {trade.trade_id} ({trade.units} units "
            f"{'long' if trade.side > 0 else 'short'}, client id {trade.client_id}) "
            "that the book does not"
        )

    def _ordered(self, client_id: str | None) -> bool:
        """Whether the journal holds an order this trader sent under `client_id`."""
        return client_id is not None and any(
            line.get("client_id") == client_id for line in self.journal.lines("order")
        )

    def _note_mismatch(self, problems: list[str], trades: list[BrokerTrade]) -> None:
        """Halt entries while book and broker differ; journal both sides when it changes."""
        sides = {
            "book": self.book.position.to_dict() if self.book.position else None,
            "broker": [asdict(t) for t in trades],
        }
        if problems:
            reason = "book and broker differ: " + "; ".join(problems)
            if self.halts.get(MISMATCH) != reason:
                self.journal.record("reconcile", event="mismatch", problems=problems, **sides)
                log.error("%s; entries halted", reason)
            self.halts[MISMATCH] = reason
        elif MISMATCH in self.halts:
            self.halts.pop(MISMATCH)
            self.journal.record("reconcile", event="mismatch_cleared", **sides)
            log.warning("book and broker agree again; entries resume")

    # ------------------------------------------------------------ start-up

    def at_start(self, saved: LiveState, history: list[Candle]) -> None:
        """Adopt what the journal knows, book what closed while away, refuse what it does not.

        `saved` is the state written before the restart, `history` the warm-up candles (the
        last of them is the newest completed bar).
        """
        last_bar = history[-1] if history else None
        if saved.lost_order:
            self.lost = PendingOrder.from_dict(saved.lost_order)
        if saved.pending_order:
            self.pending = PendingOrder.from_dict(saved.pending_order)
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
                self.lift_fence(trade.client_id, "state")
                continue
            if self.pending is not None and trade.client_id == self.pending.client_id:
                continue  # still pending (the lookup failed): resolved on the first bar
            lost = self.lost
            if position is None and lost is not None and trade.client_id == lost.client_id:
                self.lost = None
                self._adopt_order(lost, trade, last_bar or lost.candle(), "late")
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
            detail = self.broker.trade_details(self.book.position.trade_id)
            if detail is None or detail.state == "OPEN":
                self._note_mismatch(
                    [f"trade {self.book.position.trade_id} of state.json is not open at the "
                     "broker and has no closed record there"],
                    trades,
                )  # fmt: skip
                return
            bar = last_bar or Candle(self.book.position.entry_ts, 0, 0, 0, 0)
            self._book_closed(bar, detail)
            self.journal.record("reconcile", closed_while_away=saved_position["trade_id"])

    def _mark_since(self, ts: int, history: list[Candle]) -> None:
        """Mark the adopted position over the history bars after `ts` (missed while away)."""
        for candle in history:
            if candle.ts > ts and self.book.position is not None:
                self.book.mark(candle)
