"""The live trader's loop: each completed bar → features → reconcile → act → risk → order → record.

On every completed M1 candle from the broker's bar clock (`micro.live.bars`):

1. update the temporal features through the incremental path (`FeatureState`),
2. reload best.pth if it changed (between bars; a broken one is refused, the old model kept),
3. reconcile the book with the broker: an order whose outcome is unknown is looked up by its
   client id before anything else; a position gone at the broker was stopped out; the position
   is marked at the close like the env,
4. kill switch (`live/KILL`): flatten and halt; a session's last bar (replays): close,
5. `Agent.act(greedy)` on the same observations the env would give,
6. risk checks (`micro.live.risk`), then the order: a market order with a stop-loss on fill and
   a client trade id that is persisted before it is sent, so no entry is ever duplicated,
7. a journal line with the decision, its rationale and latency; state.json rewritten.

Start-up reconciles with the broker and refuses to trade on an open trade it does not know
(unless `live.adopt_unknown_positions`). `request_stop` (SIGTERM) finishes the current bar,
leaves the broker-side stop in place, writes the state and returns 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from micro.config import Config
from micro.data.instruments import instrument as instrument_facts
from micro.env.actions import ACTION_NAMES, BUY, CLOSE, HOLD, SELL, legal_mask
from micro.env.costs import costs_for
from micro.errors import UserError
from micro.features.scaling import FeatureScaling
from micro.features.temporal import FeatureState
from micro.home import Home
from micro.live.bars import BarClock, Schedule
from micro.live.book import Book, Position
from micro.live.broker import Broker, BrokerError, BrokerTrade, Candle, OrderOutcomeUnknown, Quote
from micro.live.journal import Journal, StateFile
from micro.live.models import ModelSlot
from micro.live.risk import CircuitBreaker, RiskGuard, RiskState, price_problem
from micro.mcts.agent import Observations

log = logging.getLogger("micro.live")

MAX_WAIT_SECONDS = 60.0
KILL_FILE = "KILL"


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


class Trader:
    """Trades one instrument through `broker` with the agent in `models`."""

    def __init__(
        self,
        home: Home,
        config: Config,
        broker: Broker,
        models: ModelSlot,
        scaling: FeatureScaling,
        schedule: Schedule | None = None,
        max_bars: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.broker = broker
        self.models = models
        self.schedule = schedule or Schedule()
        self.max_bars = max_bars
        self._wall = wall
        name = config.data.instrument
        self.instrument = name
        self.book = Book(instrument_facts(name).pip, costs_for(config), config.risk.stop_loss_pips)
        self.features = FeatureState(name, config.features, scaling)
        self.clock = BarClock(broker, monotonic=monotonic)
        self.breaker = CircuitBreaker(
            config.risk.circuit_breaker_errors, config.risk.circuit_open_seconds, monotonic
        )
        self.risk = RiskGuard(config.risk)
        self.journal = Journal(home.live / "journal.jsonl")
        self.state_file = StateFile(home.live / "state.json")
        self.kill_path: Path = home.live / KILL_FILE
        self.stop_event = threading.Event()
        self.pending: PendingOrder | None = None
        self.halts: dict[str, str] = {}  # name -> reason: no entries while any is set
        self.last_bar: Candle | None = None
        self.bars_done = 0
        self.trades_done = 0
        self.last_error: str | None = None
        self.market_open = True  # the candle clock is moving
        self.tradeable = True  # the broker's flag at the last decision
        self.killed = False
        self._rng = np.random.default_rng(0)  # greedy mode draws nothing; the API wants one

    # ------------------------------------------------------------ the loop

    def request_stop(self) -> None:
        """Finish the current bar, then stop (SIGTERM/SIGINT handlers call this)."""
        self.stop_event.set()

    def run(self) -> int:
        """Start up, trade bar by bar until stopped, out of bars or at --max-bars; exit status."""
        self.start()
        reason = "stopped"
        try:
            while not self.stop_event.is_set():
                if self.max_bars is not None and self.bars_done >= self.max_bars:
                    reason = "max_bars"
                    break
                self._check_kill()
                if not self.breaker.allow():
                    self._wait(self.config.live.poll_seconds)
                    continue
                try:
                    bars = self.clock.poll()
                except BrokerError as exc:
                    self._broker_failed("poll", exc)
                    self._wait(self._backoff())
                    continue
                self._broker_ok()
                if not bars:
                    if self.broker.finished():
                        reason = "replay_finished"
                        break
                    self._note_market(self.clock.seconds_without_bar() <= self._stall_limit())
                    self._wait(self.config.live.poll_seconds)
                    continue
                self._note_market(True)
                for bar in bars:
                    self.on_bar(bar)
                    if self.stop_event.is_set() or (
                        self.max_bars is not None and self.bars_done >= self.max_bars
                    ):
                        break
        finally:
            self.finish(reason)
        return 0

    def start(self) -> None:
        """Warm the features up from the broker's history and reconcile with it."""
        saved = self.state_file.read() or {}
        self.risk.state = RiskState.from_dict(saved.get("risk"))
        self.journal.record(
            "start",
            broker=self.broker.name,
            instrument=self.instrument,
            model=self.models.model.to_dict(),
            config={k: self.config.to_dict()[k] for k in ("live", "risk", "mcts")},
        )
        try:
            history = self.clock.prime(self.broker.history(self.config.live.warmup_bars))
        except BrokerError as exc:
            raise UserError(
                f"{self.broker.name}: cannot fetch warm-up candles ({exc}); not trading"
            ) from None
        for candle in history:
            self.features.update(candle.ts, candle.open, candle.high, candle.low, candle.close)
        self.last_bar = history[-1] if history else None
        try:
            self._reconcile_at_start(saved, history)
        except BrokerError as exc:
            raise UserError(
                f"{self.broker.name}: cannot reconcile the position at start ({exc}); "
                "not trading until the broker answers"
            ) from None
        self.write_state()

    def finish(self, reason: str) -> None:
        """Write the state and a stop line; broker-side stops stay where they are."""
        self.write_state()
        self.journal.record(
            "stop", reason=reason, bars=self.bars_done, position=self._position_dict()
        )
        self.broker.close()

    # ------------------------------------------------------------ one bar

    def on_bar(self, bar: Candle) -> None:
        """Everything the trader does on one completed candle."""
        started = time.perf_counter()
        self.features.update(bar.ts, bar.open, bar.high, bar.low, bar.close)
        feature_seconds = time.perf_counter() - started
        self.last_bar = bar
        self.bars_done += 1
        role = self.schedule.role(bar.ts)
        line: dict[str, Any] = {"bar": _bar_dict(bar), "role": role}
        event = self.models.maybe_reload()
        if event is not None:
            self.journal.record("reload", **event)
        reconciled = self._reconcile(bar)
        open_pips = self.book.position.unrealised if self.book.position else 0.0
        for name in self.risk.on_bar(bar.close_ts, open_pips):
            self.journal.record("risk", event=name, bar_ts=bar.ts, state=self.risk.state.to_dict())
        if self._check_kill():
            line["decision"] = None
        elif role == "session_end":
            if self.book.position is not None:
                self._close(bar, "session_end")
        elif role == "decide" and reconciled and self.features.ready:
            line.update(self._decide_and_act(bar, feature_seconds))
        self.journal.record("bar", **line, side=self.book.side)
        self.write_state()

    def _decide_and_act(self, bar: Candle, feature_seconds: float) -> dict[str, Any]:
        """Search, risk-check and order; the bar line's decision fields.

        latency_ms is features + search + risk checks (broker requests are not in it).
        """
        quote = self._quote()
        tradeable = quote is None or quote.tradeable  # no quote: the order checks refuse
        if tradeable != self.tradeable:
            self.tradeable = tradeable
            self.journal.record("risk", event="tradeable" if tradeable else "not_tradeable")
        if not tradeable:
            return {"decision": None, "idle": "market closed (broker: not tradeable)"}
        started = time.perf_counter()
        side = self.book.side
        observations = Observations(
            window=self.features.window()[None],  # [1, W, 9]
            static=self.book.static()[None],  # [1, 6]
            legal=legal_mask(np.array([side], dtype=np.int8)),  # [1, 4]
            side=np.array([side], dtype=np.int8),  # [1]
        )
        actions, why = self.models.agent.act(observations, mode="greedy", rng=self._rng)
        action = int(actions[0])
        blocks = self._blocks(action, bar, quote)
        latency_ms = (time.perf_counter() - started + feature_seconds) * 1000.0
        decision = {
            "decision": ACTION_NAMES[action],
            "rationale": {
                "visit_counts": why.visit_counts[0].tolist(),
                "q": why.q[0].tolist(),
                "prior": why.prior[0].tolist(),
                "sigma": why.chance_probs[0].tolist(),
                "value": float(why.value[0]),
                "network_value": float(why.network_value[0]),
            },
            "latency_ms": round(latency_ms, 3),
        }
        if blocks:
            decision["blocked"] = blocks
            self.journal.record(
                "risk",
                event="order_blocked",
                action=ACTION_NAMES[action],
                reasons=blocks,
                bar_ts=bar.ts,
            )
        elif action in (BUY, SELL):
            self._enter(1 if action == BUY else -1, bar)
        elif action == CLOSE:
            self._close(bar, "agent")
        return decision

    def _blocks(self, action: int, bar: Candle, quote: Quote | None) -> list[str]:
        """Why `action` may not be sent now (empty: send it)."""
        if action == HOLD:
            return []
        blocks = []
        problem = price_problem(quote, bar.close_ts, self.config.risk.stale_price_seconds)
        if problem:
            blocks.append(problem)
        if not self.breaker.allow():
            blocks.append("circuit breaker open")
        if action in (BUY, SELL):
            blocks += self.risk.entry_blocks(bar.close_ts, self.config.live.units)
            blocks += list(self.halts.values())
            if self.pending is not None:
                blocks.append(f"order {self.pending.client_id} has an unknown outcome")
            if not self.market_open:
                blocks.append("market closed (the candle clock stalled)")
        return blocks

    # ------------------------------------------------------------ orders

    def _enter(self, side: int, bar: Candle) -> None:
        """Market order with a stop-loss and a client id; the intent is saved before sending."""
        units = self.config.live.units
        client_id = f"micro-{bar.ts}-{'B' if side > 0 else 'S'}"
        self.pending = PendingOrder(client_id, side, units, _bar_dict(bar), self._wall())
        self.write_state()
        stop_pips = self.config.risk.stop_loss_pips
        self.journal.record(
            "order",
            client_id=client_id,
            side=side,
            units=units,
            stop_loss_pips=stop_pips,
            bar_ts=bar.ts,
        )
        try:
            result = self.broker.market_order(side, units, stop_pips, client_id)
        except OrderOutcomeUnknown as exc:
            self._broker_failed("order", exc, outcome_unknown=True)
            self._resolve_pending(bar)  # look it up before anything else
            return
        except BrokerError as exc:
            self.pending = None  # refused outright: it was not carried out
            self._broker_failed("order", exc)
            return
        self._broker_ok()
        self.pending = None
        if not result.filled or result.trade is None:
            self.journal.record("rejected", client_id=client_id, reason=result.reason)
            return
        self._adopt(result.trade, bar, entry_price=bar.close, how="fill")

    def _close(self, bar: Candle, reason: str, closed_by: str | None = None) -> None:
        """Close the position at market; booked at this bar's close (the env's exit)."""
        position = self.book.position
        if position is None:
            return
        problem = price_problem(self._quote(), bar.close_ts, self.config.risk.stale_price_seconds)
        if problem is not None or not self.breaker.allow():
            why = problem or "circuit breaker open"
            self.journal.record("risk", event="close_blocked", reason=why, bar_ts=bar.ts)
            return
        try:
            result = self.broker.close_trade(position.trade_id)
        except BrokerError as exc:
            self._broker_failed("close", exc)
            return
        self._broker_ok()
        trade = self.book.close(bar, bar.close, reason, result.price)
        self._record_trade(trade, closed_by or reason)

    def _record_trade(self, trade: dict[str, Any], closed_by: str) -> None:
        self.risk.record_trade(trade["pips"])
        self.trades_done += 1
        self.journal.record("trade", **trade, closed_by=closed_by)

    def _adopt(
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

    # ------------------------------------------------------------ reconciliation

    def _resolve_pending(self, bar: Candle) -> None:
        """Look the unknown-outcome order up by client id: adopt it, or decide it never was."""
        pending = self.pending
        if pending is None:
            return
        try:
            trade = self.broker.trade_by_client_id(pending.client_id)
        except BrokerError as exc:
            self._broker_failed("lookup", exc)
            return
        self._broker_ok()
        if trade is None:
            waited = self._wall() - pending.sent_at
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
        self._adopt(trade, decision_bar, entry_price=decision_bar.close, how="lookup")
        if trade.state == "CLOSED":
            self._booked_closed_at_broker(bar, trade)

    def _reconcile(self, bar: Candle) -> bool:
        """Bring the book in line with the broker at `bar`; False if the broker did not answer."""
        if not self.breaker.allow():
            return False
        if self.pending is not None:
            self._resolve_pending(bar)
        try:
            trades = self.broker.open_trades()
        except BrokerError as exc:
            self._broker_failed("reconcile", exc)
            if self.book.position is not None:
                self.book.mark(bar)
            return False
        self._broker_ok()
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
                self._broker_failed("lookup", exc)
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
        self._record_trade(trade, (detail.close_reason if detail else None) or "broker")

    def _foreign_trade(self, trade: BrokerTrade, bar: Candle) -> None:
        """An open trade the book does not hold: adopt it if allowed, else halt entries."""
        known = self.journal.fill_of(trade.trade_id, trade.client_id)
        if self.book.position is None and (known or self.config.live.adopt_unknown_positions):
            self._adopt(trade, bar, None, how="known" if known else "adopted_unknown")
            return
        reason = (
            f"broker holds trade {trade.trade_id} ({trade.units} units "
            f"{'long' if trade.side > 0 else 'short'}) that the journal does not know"
        )
        if "unknown_position" not in self.halts:
            self.journal.record("risk", event="unknown_position", reason=reason)
            log.error("%s; entries halted", reason)
        self.halts["unknown_position"] = reason

    def _reconcile_at_start(self, saved: dict[str, Any], history: list[Candle]) -> None:
        """Adopt what the journal knows, book what closed while away, refuse what it does not."""
        if saved.get("pending_order"):
            self.pending = PendingOrder(**saved["pending_order"])
            if self.last_bar is not None:
                self._resolve_pending(self.last_bar)
        saved_position = saved.get("position")
        trades = self.broker.open_trades()
        for trade in trades:
            position = self.book.position
            if position is not None and trade.trade_id == position.trade_id:
                continue
            if position is None and saved_position and trade.trade_id == saved_position["trade_id"]:
                self.book.position = Position.from_dict(saved_position)
                last = (saved.get("last_bar") or {}).get("ts", self.book.position.entry_ts)
                self._mark_since(last, history)
                self.journal.record("reconcile", adopted=trade.trade_id, source="state")
                continue
            known = self.journal.fill_of(trade.trade_id, trade.client_id)
            if position is None and known is not None:
                entry_bar = Candle(int(known["entry_ts"]), 0.0, 0.0, 0.0, known["entry_price"])
                self._adopt(trade, entry_bar, known["entry_price"], how="journal")
                self._mark_since(int(known["entry_ts"]), history)
                continue
            if position is None and self.config.live.adopt_unknown_positions:
                bar = self.last_bar or Candle(int(trade.open_time) // 60 * 60, 0, 0, 0, trade.price)
                self._adopt(trade, bar, None, how="adopted_unknown")
                continue
            message = (
                f"{self.broker.name} holds an open {self.instrument} trade {trade.trade_id} "
                f"({trade.units} units {'long' if trade.side > 0 else 'short'}) that "
                "live/journal.jsonl does not know; close it at the broker or set "
                "live.adopt_unknown_positions = true to manage it"
            )
            self.journal.record("risk", event="unknown_position", reason=message)
            raise UserError(message)
        if saved_position and self.book.position is None:
            self.book.position = Position.from_dict(saved_position)
            detail = None
            if self.book.position.client_id:
                detail = self.broker.trade_by_client_id(self.book.position.client_id)
            bar = self.last_bar or Candle(self.book.position.entry_ts, 0, 0, 0, 0)
            self._booked_closed_at_broker(bar, detail)
            self.journal.record("reconcile", closed_while_away=saved_position["trade_id"])

    def _mark_since(self, ts: int, history: list[Candle]) -> None:
        """Mark the adopted position over the history bars after `ts` (missed while away)."""
        for candle in history:
            if candle.ts > ts and self.book.position is not None:
                self.book.mark(candle)

    # ------------------------------------------------------------ kill switch, health, state

    def _check_kill(self) -> bool:
        """If live/KILL exists: flatten (once the close goes through) and halt entries."""
        if not self.kill_path.exists():
            if self.killed:
                self.killed = False
                self.halts.pop("kill", None)
                self.journal.record("risk", event="kill_cleared")
            return False
        if not self.killed:
            self.killed = True
            self.halts["kill"] = "kill switch on (live/KILL exists; remove it to resume)"
            self.journal.record("risk", event="kill", position=self._position_dict())
            log.warning("kill switch: flattening and halting")
        if self.book.position is not None and self.last_bar is not None:
            self._close(self.last_bar, "agent", closed_by="kill")
            self.write_state()
        return True

    def _quote(self) -> Quote | None:
        if not self.breaker.allow():
            return None
        try:
            quote = self.broker.quote()
        except BrokerError as exc:
            self._broker_failed("quote", exc)
            return None
        self._broker_ok()
        return quote

    def _broker_ok(self) -> None:
        before = self.breaker.state
        self.breaker.record_success()
        if before != "closed":
            self.journal.record("risk", event="circuit_closed")
        self.last_error = None

    def _broker_failed(self, what: str, exc: Exception, outcome_unknown: bool = False) -> None:
        before = self.breaker.state
        self.breaker.record_failure()
        self.last_error = f"{what}: {exc}"
        self.journal.record(
            "error",
            during=what,
            error=str(exc),
            outcome_unknown=outcome_unknown,
            circuit=self.breaker.snapshot(),
        )
        log.warning("broker error during %s: %s", what, exc)
        if before != "open" and self.breaker.state == "open":
            self.journal.record(
                "risk", event="circuit_open", errors=self.breaker.consecutive_errors
            )

    def _backoff(self) -> float:
        errors = max(self.breaker.consecutive_errors, 1)
        return min(self.config.live.poll_seconds * 2 ** (errors - 1), MAX_WAIT_SECONDS)

    def _stall_limit(self) -> float:
        return self.config.live.stalled_clock_seconds

    def _note_market(self, is_open: bool, why: str = "the candle clock stalled") -> None:
        if is_open != self.market_open:
            self.market_open = is_open
            self.journal.record(
                "risk",
                event="market_open" if is_open else "market_closed",
                reason=None if is_open else why,
            )
            self.write_state()

    def _wait(self, seconds: float) -> None:
        self.stop_event.wait(seconds)

    def _position_dict(self) -> dict[str, Any] | None:
        return self.book.position.to_dict() if self.book.position else None

    def write_state(self) -> None:
        """Rewrite live/state.json atomically."""
        open_pips = self.book.position.unrealised if self.book.position else 0.0
        self.state_file.write(
            {
                "broker": self.broker.name,
                "instrument": self.instrument,
                "position": self._position_dict(),
                "pending_order": asdict(self.pending) if self.pending else None,
                "day_pnl_pips": self.risk.state.day_realised_pips + open_pips,
                "risk": self.risk.state.to_dict(),
                "halts": dict(self.halts),
                "killed": self.killed,
                "circuit": self.breaker.snapshot(),
                "connection": {"ok": self.last_error is None, "last_error": self.last_error},
                "market_open": self.market_open and self.tradeable,
                "model": self.models.model.to_dict(),
                "last_bar": _bar_dict(self.last_bar) if self.last_bar else None,
                "bars_processed": self.bars_done,
                "trades": self.trades_done,
            }
        )


def _bar_dict(bar: Candle) -> dict[str, Any]:
    return asdict(bar)
