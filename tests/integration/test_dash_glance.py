"""`micro dash --once`'s "At a glance" panel: a sparkline per service, the latest decision's
rationale, and the pages, from a home a real sim trader has traded in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micro import atomic
from micro.monitoring.panels import SPARK_BLOCKS
from micro.volumes import REPORT_SCHEMA
from tests.conftest import run_micro
from tests.helpers import copy_home
from tests.integration.test_live_sim import TOML, write_best


@pytest.fixture(scope="module")
def traded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("glance")
    assert run_micro(home, "data", "synth", "--days", "8", "--seed", "5").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(TOML)
    write_best(home, seed=1, episode=10)
    done = run_micro(home, "live", "--broker", "sim", "--max-bars", "60")
    assert done.returncode == 0, done.stderr
    return home


def glance(frame: str) -> list[str]:
    lines = frame.splitlines()
    start = next(i for i, x in enumerate(lines) if "At a glance" in x)
    return lines[start:]


def test_the_glance_panel_shows_each_services_trend_the_decision_and_the_pages(
    traded: Path, tmp_path: Path
) -> None:
    home = copy_home(traded, tmp_path)
    pips = [-3.0, -1.5, 0.5, 2.0]  # the trainer's mean pips per episode, report by report
    for i, value in enumerate(pips):
        atomic.append_jsonl(home / "monitoring" / "trainer" / "metrics.jsonl",
                            {"step": i, "episode/pips": value})  # fmt: skip
    expectancy = {10: -0.8, 20: 0.4, 30: 1.25}
    for episode, value in expectancy.items():
        report = home / "validation" / f"validation_ep{episode:07d}.json"
        figures = {"episode": episode, "metrics": {"expectancy_pips": value}}
        atomic.write_json(report, {"schema_version": REPORT_SCHEMA, "status": "ok", **figures})
    (home / "validation" / "validation_ep0000030.html").write_text("<html></html>")
    done = run_micro(home, "dash", "--once")
    assert done.returncode == 0, done.stderr
    panel = glance(done.stdout)
    trainer = next(x for x in panel if "trainer" in x and "pips/episode" in x)
    assert "+2.00 pips" in trainer and sum(trainer.count(b) for b in SPARK_BLOCKS) == len(pips)
    validator = next(x for x in panel if "validator" in x)
    assert "+1.25 pips" in validator and "-0.8 … +1.2 pips over 3" in validator
    journal = [json.loads(x) for x in (home / "live" / "journal.jsonl").read_text().splitlines()]
    bars = [x for x in journal if x["kind"] == "bar"]
    live = next(x for x in panel if "live" in x and "equity/bar" in x)
    assert f"{bars[-1]['equity_pips']:+.2f} pips" in live
    last = [x for x in bars if isinstance(x.get("decision"), str)][-1]
    head = next(x for x in panel if "latest decision" in x)
    assert f"latest decision {last['decision']}" in head
    assert f"value {last['rationale']['value']:+.3f}" in head
    why = next(x for x in panel if "visits H/B/S/C" in x and "prior" in x)
    assert "/".join(f"{v:.0f}" for v in last["rationale"]["visit_counts"]) in why
    assert "/".join(f"{v:.2f}" for v in last["rationale"]["prior"]) in why
    text = " ".join(x.strip("│ ") for x in panel)
    assert (home / "live" / "index.html").resolve().as_uri() in text
    assert (home / "validation" / "validation_ep0000030.html").resolve().as_uri() in text


def test_the_glance_panel_of_an_empty_home_says_there_is_nothing_yet(home: Path) -> None:
    done = run_micro(home, "dash", "--once")
    assert done.returncode == 0, done.stderr
    panel = "\n".join(glance(done.stdout))
    assert panel.count("no points yet") == 3
    assert "latest decision: none yet" in panel and "pages: none written yet" in panel
