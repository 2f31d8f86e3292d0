"""The dashboard's glance panel and risk line, from records as the services write them."""

from __future__ import annotations

from rich.console import Console

from micro.monitoring.glance import decision_text, glance_panel, validator_trend
from micro.monitoring.panels import risk_text
from micro.volumes import LiveState, ReportSummary


def plain(renderable: object) -> str:
    console = Console(width=160, no_color=True, highlight=False)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def test_the_risk_line_shows_a_pause_and_only_todays_daily_halt() -> None:
    paused = LiveState(halts={"pause": "paused (lunch); `micro live resume` to trade again"},
                       paused=True, risk={"trading_day": 7, "daily_halt_day": 6})  # fmt: skip
    assert str(risk_text(paused)) == "paused (lunch); `micro live resume` to trade again"
    today = LiveState(risk={"trading_day": 7, "daily_halt_day": 7, "drawdown_halt": True})
    assert str(risk_text(today)) == "drawdown halt; daily loss halt"
    assert str(risk_text(LiveState(risk={"trading_day": 8, "daily_halt_day": 7}))) == "ok"


def test_the_validator_trend_is_oldest_first_and_skips_failed_reports() -> None:
    newest_first = [
        ReportSummary(episode=30, status="ok", expectancy_pips=1.0),
        ReportSummary(episode=20, status="failed"),
        ReportSummary(episode=10, status="ok", expectancy_pips=-2.0),
    ]
    assert validator_trend(newest_first) == [-2.0, 1.0]


def test_the_latest_decision_shows_its_whole_rationale_and_why_it_was_blocked() -> None:
    line = {
        "kind": "bar",
        "bar": {"ts": 1_700_000_000},
        "decision": "BUY",
        "rationale": {"visit_counts": [2, 9, 1, 0], "q": [0.0, 0.25, -0.1, None],
                      "prior": [0.1, 0.6, 0.3, 0.0],
                      "sigma": [[0.3, 0.4, 0.3], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4], [0, 0, 0]],
                      "value": 0.125, "network_value": 0.1},
        "latency_ms": 12.5,
        "blocked": ["paused (lunch)"],
    }  # fmt: skip
    text = plain(decision_text(line))
    assert "latest decision BUY at 2023-11-14 22:13 UTC" in text
    assert "visits H/B/S/C 2/9/1/0" in text and "Q +0.000/+0.250/-0.100/·" in text
    assert "σ after BUY down 0.20 flat 0.30 up 0.50" in text
    assert "value +0.125 (network +0.100)" in text and "blocked: paused (lunch)" in text


def test_each_service_gets_a_sparkline_with_its_last_value() -> None:
    text = plain(glance_panel([1.0, 2.0], [], [0.0, -1.0, 3.5], None, []))
    assert "+2.00 pips" in text and "+3.50 pips" in text and "no points yet" in text


def test_the_trainer_panel_shows_the_ray_cluster_only_under_the_ray_backend() -> None:
    from micro.monitoring.panels import ray_rows

    assert ray_rows(None) == []
    ray = {
        "node_deaths": 1,
        "actor_deaths": 2,
        "actors_replaced": 1,
        "nodes": {"a": {"alive": True}, "b": {"alive": False}},
    }
    assert ray_rows(ray) == [("ray nodes", "1/2 up, 1 lost"), ("ray actors", "2 died, 1 replaced")]
