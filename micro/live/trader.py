"""The live trader's loop: each completed bar → features → reconcile → act → risk → order → record.

On every completed M1 candle from the broker's bar clock (`micro.live.bars`):

1. update the temporal features through the incremental path (`FeatureState`),
2. reload best.pth if it changed (between bars; a broken one is refused, the old model kept),
3. reconcile the book with the broker: an order whose outcome is unknown is looked up in the
   broker's records before anything else (no entry while it is pending); a position gone at
   the broker is booked from its record; a mismatch halts entries; the position is marked at
   the close like the env,
4. kill switch (`live/KILL`): flatten and halt; a bar the schedule closes on (a replayed
   session's last): close,
5. `Agent.act(greedy)` on the same observations the env would give,
6. risk checks (`micro.live.risk`, on the broker's P&L), then the order: a market order with a
   stop-loss on fill where the env's stop would trigger (`micro.env.fills.quoted_stop`) and a
   client trade id that is persisted before it is sent, so no entry is ever duplicated,
7. a journal line with the decision, its rationale and latency; state.json rewritten.

Between bars the book is compared with the broker on a schedule and after every broker error
(`Reconciler.due`). Start-up reconciles with the broker and refuses to trade on an open trade
it does not know (unless `live.adopt_unknown_positions`). `request_stop` (SIGTERM) cuts the
broker's retry waits short, finishes the current bar, leaves the broker-side stop in place,
writes the state and returns 0. The day's broker-true numbers (`micro.live.accounting`) ride in
state.json and are journaled as a `day` line when the FX day rolls.

The trader is composed of parts with one job each: the bar clock and the schedule (time), the
feature state, the book, the `Reconciler` (what the broker did), `BrokerHealth` (the circuit
breaker over the broker's answers), the risk guard, the journal and the state file. Every clock
read goes through the two injected clocks: `monotonic` (intervals, latency) and `wall` (s UTC).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from micro.alerts import Alerter
from micro.config import Config
from micro.env.actions import ACTION_NAMES, BUY, CLOSE, HOLD, SELL, legal_mask
from micro.env.costs import costs_for
from micro.env.fills import quoted_stop, stop_level
from micro.errors import UserError
from micro.features.scaling import FeatureScaling
from micro.features.temporal import FeatureState
from micro.home import Home
from micro.instruments import instrument as instrument_facts
from micro.live.accounting import Ledger
from micro.live.alerting import JournalAlerts, LinkWatch, link_state
from micro.live.bars import BarClock, Schedule
from micro.live.book import Book
from micro.live.broker import Broker, BrokerError, Candle, OrderOutcomeUnknown, Quote
from micro.live.control import OperatorControl
from micro.live.health import BrokerHealth
from micro.live.journal import Journal, StateFile
from micro.live.models import ModelSlot
from micro.live.page import LivePage
from micro.live.reconcile import PendingOrder, Reconciler
from micro.live.risk import CircuitBreaker, RiskGuard, RiskState, price_problem, trading_day
from micro.mcts.agent import Observations
from micro.volumes import (
    Connection,
    LiveState,
    journal_path,
    kill_path,
    live_page_path,
    live_state_path,
)

log = logging.getLogger("micro.live")

HEARTBEAT_SECONDS = 5.0  # state.json is rewritten at least this often while no bar comes
CLIENT_ID_TAKEN = "CLIENT_TRADE_ID_ALREADY_EXISTS"  # OANDA's reject: a trade has this client id


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
        alerts: Alerter | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.models = models
        self.schedule = schedule or Schedule()
        self.max_bars = max_bars
        self._monotonic = monotonic
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
        self.alerts = alerts or Alerter(config.alerts, "live")  # no targets: silent
        self.journal = Journal(
            journal_path(home),
            wall,
            [JournalAlerts(self.alerts, name, config.alerts.daily_summary)],
        )
        self.link = LinkWatch(self.alerts, name, config.alerts.disconnect_seconds, monotonic)
        self.page = LivePage(live_page_path(home), monotonic=monotonic, wall=wall)
        self.journal.listeners.append(self.page.on_line)
        self.state_file = StateFile(live_state_path(home), wall)
        self.kill_path: Path = kill_path(home)
        self.health = BrokerHealth(self.breaker, self.journal)
        self.halts: dict[str, str] = {}  # name -> reason: no entries while any is set
        self.ledger = Ledger()
        self.reconciler = Reconciler(
            config, broker, self.book, self.journal, self.health, self.risk, self.halts, wall,
            self.ledger,
        )  # fmt: skip
        self.control = OperatorControl(home, self.halts, self.risk, self.journal)  # pause, reset
        self.stop_event = threading.Event()
        self.last_bar: Candle | None = None
        self.bars_done = 0
        self._state_written = 0.0  # monotonic time of the last state.json write
        self.market_open = True  # the candle clock is moving
        self.tradeable = True  # the broker's flag at the last decision
        self.killed = False
        self.stream_seen: dict[str, Any] | None = None  # the price stream's last journaled state
        self._rng = np.random.default_rng(0)  # greedy mode draws nothing; the API wants one

    # ------------------------------------------------------------ the loop

    def request_stop(self) -> None:
        """Finish the current bar, then stop (SIGTERM/SIGINT handlers call this); a broker
        request waiting to retry gives up at once, so the stop takes seconds, not minutes."""
        self.stop_event.set()
        self.broker.interrupt()

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
                self.control.check(self._open_pips())
                self.link.update(*link_state(self.health.last_error, self.broker.connection()))
                if not self.health.allow():
                    self._wait(self.config.live.poll_seconds)
                    continue
                try:
                    bars = self.clock.poll()
                except BrokerError as exc:
                    self.health.failed("poll", exc)
                    self._wait(self.health.backoff(self.config.live.poll_seconds))
                    continue
                self.health.ok()
                if not bars:
                    if self.broker.finished():
                        reason = "replay_finished"
                        break
                    stalled = (
                        self.clock.seconds_without_bar() > self.config.live.stalled_clock_seconds
                    )
                    self._note_market(not stalled)
                    if self.last_bar is not None and self.reconciler.due():
                        self.reconciler.reconcile(self.last_bar, new_bar=False)
                        self.write_state()
                    heartbeat = max(self.config.live.poll_seconds, HEARTBEAT_SECONDS)
                    if self._monotonic() - self._state_written >= heartbeat:
                        self.write_state()  # a heartbeat while idle (weekends): health stays green
                    self._wait(self.config.live.poll_seconds)
                    continue
                self._note_market(True)
                for bar in bars:
                    self.on_bar(bar)
                    if self.stop_event.is_set() or (
                        self.max_bars is not None and self.bars_done >= self.max_bars
                    ):
                        break
        except Exception as exc:
            reason = f"error: {type(exc).__name__}"
            self.alerts.send("crash", "live trader stopped on an error", f"{reason}: {exc}",
                             level="failure")  # fmt: skip
            raise
        finally:
            self.finish(reason)
            self.alerts.close()
        return 0

    def start(self) -> None:
        """Warm the features up from the broker's history and reconcile with it."""
        saved = self.state_file.read() or LiveState()
        self.page.seed(self.journal.path)  # the bars and trades before a restart
        self.risk.state = RiskState.from_dict(saved.risk)
        self.ledger = self.reconciler.ledger = Ledger.from_dict(saved.accounting)
        self.journal.record(
            "start",
            broker=self.broker.name,
            instrument=self.instrument,
            model=self.models.model.to_dict(),
            config=self.config.to_dict(),  # the full config, secrets redacted
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
            self.reconciler.at_start(saved, history)
        except BrokerError as exc:
            raise UserError(
                f"{self.broker.name}: cannot reconcile the position at start ({exc}); "
                "not trading until the broker answers"
            ) from None
        self.broker.start()
        self._note_stream()
        self.control.check(self._open_pips())
        self.write_state()

    def finish(self, reason: str) -> None:
        """Write the state and a stop line; broker-side stops stay where they are."""
        self.write_state(final=True)
        self.journal.record(
            "stop", reason=reason, bars=self.bars_done, position=self._position_dict()
        )
        self.broker.close()

    # ------------------------------------------------------------ one bar

    def on_bar(self, bar: Candle) -> None:
        """Everything the trader does on one completed candle."""
        started = self._monotonic()
        self.features.update(bar.ts, bar.open, bar.high, bar.low, bar.close)
        feature_seconds = self._monotonic() - started
        self.last_bar = bar
        self.bars_done += 1
        plan = self.schedule.plan(bar.ts)
        line: dict[str, Any] = {"bar": _bar_dict(bar), "role": plan.role}
        event = self.models.maybe_reload()
        if event is not None:
            self.journal.record("reload", **event)
        reconciled = self.reconciler.reconcile(bar)
        self._note_stream()
        day = self.ledger.roll(trading_day(bar.close_ts))
        if day is not None:
            self.journal.record("day", **day)
        open_pips = self.book.broker_open_pips(bar.close)
        self.control.check(open_pips)
        for name in self.risk.on_bar(bar.close_ts, open_pips):
            self.journal.record("risk", event=name, bar_ts=bar.ts, state=self.risk.state.to_dict())
        if self._check_kill():
            line["decision"] = None
        elif plan.close is not None:
            if self.book.position is not None:
                self._close(bar, plan.close)
        elif plan.decide and reconciled and self.features.ready:
            line.update(self._decide_and_act(bar, feature_seconds))
        equity = self.risk.state.equity_pips + self._open_pips()  # the dashboard's sparkline
        self.journal.record("bar", **line, side=self.book.side, equity_pips=round(equity, 3))
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
        started = self._monotonic()
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
        latency_ms = (self._monotonic() - started + feature_seconds) * 1000.0
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
        if self.broker.quote_source is not None:
            decision["price_source"] = self.broker.quote_source  # or 'rest' while it is down
        if blocks:
            decision["blocked"] = blocks
            self.journal.record(
                "risk",
                event="order_blocked",
                action=ACTION_NAMES[action],
                reasons=blocks,
                bar_ts=bar.ts,
            )
        elif action in (BUY, SELL) and quote is not None:
            self._enter(1 if action == BUY else -1, bar, quote)
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
        if not self.health.allow():
            blocks.append("circuit breaker open")
        if action in (BUY, SELL):
            blocks += self.risk.entry_blocks(bar.close_ts, self.config.live.units)
            blocks += list(self.halts.values())
            pending = self.reconciler.pending
            if pending is not None:
                blocks.append(f"order {pending.client_id} has an unknown outcome")
            if not self.market_open:
                blocks.append("market closed (the candle clock stalled)")
        return blocks

    # ------------------------------------------------------------ orders

    def _enter(self, side: int, bar: Candle, quote: Quote) -> None:
        """Market order with a stop-loss and a client id; the intent is saved before sending.

        The stop rests where the env's would trigger: the env's mid stop (decision close −
        side × stop distance) moved out by half the quoted spread, onto the side the broker
        triggers it on. An order found not received earlier fences its client id: this entry
        reuses it, so the broker never fills both. Before it does, the broker's records are
        searched for that id once more, closed trades included (a broker may refuse an id
        only while its trade is open): a trade found there is booked instead of entering, and
        the fence is lifted. A refusal as CLIENT_TRADE_ID_ALREADY_EXISTS means the lost order
        arrived after all: its trade is looked up and booked at once.
        """
        units = self.config.live.units
        fenced = self.reconciler.fenced_client_id()
        if fenced is not None:
            found = self.reconciler.check_lost(bar)
            if found in ("filled", "error"):  # the book changed, or the records are unread
                return
            fenced = self.reconciler.fenced_client_id()
        client_id = fenced or f"micro-{bar.ts}-{'B' if side > 0 else 'S'}"
        stop_pips = self.config.risk.stop_loss_pips
        pip = self.book.pip
        mid_stop = stop_level(side, bar.close, stop_pips, pip)
        stop_price = float(quoted_stop(side, mid_stop, 0.5 * (quote.ask - quote.bid)))
        spread_pips = round((quote.ask - quote.bid) / pip, 3)
        self.reconciler.pending = PendingOrder(
            client_id, side, units, _bar_dict(bar), self._wall(),
            since_id=self.broker.last_transaction_id, stop_price=stop_price,
            spread_pips=spread_pips,
        )  # fmt: skip
        self.write_state()
        self.journal.record(
            "order",
            client_id=client_id,
            side=side,
            units=units,
            stop_loss_pips=stop_pips,
            stop_price=stop_price,
            bar_ts=bar.ts,
            fenced=fenced is not None,
        )
        try:
            result = self.broker.market_order(side, units, stop_price, client_id)
        except OrderOutcomeUnknown as exc:
            self.health.failed("order", exc, outcome_unknown=True)
            self.reconciler.resolve_pending(bar)  # look it up before anything else
            return
        except BrokerError as exc:
            self.reconciler.pending = None  # refused outright: it was not carried out
            self.health.failed("order", exc)
            return
        self.health.ok()
        self.reconciler.pending = None
        if not result.filled or result.trade is None:
            self.journal.record("rejected", client_id=client_id, reason=result.reason)
            if fenced is not None and result.reason == CLIENT_ID_TAKEN:
                self.reconciler.check_lost(bar)  # the lost order arrived after all
            elif fenced is not None:
                self.reconciler.passed(client_id)
            return
        self.reconciler.order_filled(client_id)
        self.reconciler.adopt(result.trade, bar, bar.close, "fill", spread_pips)

    def _close(self, bar: Candle, reason: str, closed_by: str | None = None) -> None:
        """Close the position at market; booked at this bar's close (the env's exit)."""
        position = self.book.position
        if position is None:
            return
        quote = self._quote()
        problem = price_problem(quote, bar.close_ts, self.config.risk.stale_price_seconds)
        if problem is not None or quote is None or not self.health.allow():
            why = problem or "circuit breaker open"
            self.journal.record("risk", event="close_blocked", reason=why, bar_ts=bar.ts)
            return
        try:
            result = self.broker.close_trade(position.trade_id)
        except BrokerError as exc:
            self.health.failed("close", exc)  # the next reconciliation reads what happened
            return
        self.health.ok()
        pip = self.book.pip
        spread_pips = round((quote.ask - quote.bid) / pip, 3)
        slippage = self.ledger.fill(-position.side, result.price, bar.close, pip, spread_pips)
        trade = self.book.close(
            bar, bar.close, reason, result.price, result.realized_pl, result.financing
        )
        trade.update(exit_slippage_pips=round(slippage, 3), exit_spread_pips=spread_pips)
        self.reconciler.record_trade(trade, closed_by or reason)

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
        if not self.health.allow():
            return None
        try:
            quote = self.broker.quote()
        except BrokerError as exc:
            self.health.failed("quote", exc)
            return None
        self.health.ok()
        return quote

    def _note_market(self, is_open: bool, why: str = "the candle clock stalled") -> None:
        if is_open != self.market_open:
            self.market_open = is_open
            self.journal.record(
                "risk",
                event="market_open" if is_open else "market_closed",
                reason=None if is_open else why,
            )
            self.write_state()

    def _note_stream(self) -> None:
        """Journal the price stream's state when it changed (connected, reconnecting, ...)."""
        status = self.broker.connection()
        if status is None:
            return
        seen = self.stream_seen or {}
        key = ("state", "reconnects")
        if any(status.get(k) != seen.get(k) for k in key):
            self.stream_seen = status
            self.journal.record("connection", stream=status)

    def _wait(self, seconds: float) -> None:
        self.stop_event.wait(seconds)

    def _position_dict(self) -> dict[str, Any] | None:
        return self.book.position.to_dict() if self.book.position else None

    def _open_pips(self) -> float:
        """The open position's pips at the last bar's close (0 flat or before any bar)."""
        return self.book.broker_open_pips(self.last_bar.close) if self.last_bar else 0.0

    def write_state(self, final: bool = False) -> None:
        """Rewrite live/state.json atomically; the live page too, at most every few seconds
        (`final`: now)."""
        open_pips = self._open_pips()
        state = LiveState(
            broker=self.broker.name,
            instrument=self.instrument,
            position=self._position_dict(),
            pending_order=pending.to_dict() if (pending := self.reconciler.pending) else None,
            lost_order=lost.to_dict() if (lost := self.reconciler.lost) else None,
            accounting=self.ledger.to_dict(),
            day_pnl_pips=self.risk.state.day_realised_pips + open_pips,
            risk=self.risk.state.to_dict(),
            halts=dict(self.halts),
            killed=self.killed,
            circuit=self.breaker.snapshot(),
            connection=Connection(
                ok=self.health.last_error is None,
                last_error=self.health.last_error,
                stream=self.broker.connection(),
            ),
            market_open=self.market_open and self.tradeable,
            model=self.models.model.to_dict(),
            last_bar=_bar_dict(self.last_bar) if self.last_bar else None,
            bars_processed=self.bars_done,
            trades=self.reconciler.trades,
            updated_unix=self._wall(),
            paused=self.control.paused,
        )
        self.state_file.write(state)
        self._state_written = self._monotonic()
        self.page.maybe_write(state, force=final)


def _bar_dict(bar: Candle) -> dict[str, Any]:
    return asdict(bar)
