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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from micro.config import Config
from micro.env.actions import ACTION_NAMES, BUY, CLOSE, HOLD, SELL, legal_mask
from micro.env.costs import costs_for
from micro.errors import UserError
from micro.features.scaling import FeatureScaling
from micro.features.temporal import FeatureState
from micro.home import Home
from micro.instruments import instrument as instrument_facts
from micro.live.bars import BarClock, Schedule
from micro.live.book import Book, Position
from micro.live.broker import Broker, BrokerError, BrokerTrade, Candle, OrderOutcomeUnknown, Quote
from micro.live.journal import Journal, StateFile
from micro.live.models import ModelSlot
from micro.live.reconcile import PendingOrder, Reconciliation
from micro.live.risk import CircuitBreaker, RiskGuard, RiskState, price_problem
from micro.mcts.agent import Observations
from micro.volumes import Connection, LiveState, journal_path, kill_path, live_state_path

log = logging.getLogger("micro.live")

MAX_WAIT_SECONDS = 60.0


class Trader(Reconciliation):
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
        self.journal = Journal(journal_path(home))
        self.state_file = StateFile(live_state_path(home))
        self.kill_path: Path = kill_path(home)
        self.stop_event = threading.Event()
        self.pending: PendingOrder | None = None
        self.halts: dict[str, str] = {}  # name -> reason: no entries while any is set
        self.last_bar: Candle | None = None
        self.bars_done = 0
        self._state_written = 0.0  # monotonic time of the last state.json write
        self.trades_done = 0
        self.last_error: str | None = None
        self.market_open = True  # the candle clock is moving
        self.tradeable = True  # the broker's flag at the last decision
        self.killed = False
        self.stream_seen: dict[str, Any] | None = None  # the price stream's last journaled state
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
                    if time.monotonic() - self._state_written >= max(
                        self.config.live.poll_seconds, 5.0
                    ):
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
        finally:
            self.finish(reason)
        return 0

    def start(self) -> None:
        """Warm the features up from the broker's history and reconcile with it."""
        saved = self.state_file.read() or LiveState()
        self.risk.state = RiskState.from_dict(saved.risk)
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
            self._reconcile_at_start(saved, history)
        except BrokerError as exc:
            raise UserError(
                f"{self.broker.name}: cannot reconcile the position at start ({exc}); "
                "not trading until the broker answers"
            ) from None
        start_stream = getattr(self.broker, "start_stream", None)  # brokers with a price stream
        if start_stream is not None:
            start_stream()
            self._note_stream()
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
        self._note_stream()
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
        source = getattr(self.broker, "quote_source", None)
        if source is not None:
            decision["price_source"] = source  # 'stream', or 'rest' while the stream is down
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

    def _stream_status(self) -> dict[str, Any] | None:
        """The broker's price-stream state (None: the broker has no stream)."""
        connection = getattr(self.broker, "connection", None)
        return connection() if connection is not None else None

    def _note_stream(self) -> None:
        """Journal the price stream's state when it changed (connected, reconnecting, ...)."""
        status = self._stream_status()
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

    def write_state(self) -> None:
        """Rewrite live/state.json atomically."""
        open_pips = self.book.position.unrealised if self.book.position else 0.0
        self.state_file.write(
            LiveState(
                broker=self.broker.name,
                instrument=self.instrument,
                position=self._position_dict(),
                pending_order=asdict(self.pending) if self.pending else None,
                day_pnl_pips=self.risk.state.day_realised_pips + open_pips,
                risk=self.risk.state.to_dict(),
                halts=dict(self.halts),
                killed=self.killed,
                circuit=self.breaker.snapshot(),
                connection=Connection(
                    ok=self.last_error is None,
                    last_error=self.last_error,
                    stream=self._stream_status(),
                ),
                market_open=self.market_open and self.tradeable,
                model=self.models.model.to_dict(),
                last_bar=_bar_dict(self.last_bar) if self.last_bar else None,
                bars_processed=self.bars_done,
                trades=self.trades_done,
                updated_unix=time.time(),
            )
        )
        self._state_written = time.monotonic()


def _bar_dict(bar: Candle) -> dict[str, Any]:
    return asdict(bar)
