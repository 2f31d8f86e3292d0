"""The live page (`live/index.html`) written by a real sim trader: what it shows, that it stays
offline, that a failing write never stops trading, and that it draws in a real Chromium."""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path

import pytest
import torch

from micro.atomic import write_json
from micro.live.page import status_of
from micro.volumes import LiveState
from tests.browser import offline_page
from tests.integration import test_live_sim as base
from tests.integration.test_live_sim import sim_trader, step

# the prepared home and model of test_live_sim (a module fixture here too)
template, home = base.template, base.home


@pytest.fixture(autouse=True)
def one_torch_thread() -> None:
    torch.set_num_threads(1)  # the in-process traders' searches


def decisions(home: Path) -> list[dict]:
    lines = [json.loads(x) for x in (home / "live" / "journal.jsonl").read_text().splitlines()]
    return [x for x in lines if x["kind"] == "bar" and isinstance(x.get("decision"), str)]


def test_the_page_shows_state_decisions_and_trades_and_loads_nothing_remote(home: Path) -> None:
    trader = sim_trader(home)
    trader.start()
    step(trader, 150)
    trader.finish("stopped")
    page = (home / "live" / "index.html").read_text()
    asset = re.search(r'<script src="(plotly-[0-9.]+\.min\.js)">', page)
    assert asset is not None and (home / "live" / asset.group(1)).stat().st_size > 1_000_000
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from elsewhere
    assert 'id="live-bars"' in page and 'id="live-equity"' in page
    state = LiveState.from_dict(json.loads((home / "live" / "state.json").read_text()))
    assert f'id="status">{html.escape(status_of(state)[1])}<' in page
    for card in ("card-position", "card-todays-pl", "card-risk", "card-connection"):
        assert f'id="{card}"' in page
    shown = decisions(home)[-15:]
    assert shown and page.count("<tr><td>") >= len(shown)
    last = shown[-1]
    visits = "/".join(f"{v:.0f}" for v in last["rationale"]["visit_counts"])
    assert visits in page  # the latest decision's visit counts, in the table
    assert f"{state.bars_processed:.0f} / {state.trades:.0f}" in page
    assert len(page.encode()) < 300_000  # the page itself is small; plotly.js is the asset


def test_pause_and_a_halt_show_on_the_page(home: Path) -> None:
    trader = sim_trader(home)
    trader.start()
    step(trader, 3)
    write_json(home / "live" / "PAUSE", {"time": "2024-01-01T00:00:00+00:00", "reason": "lunch"})
    step(trader, 1)
    trader.write_state(final=True)
    page = (home / "live" / "index.html").read_text()
    assert "PAUSED: no new entries" in page
    trader.risk.state.drawdown_halt = True
    trader.write_state(final=True)
    page = (home / "live" / "index.html").read_text()
    assert "HALTED: PAUSED; drawdown halt" in page


def test_a_page_that_cannot_be_written_never_stops_trading(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (home / "live").mkdir(parents=True, exist_ok=True)
    (home / "live" / "index.html").mkdir()  # os.replace onto a directory fails
    trader = sim_trader(home)
    trader.page.every_seconds = 0.0  # try on every state write
    with caplog.at_level(logging.WARNING, logger="micro.live"):
        trader.start()
        step(trader, 20)
        trader.finish("stopped")
    assert len(decisions(home)) >= 10  # traded on
    warnings = [r for r in caplog.records if "live page" in r.getMessage()]
    assert len(warnings) == 1  # said once, not on every bar
    assert trader.page.writes == 0


def test_the_live_page_draws_in_a_real_browser(home: Path, tmp_path: Path) -> None:
    trader = sim_trader(home)
    trader.start()
    step(trader, 150)
    trader.finish("stopped")
    kept = [b for b in trader.page.bars if b.get("decision") in ("BUY", "SELL", "CLOSE")]
    with offline_page(tmp_path) as page:
        page.open(home / "live" / "index.html")
        page.wait_for_plots(["live-bars", "live-equity"])
        traces = {t["name"]: t for t in page.plot_traces("live-bars")}
        assert len(traces["bars"]["x"]) == len(trader.page.bars)
        marked = sum(len(traces[name]["x"]) for name in ("BUY", "SELL", "CLOSE") if name in traces)
        assert marked == len(kept)
        for name in ("BUY", "SELL", "CLOSE"):
            if name in traces:
                assert page.drawn_markers("live-bars", name) == len(traces[name]["x"])
                assert "visits H/B/S/C" in traces[name]["hovertext"][0]
        (equity,) = page.plot_traces("live-equity")
        assert equity["y"][-1] == pytest.approx(trader.page.bars[-1]["equity_pips"])
        shot = page.screenshot("live.png")
    assert shot.stat().st_size > 10_000
