"""The simulated broker: paper trading and replays over stored candles, filled like the env.

Its clock is a replay over chosen rows of the stored candles: every `candles_since` call releases
the next row (one bar per poll), so the trader runs as fast as it can think. Prices are mid ± half
the configured spread (bid/ask), so a round trip pays exactly the env's spread. A position's stop
rests at the price the order gives, on the side it exits at (a long's on the bid), as OANDA's
does; each released bar checks it on the bar's bid low (long) or ask high (short), and a bar that
opens beyond the stop fills at its open (a gap), with the env's own fill functions
(`micro.env.fills`). The trader sends the env's mid stop moved half the spread out
(`fills.quoted_stop`), so the sim stops on the env's bar at the env's mid. Every close pays the
half spread on the way out (a long sells at the bid).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from micro.env.fills import stop_fill
from micro.live.broker import (
    Account,
    BrokerError,
    BrokerTrade,
    Candle,
    CloseResult,
    OrderResult,
    OrderTrace,
    Quote,
)

CLIENT_ID_MAX = 128  # OANDA's limit on tradeClientExtensions.id


class SimBroker:
    """Fills against stored mid candles; the replay clock releases `rows` one per poll."""

    name = "sim"
    order_settle_seconds = 0.0  # the sim answers every order
    quote_source: str | None = None  # one source: the stored candles
    last_transaction_id: str | None = None  # no transaction log: every order is answered

    def __init__(
        self,
        instrument: str,
        pip: float,
        spread_pips: float,
        ts: np.ndarray,  # [T] int64 s UTC, bar open times
        open_: np.ndarray,  # [T] float64 mid
        high: np.ndarray,  # [T] float64 mid
        low: np.ndarray,  # [T] float64 mid
        close: np.ndarray,  # [T] float64 mid
        rows: np.ndarray,  # [R] int64 increasing rows the clock releases, in order
        balance: float = 100_000.0,
    ) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            raise ValueError("the sim broker needs at least one row to replay")
        if np.any(np.diff(rows) <= 0):
            raise ValueError("replay rows must be strictly increasing")
        if rows[0] < 0 or rows[-1] >= len(ts):
            raise ValueError(f"replay rows must lie in [0, {len(ts)})")
        self.instrument = instrument
        self.pip = float(pip)
        self.half_spread = 0.5 * float(spread_pips) * self.pip  # price
        self._ts = np.asarray(ts, dtype=np.int64)
        self._open = np.asarray(open_, dtype=np.float64)
        self._high = np.asarray(high, dtype=np.float64)
        self._low = np.asarray(low, dtype=np.float64)
        self._close = np.asarray(close, dtype=np.float64)
        self._rows = rows
        self._cursor = 0  # next index into rows to release
        self._last_row = int(rows[0]) - 1  # newest released row (history ends here)
        self._trades: dict[str, BrokerTrade] = {}  # by trade id
        self._by_client: dict[str, str] = {}
        self._ids = itertools.count(1)
        self.balance = float(balance)
        self.tradeable = True
        self.orders_sent = 0

    # ------------------------------------------------------------ clock and prices

    @classmethod
    def over_market(cls, market: Any, spread_pips: float, rows: np.ndarray) -> SimBroker:
        """A sim broker replaying `rows` of a loaded `Market` (mid candles, the env's spread)."""
        return cls(
            market.instrument,
            market.pip,
            spread_pips,
            market.ts,
            market.open,
            market.high,
            market.low,
            market.close,
            rows,
        )

    def finished(self) -> bool:
        """Whether every replay row has been released."""
        return self._cursor >= len(self._rows)

    def history(self, count: int) -> list[Candle]:
        """Up to `count` stored candles ending at the newest released row."""
        first = max(0, self._last_row - count + 1)
        return [self._candle(r) for r in range(first, self._last_row + 1)]

    def candles_since(self, ts: int) -> list[Candle]:
        """Release the next replay row (one bar per poll); its stop-loss is checked first."""
        if self.finished():
            return []
        row = int(self._rows[self._cursor])
        self._cursor += 1
        self._last_row = row
        self._check_stop(row)
        if self._ts[row] <= ts:
            return []
        return [self._candle(row)]

    def quote(self) -> Quote:
        """Mid ± half spread at the newest released close, quoted when that bar completed."""
        if self._last_row < 0:
            raise BrokerError("the sim broker has no price before its first bar")
        mid = float(self._close[self._last_row])
        return Quote(
            bid=mid - self.half_spread,
            ask=mid + self.half_spread,
            time=float(self._ts[self._last_row] + 60),
            tradeable=self.tradeable,
        )

    # ------------------------------------------------------------ account and orders

    def open_trades(self) -> list[BrokerTrade]:
        return [t for t in self._trades.values() if t.state == "OPEN"]

    def account(self) -> Account:
        return Account(balance=self.balance, nav=self.balance, currency="JPY")

    def market_order(self, side: int, units: int, stop_price: float, client_id: str) -> OrderResult:
        """Fill at the ask (buy) or bid (sell); the stop rests at `stop_price` (exit side)."""
        if side not in (-1, 1) or units <= 0 or not 0 < len(client_id) <= CLIENT_ID_MAX:
            raise ValueError(f"bad order: side {side}, units {units}, client id {client_id!r}")
        self.orders_sent += 1
        if client_id in self._by_client:
            return OrderResult(client_id, False, None, "CLIENT_TRADE_ID_ALREADY_EXISTS")
        if not self.tradeable:
            return OrderResult(client_id, False, None, "MARKET_HALTED")
        if self.open_trades():
            return OrderResult(client_id, False, None, "POSITION_ALREADY_OPEN")
        mid = float(self._close[self._last_row])
        trade = BrokerTrade(
            trade_id=str(next(self._ids)),
            client_id=client_id,
            side=side,
            units=int(units),
            price=mid + side * self.half_spread,
            open_time=float(self._ts[self._last_row] + 60),
            state="OPEN",
            stop_price=float(stop_price),
            current_units=int(units),
        )
        self._trades[trade.trade_id] = trade
        self._by_client[client_id] = trade.trade_id
        return OrderResult(client_id, True, trade)

    def close_trade(self, trade_id: str) -> CloseResult:
        """Close at the bid (long) or ask (short) of the newest close."""
        trade = self._trades.get(trade_id)
        if trade is None or trade.state != "OPEN":
            raise BrokerError(f"sim: trade {trade_id} is not open")
        mid = float(self._close[self._last_row])
        time = float(self._ts[self._last_row] + 60)
        return self._finish(trade, mid - trade.side * self.half_spread, time, "agent")

    def trade_by_client_id(self, client_id: str) -> BrokerTrade | None:
        trade_id = self._by_client.get(client_id)
        return None if trade_id is None else self._trades[trade_id]

    def trade_details(self, trade_id: str) -> BrokerTrade | None:
        return self._trades.get(trade_id)

    def find_order(self, client_id: str, since_id: str | None) -> OrderTrace:
        """The sim answers every order, so its trades are its whole record."""
        trade = self.trade_by_client_id(client_id)
        return OrderTrace("not_seen") if trade is None else OrderTrace("filled", trade)

    def interrupt(self) -> None:
        """Nothing waits: the sim never retries."""
        return None

    def close(self) -> None:
        return None

    def start(self) -> None:
        """Nothing runs beside the replay."""
        return None

    def connection(self) -> dict[str, object] | None:
        """No price stream."""
        return None

    # ------------------------------------------------------------ internals

    def _candle(self, row: int) -> Candle:
        return Candle(
            ts=int(self._ts[row]),
            open=float(self._open[row]),
            high=float(self._high[row]),
            low=float(self._low[row]),
            close=float(self._close[row]),
        )

    def _check_stop(self, row: int) -> None:
        """Fill a resting stop during bar `row` with the env's rule, on the exit side's prices."""
        for trade in self.open_trades():
            stop = trade.stop_price
            if stop is None:
                continue
            s = trade.side
            exit_side = -s * self.half_spread  # a long exits at the bid: mid − half spread
            row_prices = (
                self._open[row] + exit_side,
                self._high[row] + exit_side,
                self._low[row] + exit_side,
            )
            fill = float(stop_fill(s, stop, *row_prices, self.pip))
            if np.isnan(fill):
                continue
            self._finish(trade, fill, float(self._ts[row]), "stop_loss")

    def _finish(self, trade: BrokerTrade, price: float, time: float, reason: str) -> CloseResult:
        profit = trade.side * (price - trade.price) * trade.units  # quote currency
        self._trades[trade.trade_id] = dataclasses.replace(
            trade,
            state="CLOSED",
            close_price=price,
            close_time=time,
            close_reason=reason,
            realized_pl=profit,
            financing=0.0,
            current_units=0,
        )
        self.balance += profit
        return CloseResult(trade.trade_id, price, time, realized_pl=profit, financing=0.0)
