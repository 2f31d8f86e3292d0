"""The dashboard's "At a glance" panel: a sparkline per service, the latest decision and its
rationale in full, and where the pages to look at are.

- trainer: the mean pips per self-play episode over its last reports (metrics.jsonl);
- validator: the expectancy (pips per trade) of each scored checkpoint, oldest first;
- live: the equity (pips, realised + open) at each recent bar (the journal's bar lines);
- the latest decision: visits, Q, prior per action, σ of the chosen action's chance outcomes,
  value and the network's value, latency, and why it was blocked;
- the pages: the live page (`live/index.html`) and the HTML of the latest and of the best
  validation report, each only when its file exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from micro.monitoring.panels import ACTIONS, MISSING, fmt, per_action, sparkline, utc_clock
from micro.monitoring.readers import dig, number, series
from micro.volumes import ReportSummary

TREND_WIDTH = 40  # points per sparkline
OUTCOMES = ("down", "flat", "up")  # the chance outcomes' order in σ


def trend_row(service: str, what: str, values: list[float], unit: str) -> tuple[Any, ...]:
    """One row: service, what the line shows, the sparkline, the last value and the range."""
    values = values[-TREND_WIDTH:]
    if not values:
        return (service, what, Text("no points yet", style="dim"), MISSING, "")
    spread = f"{min(values):+.1f} … {max(values):+.1f} {unit}"
    return (
        service,
        what,
        Text(sparkline(values, TREND_WIDTH), style="cyan"),
        f"{values[-1]:+.2f} {unit}",
        Text(f"{spread} over {len(values)}", style="dim"),
    )


def validator_trend(reports: list[ReportSummary]) -> list[float]:
    """The expectancy of each report scored ok, oldest first (`reports` come newest first)."""
    return [
        x
        for r in reversed(reports)
        if r.status == "ok" and (x := number(r.expectancy_pips)) is not None
    ]


def latest_decision(journal: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest bar line that holds a decision."""
    for line in reversed(journal):
        if line.get("kind") == "bar" and isinstance(line.get("decision"), str):
            found: dict[str, Any] = line
            return found
    return None


def decision_text(line: dict[str, Any] | None) -> Text:
    """The decision and its whole rationale in two lines."""
    if line is None:
        return Text("latest decision: none yet", style="dim")
    decision = str(line.get("decision"))
    chosen = ACTIONS.index(decision) if decision in ACTIONS else None
    sigma = dig(line, "rationale", "sigma", chosen) if chosen is not None else None
    sigma_text = (
        " ".join(f"{name} {fmt(p, '.2f')}" for name, p in zip(OUTCOMES, sigma, strict=False))
        if isinstance(sigma, list)
        else MISSING
    )
    head = Text.assemble(
        ("latest decision ", "dim"),
        (decision, "bold cyan" if decision in ("BUY", "SELL") else "bold"),
        (f" at {utc_clock(dig(line, 'bar', 'ts'))} UTC", "dim"),
        f"   value {fmt(dig(line, 'rationale', 'value'), '+.3f')}",
        f" (network {fmt(dig(line, 'rationale', 'network_value'), '+.3f')})",
        f"   latency {fmt(line.get('latency_ms'), '.1f')} ms",
    )
    why = Text.assemble(
        ("  visits H/B/S/C ", "dim"),
        per_action(dig(line, "rationale", "visit_counts"), ".0f"),
        ("   Q ", "dim"),
        per_action(dig(line, "rationale", "q"), "+.3f"),
        ("   prior ", "dim"),
        per_action(dig(line, "rationale", "prior"), ".2f"),
        (f"   σ after {decision} ", "dim"),
        sigma_text,
    )
    parts = [head, why]
    blocked = line.get("blocked")
    if isinstance(blocked, list) and blocked:
        parts.append(Text("  blocked: " + "; ".join(map(str, blocked)), style="red"))
    return Text("\n").join(parts)


def pages_text(pages: list[tuple[str, Path]]) -> Text:
    """Where the pages are ('file://' paths a browser opens)."""
    if not pages:
        return Text("pages: none written yet", style="dim")
    lines = [Text.assemble((f"{name:<15}", "dim"), path.resolve().as_uri()) for name, path in pages]
    return Text("\n").join(lines)


def glance_panel(
    trainer_pips: list[float],
    validator_expectancy: list[float],
    live_equity: list[float],
    decision: dict[str, Any] | None,
    pages: list[tuple[str, Path]],
) -> Panel:
    """The panel: three sparklines, the latest decision, the pages."""
    trends = Table.grid(padding=(0, 2))
    for _ in range(5):
        trends.add_column(no_wrap=True)
    trends.add_row(*trend_row("trainer", "pips/episode", trainer_pips, "pips"))
    trends.add_row(*trend_row("validator", "expectancy/ckpt", validator_expectancy, "pips"))
    trends.add_row(*trend_row("live", "equity/bar", live_equity, "pips"))
    body: RenderableType = Group(trends, Text(""), decision_text(decision), Text(""),
                                 pages_text(pages))  # fmt: skip
    return Panel(body, title=Text("At a glance", style="bold"), title_align="left")


def live_equity(journal: list[dict[str, Any]]) -> list[float]:
    """The equity (pips) journaled with each bar, oldest first."""
    return series([line for line in journal if line.get("kind") == "bar"], "equity_pips")


def trainer_pips(metrics: list[dict[str, Any]]) -> list[float]:
    """The trainer's mean pips per episode at each report, oldest first."""
    return series(metrics, "episode/pips")
