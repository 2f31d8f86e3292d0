"""`micro data synth` + `micro data prepare` through the real CLI, and the market loader."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from micro.config import Config, replace
from micro.data.market import load_market
from micro.data.prepare import ensure_default_data, prepare_store
from micro.data.stamp import features_config_hash
from micro.data.store import connect, get_meta, read_candles
from micro.errors import DataError
from micro.features import FEATURE_NAMES, FEATURE_VERSION
from micro.features.scaling import fit_scaling
from micro.features.temporal import raw_features
from micro.home import Home
from tests.conftest import REPO, run_micro

SYNTH = ("data", "synth", "--days", "21", "--seed", "3", "--regime", "trend")


def _store(home: Path) -> Path:
    return home / "data" / "market.duckdb"


def _meta(home: Path) -> dict:
    con = connect(_store(home), read_only=True)
    try:
        keys = [r[0] for r in con.execute("SELECT key FROM meta").fetchall()]
        return {k: get_meta(con, k) for k in keys}
    finally:
        con.close()


@pytest.fixture(scope="module")
def prepared_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with three weeks of synthetic trend candles, prepared through the CLI (once)."""
    home = tmp_path_factory.mktemp("template")
    assert run_micro(home, *SYNTH).returncode == 0
    result = run_micro(home, "data", "prepare")
    assert result.returncode == 0, result.stderr
    return home


@pytest.fixture
def prepared(home: Path, prepared_template: Path) -> Path:
    """A private copy of the prepared home, free to change."""
    _store(home).parent.mkdir(parents=True)
    shutil.copyfile(_store(prepared_template), _store(home))
    return home


def test_prepare_writes_features_labels_sessions_and_the_stamp(prepared: Path) -> None:
    con = connect(_store(prepared), read_only=True)
    try:
        candles = con.execute("SELECT count(*) FROM candles").fetchone()[0]
        features = con.execute("SELECT count(*) FROM features").fetchone()[0]
        columns = [r[0] for r in con.execute("DESCRIBE features").fetchall()]
        splits = dict(con.execute("SELECT split, count(*) FROM sessions GROUP BY split").fetchall())
        bad_rows = con.execute(
            "SELECT count(*) FROM sessions s JOIN features f ON f.ts = s.start_ts "
            "WHERE f.position_in_range IS NULL OR isnan(f.position_in_range)"
        ).fetchone()[0]
    finally:
        con.close()
    assert features == candles > 20_000
    assert columns == ["instrument", "ts", *FEATURE_NAMES, "outcome"]
    assert splits["train"] > splits["validation"] > 0 and splits["test"] > 0
    assert bad_rows == 0
    meta = _meta(prepared)
    assert meta["feature_version"] == FEATURE_VERSION
    assert meta["features_config_hash"] == features_config_hash(Config())
    assert meta["candles_fingerprint"]["bars"] == candles
    assert set(meta["feature_scaling"]) == {"momentum_lo", "momentum_hi", "range_lo", "range_hi"}
    assert meta["config"]["data"]["instrument"] == "GBP_JPY" and "prepared_at" in meta


def test_scaling_is_fitted_on_the_train_split_only(prepared: Path) -> None:
    con = connect(_store(prepared), read_only=True)
    try:
        candles = read_candles(con, "GBP_JPY")
        scaling = get_meta(con, "feature_scaling")
        splits = get_meta(con, "splits")
    finally:
        con.close()
    ts = candles["ts"].to_numpy().astype("datetime64[s]").astype(np.int64)
    raw = raw_features(
        ts, candles["high"], candles["low"], candles["close"], 0.01, Config().features
    )
    train_end = splits["train"]["end_row"]
    assert train_end == int(len(ts) * 0.7)
    assert scaling == fit_scaling(raw[:train_end, 1], raw[:train_end, 2]).to_dict()
    assert scaling != fit_scaling(raw[:, 1], raw[:, 2]).to_dict()


def test_a_second_prepare_is_up_to_date_and_changes_nothing(prepared: Path) -> None:
    before = _meta(prepared)
    result = run_micro(prepared, "data", "prepare")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stderr
    assert _meta(prepared) == before


def test_force_rebuilds_even_when_up_to_date(prepared: Path) -> None:
    result = run_micro(prepared, "data", "prepare", "--force")
    assert result.returncode == 0, result.stderr
    assert "rebuilt" in result.stderr


def test_new_candles_trigger_a_rebuild(prepared: Path) -> None:
    bars = _meta(prepared)["candles_fingerprint"]["bars"]
    more = run_micro(prepared, "data", "synth", "--start", "2022-02-07", "--days", "7")
    assert more.returncode == 0, more.stderr
    result = run_micro(prepared, "data", "prepare")
    assert result.returncode == 0, result.stderr
    assert "the candles changed" in result.stderr
    assert _meta(prepared)["candles_fingerprint"]["bars"] > bars


def test_a_changed_feature_config_makes_the_store_stale_until_prepared_again(
    prepared: Path,
) -> None:
    changed = replace(Config(), **{"features.range_bars": 30})
    with pytest.raises(DataError, match="run `micro data prepare`"):
        load_market(_store(prepared), changed)
    result = run_micro(prepared, "data", "prepare", "--set", "features.range_bars=30")
    assert result.returncode == 0, result.stderr
    assert "config changed" in result.stderr
    assert load_market(_store(prepared), changed).features.shape[1] == 9
    with pytest.raises(DataError, match="config changed"):
        load_market(_store(prepared), Config())


def test_load_market_returns_aligned_arrays_and_releases_the_file(prepared: Path) -> None:
    market = load_market(_store(prepared), Config())
    n = len(market.ts)
    assert market.ts.dtype == np.int64 and (np.diff(market.ts) > 0).all()
    assert market.features.shape == (n, 9) and market.features.dtype == np.float32
    assert market.outcome.dtype == np.int8 and set(np.unique(market.outcome)) <= {-1, 0, 1, 2}
    assert market.pip == 0.01 and market.feature_names == FEATURE_NAMES
    starts = market.sessions("train")
    assert starts.dtype == np.int64 and len(starts) > 0
    windows = market.windows(starts)
    assert windows.shape == (len(starts), market.window, 9)
    np.testing.assert_array_equal(windows[0], market.features[starts[0] - 31 : starts[0] + 1])
    every_row = (starts[:, None] + np.arange(market.session_bars)).ravel()
    assert np.isfinite(market.windows(every_row)).all()
    assert (
        market.outcome[(starts[:, None] + np.arange(market.session_bars - 1)).ravel()] >= 0
    ).all()
    with pytest.raises(ValueError, match="unknown split"):
        market.sessions("holdout")
    con = connect(_store(prepared))  # read-write: nobody holds the file any more
    con.close()


def test_prepare_without_candles_says_how_to_get_some(home: Path) -> None:
    result = run_micro(home, "data", "prepare")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "micro data synth" in lines[0] and "micro data import" in lines[0]
    assert not _store(home).exists()


def test_prepare_refuses_a_store_holding_only_another_instrument(home: Path) -> None:
    assert (
        run_micro(home, "data", "synth", "--instrument", "EUR_USD", "--days", "3").returncode == 0
    )
    result = run_micro(home, "data", "prepare")
    assert result.returncode == 2
    assert "no candles for GBP_JPY" in result.stderr


def test_synth_twice_with_the_same_seed_changes_nothing(home: Path) -> None:
    week = ("data", "synth", "--days", "7", "--seed", "3")
    assert run_micro(home, *week).returncode == 0
    again = run_micro(home, *week)
    assert again.returncode == 0, again.stderr
    assert " 0 new," in again.stderr
    other_seed = run_micro(home, "data", "synth", "--days", "7", "--seed", "4")
    assert other_seed.returncode == 2 and "--replace" in other_seed.stderr


def test_synth_rejects_a_bad_start_day(home: Path) -> None:
    result = run_micro(home, "data", "synth", "--days", "3", "--start", "yesterday-ish")
    assert result.returncode == 2
    assert "YYYY-MM-DD" in result.stderr


def test_default_data_is_synthesised_loudly_once_and_then_only_prepared(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = replace(Config(), **{"data.synth_days": 15})
    with caplog.at_level("INFO", logger="micro.data"):
        ensure_default_data(Home(home), config)
    assert "SYNTHETIC" in caplog.text and "micro data import FILE" in caplog.text
    market = load_market(_store(home), config)
    assert len(market.sessions("train")) > 0
    caplog.clear()
    with caplog.at_level("INFO", logger="micro.data"):
        ensure_default_data(Home(home), config)
    assert "SYNTHETIC" not in caplog.text and "up to date" in caplog.text


def test_prepare_store_summary_reports_sessions_per_split(prepared: Path) -> None:
    summary = prepare_store(_store(prepared), Config())
    assert summary["status"] == "up to date"
    assert set(summary["sessions"]) == {"train", "validation", "test"}
    assert summary["bars"] > 20_000


def test_bench_data_prints_one_json_object_with_the_figures(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "data.py"),
            "--bars",
            "20000",
            "--import-bars",
            "30000",
            "--large-import-bars",
            "45000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    for key in ("bars", "seconds", "peak_rss_mb", "synth_seconds", "reference_bars_per_s"):
        assert key in figures
    assert figures["bars"] == 20_000 and "bars_per_s" in figures
    assert figures["reference_max_abs_diff"] < 1e-9
    small, large = figures["import"], figures["large_import"]
    assert small["bars"] == 30_000 and large["bars"] == 45_000
    for key in ("seconds", "peak_rss_mb", "reimport_seconds", "reimport_peak_rss_mb"):
        assert small[key] > 0 and large[key] > 0
    assert small["reference_read_whole_seconds"] > 0 and large["within_2_gib"] is True


def test_changing_only_the_demo_data_knobs_keeps_the_store_current() -> None:
    base = Config()
    from micro.config import replace

    demo = replace(base, **{"data.synth_days": 30, "data.synth_seed": 99})
    assert features_config_hash(demo) == features_config_hash(base)
    assert features_config_hash(replace(base, **{"data.session_bars": 120})) != (
        features_config_hash(base)
    )


def test_prepare_warns_naming_each_split_left_without_sessions(home: Path) -> None:
    assert run_micro(home, "data", "synth", "--days", "5", "--seed", "3").returncode == 0
    result = run_micro(home, "data", "prepare")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert re.search(r"sessions train [1-9]\d*, validation 0, test 0", output), output
    for split in ("validation", "test"):
        warned = [
            line for line in output.splitlines() if f"the {split} split has 0 sessions" in line
        ]
        assert len(warned) == 1, output
        assert "WARNING" in warned[0] and "lower data.session_bars" in warned[0]
    assert "the train split has 0 sessions" not in output
    roomy = run_micro(
        home,
        "data",
        "prepare",
        "--force",
        "--set",
        "data.embargo_minutes=0",
        "--set",
        "data.session_bars=120",
    )
    assert roomy.returncode == 0, roomy.stderr
    assert "0 sessions" not in roomy.stdout + roomy.stderr
