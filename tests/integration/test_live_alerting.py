"""Which journal lines of the live trader alert, through a real Journal and Alerter to a webhook
on 127.0.0.1; and the daily summary of a sim trader whose bars cross the FX day's roll."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from micro.alerts import Alerter
from micro.config import AlertsConfig, load_config
from micro.data.market import load_market
from micro.data.store import connect, get_meta
from micro.features.scaling import FeatureScaling
from micro.home import Home
from micro.live.alerting import JournalAlerts
from micro.live.journal import Journal
from micro.live.models import ModelSlot
from micro.live.sim import SimBroker
from micro.live.trader import Trader
from tests.alert_sink import alert_sink
from tests.integration import test_live_sim as base

template, home = base.template, base.home  # test_live_sim's prepared home (module-scoped)


def test_halts_mismatches_and_orders_in_doubt_alert_and_routine_lines_do_not(
    tmp_path: Path,
) -> None:
    with alert_sink() as sink:
        alerter = Alerter(AlertsConfig(), "live", [sink.url])
        journal = Journal(tmp_path / "journal.jsonl", listeners=[JournalAlerts(alerter, "EUR_USD")])
        journal.record("bar", decision="HOLD")  # routine: no alert
        journal.record("order", client_id="micro-1-B")
        journal.record("risk", event="order_blocked", reasons=["stale price"])
        journal.record("risk", event="daily_loss_halt", bar_ts=1)
        journal.record("reconcile", event="mismatch", problems=["broker holds trade 7"])
        journal.record("error", during="order", error="timeout", outcome_unknown=True)
        journal.record("reconcile", client_id="micro-2-S", found=False,
                       resolution="not_received")  # fmt: skip
        journal.record("risk", event="daily_loss_halt", bar_ts=2)  # the same halt again: deduped
        journal.record("day", trading_day=19000, trades=3, model_pips=-4.5, broker_pips=-4.7,
                       broker_pl=-47.0, financing=-0.1)  # fmt: skip
        alerter.close()
    titles = [t.removeprefix("micro live: EUR_USD ") for t in sink.titles()]
    assert titles == [
        "daily loss limit hit: entries stopped until the next FX day",
        "reconciliation mismatch: entries halted",
        "order in unknown state: looking it up",
        "order micro-2-S never reached the broker (fenced)",
        "daily summary",
    ]
    messages = sink.messages()
    assert messages[1].startswith("broker holds trade 7")
    assert "model pips: -4.5" in messages[4] and "broker pips: -4.7" in messages[4]
    assert [x["type"] for x in sink.received] == ["failure"] * 3 + ["warning", "info"]


def test_a_sim_trader_crossing_the_fx_day_roll_sends_the_days_summary(home: Path) -> None:
    torch.set_num_threads(1)
    root = home  # test_live_sim's prepared home and model
    config = load_config(root, environ={})
    market = load_market(root / "data" / "market.duckdb", config)
    con = connect(root / "data" / "market.duckdb", read_only=True)
    try:
        scaling = FeatureScaling.from_dict(get_meta(con, "feature_scaling"))
    finally:
        con.close()
    before_roll = np.flatnonzero(market.ts % 86_400 == 20 * 3600 + 45 * 60)  # 20:45 UTC
    start = int(before_roll[before_roll >= config.live.warmup_bars][0])
    rows = np.arange(start, start + 30)  # 20:45 .. 21:14: the FX day rolls at 21:00 UTC
    broker = SimBroker(market.instrument, market.pip, 4.0, market.ts, market.open, market.high,
                       market.low, market.close, rows)  # fmt: skip
    with alert_sink() as sink:
        alerts = Alerter(config.alerts, "live", [sink.url])
        models = ModelSlot(root / "checkpoints" / "best.pth", config)
        trader = Trader(Home(root), config, broker, models, scaling, max_bars=30, alerts=alerts)
        assert trader.run() == 0
    summaries = [x for x in sink.received if x["title"].endswith("daily summary")]
    assert len(summaries) == 1 and summaries[0]["type"] == "info"
    day = next(line for line in trader.journal.lines("day"))
    assert f"trades: {day['trades']}" in summaries[0]["message"]
