"""The dashboard's three panels (trainer, validator, live) as rich renderables.

Each panel takes the records the readers found (`micro.volumes`: possibly none; a foreign value
reads as None) and shows what it can: a figure that is missing or not a number shows as "–",
never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from micro.monitoring.readers import Liveness, dig, format_age, number, series
from micro.volumes import (
    BestMetrics,
    BestOnTest,
    GateResult,
    LiveState,
    ReportSummary,
    TrainerStatus,
    ValidatorStatus,
)

ACTIONS = ("HOLD", "BUY", "SELL", "CLOSE")  # the order of every per-action list in the journal
LOSS_TERMS = ("policy", "value", "reward", "chance", "afterstate_q", "total")
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
MISSING = "–"
# Each promotion gate's short name on the dashboard, in the order the validator applies them.
GATE_LABELS = {
    "split": "split",
    "promotable": "numbered",
    "data_fingerprint": "data bound",
    "min_trades": "trades",
    "max_drawdown_pct": "DD%",
    "min_expectancy_p5_pips": "exp p5",
    "min_random_entry_percentile": "vs random",
    "min_dsr": "DSR",
    "beats_best": "beats best",
}


# ---------------------------------------------------------------- small formatting helpers


def fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    """A number formatted with `spec` (+ suffix), or "–"."""
    x = number(value)
    return MISSING if x is None else f"{x:{spec}}{suffix}"


def percent(value: Any, digits: int = 0) -> str:
    """A share 0–1 as "43%", or "–"."""
    x = number(value)
    return MISSING if x is None else f"{100.0 * x:.{digits}f}%"


def signed_pips(value: Any) -> Text:
    """Pips with a sign, green above zero and red below."""
    x = number(value)
    if x is None:
        return Text(MISSING)
    return Text(f"{x:+.1f} pips", style="green" if x > 0 else "red" if x < 0 else "")


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """The last `width` values as block characters scaled between their min and max."""
    values = [x for v in values if (x := number(v)) is not None][-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    top = len(SPARK_BLOCKS) - 1
    return "".join(
        SPARK_BLOCKS[top // 2 if span == 0 else round((v - low) / span * top)] for v in values
    )


def share_bar(share: Any, width: int = 20) -> str:
    """A share 0–1 as a bar of `width` cells."""
    x = number(share)
    if x is None:
        return ""
    filled = round(min(max(x, 0.0), 1.0) * width)
    return "█" * filled + "·" * (width - filled)


def utc_clock(seconds: Any) -> str:
    """Seconds UTC as "2024-01-03 10:41", or "–"."""
    x = number(seconds)
    if x is None:
        return MISSING
    try:
        return datetime.fromtimestamp(x, UTC).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return MISSING


def title(name: str, live: Liveness) -> Text:
    """'Trainer · running · 3 s ago' coloured by state: green up, yellow stopped, red down."""
    style = "bold green" if live.up else "bold yellow" if live.state == "stopped" else "bold red"
    return Text.assemble((name, "bold"), "  ", (live.label, style))


def key_values(rows: Sequence[tuple[str, Any]]) -> Table:
    """Two columns: a dim label and its value."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(no_wrap=True)
    for label, value in rows:
        table.add_row(label, value if isinstance(value, Text) else Text(str(value)))
    return table


def framed(name: str, live: Liveness, body: RenderableType) -> Panel:
    """`body` in a box titled with the service state, its border coloured the same way."""
    border = "green" if live.up else "yellow" if live.state == "stopped" else "red"
    return Panel(body, title=title(name, live), title_align="left", border_style=border)


def placeholder(live: Liveness, hint: str) -> Text:
    """What a panel shows without a readable status: why (unless the title says it) and a hint."""
    if live.age_seconds is None:  # the title already reads "down · no status file yet"
        return Text(hint, style="dim")
    return Text.assemble((live.reason, "red"), "\n", (hint, "dim"))


def start_hint(command: str, supervised: str | None) -> str:
    """How a service with no status yet gets going: by hand, or what `micro up` is doing."""
    if supervised is None:
        return f"start it with `{command}`"
    if supervised.startswith("waiting for"):  # only the live trader waits (for best.pth)
        return (
            "waiting for the validator to promote a checkpoint "
            "(`micro up` starts the live trader once checkpoints/best.pth exists)"
        )
    if supervised == "restarting":
        return "`micro up` is restarting it (its log: monitoring/up/)"
    return "`micro up` is starting it"


def ordinal(value: Any) -> str:
    """A percentile rank as "32nd", "97th", or "–"."""
    x = number(value)
    if x is None:
        return MISSING
    n = round(x)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---------------------------------------------------------------- trainer


def trainer_panel(
    status: TrainerStatus | None,
    live: Liveness,
    metrics: list[dict[str, Any]],
    supervised: str | None = None,
) -> Panel:
    """Progress, throughput, buffer, losses with sparklines, action shares, recent episodes.

    `supervised`: the trainer's state under a running `micro up` (None: not run by `micro up`).
    """
    if status is None:
        hint = start_hint("micro train", supervised)
        return framed("Trainer", live, placeholder(live, hint))
    actors = status.actors
    alive = sum(1 for a in actors if a.alive is True)
    restarts = sum(a.restarts or 0 for a in actors)
    progress = key_values(
        [
            ("episodes", fmt(status.episodes, ",.0f")),
            ("learner steps", fmt(status.learner_steps, ",.0f")),
            ("env steps", fmt(status.env_steps, ",.0f")),
            ("env steps/s", fmt(status.env_steps_per_s, ",.0f")),
            ("learner steps/s", fmt(status.learner_steps_per_s, ".2f")),
            ("buffer", fmt(status.buffer_positions, ",.0f", " positions")),
            ("actors", f"{alive}/{len(actors)} alive, {restarts} restarts"),
            *ray_rows(status.extra.get("ray")),
        ]
    )
    losses = Table(box=None, padding=(0, 1), show_header=True, header_style="dim")
    losses.add_column("loss")
    losses.add_column("now", justify="right")
    losses.add_column("history", no_wrap=True, style="cyan")
    for term in LOSS_TERMS:
        history = series(metrics, f"loss/{term}")
        losses.add_row(term, fmt(status.losses.get(term), ".4f"), sparkline(history))
    actions = Table(box=None, padding=(0, 1), show_header=True, header_style="dim")
    actions.add_column("action")
    actions.add_column("share", justify="right")
    actions.add_column("", no_wrap=True, style="magenta")
    for name in ACTIONS:
        share = status.action_distribution.get(name)
        actions.add_row(name, percent(share, 1), share_bar(share, 16))
    recent = key_values(
        [
            ("episodes in window", fmt(status.recent.get("episodes"), ".0f")),
            ("pips/episode", signed_pips(status.recent.get("pips_per_episode"))),
            ("trades/episode", fmt(status.recent.get("trades_per_episode"), ".1f")),
            ("expectancy", signed_pips(status.recent.get("expectancy_pips"))),
            ("win rate", percent(status.recent.get("win_rate"), 1)),
        ]
    )
    grid = Table.grid(padding=(0, 3))
    for _ in range(3):
        grid.add_column(vertical="top")
    grid.add_row(progress, losses, Group(actions, Text(""), recent))
    return framed("Trainer", live, grid)


def ray_rows(ray: Any) -> list[tuple[str, Any]]:
    """The Ray backend's cluster line (status.json's `ray`), or none under the local backend."""
    if not isinstance(ray, dict):
        return []
    found = ray.get("nodes")
    nodes: dict[str, Any] = found if isinstance(found, dict) else {}
    up = sum(1 for n in nodes.values() if isinstance(n, dict) and n.get("alive", True) is True)
    return [
        ("ray nodes", f"{up}/{len(nodes)} up, {fmt(ray.get('node_deaths'), '.0f')} lost"),
        (
            "ray actors",
            f"{fmt(ray.get('actor_deaths'), '.0f')} died, "
            f"{fmt(ray.get('actors_replaced'), '.0f')} replaced",
        ),
    ]


# ---------------------------------------------------------------- validator


def validator_panel(
    status: ValidatorStatus | None,
    live: Liveness,
    reports: list[ReportSummary],
    best: BestMetrics | str | None,
    promotions: list[dict[str, Any]],
    now: float,
    supervised: str | None = None,
) -> Panel:
    """Service state, the latest reports, the best checkpoint and its promotion history.

    `best`: best_metrics.json's record, None when there is none, or why it cannot be read.
    `supervised`: the validator's state under a running `micro up` (None: not run by it).
    """
    parts: list[RenderableType] = []
    if status is None:
        parts.append(placeholder(live, start_hint("micro validate --watch", supervised)))
    else:
        counts = status.counts
        line = Text.assemble(
            ("scoring ", "dim"),
            (status.current.checkpoint or MISSING) if status.current else "nothing",
            ("   pending ", "dim"),
            fmt(status.pending, ".0f"),
            ("   scored ", "dim"),
            fmt(counts.scored, ".0f"),
            ("  failed ", "dim"),
            fmt(counts.failed, ".0f"),
            ("  timeout ", "dim"),
            fmt(counts.timeout, ".0f"),
            ("  promoted ", "dim"),
            fmt(counts.promoted, ".0f"),
        )
        parts.append(line)
        error = status.last_error
        if error is not None and error.error:
            where = f"{error.checkpoint}: " if error.checkpoint else ""
            parts.append(Text(f"last error: {where}{error.error}", style="red"))
    parts.append(reports_table(reports))
    latest = next((r for r in reports if r.status == "ok"), None)
    if latest is not None and latest.gates:
        parts.append(gates_line(latest))
    parts.extend(best_lines(best, now))
    for event in reversed(promotions):
        parts.append(
            Text.assemble(
                ("  promoted ", "dim"),
                str(event.get("checkpoint") or MISSING),
                (f"  {utc_clock(event.get('unix'))} UTC  ", "dim"),
                str(event.get("reason") or ""),
            )
        )
    return framed("Validator", live, Group(*parts))


def reports_table(reports: list[ReportSummary]) -> Table | Text:
    """Per report: checkpoint, trades, SQN and its Monte Carlo band, expectancy, DD, rank."""
    if not reports:
        return Text("no validation reports yet", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="dim")
    for name, justify in (
        ("checkpoint", "left"),
        ("trades", "right"),
        ("SQN", "right"),
        ("MC 5–95%", "right"),
        ("expectancy", "right"),
        ("max DD", "right"),
        ("vs random", "right"),
        ("DSR", "right"),
        ("promoted", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for report in reports:
        episode = report.episode
        checkpoint = report.checkpoint_file or (
            MISSING if episode is None else f"episode {episode:.0f}"
        )
        if report.status != "ok":
            why = str(report.error or report.status or "unreadable")[:60]
            table.add_row(checkpoint, Text(f"{report.status}: {why}", style="red"))
            continue
        band = f"{fmt(report.sqn_p5)} … {fmt(report.sqn_p95)}"
        drawdown = (
            f"{fmt(report.max_drawdown_pips, '.1f')} pips ({fmt(report.max_drawdown_pct, '.1f')}%)"
        )
        table.add_row(
            checkpoint,
            fmt(report.trades, ".0f"),
            fmt(report.sqn),
            band,
            signed_pips(report.expectancy_pips),
            drawdown,
            ordinal(report.random_entry_percentile),
            fmt(report.dsr),
            Text("yes", style="bold green") if report.promoted is True else Text("no", style="dim"),
        )
    return table


def gate_text(gate: GateResult) -> Text:
    """One gate: "✓ trades 40" when passed; its whole line, in red, when not."""
    label = GATE_LABELS.get(str(gate.name), str(gate.name))
    if gate.passed:
        value = number(gate.value)
        shown = "" if value is None or isinstance(gate.value, bool) else f" {value:.3g}"
        return Text(f"✓ {label}{shown}", style="green")
    return Text(f"✗ {gate.line or label}", style="red")


def gates_line(report: ReportSummary) -> Text:
    """Every promotion gate of the latest scored report, with its figure (failed: its bound)."""
    parts: list[Text | str] = [Text(f"gates {report.checkpoint_file or MISSING}: ", style="dim")]
    for i, gate in enumerate(report.gates):
        if i:
            parts.append("  ")
        parts.append(gate_text(gate))
    return Text.assemble(*parts)


def best_lines(best: BestMetrics | str | None, now: float) -> list[Text]:
    """The best checkpoint (best_metrics.json): its score, and validation beside test.

    `best` is None when nothing was promoted, or a line saying why the file cannot be read.
    """
    if best is None:
        return [Text("best: none promoted yet", style="dim")]
    if isinstance(best, str):
        return [Text(f"best: {best}", style="red")]
    promoted = best.promoted_unix
    when = MISSING if promoted is None else f"{format_age(now - promoted)} ago"
    head = Text.assemble(
        ("best: ", "bold"),
        (best.checkpoint or MISSING, "bold green"),
        f"  {best.score_name or 'score'} {fmt(best.score)}",
        f"  DSR {fmt(best.dsr, '.3f')} ({fmt(best.effective_trials, '.1f')} effective trials)",
        f"  PBO {fmt(best.pbo)}",
        (f"  promoted {when}", "dim"),
    )
    validation = Text.assemble(
        ("  validation ", "dim"),
        f"trades {fmt(best.trades, '.0f')}  SQN {fmt(best.sqn)}  expectancy ",
        signed_pips(best.expectancy_pips),
        f"  p5 {fmt(best.expectancy_p05)}  max DD {fmt(best.max_drawdown_pct, '.1f', '%')}",
        f"  vs random {ordinal(best.random_entry_percentile)}",
    )
    return [head, validation, test_line(best.test)]


def test_line(test: BestOnTest | None) -> Text:
    """The best scored once on the test split, beside validation; a large drop flagged."""
    if test is None:
        return Text("  test       pending (scored once after each promotion)", style="dim")
    if test.status != "ok":
        return Text(f"  test       {test.status}: {test.error or MISSING}", style="red")
    line = Text.assemble(
        ("  test       ", "dim"),
        f"trades {fmt(test.trades, '.0f')}  SQN {fmt(test.sqn)}  expectancy ",
        signed_pips(test.expectancy_pips),
        f"  p5 {fmt(test.expectancy_p05)}  max DD {fmt(test.max_drawdown_pct, '.1f', '%')}",
        f"  vs random {ordinal(test.random_entry_percentile)}",
    )
    if test.flagged:
        line.append(f"  FLAGGED: {test.why or 'validation→test drop'}", style="bold red")
    return line


# ---------------------------------------------------------------- live


def live_panel(
    state: LiveState | None,
    live: Liveness,
    journal: list[dict[str, Any]],
    decisions: int = 8,
    supervised: str | None = None,
) -> Panel:
    """Broker, connection, market, position, P&L, risk and circuit; the last decisions and why.

    `supervised`: the live trader's state under a running `micro up`, which starts it only once
    the validator has promoted best.pth (None: not run by `micro up`).
    """
    if state is None:
        return framed("Live", live, placeholder(live, start_hint("micro live", supervised)))
    connection = state.connection
    connected = (
        Text("ok", style="green")
        if connection.ok is True
        else Text(f"error: {connection.last_error or 'unknown'}", style="red")
        if connection.ok is False
        else Text(MISSING)
    )
    market = state.market_open
    market_text = (
        Text("open", style="green")
        if market is True
        else Text("closed", style="yellow")
        if market is False
        else Text(MISSING)
    )
    account = key_values(
        [
            ("broker", f"{state.broker or MISSING}  {state.instrument or ''}"),
            ("connection", connected),
            ("market", market_text),
            ("model", f"episode {fmt(dig(state.model, 'episode'), '.0f')}"),
            ("last bar", f"{utc_clock(dig(state.last_bar, 'ts'))} UTC"),
            ("bars / trades", f"{fmt(state.bars_processed, '.0f')} / {fmt(state.trades, '.0f')}"),
        ]
    )
    position = state.position
    side = number(dig(position, "side"))
    held = (
        Text("flat", style="dim")
        if position is None
        else Text(
            f"{'LONG' if side and side > 0 else 'SHORT' if side and side < 0 else MISSING} "
            f"{fmt(position.get('units'), '.0f')} "
            f"@ {fmt(position.get('fill_price'), '.3f')}, "
            f"stop {fmt(position.get('stop_price'), '.3f')}, "
            f"{fmt(position.get('bars'), '.0f')} bars"
        )
    )
    book = key_values(
        [
            ("position", held),
            ("unrealised", signed_pips(dig(position, "unrealised")) if position else Text(MISSING)),
            ("day P&L", signed_pips(state.day_pnl_pips)),
            ("equity", signed_pips(state.risk.get("equity_pips"))),
            ("risk", risk_text(state)),
            ("circuit", circuit_text(state)),
            ("pending order", str(dig(state.pending_order, "client_id") or "none")),
            ("broker today", broker_day_text(state.accounting)),
            ("fills today", fills_text(state.accounting)),
        ]
    )
    top = Table.grid(padding=(0, 4))
    top.add_column(vertical="top")
    top.add_column(vertical="top")
    top.add_row(account, book)
    bars = [
        line
        for line in journal
        if line.get("kind") == "bar" and isinstance(line.get("decision"), str)
    ][-decisions:]
    events = [line for line in journal if line.get("kind") not in ("bar", None)][-3:]
    parts: list[RenderableType] = [top, decisions_table(bars)]
    for event in events:
        detail = ", ".join(
            f"{k}={v}"
            for k, v in event.items()
            if k not in ("time", "kind") and not isinstance(v, dict | list)
        )
        line = Text.assemble(
            (f"{str(event.get('time') or '')[:19]}  ", "dim"),
            (str(event.get("kind")), "bold"),
            f"  {detail}",
        )
        line.no_wrap, line.overflow = True, "ellipsis"
        parts.append(line)
    return framed("Live", live, Group(*parts))


def broker_day_text(accounting: dict[str, Any]) -> Text:
    """The day's closed trades in the broker's numbers beside the model's pips."""
    trades = number(accounting.get("trades"))
    if not trades:
        return Text("no trades", style="dim")
    return Text.assemble(
        f"{trades:.0f} trades  ",
        signed_pips(accounting.get("broker_pips")),
        f" (model {fmt(accounting.get('model_pips'), '+.1f')})  ",
        f"P&L {fmt(accounting.get('broker_pl'), '+.2f')}  ",
        f"financing {fmt(accounting.get('financing'), '+.2f')}",
    )


def fills_text(accounting: dict[str, Any]) -> Text:
    """Mean slippage against the decision bar's close by side, and the mean spread paid."""
    parts = []
    spread_total, spread_fills = 0.0, 0.0
    for side in ("buy", "sell"):
        stats = accounting.get(side) if isinstance(accounting.get(side), dict) else {}
        fills = number(dig(stats, "fills")) or 0.0
        slippage = number(dig(stats, "slippage_pips"))
        mean = slippage / fills if fills and slippage is not None else None
        parts.append(f"{side} {fmt(mean, '+.2f')} ({fills:.0f})")
        spread_total += number(dig(stats, "spread_pips")) or 0.0
        spread_fills += number(dig(stats, "spread_fills")) or 0.0
    spread = spread_total / spread_fills if spread_fills else None
    return Text(f"slippage {', '.join(parts)} pips; spread paid {fmt(spread, '.2f')} pips")


def risk_text(state: LiveState) -> Text:
    """'ok', or every reason entries are halted."""
    reasons = []
    if state.killed is True:
        reasons.append("KILLED")
    if state.risk.get("drawdown_halt") is True:
        reasons.append("drawdown halt")
    halted_day = state.risk.get("daily_halt_day")
    if halted_day is not None and halted_day == state.risk.get("trading_day"):
        reasons.append("daily loss halt")  # (the day it names may be over)
    reasons += list(state.halts.values())
    return Text("; ".join(reasons), style="bold red") if reasons else Text("ok", style="green")


def circuit_text(state: LiveState) -> Text:
    """The order circuit breaker: closed (green), half_open (yellow) or open (red)."""
    circuit = str(state.circuit.get("state") or MISSING)
    errors = fmt(state.circuit.get("consecutive_errors"), ".0f")
    style = "green" if circuit == "closed" else "red" if circuit == "open" else "yellow"
    return Text(f"{circuit} ({errors} consecutive errors)", style=style)


def decisions_table(bars: list[dict[str, Any]]) -> Table | Text:
    """The last decisions with visit counts, Q per action and σ of the chosen action."""
    if not bars:
        return Text("no decisions yet", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="dim")
    for name in ("bar UTC", "decision", "visits H/B/S/C", "Q H/B/S/C", "σ", "value", "ms", "note"):
        table.add_column(name, no_wrap=True)
    for line in bars:
        decision = str(line.get("decision"))
        chosen = ACTIONS.index(decision) if decision in ACTIONS else None
        visits = dig(line, "rationale", "visit_counts")
        q = dig(line, "rationale", "q")
        sigma = dig(line, "rationale", "sigma", chosen) if chosen is not None else None
        blocked = line.get("blocked")
        table.add_row(
            utc_clock(dig(line, "bar", "ts"))[11:] or MISSING,
            Text(decision, style="bold cyan" if decision in ("BUY", "SELL") else ""),
            per_action(visits, ".0f"),
            per_action(q, "+.2f"),
            per_action(sigma, ".2f") if isinstance(sigma, list) else MISSING,
            fmt(dig(line, "rationale", "value"), "+.2f"),
            fmt(line.get("latency_ms"), ".1f"),
            Text("blocked: " + "; ".join(map(str, blocked)), style="red")
            if isinstance(blocked, list) and blocked
            else Text(""),
        )
    return table


def per_action(values: Any, spec: str) -> str:
    """A list of per-action numbers as "2/0/0/1" ("·" for an illegal action's null)."""
    if not isinstance(values, list):
        return MISSING
    return "/".join("·" if number(v) is None else format(float(v), spec) for v in values)
