"""Live == backtest: `micro live --broker sim --replay validation` trades like the env + Agent.

The same checkpoint plays the validation sessions twice: once through the real `micro live`
command (sim broker, bar clock, incremental features, the trader's own book, risk checks,
journal) and once by the validator's own greedy evaluation (`micro.validation.evaluate`:
`TradingEnv` + `Agent` over the stored features, all sessions in one batch).
Sessions start flat (the window warmed up from the bars before them) and close at their end
exactly like the env, so both must produce the same trade list.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from micro.config import load_config
from micro.data.market import load_market
from micro.model.checkpoint import load_checkpoint, save_checkpoint
from micro.model.networks import StochasticMuZeroNet
from tests.conftest import micro_env, run_micro

PARITY_TOML = """
[features]
range_bars = 60  # seed 1's random net opens both sides and exits all three ways on these
[model]
tcn_channels = 16
hidden = 32
mlp_hidden = 32
static_hidden = 16
[mcts]
simulations = 4
[validation]
simulations = 4
[risk]
stop_loss_pips = 6.0
daily_loss_limit_pips = 1000000.0
max_drawdown_pips = 1000000.0
weekly_close_buffer_minutes = 0
"""
TRADE_FIELDS = (
    "side",
    "entry_ts",
    "exit_ts",
    "entry_price",
    "exit_price",
    "pips",
    "bars_held",
    "mae_pips",
    "exit_reason",
)


def live_command(*args: str) -> list[str]:
    """The real `micro live ARGS` as a subprocess."""
    return [sys.executable, "-m", "micro.cli", "live", *args]


@pytest.fixture(scope="module")
def parity_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("parity")
    (home / "micro.toml").write_text(PARITY_TOML)
    assert run_micro(home, "data", "synth", "--days", "20", "--seed", "3").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    config = load_config(home, environ={})
    torch.manual_seed(1)  # a net that opens both sides and exits all three ways
    net = StochasticMuZeroNet(config.model, config.features.window)
    save_checkpoint(home / "checkpoints" / "best.pth", net, config, episode=7, learner_step=3)
    return home


def validator_trades(home: Path) -> list[dict]:
    """The validator's greedy evaluation of best.pth on the validation sessions (env + Agent)."""
    from micro.validation.evaluate import evaluate

    config = load_config(home, environ={})
    market = load_market(home / "data" / "market.duckdb", config)
    loaded = load_checkpoint(home / "checkpoints" / "best.pth", config)
    result = evaluate(loaded.net, market, config, market.sessions("validation"))
    trades = [{f: record[f].item() for f in TRADE_FIELDS} for record in result.trades]
    return sorted(trades, key=lambda t: t["entry_ts"])


@pytest.mark.slow
def test_replaying_validation_sessions_live_gives_the_validators_trades(
    parity_home: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(parity_home, home)
    done = subprocess.run(
        live_command("--broker", "sim", "--replay", "validation"),
        cwd=home,
        env=micro_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in (home / "live" / "journal.jsonl").read_text().splitlines()]
    live = [{f: line[f] for f in TRADE_FIELDS} for line in lines if line["kind"] == "trade"]
    torch.set_num_threads(1)
    expected = validator_trades(home)
    assert {t["exit_reason"] for t in expected} == {0, 1, 2}  # agent, stop-loss, session end
    assert {t["side"] for t in expected} == {-1, 1}
    assert live == expected
    config = load_config(home, environ={})
    sessions = len(load_market(home / "data" / "market.duckdb", config).sessions("validation"))
    decisions = [line for line in lines if line["kind"] == "bar" and line.get("decision")]
    assert len(decisions) == sessions * (config.data.session_bars - 1)
    assert all(line["latency_ms"] >= 0 and "rationale" in line for line in decisions)
