"""Benchmark of the validator: the Monte Carlo bootstrap, and scoring one checkpoint end to end.

- `mc_seconds`: one `montecarlo.bootstrap` of 1000 runs over 5,000 synthetic trades (target
  ≤ 2 s; the system this replaces timed out after 10 minutes). `reference_mc_seconds`: a plain
  Python-loop bootstrap (draw, mean, std, SQN, running-peak drawdown per run) timed on a few runs
  in the same process and extrapolated to 1000 runs; `mc_speedup` is their ratio.
- `checkpoint_seconds`: scoring one checkpoint as `micro validate` does, end to end: load and
  verify the .pth, load the market, greedy evaluation of `--sessions` sessions (default 100) at
  `--simulations` (default 5) with the default model config, metrics, bootstrap, safe-f, Sharpe,
  baselines, promotion decision and the report written. The store is synthetic `trend` bars
  written and prepared in a temporary home before the clock starts (the split fractions are set
  so the validation split holds enough sessions); the network is freshly initialised.

`--quick` shrinks the checkpoint run (few sessions, 100 bootstrap/baseline runs) for tests.
Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from micro.config import Config, replace
from micro.data.prepare import prepare_store
from micro.data.store import connect, write_candles
from micro.data.synth import synthesize
from micro.home import Home
from micro.model.checkpoint import save_checkpoint
from micro.model.networks import StochasticMuZeroNet
from micro.validation.montecarlo import bootstrap_seconds
from micro.validation.promotion import conclude
from micro.validation.report import score_checkpoint

MC_TRADES = 5000
MC_RUNS = 1000
SESSIONS_PER_TRADING_DAY = 3.0  # a conservative count of 360-bar sessions in a 24 h FX day


def reference_bootstrap_run(pips: list[float], rng: random.Random) -> tuple[float, float]:
    """One plain-Python resample of `pips`: (SQN, max drawdown pips)."""
    n = len(pips)
    sample = [pips[rng.randrange(n)] for _ in range(n)]
    mean = sum(sample) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in sample) / (n - 1))
    equity = peak = worst = 0.0
    for x in sample:
        equity += x
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    return math.sqrt(n) * mean / std, worst


def reference_mc_seconds(budget_s: float, seed: int) -> tuple[float, int]:
    """Seconds the plain loop would take for 1000 runs (extrapolated) and the runs timed."""
    rng = np.random.default_rng(seed)
    pips = rng.normal(0.5, 15.0, MC_TRADES).tolist()
    plain = random.Random(seed)
    runs = 0
    began = time.perf_counter()
    while runs < 2 or (time.perf_counter() - began < budget_s and runs < MC_RUNS):
        reference_bootstrap_run(pips, plain)
        runs += 1
    return (time.perf_counter() - began) / runs * MC_RUNS, runs


def prepared_home(root: Path, config: Config, sessions: int, seed: int) -> Home:
    """A home whose store holds enough prepared validation sessions for `sessions`."""
    home = Home(root)
    fraction = config.data.validation_fraction
    days = int(math.ceil(sessions / SESSIONS_PER_TRADING_DAY * 7 / 5 / fraction)) + 6
    frame = synthesize(config.data.instrument, days, seed, "trend", "2024-01-01")
    con = connect(home.store)
    try:
        write_candles(con, config.data.instrument, frame)
    finally:
        con.close()
    prepare_store(home.store, config)
    return home


def checkpoint_run(sessions: int, simulations: int, quick: bool, seed: int) -> dict:
    """Score one default-config checkpoint on `sessions` sessions; seconds and the breakdown."""
    overrides = {
        "data.train_fraction": 0.05,
        "data.validation_fraction": 0.85,
        "validation.simulations": simulations,
        "validation.max_sessions": sessions,
    }
    if quick:
        overrides.update({"validation.bootstrap_runs": 100, "validation.random_baselines": 100})
    config = replace(Config(), **overrides)
    if config.validation.threads:
        torch.set_num_threads(config.validation.threads)
    with tempfile.TemporaryDirectory(prefix="micro-bench-validate-") as tmp:
        home = prepared_home(Path(tmp), config, sessions, seed)
        torch.manual_seed(seed)
        net = StochasticMuZeroNet(config.model, config.features.window)
        path = home.checkpoints / "ckpt_ep0000050.pth"
        save_checkpoint(path, net, config, episode=50, learner_step=1)
        began = time.perf_counter()
        report = score_checkpoint(home, config, path, "validation")
        conclude(home, config, report)
        seconds = time.perf_counter() - began
    timing = report["timing"]
    return {
        "checkpoint_seconds": round(seconds, 3),
        "checkpoint_sessions": report["sessions"]["count"],
        "checkpoint_simulations": report["evaluation"]["simulations"],
        "checkpoint_decisions": report["evaluation"]["decisions"],
        "checkpoint_trades": report["metrics"]["trades"],
        "evaluation_seconds": round(timing["evaluation_seconds"], 3),
        "statistics_seconds": round(timing["statistics_seconds"], 3),
        "baselines_seconds": round(timing["baselines_seconds"], 3),
        "decisions_per_second": round(timing["decisions_per_second"], 1),
        "bootstrap_runs": config.validation.bootstrap_runs,
        "torch_threads": torch.get_num_threads(),
    }


def run(seconds: float, quick: bool, sessions: int | None, simulations: int, seed: int) -> dict:
    """Every measurement; the JSON-able result."""
    bootstrap_seconds(n_trades=200, runs=10, seed=seed)  # warm numpy up
    mc = bootstrap_seconds(n_trades=MC_TRADES, runs=MC_RUNS, seed=seed)
    reference, reference_runs = reference_mc_seconds(max(seconds * 0.1, 0.5), seed)
    chosen = sessions if sessions is not None else (4 if quick else 100)
    report = {
        "mc_seconds": round(mc, 4),
        "mc_trades": MC_TRADES,
        "mc_runs": MC_RUNS,
        "reference_mc_seconds": round(reference, 2),
        "reference_runs_timed": reference_runs,
        "mc_speedup": round(reference / mc, 1),
    }
    report.update(checkpoint_run(chosen, simulations, quick, seed))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="rough time given to the reference loop ×10"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny checkpoint run (tests)")
    parser.add_argument("--sessions", type=int, default=None, help="default 100 (--quick: 4)")
    parser.add_argument("--simulations", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.quick, args.sessions, args.simulations, args.seed)))


if __name__ == "__main__":
    main()
