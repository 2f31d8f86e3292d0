"""The broker's numbers of a trading day: its P&L and financing, slippage by side, spread paid.

The trader's book keeps the env's model pips (mid prices, configured costs) so the agent sees
what the backtest saw; the `Ledger` keeps beside them what the broker actually did. Every fill
at market is compared with the close of the bar it was decided on (slippage, pips, positive =
paid; by the side of the fill: a buy pays above the close, a sell below it) and with the quote's
spread at the order; every closed trade adds its model pips, its broker pips (the fills' price
difference), the broker's realised P&L and financing (account currency). At the FX day's roll
(21:00 UTC) the trader journals the day as a `day` line and starts a new one; the current day
rides in live/state.json (`accounting`) for `micro dash`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

SIDES = ("buy", "sell")


@dataclass
class FillStats:
    """Market fills of one side: how many, and their summed slippage and spread (pips)."""

    fills: int = 0
    slippage_pips: float = 0.0  # summed: fill vs the decision bar's close, positive = paid
    spread_fills: int = 0  # fills with a quote at the order
    spread_pips: float = 0.0  # summed quoted spread at the order

    def mean_slippage(self) -> float | None:
        return self.slippage_pips / self.fills if self.fills else None

    def mean_spread(self) -> float | None:
        return self.spread_pips / self.spread_fills if self.spread_fills else None


@dataclass
class Ledger:
    """One trading day of broker-true accounting (see the module doc)."""

    trading_day: int | None = None
    trades: int = 0
    model_pips: float = 0.0  # the env's net pips of the day's closed trades
    broker_pips: float = 0.0  # the broker's fills' pips of the same trades
    broker_pl: float = 0.0  # realised P&L, account currency
    financing: float = 0.0  # account currency
    buy: FillStats = field(default_factory=FillStats)
    sell: FillStats = field(default_factory=FillStats)

    def fill(
        self, side: int, price: float, bar_close: float, pip: float, spread_pips: float | None
    ) -> float:
        """A market fill of `side` (+1 buy, −1 sell); its slippage in pips (positive = paid)."""
        slippage = side * (price - bar_close) / pip
        stats = self.buy if side > 0 else self.sell
        stats.fills += 1
        stats.slippage_pips += slippage
        if spread_pips is not None:
            stats.spread_fills += 1
            stats.spread_pips += spread_pips
        return slippage

    def trade(self, record: dict[str, Any]) -> None:
        """A closed round trip (the book's trade record with the broker's fields)."""
        self.trades += 1
        self.model_pips += float(record.get("pips") or 0.0)
        self.broker_pips += float(record.get("broker_pips") or 0.0)
        self.broker_pl += float(record.get("broker_pl") or 0.0)
        self.financing += float(record.get("financing") or 0.0)

    def roll(self, day: int) -> dict[str, Any] | None:
        """Start trading day `day`; the summary of the day just over (None if nothing to say)."""
        if self.trading_day == day:
            return None
        done = self.summary() if self.trading_day is not None else None
        fresh = Ledger(trading_day=day)
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))
        return done

    def summary(self) -> dict[str, Any]:
        """The day in the journal's and the dashboard's words."""
        by_side = {
            name: {
                "fills": stats.fills,
                "slippage_pips": _round(stats.mean_slippage()),
                "spread_pips": _round(stats.mean_spread()),
            }
            for name, stats in (("buy", self.buy), ("sell", self.sell))
        }
        return {
            "trading_day": self.trading_day,
            "trades": self.trades,
            "model_pips": round(self.model_pips, 3),
            "broker_pips": round(self.broker_pips, 3),
            "broker_pl": round(self.broker_pl, 4),
            "financing": round(self.financing, 4),
            "slippage": by_side,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Ledger:
        """The ledger saved in state.json; anything unreadable starts an empty one."""
        data = data or {}
        try:
            return cls(
                trading_day=data.get("trading_day"),
                trades=int(data.get("trades", 0)),
                model_pips=float(data.get("model_pips", 0.0)),
                broker_pips=float(data.get("broker_pips", 0.0)),
                broker_pl=float(data.get("broker_pl", 0.0)),
                financing=float(data.get("financing", 0.0)),
                buy=FillStats(**(data.get("buy") or {})),
                sell=FillStats(**(data.get("sell") or {})),
            )
        except (TypeError, ValueError):
            return cls()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
