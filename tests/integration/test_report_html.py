"""The HTML report as a user gets it: written by `micro validate` and the validator service,
rebuilt by `micro report`, and opened in a real headless Chromium with no network."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from micro.pages import PLOTLY_ASSET
from tests.browser import offline_page
from tests.conftest import run_micro
from tests.integration.test_validate import (
    prepare_skill_home,
    report_of,
    skill_checkpoint,
    strict_json,
    validate,
)
from tests.integration.test_watcher import start_watch, status, wait_for


@pytest.fixture(scope="module")
def scored_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose momentum checkpoint was scored by `micro validate`: promoted, then scored
    on the test split, so its page has every section."""
    home = prepare_skill_home(tmp_path_factory.mktemp("report-html"))
    skill_checkpoint(home, 50)
    result = validate(home, "checkpoints/ckpt_ep0000050.pth")
    assert result.returncode == 0, result.stderr
    return home


@pytest.fixture
def scored(scored_template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(scored_template, home)
    return home


def page_of(report: Path) -> Path:
    return report.with_suffix(".html")


def test_validate_writes_each_reports_page_beside_it_with_plotly_in_one_shared_file(
    scored: Path,
) -> None:
    report = report_of(scored / "validation", 50)
    test = report_of(scored / "validation" / "test", 50)
    for folder, json_file in (
        (scored / "validation", report),
        (scored / "validation" / "test", test),
    ):
        page = page_of(json_file)
        assert page.is_file() and (folder / PLOTLY_ASSET).is_file()
        text = page.read_text()
        assert f"<script src='{PLOTLY_ASSET}'></script>" in text
        assert "https://" not in text and "http://" not in text  # nothing to fetch
    assert "Validation against test" in page_of(report).read_text()  # rebuilt after the test
    assert strict_json(report)["test"]["status"] == "ok"


def test_micro_report_builds_the_page_of_a_checkpoint_or_a_report_on_demand(
    scored: Path, tmp_path: Path
) -> None:
    report = report_of(scored / "validation", 50)
    page_of(report).unlink()
    result = run_micro(scored, "report", "checkpoints/ckpt_ep0000050.pth")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"page: {page_of(report)}" and page_of(report).is_file()

    test = report_of(scored / "validation" / "test", 50)
    page_of(test).unlink()
    result = run_micro(scored, "report", "ckpt_ep0000050.pth", "--split", "test")
    assert result.returncode == 0, result.stderr
    assert page_of(test).is_file()

    elsewhere = tmp_path / "out" / "mine.html"
    result = run_micro(scored, "report", report.name, "--output", str(elsewhere))  # by name
    assert result.returncode == 0, result.stderr
    assert elsewhere.is_file() and (elsewhere.parent / PLOTLY_ASSET).is_file()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("checkpoints/ckpt_ep0000999.pth",), "no such checkpoint or report"),
        (("validation/nothing.json",), "no such file"),
        (("micro.toml",), "no validation report"),  # a file, but no report of its bytes
        (("broken.json",), "not JSON"),
        (("checkpoints/ckpt_ep0000060.pth",), "micro validate"),  # not scored yet
        (("checkpoints/ckpt_ep0000050.pth", "--output", "validation"), "ending in .html"),
    ],
    ids=["no-checkpoint", "no-report", "not-a-checkpoint", "broken", "unscored", "bad-output"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    scored: Path, args: tuple[str, ...], expected: str
) -> None:
    (scored / "broken.json").write_text("{not json")
    skill_checkpoint(scored, 60)
    before = sorted(p.name for p in scored.rglob("*.html"))
    result = run_micro(scored, "report", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert sorted(p.name for p in scored.rglob("*.html")) == before


def test_the_page_draws_every_series_in_chromium_without_the_network(
    scored: Path, tmp_path: Path
) -> None:
    report_file = report_of(scored / "validation", 50)
    report: dict[str, Any] = json.loads(report_file.read_text())
    trades = report["metrics"]["trades"]
    drawn = report["charts"]["sessions"]
    assert trades > 20 and len(drawn) == 3
    with offline_page(tmp_path) as page:
        page.open(page_of(report_file))
        ids = page.plot_ids()
        expected = ["equity", "fan", "distribution", "test", "planning", "calibration"]
        assert ids == expected + [f"session-{k}" for k in range(len(drawn))]
        page.wait_for_plots(ids)
        by_name = {t["name"]: t for t in page.plot_traces("distribution")}
        assert len(by_name["trades"]["x"]) == trades  # every trade in the histogram
        fan = {t["name"]: t for t in page.plot_traces("fan")}
        assert len(fan["agent"]["y"]) == trades  # the agent's equity, trade by trade
        assert fan["agent"]["y"][-1] == pytest.approx(report["metrics"]["total_pips"], abs=0.1)
        equity = {t["name"]: t for t in page.plot_traces("equity")}
        assert len(equity["agent"]["y"]) == report["sessions"]["count"]
        for name in ("random entry 5–95%", "moving-average crossover", "buy and hold"):
            assert len(equity[name]["y"]) == report["sessions"]["count"], name
        marked = 0
        for k, session in enumerate(drawn):
            n = len(session["trades"])
            assert page.drawn_markers(f"session-{k}", "entries") == n  # drawn, in the SVG
            assert page.drawn_markers(f"session-{k}", "exits") == n
            entries = {t["name"]: t for t in page.plot_traces(f"session-{k}")}["entries"]
            assert all("visits" in text and "σ after" in text for text in entries["hovertext"])
            marked += n
        assert marked == sum(
            1 for s in drawn for _ in s["trades"]
        ) and marked <= trades  # fmt: skip
        rows = page.page.locator("#gates tr").count() - 1
        assert rows == len(report["promotion"]["gates"])
        shot = page.screenshot("report.png")
    assert shot.stat().st_size > 50_000
    assert page.requests and all(url.startswith("file://") for url in page.requests)


def test_the_validator_writes_pages_and_a_page_that_fails_never_stops_scoring(
    scored_template: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(scored_template, home, ignore=shutil.ignore_patterns("validation"))
    for name in ("best.pth", "best.json"):
        (home / "checkpoints" / name).unlink()
    (home / "validation" / "test" / PLOTLY_ASSET).mkdir(parents=True)  # the test page fails
    proc = start_watch(home)
    try:
        validation_report = wait_for(
            lambda: list((home / "validation").glob("validation_ep0000050_*.json")), proc
        )[0]
        wait_for(lambda: page_of(validation_report).is_file(), proc)
        # promoted, then scored on test: that page cannot be written; scoring goes on
        best_metrics = home / "validation" / "best_metrics.json"
        wait_for(lambda: best_metrics.exists() and strict_json(best_metrics)["test"], proc, 120)
        wait_for(lambda: status(home).get("state") == "idle", proc)
        assert list((home / "validation" / "test").glob("validation_ep0000050_*.json"))
        assert not list((home / "validation" / "test").glob("*.html"))
        assert proc.poll() is None  # still watching
        skill_checkpoint(home, 60)  # and the next checkpoint is scored and drawn
        second = wait_for(
            lambda: list((home / "validation").glob("validation_ep0000060_*.html")), proc
        )
        assert second
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    log = (home / "watch.out").read_text()
    assert "writing the HTML page of" in log and "failed" in log
