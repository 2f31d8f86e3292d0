"""Checkpoints and reports bound to their data: fixed UTC splits and the data fingerprint.

Through the real CLI: appending or prepending candles never moves a stored bar across a split
boundary; new fractions move nothing until `micro data prepare --resplit`; resuming a run or
scoring a checkpoint on other data is refused with one line naming what differs (exit 2).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from micro.config import load_config
from micro.data.fingerprint import differences, read_fingerprint
from micro.data.market import load_market
from micro.data.store import connect, get_meta
from micro.model.checkpoint import save_checkpoint
from micro.model.networks import StochasticMuZeroNet
from tests.conftest import run_micro
from tests.helpers import TINY_MODEL

SYNTH = ("data", "synth", "--days", "30", "--seed", "3")


def store(home: Path) -> Path:
    return home / "data" / "market.duckdb"


def meta(home: Path, key: str):
    con = connect(store(home), read_only=True)
    try:
        return get_meta(con, key)
    finally:
        con.close()


def ok(home: Path, *args: str) -> None:
    result = run_micro(home, *args)
    assert result.returncode == 0, result.stderr[-2000:]


def split_of_each_bar(home: Path) -> dict[int, str]:
    """UTC second of each stored bar -> the split of the session it belongs to ('' if none)."""
    config = load_config(home, environ={})
    market = load_market(store(home), config)
    out = {int(t): "" for t in market.ts}
    for split in ("train", "validation", "test"):
        for start in market.sessions(split):
            for t in market.ts[start : start + market.session_bars]:
                out[int(t)] = split
    return out


def fingerprint(home: Path) -> dict:
    return read_fingerprint(store(home), load_config(home, environ={}), 32)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("fingerprint-template")
    ok(home, *SYNTH)
    ok(home, "data", "prepare")
    return home


@pytest.fixture
def fhome(template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template, home)
    return home


def test_appended_candles_fall_into_test_and_move_no_stored_bar(fhome: Path) -> None:
    before, bars_before = fingerprint(fhome), split_of_each_bar(fhome)
    boundaries = meta(fhome, "split_boundaries")
    ok(fhome, "data", "synth", "--days", "10", "--seed", "4", "--start", "2022-02-02")
    ok(fhome, "data", "prepare")
    after, bars_after = fingerprint(fhome), split_of_each_bar(fhome)
    assert meta(fhome, "split_boundaries") == boundaries
    assert all(bars_after[t] == split for t, split in bars_before.items() if split)
    new = [bars_after[t] for t in bars_after if t not in bars_before]
    assert set(new) <= {"test", ""} and "test" in new
    assert after["keys"]["training"] == before["keys"]["training"]  # the run resumes
    assert after["keys"]["validation"] == before["keys"]["validation"]  # scores compare
    assert after["keys"]["test"] != before["keys"]["test"]
    assert differences(before, after, "test")[0].startswith("test split candles: checkpoint 4")


def test_prepended_candles_fall_into_train_and_move_no_stored_bar(fhome: Path) -> None:
    before, bars_before = fingerprint(fhome), split_of_each_bar(fhome)
    ok(fhome, "data", "synth", "--days", "20", "--seed", "5", "--start", "2021-12-06")
    ok(fhome, "data", "prepare")
    bars_after = split_of_each_bar(fhome)
    assert all(bars_after[t] == split for t, split in bars_before.items() if split)
    assert {bars_after[t] for t in bars_after if t not in bars_before} <= {"train", ""}
    after = fingerprint(fhome)
    # The network learned from other bars (and scales its inputs otherwise): a new run.
    differ = differences(before, after, "training")
    assert any(line.startswith("train split candles") for line in differ)


def test_new_fractions_move_nothing_until_an_explicit_resplit(fhome: Path) -> None:
    boundaries = meta(fhome, "split_boundaries")
    (fhome / "micro.toml").write_text("[data]\ntrain_fraction = 0.6\n")
    result = run_micro(fhome, "data", "prepare")
    assert result.returncode == 0 and "--resplit" in result.stderr  # it says how to move them
    assert meta(fhome, "split_boundaries") == boundaries
    result = run_micro(fhome, "data", "prepare", "--resplit")
    assert result.returncode == 0, result.stderr
    moved = meta(fhome, "split_boundaries")
    assert moved["validation_start"] < boundaries["validation_start"]
    assert moved["fractions"]["train_fraction"] == 0.6


def save(home: Path, name: str, data: dict | None) -> Path:
    config = load_config(home, environ={})
    net = StochasticMuZeroNet(config.model, config.features.window)
    path = home / "checkpoints" / name
    save_checkpoint(path, net, config, episode=50, learner_step=1, data_fingerprint=data)
    return path


def test_resuming_or_scoring_on_other_data_is_refused_naming_what_differs(fhome: Path) -> None:
    (fhome / "micro.toml").write_text(TINY_MODEL)
    old = fingerprint(fhome)
    save(fhome, "latest.pth", old)
    save(fhome, "ckpt_ep0000050.pth", old)
    (fhome / "micro.toml").write_text(TINY_MODEL + "[data]\ntrain_fraction = 0.6\n")
    ok(fhome, "data", "prepare", "--resplit")

    resumed = run_micro(fhome, "train", "--max-episodes", "1")
    lines = resumed.stderr.strip().splitlines()
    assert resumed.returncode == 2 and len(lines) == 1, resumed.stderr
    assert "latest.pth: trained on other data" in lines[0]
    assert "validation split start: checkpoint 2022-01-24" in lines[0]

    scored = run_micro(fhome, "validate", "checkpoints/ckpt_ep0000050.pth")
    lines = scored.stderr.strip().splitlines()
    assert scored.returncode == 2 and len(lines) == 1, scored.stderr
    assert "ckpt_ep0000050.pth: trained on other data" in lines[0]
    assert "validation split start" in lines[0]
    assert not list((fhome / "validation").glob("validation_ep*.json"))  # nothing half-written


def test_the_fingerprint_names_costs_stop_and_simulations(fhome: Path) -> None:
    config = load_config(fhome, environ={})
    ours = read_fingerprint(store(fhome), config, 32)
    assert ours["costs"]["spread_pips"] == config.spread_pips() and ours["simulations"] == 32
    assert ours["stop_loss_pips"] == config.risk.stop_loss_pips
    assert ours["splits"]["validation_start"].endswith("+00:00")  # UTC
    assert set(ours["split_candles"]) == {"train", "validation", "test"}
    other = read_fingerprint(store(fhome), config, 64)
    assert other["keys"]["training"] == ours["keys"]["training"]
    assert differences(ours, other, "validation") == ["simulations: checkpoint 32, store 64"]
    assert np.isfinite(ours["feature_scaling"]["momentum_hi"])
