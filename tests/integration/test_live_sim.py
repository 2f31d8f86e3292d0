"""`micro live` in paper mode (sim broker): hot reload, SIGTERM, broker choice, money guard."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from micro.atomic import write_json
from micro.config import load_config, replace
from micro.data.market import load_market
from micro.data.store import connect, get_meta
from micro.features.scaling import FeatureScaling
from micro.home import Home
from micro.live.models import ModelSlot
from micro.live.sim import SimBroker
from micro.live.trader import Trader
from micro.model.checkpoint import save_checkpoint
from micro.model.networks import StochasticMuZeroNet
from tests.conftest import micro_env, run_micro
from tests.e2e.test_live_parity import live_command
from tests.helpers import TINY_MODEL, copy_home

TOML = (
    TINY_MODEL
    + """
[mcts]
simulations = 3
[validation]
simulations = 3
[live]
warmup_bars = 280  # at least the 271 bars the default features need (history + window - 1)
[risk]
weekly_close_buffer_minutes = 0
"""
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("live_sim")
    assert run_micro(home, "data", "synth", "--days", "8", "--seed", "5").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(TOML)
    write_best(home, seed=1, episode=10)
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    return copy_home(template, tmp_path)


def write_best(home: Path, seed: int, episode: int, **model: int) -> dict:
    config = load_config(home, environ={})
    if model:
        config = replace(config, **{f"model.{k}": v for k, v in model.items()})
    torch.manual_seed(seed)
    net = StochasticMuZeroNet(config.model, config.features.window)
    return save_checkpoint(home / "checkpoints" / "best.pth", net, config, episode=episode,
                           learner_step=1)  # fmt: skip


def sim_trader(home: Path, **clocks: Callable[[], float]) -> Trader:
    config = load_config(home, environ={})
    market = load_market(home / "data" / "market.duckdb", config)
    con = connect(home / "data" / "market.duckdb", read_only=True)
    try:
        scaling = FeatureScaling.from_dict(get_meta(con, "feature_scaling"))
    finally:
        con.close()
    rows = range(config.live.warmup_bars, len(market.ts))
    broker = SimBroker(market.instrument, market.pip, 4.0, market.ts, market.open, market.high,
                       market.low, market.close, list(rows))  # fmt: skip
    models = ModelSlot(home / "checkpoints" / "best.pth", config)
    return Trader(Home(home), config, broker, models, scaling, **clocks)


def step(trader: Trader, bars: int) -> None:
    for _ in range(bars):
        for bar in trader.clock.poll():
            trader.on_bar(bar)


def reloads(home: Path) -> list[dict]:
    lines = (home / "live" / "journal.jsonl").read_text().splitlines()
    return [x for x in map(json.loads, lines) if x["kind"] == "reload"]


def test_a_new_best_is_loaded_between_bars_and_a_broken_one_is_refused(home: Path) -> None:
    torch.set_num_threads(1)
    trader = sim_trader(home)
    trader.start()
    step(trader, 3)
    assert reloads(home) == []
    new = write_best(home, seed=2, episode=20)
    step(trader, 1)
    assert [(r["outcome"], r["model"]["episode"]) for r in reloads(home)] == [("loaded", 20)]
    assert trader.models.model.sha256 == new["sha256"]
    path = home / "checkpoints" / "best.pth"  # a truncated file whose sidecar matches it
    path.write_bytes(path.read_bytes()[:1000])
    sidecar = json.loads(path.with_suffix(".json").read_text())
    import hashlib

    sidecar["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    write_json(path.with_suffix(".json"), sidecar)
    step(trader, 2)
    refused = reloads(home)[1:]
    assert [r["outcome"] for r in refused] == ["refused"]  # once per sha, not every bar
    assert trader.models.model.episode == 20  # the old model keeps trading
    write_best(home, seed=3, episode=30, tcn_channels=8)  # made with another model config
    step(trader, 1)
    assert (
        reloads(home)[-1]["outcome"] == "refused" and "incompatible" in reloads(home)[-1]["reason"]
    )
    assert trader.models.model.episode == 20
    bars = [x for x in map(json.loads, (home / "live" / "journal.jsonl").read_text().splitlines())
            if x["kind"] == "bar"]  # fmt: skip
    assert len(bars) == 7 and all(b.get("decision") for b in bars)


def test_the_trader_reads_the_time_only_from_the_clocks_it_is_given(home: Path) -> None:
    torch.set_num_threads(1)
    wall = 2_000_000_000.25  # 2033-05-18T03:33:20.250+00:00, far from the machine's clock
    ticks = iter(range(1_000_000))
    trader = sim_trader(home, wall=lambda: wall, monotonic=lambda: float(next(ticks)))
    trader.start()
    step(trader, 3)
    trader.finish("stopped")
    journal = [json.loads(x) for x in (home / "live" / "journal.jsonl").read_text().splitlines()]
    assert {line["time"] for line in journal} == {"2033-05-18T03:33:20.250+00:00"}
    state = json.loads((home / "live" / "state.json").read_text())
    assert state["updated_unix"] == wall and state["written_at"] == "2033-05-18T03:33:20+00:00"
    bars = [line for line in journal if line["kind"] == "bar"]
    assert len(bars) == 3 and all(b["latency_ms"] >= 1000.0 for b in bars)  # in fake ticks


def test_sigterm_finishes_the_bar_writes_the_state_and_exits_0(home: Path) -> None:
    proc = subprocess.Popen(
        live_command("--broker", "sim"), cwd=home, env=micro_env(home),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    journal = home / "live" / "journal.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if journal.exists() and journal.read_text().count('"kind":"bar"') >= 5:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert lines[0]["kind"] == "start" and lines[0]["broker"] == "sim"  # auto, no token: sim
    assert set(lines[0]["config"]) == {  # the full config is kept with the run's records
        "data",
        "features",
        "env",
        "model",
        "mcts",
        "train",
        "validation",
        "live",
        "risk",
        "alerts",
    }
    assert lines[-1]["kind"] == "stop"
    state = json.loads((home / "live" / "state.json").read_text())
    bars = [x for x in lines if x["kind"] == "bar"]
    assert state["bars_processed"] == len(bars) and state["last_bar"] == bars[-1]["bar"]


def test_live_money_needs_the_config_as_well_as_the_flag(home: Path) -> None:
    env = micro_env(home, OANDA_TOKEN="tok-123456", OANDA_ACCOUNT="101-001-1-001")
    done = subprocess.run(
        live_command("--broker", "oanda", "--live-money"), cwd=home, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "live.oanda.environment" in done.stderr and done.stderr.strip().count("\n") == 0


def test_micro_live_kill_writes_the_kill_file(home: Path) -> None:
    done = subprocess.run(
        live_command("kill", "--reason", "desk says stop"), cwd=home, env=micro_env(home),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0
    assert json.loads((home / "live" / "KILL").read_text())["reason"] == "desk says stop"
