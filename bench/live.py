"""Benchmark of the live trader: decision latency per bar at 5 and 25 simulations.

The latency is the trader's own `latency_ms` of each bar line (`Trader.on_bar` → features
through the incremental path + `Agent.act` search + risk checks; broker requests are not in
it), measured by driving the real `Trader` with the sim broker over synthetic `trend` bars, one
torch thread as `micro live` runs, the DEFAULT model config and a freshly initialised network.
The reference is the same trader with the plain reference search
(`micro.mcts.reference.reference_search`) in the agent, timed in the same run on fewer bars.
Target: p99 under 50 ms at 25 simulations.

Prints ONE JSON object: `{"sims_5": {"p50_ms", "p99_ms", ...}, "sims_25": {...}, ...}`.
`--bars N` for a quick run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from micro.config import Config, replace
from micro.data.market import load_market
from micro.data.prepare import prepare_store
from micro.data.store import connect, get_meta, write_candles
from micro.data.synth import synthesize
from micro.features.scaling import FeatureScaling
from micro.home import Home
from micro.live.models import ModelSlot
from micro.live.sim import SimBroker
from micro.live.trader import Trader
from micro.mcts.reference import reference_search
from micro.model.checkpoint import save_checkpoint
from micro.model.networks import StochasticMuZeroNet
from micro.volumes import best_checkpoint, journal_path, live_state_path

SIMULATIONS = (5, 25)
WARMUP_DECISIONS = 5  # first decisions (numba compile, torch warm-up) left out of the figures


def prepared_home(root: Path, config: Config, bars: int, seed: int) -> Home:
    """A home with a prepared synthetic store long enough for warm-up + `bars` decisions."""
    home = Home(root)
    days = int(np.ceil((config.live.warmup_bars + bars + WARMUP_DECISIONS) / 1440 * 7 / 5)) + 4
    frame = synthesize(config.data.instrument, days, seed, "trend", "2024-01-01")
    con = connect(home.store)
    try:
        write_candles(con, config.data.instrument, frame)
    finally:
        con.close()
    prepare_store(home.store, config)
    torch.manual_seed(seed)
    net = StochasticMuZeroNet(config.model, config.features.window)
    save_checkpoint(best_checkpoint(home), net, config, episode=1, learner_step=1)
    return home


def trader_for(home: Home, config: Config, reference: bool) -> Trader:
    """The live trader on the sim broker over the store, as `micro live --broker sim` builds it."""
    market = load_market(home.store, config)
    rows = np.arange(config.live.warmup_bars, len(market.ts))
    broker = SimBroker.over_market(market, config.spread_pips(market.instrument), rows)
    con = connect(home.store, read_only=True)
    try:
        scaling = FeatureScaling.from_dict(get_meta(con, "feature_scaling"))
    finally:
        con.close()
    models = ModelSlot(best_checkpoint(home), config)
    if reference:
        models.agent.search_fn = reference_search
    return Trader(home, config, broker, models, scaling)


def latencies(home: Home, config: Config, bars: int, reference: bool) -> np.ndarray:
    """latency_ms of `bars` decisions (after the warm-up ones) through `Trader.on_bar`."""
    trader = trader_for(home, config, reference)
    trader.start()
    first = len(trader.journal.lines("bar"))
    wanted = bars + WARMUP_DECISIONS
    decided = 0
    while decided < wanted and not trader.broker.finished():
        for bar in trader.clock.poll():
            trader.on_bar(bar)
            decided += 1
    lines = trader.journal.lines("bar")[first:]
    trader.finish("bench")
    timed = [x["latency_ms"] for x in lines if x.get("latency_ms") is not None]
    return np.asarray(timed[WARMUP_DECISIONS:], dtype=np.float64)  # [bars] ms


def figures(ms: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def run(bars: int, reference_bars: int, seed: int) -> dict[str, Any]:
    """Every measurement; the JSON-able result."""
    torch.set_num_threads(1)  # as `micro live`: batch-1 decisions
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="micro-bench-live-") as tmp:
        base = Config()
        home = prepared_home(Path(tmp), base, bars, seed)
        for simulations in SIMULATIONS:
            config = replace(base, **{"validation.simulations": simulations})
            ms = latencies(home, config, bars, reference=False)
            reference = latencies(home, config, reference_bars, reference=True)
            entry: dict[str, Any] = {**figures(ms), "bars": int(ms.size)}
            plain = figures(reference)
            entry["reference_p50_ms"] = plain["p50_ms"]
            entry["reference_p99_ms"] = plain["p99_ms"]
            entry["reference_bars"] = int(reference.size)
            entry["speedup_p50"] = round(plain["p50_ms"] / max(entry["p50_ms"], 1e-9), 2)
            entry["target_p99_ms"] = 50.0 if simulations == 25 else None
            report[f"sims_{simulations}"] = entry
            journal_path(home).unlink(missing_ok=True)  # a fresh start per run
            live_state_path(home).unlink(missing_ok=True)
    report["torch_threads"] = torch.get_num_threads()
    report["model"] = {"tcn_channels": base.model.tcn_channels, "hidden": base.model.hidden}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1000, help="decisions timed per setting")
    parser.add_argument(
        "--reference-bars", type=int, default=None, help="decisions timed with the reference"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reference_bars = args.reference_bars or max(min(args.bars // 10, 100), 2)
    print(json.dumps(run(max(args.bars, 2), reference_bars, args.seed)))


if __name__ == "__main__":
    main()
