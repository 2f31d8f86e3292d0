"""`live/index.html`: the live trader's page, rewritten atomically, readable offline.

A file rather than an HTTP endpoint: the services meet only in files (ARCHITECTURE.md), so the
page needs no port, no server thread in the trading process and nothing to secure; it lives in
the same volume as the journal, opens from `file://` wherever the volume is mounted, and is
never half-written (`micro.atomic`). It reloads itself every REFRESH_SECONDS.

What it shows: a status line (trading, PAUSED, HALTED with every reason, KILLED), the open
position with its stop, today's P&L (the model's pips and the broker's numbers), the risk state
(halts, drawdown from the peak, circuit breaker, pending order), the connection (last error,
the price stream) and the market; the recent bars as candles with each decision marked and its
rationale on hover (visits, Q, prior, σ, value) and the stop drawn; the equity; the recent
decisions, the last trades and the latest journal events as tables. plotly.js is one asset
beside the page (`plotly-<version>.min.js`, written once), so a rewrite is a few tens of KB.

`LivePage` listens to the journal (what it keeps: the last bars, trades and events) and is
asked to write by the trader after each state write; it writes at most every `every_seconds`
(and at the stop). A page that cannot be built or written is logged once and skipped: the page
never stops trading.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import plotly.io as pio

from micro import atomic
from micro.pages import PLOTLY_ASSET, write_asset
from micro.redaction import redact_text
from micro.volumes import LiveState

log = logging.getLogger("micro.live")

PAGE_SECONDS = 2.0  # the page is rewritten at most this often
REFRESH_SECONDS = 5  # the browser reloads it this often
RECENT_BARS = 120  # candles on the chart
DECISIONS_SHOWN = 15
TRADES_SHOWN = 10
EVENTS_SHOWN = 12
SEED_BYTES = 512 * 1024  # of the journal's end read at start to fill the page
ACTIONS = ("HOLD", "BUY", "SELL", "CLOSE")
MARKERS = {  # decision -> plotly marker
    "BUY": {"symbol": "triangle-up", "color": "#138a36", "size": 11},
    "SELL": {"symbol": "triangle-down", "color": "#c0392b", "size": 11},
    "CLOSE": {"symbol": "x", "color": "#333333", "size": 10},
}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
MISSING = "–"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.3em; margin-bottom: .2em; } h2 { font-size: 1.08em; margin-top: 1.4em; }
.status { font-weight: bold; padding: .35em .7em; border-radius: 4px; display: inline-block; }
.ok { background: #dff3e4; color: #0d5c24; } .warn { background: #fff1cc; color: #7a5200; }
.bad { background: #fbe0dd; color: #8a1f14; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(270px, 1fr)); gap: .8em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5em .8em; }
.card h3 { font-size: .95em; margin: .1em 0 .4em; color: #555; }
table { border-collapse: collapse; margin: .4em 0; font-size: .92em; }
td, th { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #666; }
"""


def _esc(value: Any) -> str:
    return html.escape(MISSING if value is None else str(value))


def _num(value: Any, spec: str = ".2f") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return MISSING
    return format(value, spec)


def _utc(seconds: Any, spec: str = "%Y-%m-%d %H:%M") -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return MISSING
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime(spec)


def _per_action(values: Any, spec: str) -> str:
    if not isinstance(values, list):
        return MISSING
    return "/".join("·" if v is None else _num(v, spec) for v in values)


def _rationale(line: dict[str, Any]) -> dict[str, Any]:
    why = line.get("rationale")
    return why if isinstance(why, dict) else {}


def rationale_text(line: dict[str, Any]) -> str:
    """A decision's rationale as hover HTML: visits, Q, prior, σ, value, latency, blocks."""
    why = _rationale(line)
    decision = str(line.get("decision"))
    chosen = ACTIONS.index(decision) if decision in ACTIONS else None
    sigma = why.get("sigma")
    sigma_chosen = sigma[chosen] if isinstance(sigma, list) and chosen is not None else None
    parts = [
        f"<b>{_esc(decision)}</b> at {_utc((line.get('bar') or {}).get('ts'))} UTC",
        f"visits H/B/S/C {_per_action(why.get('visit_counts'), '.0f')}",
        f"Q {_per_action(why.get('q'), '+.2f')}",
        f"prior {_per_action(why.get('prior'), '.2f')}",
        f"σ down/flat/up {_per_action(sigma_chosen, '.2f')}",
        f"value {_num(why.get('value'), '+.2f')} "
        f"(network {_num(why.get('network_value'), '+.2f')})",
        f"latency {_num(line.get('latency_ms'), '.1f')} ms",
    ]
    blocked = line.get("blocked")
    if isinstance(blocked, list) and blocked:
        parts.append("blocked: " + _esc("; ".join(map(str, blocked))))
    return "<br>".join(parts)


def status_of(state: LiveState) -> tuple[str, str]:
    """(css class, text) of the trader's state: trading, paused, halted (why) or killed."""
    if state.killed is True:
        return "bad", "KILLED: flattening and halted (remove live/KILL to resume)"
    reasons = [why for name, why in state.halts.items() if name != "pause"]
    if state.risk.get("drawdown_halt") is True:
        reasons.append("drawdown halt (`micro live reset-halt` after review)")
    halted_day = state.risk.get("daily_halt_day")
    if halted_day is not None and halted_day == state.risk.get("trading_day"):
        reasons.append("daily loss limit (until the next FX day)")
    if state.paused is True:
        reasons.insert(0, "PAUSED")
    if reasons == ["PAUSED"]:
        return "warn", "PAUSED: no new entries; an open position keeps its stop"
    if reasons:
        return "bad", "HALTED: " + "; ".join(reasons)
    if state.market_open is False:
        return "warn", "trading (market closed)"
    return "ok", "trading"


class LivePage:
    """Keeps the journal's recent lines and writes the page from them and the state."""

    def __init__(
        self,
        path: Path,
        every_seconds: float = PAGE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.every_seconds = every_seconds
        self._monotonic = monotonic
        self._wall = wall
        self.bars: deque[dict[str, Any]] = deque(maxlen=RECENT_BARS)
        self.trades: deque[dict[str, Any]] = deque(maxlen=TRADES_SHOWN)
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENTS_SHOWN)
        self._written_at: float | None = None  # monotonic s
        self._asset_ready = False
        self._last_problem: str | None = None
        self.writes = 0

    def on_line(self, line: dict[str, Any]) -> None:
        """A journal listener: keep what the page shows."""
        kind = line.get("kind")
        if kind == "bar":
            if isinstance(line.get("bar"), dict):
                self.bars.append(line)
        elif kind == "trade":
            self.trades.append(line)
        elif kind not in ("start", None):
            self.events.append(line)

    def seed(self, journal: Path) -> None:
        """Fill the page from the end of an existing journal (a restart shows the past bars)."""
        for line in _tail_lines(journal, SEED_BYTES):
            self.on_line(line)

    def maybe_write(self, state: LiveState, force: bool = False) -> bool:
        """Write the page if `every_seconds` have passed (or `force`); never raises."""
        now = self._monotonic()
        if not force and self._written_at is not None:
            if now - self._written_at < self.every_seconds:
                return False
        self._written_at = now
        try:
            if not self._asset_ready:
                write_asset(self.path.parent)
                self._asset_ready = True
            atomic.write_bytes(self.path, redact_text(self.render(state)).encode())
        except Exception as exc:  # noqa: BLE001 - the page is a view; trading goes on
            problem = type(exc).__name__  # the same failure again (another temp name) is quiet
            if problem != self._last_problem:
                log.warning("the live page %s was not written (%s: %s); trading goes on",
                            self.path, problem, exc)  # fmt: skip
            self._last_problem = problem
            return False
        self._last_problem = None
        self.writes += 1
        return True

    # ------------------------------------------------------------ the page

    def render(self, state: LiveState) -> str:
        """The whole page for `state` and the lines kept."""
        css, status = status_of(state)
        title = f"micro live · {state.instrument or MISSING} · {state.broker or MISSING}"
        written = _utc(self._wall(), "%Y-%m-%d %H:%M:%S")
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
            f"<title>{_esc(title)}</title><style>{CSS}</style>",
            f'<script src="{PLOTLY_ASSET}"></script></head><body>',
            f"<h1>{_esc(title)}</h1>",
            f'<p><span class="status {css}" id="status">{_esc(status)}</span> '
            f'<span class="note">written {written} UTC; '
            f"reloads every {REFRESH_SECONDS} s</span></p>",
            self._cards(state),
            "<h2>Recent bars and decisions</h2>",
            self._bars_chart(state),
            self._equity_chart(),
            "<h2>Decisions</h2>",
            self._decisions_table(),
            "<h2>Last trades</h2>",
            self._trades_table(),
            "<h2>Journal events</h2>",
            self._events_table(),
            "</body></html>",
        ]
        return "\n".join(parts)

    def _cards(self, state: LiveState) -> str:
        position = state.position
        if position is None:
            held = "flat"
        else:
            side = position.get("side")
            held = (
                f"{'LONG' if side == 1 else 'SHORT' if side == -1 else MISSING} "
                f"{_num(position.get('units'), '.0f')} @ {_num(position.get('fill_price'), '.3f')}"
            )
        accounting = state.accounting
        connection = state.connection
        stream = connection.stream or {}
        peak = state.risk.get("equity_peak_pips")
        equity = state.risk.get("equity_pips")
        drawdown = peak - equity if isinstance(peak, int | float) and isinstance(
            equity, int | float) else None  # fmt: skip
        cards = {
            "Position": [
                ("held", held),
                ("stop", _num((position or {}).get("stop_price"), ".3f")),
                ("unrealised", _num((position or {}).get("unrealised"), "+.1f") + " pips"),
                ("bars held", _num((position or {}).get("bars"), ".0f")),
                ("pending order", (state.pending_order or {}).get("client_id") or "none"),
            ],
            "Today's P&L": [
                ("model", _num(state.day_pnl_pips, "+.1f") + " pips"),
                ("broker", _num(accounting.get("broker_pips"), "+.1f") + " pips"),
                ("broker P&L", _num(accounting.get("broker_pl"), "+.2f")),
                ("financing", _num(accounting.get("financing"), "+.2f")),
                ("trades", _num(accounting.get("trades"), ".0f")),
            ],
            "Risk": [
                ("halts", "; ".join(state.halts.values()) or "none"),
                ("paused", "yes" if state.paused else "no"),
                ("killed", "yes" if state.killed else "no"),
                ("equity", _num(equity, "+.1f") + " pips"),
                ("drawdown from peak", _num(drawdown, ".1f") + " pips"),
                ("drawdown halt", "yes" if state.risk.get("drawdown_halt") else "no"),
                (
                    "circuit",
                    f"{state.circuit.get('state') or MISSING} "
                    f"({_num(state.circuit.get('consecutive_errors'), '.0f')} errors)",
                ),
            ],  # fmt: skip
            "Connection": [
                ("broker", "ok" if connection.ok else f"error: {connection.last_error}"),
                ("price stream", stream.get("state") or "none"),
                ("market", "open" if state.market_open else "closed"),
                ("model", f"episode {_num((state.model or {}).get('episode'), '.0f')}"),
                ("last bar", f"{_utc((state.last_bar or {}).get('ts'))} UTC"),
                (
                    "bars / trades",
                    f"{_num(state.bars_processed, '.0f')} / {_num(state.trades, '.0f')}",
                ),
            ],  # fmt: skip
        }
        html_cards = []
        for name, rows in cards.items():
            body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
            card_id = name.lower().replace("'", "").replace(" ", "-").replace("&", "")
            html_cards.append(
                f'<div class="card" id="card-{card_id}"><h3>{_esc(name)}</h3>'
                f"<table>{body}</table></div>"
            )
        return '<div class="cards">' + "".join(html_cards) + "</div>"

    def _bars_chart(self, state: LiveState) -> str:
        bars = list(self.bars)
        if not bars:
            return '<p class="note" id="no-bars">no bars yet</p>'
        times = [_utc(b["bar"].get("ts"), "%Y-%m-%d %H:%M:%S") for b in bars]
        data: list[dict[str, Any]] = [
            {
                "type": "candlestick",
                "name": "bars",
                "x": times,
                "open": [b["bar"].get("open") for b in bars],
                "high": [b["bar"].get("high") for b in bars],
                "low": [b["bar"].get("low") for b in bars],
                "close": [b["bar"].get("close") for b in bars],
                "showlegend": False,
            }
        ]
        for decision, marker in MARKERS.items():
            chosen = [(t, b) for t, b in zip(times, bars, strict=True)
                      if b.get("decision") == decision]  # fmt: skip
            if not chosen:
                continue
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": decision,
                    "x": [t for t, _ in chosen],
                    "y": [b["bar"].get("close") for _, b in chosen],
                    "marker": {
                        **marker,
                        "symbol": [  # hollow: the decision was blocked (hover says why)
                            f"{marker['symbol']}-open" if b.get("blocked") else marker["symbol"]
                            for _, b in chosen
                        ],
                        "line": {"width": 1, "color": "#222"},
                    },
                    "hovertext": [rationale_text(b) for _, b in chosen],
                    "hoverinfo": "text",
                }
            )
        stop = (state.position or {}).get("stop_price")
        if isinstance(stop, int | float):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "stop",
                    "x": [times[0], times[-1]],
                    "y": [stop, stop],
                    "line": {"color": "#c0392b", "dash": "dash", "width": 1},
                }
            )
        layout = {
            "height": 430,
            "template": _template(),
            "margin": {"l": 60, "r": 20, "t": 20, "b": 40},
            "xaxis": {"rangeslider": {"visible": False}, "title": "bar open (UTC)"},
            "yaxis": {"title": "mid price"},
            "hovermode": "closest",
            "legend": {"orientation": "h", "y": -0.15},
        }
        return _plot({"data": data, "layout": layout}, "live-bars")

    def _equity_chart(self) -> str:
        bars = [b for b in self.bars if isinstance(b.get("equity_pips"), int | float)]
        if not bars:
            return ""
        data = [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "equity",
                "x": [_utc(b["bar"].get("ts"), "%Y-%m-%d %H:%M:%S") for b in bars],
                "y": [b["equity_pips"] for b in bars],
                "line": {"color": "#1f5fbf"},
            }
        ]
        layout = {
            "height": 220,
            "template": _template(),
            "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
            "yaxis": {"title": "equity (pips)"},
        }
        return _plot({"data": data, "layout": layout}, "live-equity")

    def _decisions_table(self) -> str:
        decided = [b for b in self.bars if isinstance(b.get("decision"), str)][-DECISIONS_SHOWN:]
        if not decided:
            return '<p class="note">no decisions yet</p>'
        head = ("bar UTC", "decision", "visits H/B/S/C", "Q H/B/S/C", "prior", "σ (chosen)",
                "value", "ms", "note")  # fmt: skip
        rows = []
        for line in reversed(decided):
            why = _rationale(line)
            decision = str(line["decision"])
            chosen = ACTIONS.index(decision) if decision in ACTIONS else None
            sigma = why.get("sigma")
            blocked = line.get("blocked")
            cells = [
                _utc(line["bar"].get("ts"), "%H:%M"),
                decision,
                _per_action(why.get("visit_counts"), ".0f"),
                _per_action(why.get("q"), "+.2f"),
                _per_action(why.get("prior"), ".2f"),
                _per_action(sigma[chosen], ".2f")
                if isinstance(sigma, list) and chosen is not None
                else MISSING,
                _num(why.get("value"), "+.2f"),
                _num(line.get("latency_ms"), ".1f"),
                "blocked: " + "; ".join(map(str, blocked))
                if isinstance(blocked, list) and blocked
                else "",
            ]
            rows.append(cells)
        return _table("decisions", head, rows)

    def _trades_table(self) -> str:
        if not self.trades:
            return '<p class="note">no trades since the journal began</p>'
        head = ("entry UTC", "exit UTC", "side", "bars", "pips (model)", "pips (broker)", "exit")
        rows = [
            [
                _utc(t.get("entry_ts")),
                _utc(t.get("exit_ts")),
                "long" if t.get("side") == 1 else "short" if t.get("side") == -1 else MISSING,
                _num(t.get("bars_held"), ".0f"),
                _num(t.get("pips"), "+.1f"),
                _num(t.get("broker_pips"), "+.1f"),
                str(t.get("closed_by") or t.get("exit_reason_name") or MISSING),
            ]
            for t in reversed(self.trades)
        ]
        return _table("trades", head, rows)

    def _events_table(self) -> str:
        if not self.events:
            return '<p class="note">no events yet</p>'
        rows = []
        for event in reversed(self.events):
            detail = ", ".join(
                f"{k}={v}"
                for k, v in event.items()
                if k not in ("time", "kind") and not isinstance(v, dict | list)
            )
            rows.append([str(event.get("time") or "")[:19], str(event.get("kind")), detail[:200]])
        return _table("events", ("time UTC", "kind", "detail"), rows)


@functools.cache
def _template() -> dict[str, Any]:
    """plotly's white template as plain data (unvalidated figures do not look names up)."""
    template: dict[str, Any] = pio.templates["plotly_white"].to_plotly_json()
    return template


def _plot(figure: dict[str, Any], div_id: str) -> str:
    text: str = pio.to_html(
        figure, full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG,
        validate=False,
    )  # fmt: skip
    return text


def _table(table_id: str, head: Iterable[str], rows: list[list[str]]) -> str:
    header = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def _tail_lines(path: Path, max_bytes: int) -> list[dict[str, Any]]:
    """The JSON objects in the last `max_bytes` of `path` (a cut first line and a torn last
    line skipped); [] when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            start = max(end - max_bytes, 0)
            fh.seek(start)
            blob = fh.read()
    except OSError:
        return []
    texts = blob.split(b"\n")
    if start > 0:
        texts = texts[1:]
    out = []
    for text in texts:
        try:
            line = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(line, dict):
            out.append(line)
    return out
