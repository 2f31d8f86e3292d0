"""Alerts from the services' real paths to a webhook on 127.0.0.1: a validator promotion, a
crashing service under `micro up`'s supervisor, and a live trader whose broker stops answering."""

from __future__ import annotations

import argparse
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from micro.alerts import Alerter
from micro.config import load_config, replace
from micro.data.market import load_market
from micro.data.store import connect, get_meta
from micro.features.scaling import FeatureScaling
from micro.home import Home
from micro.live.broker import BrokerError, Candle
from micro.live.models import ModelSlot
from micro.live.sim import SimBroker
from micro.live.trader import Trader
from micro.runtime import Context
from micro.up import Service, Stack
from tests.alert_sink import alert_sink
from tests.conftest import micro_env, run_micro
from tests.helpers import wait_for
from tests.integration.test_live_sim import TOML, write_best
from tests.integration.test_validate import micro_command, prepare_skill_home, skill_checkpoint


@pytest.mark.slow
def test_a_promotion_by_the_real_watcher_is_alerted(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    home = prepare_skill_home(tmp_path_factory.mktemp("alert-skill"))
    skill_checkpoint(home, 100)  # the momentum trader: promoted
    with alert_sink() as sink:
        proc = subprocess.Popen(
            micro_command("validate", "--watch"), cwd=home,
            env=micro_env(home, MICRO_ALERT_URLS=sink.url),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(lambda: sink.titles(), timeout=240)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert sink.titles() == ["micro validator: promoted ckpt_ep0000100.pth to best.pth"]
    assert sink.received[0]["type"] == "success" and "trades, SQN" in sink.messages()[0]


def test_a_crashing_service_alerts_once_then_its_restart_loop(tmp_path: Path) -> None:
    home = Home(tmp_path)
    config = replace(
        load_config(tmp_path, environ={}),
        **{"alerts.restart_loop_restarts": 2, "alerts.dedupe_seconds": 3600.0},
    )
    with alert_sink() as sink, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MICRO_ALERT_URLS", sink.url)
        stack = Stack(Context(home, config, argparse.Namespace(sets=[])))
        stack.services = [Service("flaky", ["no-such-command"])]  # exits 2 at once
        try:
            wait_for(lambda: _supervised(stack) and len(sink.titles()) >= 2, timeout=60)
        finally:
            stack.stop()
    assert sink.titles() == [
        "micro up: flaky exited with status 2",
        "micro up: flaky in a restart loop: 2 exits in 900 s",
    ]
    assert "flaky.log" in sink.messages()[0]


def _supervised(stack: Stack) -> bool:
    stack.supervise_once()
    return True


DOWN = threading.Event()  # set: the broker does not answer


class FlakyBroker(SimBroker):
    """The sim broker whose candle requests fail while DOWN is set."""

    def candles_since(self, ts: int) -> list[Candle]:
        if DOWN.is_set():
            raise BrokerError("connection refused")
        return super().candles_since(ts)


def test_a_broker_link_down_longer_than_the_limit_alerts_once_and_again_when_back(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("link")
    assert run_micro(root, "data", "synth", "--days", "8", "--seed", "5").returncode == 0
    assert run_micro(root, "data", "prepare").returncode == 0
    (root / "micro.toml").write_text(TOML)
    write_best(root, seed=1, episode=10)
    quick = {"live.poll_seconds": 0.05, "alerts.disconnect_seconds": 1.0,
             "risk.circuit_open_seconds": 0.5,  # trading losses never halt (and alert) here:
             "risk.daily_loss_limit_pips": 1e5, "risk.max_drawdown_pips": 1e5}  # fmt: skip
    config = replace(load_config(root, environ={}), **quick)
    market = load_market(root / "data" / "market.duckdb", config)
    con = connect(root / "data" / "market.duckdb", read_only=True)
    try:
        scaling = FeatureScaling.from_dict(get_meta(con, "feature_scaling"))
    finally:
        con.close()
    rows = list(range(config.live.warmup_bars, config.live.warmup_bars + 400))
    broker = FlakyBroker(market.instrument, market.pip, 4.0, market.ts, market.open, market.high,
                         market.low, market.close, rows)  # fmt: skip
    with alert_sink() as sink:
        alerts = Alerter(config.alerts, "live", [sink.url])
        trader = Trader(Home(root), config, broker, ModelSlot(root / "checkpoints" / "best.pth",
                        config), scaling, alerts=alerts)  # fmt: skip
        runner = threading.Thread(target=trader.run)
        DOWN.set()  # down from the first poll on
        runner.start()
        try:
            wait_for(lambda: any("link down" in t for t in sink.titles()), timeout=60)
            DOWN.clear()
            wait_for(lambda: any("link back" in t for t in sink.titles()), timeout=60)
        finally:
            DOWN.clear()
            trader.request_stop()
            runner.join(timeout=60)
    titles = [t.removeprefix("micro live: GBP_JPY ") for t in sink.titles()]
    assert len(titles) == 3, titles
    assert titles[0] == "circuit breaker open: broker errors in a row, no orders"  # 5 polls
    assert titles[1].startswith("broker link down for ")  # once, though down for longer
    assert "poll: connection refused" in sink.messages()[1]
    assert titles[2].startswith("broker link back after ")


@pytest.mark.parametrize("command", [("up", "--no-dash", "--duration", "1"), ("live",)])
def test_an_alert_target_apprise_cannot_read_ends_a_service_in_one_line(
    home: Path, command: tuple[str, ...]
) -> None:
    env = micro_env(home, MICRO_ALERT_URLS="json://127.0.0.1:9/ok nosuch://tok-secret-123/x")
    done = run_micro(home, *command, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "micro: error: MICRO_ALERT_URLS: target 2 (nosuch://…) is not a URL apprise can send "
        "to; fix it (see apprise's list of services) or remove it"
    )
    assert "tok-secret-123" not in done.stdout
    assert not (home / "data" / "market.duckdb").exists()  # nothing made before the refusal
