"""`micro dash`: one frame of the trainer, validator and live panels, or a live view of them.

The dashboard reads only the files the services write (see readers.py), so it works beside
services in other processes or containers, and against a home whose services are all down.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from micro.config import Config
from micro.home import Home
from micro.monitoring import glance, panels
from micro.monitoring.readers import (
    latest_reports,
    liveness,
    now_unix,
    read_json_object,
    read_status,
    stale_after_seconds,
    supervised_states,
    tail_jsonl,
)
from micro.volumes import (
    BestMetrics,
    LiveState,
    ReportSummary,
    SchemaError,
    TrainerStatus,
    ValidatorStatus,
    best_metrics_path,
    journal_path,
    live_page_path,
    report_files,
    trainer_metrics_path,
    validator_events_path,
)

METRIC_LINES = 48  # metrics.jsonl lines behind each loss sparkline (one per trainer report)
REPORTS_SHOWN = 5  # latest validation reports in the validator panel
PROMOTIONS_SHOWN = 4  # promotion history lines
EVENT_LINES = 400  # validation/events.jsonl lines searched for promotions
JOURNAL_LINES = 200  # live/journal.jsonl lines searched for the last decisions and events
DECISIONS_SHOWN = 8
TREND_REPORTS = 40  # validation reports behind the validator's sparkline (parsed once, cached)
PLAIN_WIDTH = 150  # columns of a frame printed to a file or pipe


def render(home: Home, config: Config, now: float | None = None) -> RenderableType:
    """One frame of the dashboard from the files in `home`; never raises on what it reads."""
    now = now_unix() if now is None else now
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    header = Text.assemble(("micro dash", "bold"), f"  {home.root}  ", (stamp, "dim"))
    supervised = supervised_states(home, now)  # {} unless `micro up` runs the services
    frames = [
        _guarded("Trainer", lambda: _trainer(home, config, now, supervised.get("trainer"))),
        _guarded("Validator", lambda: _validator(home, config, now, supervised.get("validator"))),
        _guarded("Live", lambda: _live(home, config, now, supervised.get("live"))),
        _guarded("At a glance", lambda: _glance(home)),
    ]
    return Group(header, *frames)


def _trainer(home: Home, config: Config, now: float, supervised: str | None) -> RenderableType:
    """Trainer panel from monitoring/trainer/status.json and the tail of metrics.jsonl."""
    status = read_status(home, "trainer")
    state = liveness(status, stale_after_seconds("trainer", config), now)
    metrics = tail_jsonl(trainer_metrics_path(home), METRIC_LINES)
    record = None if status.data is None else TrainerStatus.from_dict(status.data)
    return panels.trainer_panel(record, state, metrics, supervised)


def _validator(home: Home, config: Config, now: float, supervised: str | None) -> RenderableType:
    """Validator panel from validation/: status, latest reports, best, promotion events."""
    status = read_status(home, "validator")
    state = liveness(status, stale_after_seconds("validator", config), now)
    record = None if status.data is None else ValidatorStatus.from_dict(status.data)
    reports = [_summary(r) for r in latest_reports(home.validation, REPORTS_SHOWN)]
    events = tail_jsonl(validator_events_path(home), EVENT_LINES)
    promotions = [e for e in events if e.get("event") == "promoted"][-PROMOTIONS_SHOWN:]
    return panels.validator_panel(record, state, reports, _best(home), promotions, now, supervised)


def _summary(report: dict[str, Any]) -> ReportSummary:
    """A report's summary; one of a schema this micro does not read shows why."""
    try:
        return ReportSummary.from_report(report)
    except SchemaError as exc:
        episode = report.get("episode")
        return ReportSummary(
            episode=episode if isinstance(episode, int) else None,
            status="unreadable",
            error=str(exc).split(";")[0],
        )


def _best(home: Home) -> BestMetrics | str | None:
    """best_metrics.json's record, None without one, or why it cannot be read."""
    best, _ = read_json_object(best_metrics_path(home))
    if best is None:
        return None
    try:
        return BestMetrics.from_dict(best)
    except SchemaError as exc:
        return str(exc).split(";")[0]


def _live(home: Home, config: Config, now: float, supervised: str | None) -> RenderableType:
    """Live panel from live/state.json and the tail of live/journal.jsonl."""
    status = read_status(home, "live")
    journal = tail_jsonl(journal_path(home), JOURNAL_LINES)
    stopped = bool(journal) and journal[-1].get("kind") == "stop"
    state = liveness(status, stale_after_seconds("live", config), now, stopped=stopped)
    record = None if status.data is None else LiveState.from_dict(status.data)
    return panels.live_panel(record, state, journal, DECISIONS_SHOWN, supervised)


def _glance(home: Home) -> RenderableType:
    """A sparkline per service, the latest decision's rationale, and the pages' paths."""
    metrics = tail_jsonl(trainer_metrics_path(home), METRIC_LINES)
    reports = [_summary(r) for r in latest_reports(home.validation, TREND_REPORTS)]
    journal = tail_jsonl(journal_path(home), JOURNAL_LINES)
    return glance.glance_panel(
        glance.trainer_pips(metrics),
        glance.validator_trend(reports),
        glance.live_equity(journal),
        glance.latest_decision(journal),
        _pages(home),
    )


def _pages(home: Home) -> list[tuple[str, Path]]:
    """The pages that exist: the live page, the latest and the best report's HTML."""
    pages = [("live page", live_page_path(home))]
    scored = report_files(home.validation)
    if scored:
        pages.append(("latest report", scored[-1][1].with_suffix(".html")))
    best, _ = read_json_object(best_metrics_path(home))
    report = best.get("report") if best is not None else None
    if isinstance(report, str) and report:
        path = Path(report) if Path(report).is_absolute() else home.root / report
        pages.append(("best report", path.with_suffix(".html")))
    return [(name, path) for name, path in pages if path.is_file()]


def _guarded(name: str, build: Callable[[], RenderableType]) -> RenderableType:
    """The panel, or a red box naming the failure: one odd file must not blank the dashboard."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - the dashboard outlives any file it is shown
        why = f"cannot show the {name.lower()} panel: {type(exc).__name__}: {exc}"
        return Panel(Text(why, style="red"), title=name, title_align="left", border_style="red")


def console_for(file: TextIO) -> Console:
    """Colours and the terminal's width on a terminal; plain text PLAIN_WIDTH wide otherwise."""
    terminal = file.isatty()
    return Console(
        file=file,
        force_terminal=terminal,
        no_color=not terminal,
        highlight=False,
        width=None if terminal else PLAIN_WIDTH,
        emoji=False,
    )


def print_once(home: Home, config: Config, file: TextIO) -> None:
    """Print one frame to `file`: colours on a terminal, plain text to a file or pipe."""
    console_for(file).print(render(home, config))


def run_dashboard(
    home: Home,
    config: Config,
    refresh_seconds: float = 1.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Redraw the dashboard every `refresh_seconds` until `should_stop()` (or Ctrl-C) says stop.

    On a terminal the frame is redrawn in place; to a file or pipe only the last frame is
    printed, when the dashboard stops.
    """
    from rich.live import Live

    console = console_for(sys.stdout)
    with Live(render(home, config), console=console, auto_refresh=False) as view:
        next_frame = time.monotonic() + refresh_seconds
        while not should_stop():
            wait = next_frame - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.1))  # short naps: should_stop is seen within 0.1 s
                continue
            view.update(render(home, config), refresh=True)
            next_frame = time.monotonic() + refresh_seconds
