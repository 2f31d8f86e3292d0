"""The HTML report of one validation report: interactive plotly charts a trader can look at.

`report_html(report)` turns a report (the JSON dict, nothing else) into one page: the summary
lines, the agent's cumulative pips per session against the random-entry band (5–95 %), the
moving-average crossover and buy-and-hold; the Monte Carlo fan of equity paths by trade number
with the drawdown percentiles; the distribution of trade results; the promotion gates; validation
against test (when the best was scored on test); the planning gain and the chance head's
calibration (when the report has diagnostics); and a few sessions as candles with each entry and
exit marked and the decision's rationale (visits, Q, prior, σ, value) on hover. A section whose
data a report lacks (an older report, a failed one) is left out, never an error.

Offline and small: the page loads plotly.js from `PLOTLY_ASSET`, one file written beside the
reports (`write_html` writes it once per folder), by a relative path. Embedding plotly.js in
every page would make each ~4.8 MB (the library alone) against the 5 MB budget; shared, a page
is its data (tens to hundreds of kB) and the library is loaded once per folder. No page refers to
anything on a network.

`write_html(report_json)` writes `<report>.html` beside the JSON atomically (and the asset);
the validator calls it after each report (`micro.validation.watcher`), `micro report` on demand.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from micro import atomic
from micro.env.actions import ACTION_NAMES, OUTCOME_NAMES
from micro.errors import UserError
from micro.pages import PLOTLY_ASSET, write_asset
from micro.records import check_schema
from micro.validation.report import OK, summary_lines
from micro.volumes import REPORT_SCHEMA

log = logging.getLogger("micro.validation")

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
BAND = "rgba(120, 120, 120, 0.22)"
AGENT, CROSSOVER, HOLDING, LONG, SHORT = "#1f5fbf", "#d98c00", "#7a4fa3", "#138a36", "#c0392b"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.35em; } h2 { font-size: 1.12em; margin-top: 1.8em; }
pre.summary { background: #f4f4f4; padding: .8em; white-space: pre-wrap; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
tr.pass td.verdict { color: #138a36; font-weight: bold; }
tr.fail td.verdict { color: #c0392b; font-weight: bold; }
.note { color: #555; }
"""


def html_path(report_json: Path) -> Path:
    """Where the HTML of the report at `report_json` goes: beside it, `.html` for `.json`."""
    return Path(report_json).with_suffix(".html")


def _figure_div(figure: go.Figure, div_id: str) -> str:
    """One chart as a <div> and the script that draws it (plotly.js is loaded by the page)."""
    text: str = pio.to_html(
        figure, full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG
    )
    return text


def _layout(figure: go.Figure, title: str, x: str, y: str, height: int = 420) -> go.Figure:
    figure.update_layout(
        title=title, xaxis_title=x, yaxis_title=y, height=height, template="plotly_white",
        hovermode="closest", legend={"orientation": "h", "y": -0.18},
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )  # fmt: skip
    return figure


def _cumulative(values: list[float | None]) -> list[float]:
    return [round(float(v), 2) for v in np.cumsum([v or 0.0 for v in values])]


def equity_figure(report: dict[str, Any]) -> go.Figure | None:
    """Cumulative pips after each session: the agent, the random-entry band, the two rules."""
    sessions = report.get("sessions") or {}
    x, pnl = sessions.get("start_utc"), sessions.get("pnl_pips")
    if not x or pnl is None:
        return None
    baselines = report.get("baselines") or {}
    figure = go.Figure()
    band = (baselines.get("random_entry") or {}).get("cumulative_session_pips")
    if band:
        figure.add_scatter(
            x=x, y=band["p95"], name="random entry 95%", mode="lines", line={"width": 0},
            showlegend=False, hoverinfo="skip",
        )  # fmt: skip
        figure.add_scatter(
            x=x, y=band["p5"], name="random entry 5–95%", mode="lines", line={"width": 0},
            fill="tonexty", fillcolor=BAND,
        )  # fmt: skip
        figure.add_scatter(
            x=x, y=band["p50"], name="random entry median", mode="lines",
            line={"color": "gray", "dash": "dot"},
        )  # fmt: skip
    for key, name, color in (
        ("moving_average_crossover", "moving-average crossover", CROSSOVER),
        ("buy_and_hold", "buy and hold", HOLDING),
    ):
        per_session = (baselines.get(key) or {}).get("session_pnl_pips")
        if per_session:
            figure.add_scatter(
                x=x, y=_cumulative(per_session), name=name, mode="lines", line={"color": color}
            )
    figure.add_scatter(
        x=x, y=_cumulative(pnl), name="agent", mode="lines+markers",
        line={"color": AGENT, "width": 2.5}, marker={"size": 4},
    )  # fmt: skip
    return _layout(figure, "Cumulative pips after each session", "session start (UTC)", "pips")


def fan_figure(report: dict[str, Any]) -> go.Figure | None:
    """The Monte Carlo fan of equity by trade number, its drawdowns, and the agent's own."""
    charts = report.get("charts") or {}
    fan, pips = charts.get("equity_fan") or {}, charts.get("trade_pips")
    if not fan.get("trade") or not pips:
        return None
    x = fan["trade"]
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.06,
        subplot_titles=("equity (pips)", "drawdown from the running peak (pips)"),
    )  # fmt: skip
    for k, path in enumerate(fan.get("paths") or []):
        figure.add_scatter(
            x=x, y=path, mode="lines", line={"color": "rgba(90,90,90,0.25)", "width": 1},
            name="bootstrap runs", legendgroup="runs", showlegend=k == 0, hoverinfo="skip",
            row=1, col=1,
        )  # fmt: skip
    for low, high, name in (("p5", "p95", "5–95%"), ("p25", "p75", "25–75%")):
        figure.add_scatter(
            x=x, y=fan[high], mode="lines", line={"width": 0}, showlegend=False,
            hoverinfo="skip", row=1, col=1,
        )  # fmt: skip
        figure.add_scatter(
            x=x, y=fan[low], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor=BAND, name=f"bootstrap {name}", row=1, col=1,
        )  # fmt: skip
    figure.add_scatter(
        x=x, y=fan["p50"], mode="lines", line={"color": "gray", "dash": "dot"},
        name="bootstrap median", row=1, col=1,
    )  # fmt: skip
    equity = np.cumsum([p or 0.0 for p in pips])  # [K]
    trades = list(range(1, len(pips) + 1))
    figure.add_scatter(
        x=trades, y=np.round(equity, 2).tolist(), mode="lines", name="agent",
        line={"color": AGENT, "width": 2}, row=1, col=1,
    )  # fmt: skip
    drawdown = np.maximum(np.maximum.accumulate(equity), 0.0) - equity
    for key, name, dash in (("drawdown_p50", "median", "dot"), ("drawdown_p95", "95%", "dash")):
        figure.add_scatter(
            x=x, y=fan[key], mode="lines", line={"color": "gray", "dash": dash},
            name=f"bootstrap drawdown {name}", row=2, col=1,
        )  # fmt: skip
    figure.add_scatter(
        x=trades, y=np.round(drawdown, 2).tolist(), mode="lines", name="agent drawdown",
        line={"color": SHORT, "width": 1.5}, row=2, col=1,
    )  # fmt: skip
    worst = ((report.get("bootstrap") or {}).get("max_drawdown_pips")) or {}
    title = "Monte Carlo fan of equity paths"
    if worst.get("p50") is not None and worst.get("p95") is not None:
        title += (
            f" (max drawdown: median {worst['p50']:.1f}, 95% {worst['p95']:.1f} pips; "
            f"the agent {report['metrics']['max_drawdown_pips']:.1f})"
        )
    figure.update_xaxes(title_text="trade number", row=2, col=1)
    return _layout(figure, title, "", "", height=620)


def distribution_figure(report: dict[str, Any]) -> go.Figure | None:
    """Histogram of every trade's net pips, with 0 and the expectancy marked."""
    pips = (report.get("charts") or {}).get("trade_pips")
    if not pips:
        return None
    figure = go.Figure(go.Histogram(x=pips, name="trades", marker={"color": AGENT}))
    figure.add_vline(x=0, line={"color": "black", "width": 1})
    mean = (report.get("metrics") or {}).get("expectancy_pips")
    if mean is not None:
        figure.add_vline(
            x=mean, line={"color": LONG, "dash": "dash"}, annotation_text=f"mean {mean:.2f}"
        )
    title = f"Trade results ({len(pips)} trades, pips net of costs)"
    return _layout(figure, title, "pips", "trades", height=360)


def splits_figure(report: dict[str, Any]) -> go.Figure | None:
    """Validation against test: the best's figures on both splits side by side."""
    test = report.get("test") or {}
    metrics = report.get("metrics") or {}
    if test.get("status") != OK:
        return None
    validation = {
        "expectancy (pips)": metrics.get("expectancy_pips"),
        "bootstrap 5% expectancy (pips)": (report["bootstrap"]["expectancy_pips"] or {}).get("p5"),
        "SQN": metrics.get("sqn"),
        "max drawdown (%)": metrics.get("max_drawdown_pct"),
    }
    on_test = {
        "expectancy (pips)": test.get("expectancy_pips"),
        "bootstrap 5% expectancy (pips)": test.get("expectancy_p05"),
        "SQN": test.get("sqn"),
        "max drawdown (%)": test.get("max_drawdown_pct"),
    }
    names = list(validation)
    figure = go.Figure()
    figure.add_bar(x=names, y=[validation[n] for n in names], name="validation")
    figure.add_bar(x=names, y=[on_test[n] for n in names], name="test")
    flag = "FLAGGED: " if test.get("flagged") else ""
    return _layout(figure, f"Validation against test — {flag}{test.get('why')}", "", "", 360)


def planning_figure(diagnostics: dict[str, Any]) -> go.Figure:
    """Total pips of the same sessions traded by search, by the prior alone, and at random."""
    gain = diagnostics["planning_gain"]
    ways = (
        ("search", "search"),
        ("policy_prior", "policy prior (no search)"),
        ("random", "random"),
    )
    figure = go.Figure(
        go.Bar(
            x=[label for _, label in ways],
            y=[gain[key]["total_pips"] for key, _ in ways],
            text=[f"{gain[key]['trades']} trades" for key, _ in ways],
            marker={"color": [AGENT, CROSSOVER, "gray"]},
            name="total pips",
        )
    )
    return _layout(figure, "Planning gain: the same sessions, three ways", "", "total pips", 360)


def calibration_figure(diagnostics: dict[str, Any]) -> go.Figure:
    """Reliability of σ: mean predicted probability against observed frequency, per outcome."""
    sigma = diagnostics["chance_calibration"]
    figure = go.Figure()
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line={"color": "gray", "dash": "dot"}
    )
    for name, color in zip(OUTCOME_NAMES, (SHORT, "gray", LONG), strict=True):
        bins = (sigma.get("reliability") or {}).get(name) or []
        figure.add_scatter(
            x=[b["predicted"] for b in bins], y=[b["observed"] for b in bins],
            mode="lines+markers", name=name, line={"color": color},
            text=[f"{b['decisions']} decisions" for b in bins],
        )  # fmt: skip
    brier, base = sigma.get("brier"), sigma.get("brier_climatology")
    title = "Chance head calibration"
    if brier is not None and base is not None:
        title += f" (Brier {brier:.3f}; base rates {base:.3f})"
    return _layout(figure, title, "σ predicted", "observed frequency", 400)


def _numbers(values: list[Any], digits: int = 2) -> str:
    return " · ".join(
        f"{name} {'–' if v is None else round(v, digits)}"
        for name, v in zip(ACTION_NAMES, values, strict=True)
    )


def why_text(why: dict[str, Any] | None) -> str:
    """A decision's rationale as hover text (HTML line breaks)."""
    if not why:
        return "no rationale recorded"
    sigma = " · ".join(
        f"{name} {'–' if p is None else f'{p:.3f}'}"
        for name, p in zip(OUTCOME_NAMES, why["sigma"], strict=True)
    )
    return "<br>".join(
        [
            f"decision {why['action']}",
            f"visits: {_numbers(why['visits'], 0)}",
            f"Q (pips): {_numbers(why['q'])}",
            f"prior: {_numbers(why['prior'], 3)}",
            f"σ after {why['action']}: {sigma}",
            f"value {why['value']} pips (network {why['network_value']})",
        ]
    )


def _utc(ts: list[int]) -> list[str]:
    """ISO 8601 UTC (to the second, no offset: plotly reads it as a date) of unix seconds."""
    return [str(t) for t in np.asarray(ts, dtype="datetime64[s]")]


def session_figure(session: dict[str, Any]) -> go.Figure:
    """One session as candles, each entry (▲ long, ▼ short) and exit (✕) marked, why on hover."""
    candles = session["candles"]
    figure = go.Figure(
        go.Candlestick(
            x=_utc(candles["ts"]),
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            name="bars (mid)",
            increasing={"line": {"color": "#5a9"}},
            decreasing={"line": {"color": "#d77"}},
        )  # fmt: skip
    )
    trades = session["trades"]
    figure.add_scatter(
        x=_utc([t["entry_ts"] for t in trades]),
        y=[t["entry_price"] for t in trades],
        mode="markers",
        name="entries",
        marker={
            "symbol": ["triangle-up" if t["side"] > 0 else "triangle-down" for t in trades],
            "color": [LONG if t["side"] > 0 else SHORT for t in trades],
            "size": 12,
            "line": {"color": "black", "width": 1},
        },
        hovertext=[
            f"{'long' if t['side'] > 0 else 'short'} entry at {t['entry_price']}<br>"
            + why_text(t["entry_why"])
            for t in trades
        ],
        hoverinfo="text+x",
    )
    figure.add_scatter(
        x=_utc([t["exit_ts"] for t in trades]),
        y=[t["exit_price"] for t in trades],
        mode="markers",
        name="exits",
        marker={"symbol": "x", "color": "black", "size": 10},
        hovertext=[
            f"exit ({t['exit_reason']}) at {t['exit_price']}: {t['pips']:+.1f} pips after "
            f"{t['bars_held']} bars<br>"
            + (
                why_text(t["exit_why"])
                if t["exit_reason"] == "agent"
                else "no decision: "
                + ("the stop filled" if t["exit_reason"] == "stop_loss" else "the session ended")
            )
            for t in trades
        ],  # fmt: skip
        hoverinfo="text+x",
    )
    figure.update_layout(xaxis_rangeslider_visible=False)
    title = (
        f"Session from {_utc(candles['ts'][:1])[0]} UTC: {len(trades)} trades, "
        f"{session['pnl_pips']:+.1f} pips"
    )
    return _layout(figure, title, "UTC", "price", height=460)


def gates_table(report: dict[str, Any]) -> str:
    """The promotion gates as an HTML table (figure, bound, pass/fail, the line)."""
    promotion = report.get("promotion") or {}
    gates = promotion.get("gates") or []
    verdict = "promoted to best.pth" if promotion.get("promoted") else "not promoted"
    head = f"<p><b>{verdict}</b>: {html.escape(str(promotion.get('reason', '–')))}</p>"
    if not gates:
        return head
    rows = "".join(
        f"<tr class='{'pass' if g.get('passed') else 'fail'}'>"
        f"<td>{html.escape(str(g.get('name')))}</td><td>{_cell(g.get('value'))}</td>"
        f"<td>{_cell(g.get('threshold'))}</td>"
        f"<td class='verdict'>{'pass' if g.get('passed') else 'FAIL'}</td>"
        f"<td>{html.escape(str(g.get('line', '')))}</td></tr>"
        for g in gates
    )
    return (
        head + "<table id='gates'><tr><th>gate</th><th>value</th><th>bound</th><th>verdict</th>"
        f"<th>why</th></tr>{rows}</table>"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("–" if value is None else str(value))


def report_html(report: dict[str, Any], asset: str = PLOTLY_ASSET) -> str:
    """The whole page of `report` (a validation report's dict); plotly.js from `asset`."""
    checkpoint = report.get("checkpoint") or {}
    title = (
        f"{checkpoint.get('file', '?')} (episode {report.get('episode')}) on the "
        f"{report.get('split')} split"
    )
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>scored {html.escape(str(report.get('created_at')))}, micro "
        f"{html.escape(str(report.get('micro_version')))}; pips net of costs, times UTC</p>",
        f"<pre class='summary'>{html.escape(chr(10).join(summary_lines(report)))}</pre>",
    ]
    if report.get("status") == OK:
        sections.extend(_charts(report))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f"<script src='{html.escape(asset)}'></script></head><body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def _charts(report: dict[str, Any]) -> list[str]:
    """Every section of a scored report whose data it holds, in reading order."""
    out: list[str] = []

    def add(heading: str, figure: go.Figure | None, div_id: str) -> None:
        if figure is not None:
            out.append(f"<h2>{heading}</h2>{_figure_div(figure, div_id)}")

    add("Equity against the baselines", equity_figure(report), "equity")
    add("Monte Carlo", fan_figure(report), "fan")
    add("Trade results", distribution_figure(report), "distribution")
    out.append(f"<h2>Promotion gates</h2>{gates_table(report)}")
    add("Validation against test", splits_figure(report), "test")
    diagnostics = report.get("diagnostics")
    if diagnostics:
        add("Planning gain", planning_figure(diagnostics), "planning")
        add("Chance head", calibration_figure(diagnostics), "calibration")
    for k, session in enumerate((report.get("charts") or {}).get("sessions") or []):
        add(f"Session {k + 1}" if k else "Sessions", session_figure(session), f"session-{k}")
    return out


def read_report(path: Path) -> dict[str, Any]:
    """The validation report at `path`; UserError (one line) for anything that is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; give a report (validation/*.json)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc}); give a report file") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not JSON (line {exc.lineno}: {exc.msg}); give a validation report"
        ) from None
    if not isinstance(report, dict) or "status" not in report or "checkpoint" not in report:
        raise UserError(f"{path}: not a validation report (no status/checkpoint); give one")
    check_schema(report, str(path), REPORT_SCHEMA, "schema_version")
    return report


def write_html(report_json: Path, output: Path | None = None) -> Path:
    """Build the page of the report at `report_json` and write it atomically (default: beside
    it, `html_path`), plotly.js beside it; the page's path."""
    report = read_report(report_json)
    target = Path(output) if output is not None else html_path(report_json)
    write_asset(target.parent)
    atomic.write_bytes(target, report_html(report).encode())
    return target


def write_html_logged(report_json: Path | str | None) -> Path | None:
    """`write_html` for a service: a page that cannot be built is logged, never raised, so it
    never stops scoring; the page's path, or None (also for no report)."""
    if not report_json:
        return None
    try:
        return write_html(Path(report_json))
    except Exception:  # a view: losing one page never stops the validator
        log.exception("writing the HTML page of %s failed", Path(report_json).name)
        return None
