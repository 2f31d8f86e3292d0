"""`micro data info [--json]` through the real CLI: what the store holds, and is it current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micro.data.store import connect
from tests.conftest import run_micro


def _info(home: Path, *extra: str) -> dict:
    result = run_micro(home, "data", "info", "--json", *extra)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding two weeks of synthetic candles, not yet prepared."""
    home = tmp_path_factory.mktemp("info")
    result = run_micro(home, "data", "synth", "--days", "14", "--seed", "2")
    assert result.returncode == 0, result.stderr
    return home


def test_info_without_a_store_is_one_clear_line_and_exit_2(home: Path) -> None:
    result = run_micro(home, "data", "info")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no market store" in lines[0] and "micro data synth" in lines[0]
    assert result.stdout == ""


def test_info_reports_span_bars_gaps_before_and_after_prepare(synthesised: Path) -> None:
    before = _info(synthesised)
    assert before["instrument"] == "GBP_JPY" and before["bars"] > 9_000
    assert before["first"].startswith("2022-01-03") and before["last"].startswith("2022-01-1")
    assert before["gaps"]["over_minutes"] == 10 and before["gaps"]["count"] >= 1
    assert before["gaps"]["largest_minutes"] > 10 and before["gaps"]["weekly_closes"] == 2
    assert before["prepared"] is False and before["current"] is False
    human = run_micro(synthesised, "data", "info")
    assert "not prepared" in human.stdout and f"{before['bars']:,}" in human.stdout

    assert run_micro(synthesised, "data", "prepare").returncode == 0
    after = _info(synthesised)
    assert after["prepared"] is True and after["current"] is True
    con = connect(synthesised / "data" / "market.duckdb", read_only=True)
    try:
        counts = dict(con.execute("SELECT split, count(*) FROM sessions GROUP BY split").fetchall())
    finally:
        con.close()
    assert after["sessions"] == {s: counts.get(s, 0) for s in ("train", "validation", "test")}
    assert after["sessions"]["train"] > 0
    human = run_micro(synthesised, "data", "info")
    assert "current" in human.stdout and f"train {after['sessions']['train']}" in human.stdout

    stale = _info(synthesised, "--set", "features.window=16")
    assert stale["prepared"] is True and stale["current"] is False
    assert "config changed" in stale["stale_reason"]
    human = run_micro(synthesised, "data", "info", "--set", "features.window=16")
    assert "STALE" in human.stdout and "micro data prepare" in human.stdout


def test_info_for_an_instrument_without_candles_lists_what_the_store_holds(
    synthesised: Path,
) -> None:
    report = _info(synthesised, "--set", "data.instrument=EUR_JPY")
    assert report["bars"] == 0 and report["instruments"] == ["GBP_JPY"]
    human = run_micro(synthesised, "data", "info", "--set", "data.instrument=EUR_JPY")
    assert human.returncode == 0 and "also stored  GBP_JPY" in human.stdout
