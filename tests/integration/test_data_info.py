"""`micro data info [--json]` through the real CLI: what the store holds, and is it current."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from micro.data.store import connect
from tests.conftest import run_micro
from tests.samples.make_samples import write_fx_weeks_mt4


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


# ---------------------------------------------------------------- the weekly open and close


SAMPLES = Path(__file__).resolve().parents[1] / "samples"  # see tests/samples/make_samples.py
EURUSD = "EURUSD_M1_2022_mt4.csv"
BROKER = "America/New_York+7"  # MT4 broker server time


def _imported(home: Path, path: Path, *args: str) -> None:
    result = run_micro(home, "data", "import", str(path), *args)
    assert result.returncode == 0, result.stderr


def test_info_shows_the_real_files_weekly_open_and_close_on_the_fx_week(
    home: Path, shared_data: Path
) -> None:
    _imported(home, shared_data / EURUSD, "--instrument", "EUR_USD", "--tz", BROKER)
    found = _info(home, "--set", "data.instrument=EUR_USD")["weeks"]
    assert found["typical_opens"] == [["Sun 21:03", 4]]
    assert found["typical_closes"] == [["Fri 20:59", 5]]
    assert [e["at"] for e in found["opens"]][0] == "2022-09-25 21:03"
    assert found["deviating"] == [] and found["shift_hours"] == 0
    human = run_micro(home, "data", "info", "--set", "data.instrument=EUR_USD").stdout
    assert "weeks        opens Sun 21:03 (4); closes Fri 20:59 (5) UTC: on the FX week" in human


def test_info_shows_every_week_of_a_file_imported_in_the_wrong_zone_as_deviating(
    home: Path, shared_data: Path
) -> None:
    _imported(home, shared_data / EURUSD, "--instrument", "EUR_USD", "--tz", "UTC")
    found = _info(home, "--set", "data.instrument=EUR_USD")["weeks"]
    assert found["typical_opens"] == [["Mon 00:03", 4]] and found["shift_hours"] == 3
    assert len(found["deviating"]) == 9
    assert {e["off_hours"] for e in found["deviating"]} == {
        3.05,
        2.983,
    }  # opens 21:03, closes 20:59, 3 h late
    human = run_micro(home, "data", "info", "--set", "data.instrument=EUR_USD").stdout
    assert "they sit 3 h late of the FX week" in human and "--tz and --replace" in human
    assert "close 2022-08-19 23:59 (Fri) UTC is 3.0 h late" in human
    assert "and 4 more open(s)/close(s) over 0.5 h off (of all 9: 9 3.0 h late;" in human


def test_info_on_the_shipped_sample_finds_no_weekend(home: Path) -> None:
    _imported(home, SAMPLES / "GBPJPY_M1_synth_mt4.csv", "--tz", "Etc/GMT-2")
    found = _info(home)["weeks"]
    assert found["opens"] == [] and found["closes"] == [] and found["shift_hours"] == 0
    human = run_micro(home, "data", "info").stdout
    assert "weeks        no weekly open or close in the span" in human


def test_info_names_a_week_that_closed_early(home: Path, tmp_path: Path) -> None:
    """Two FX weeks in UTC; the first closes 3 h early, as before a holiday."""
    path = tmp_path / "weeks.csv"
    utc = write_fx_weeks_mt4(path, "2022-12-11", 2)
    early = utc[0] + pd.Timedelta(days=5) - pd.Timedelta(hours=3)  # Friday 19:00 UTC
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(
        "".join(
            line
            for t, line in zip(utc, lines, strict=True)
            if not early <= t < early + pd.Timedelta(hours=3)
        )
    )
    _imported(home, path)
    found = _info(home)["weeks"]
    assert found["typical_opens"] == [
        ["Sun 22:00", 1]
    ]  # the first bar opens no gap and found["shift_hours"] == 0
    assert found["deviating"] == [
        {"kind": "close", "at": "2022-12-16 19:00", "weekday_time": "Fri 19:00", "off_hours": -3.0}
    ]
    human = run_micro(home, "data", "info").stdout
    assert "on the FX week" in human and "close 2022-12-16 19:00 (Fri) UTC is 3.0 h early" in human
