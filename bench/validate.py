"""Benchmark of the validator: the Monte Carlo bootstrap, and scoring one checkpoint end to end.

- `mc_seconds`: one `montecarlo.bootstrap` of 1000 runs over 5,000 synthetic trades (target
  ≤ 2 s; the system this replaces timed out after 10 minutes). `reference_mc_seconds`: a plain
  Python-loop bootstrap (draw, mean, std, SQN, running-peak drawdown per run) timed on a few runs
  in the same process and extrapolated to 1000 runs; `mc_speedup` is their ratio.
- `checkpoint_seconds`: scoring one checkpoint as `micro validate` does, end to end: load and
  verify the .pth, load the market, greedy evaluation of `--sessions` sessions (default 100) at
  `--simulations` (default `validation.simulations`, 32) with the default model config, metrics,
  bootstrap, safe-f, Sharpe, baselines, the diagnostics (planning gain: the same sessions traded
  by the policy prior and at random; the chance head's calibration; the value error), promotion
  decision and the report written. The store is synthetic `trend` bars written and prepared in a
  temporary home before the clock starts (the split fractions are set so the validation split
  holds enough sessions); the network is freshly initialised.
- `reference_checkpoint_seconds`: the same scoring in the same process with the diagnostics
  switched off (`score_checkpoint(diagnostics=False)`), the validator as it was before them;
  `checkpoint_time_ratio` = checkpoint / reference (target ≤ `TARGET_RATIO`, `within_target`).
  After one small warm-up scoring (JIT caches and torch's first calls are paid before the
  clock), the two alternate `--repeats` times (reference first), each in a fresh copy of the
  prepared home with torch's threads reset to `validation.threads` (numba's parallel safe-f
  kernel changes torch's thread count in the process); the fastest of each is reported (the
  machine's other load only ever adds time), all of them in `*_all_seconds`. On a loaded
  machine the wall times swing more than the diagnostics cost; `diagnostics_share` (the
  report's own `timing.diagnostics_seconds` over its `timing.total_seconds`, one run, one load)
  shows that cost without the swing.

`--quick` shrinks the checkpoint run (few sessions, 5 simulations, 100 bootstrap/baseline runs)
for tests. Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
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
TARGET_RATIO = 2.0  # scoring with the diagnostics may take at most this many times the reference
QUICK_SIMULATIONS = 5


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


def timed_scoring(template: Path, root: Path, config: Config, diagnostics: bool) -> dict:
    """Score the template's checkpoint in a fresh copy of it; the report and the wall seconds."""
    shutil.copytree(template, root)
    home = Home(root)
    path = home.checkpoints / "ckpt_ep0000050.pth"
    if config.validation.threads:
        torch.set_num_threads(config.validation.threads)
    threads = torch.get_num_threads()
    began = time.perf_counter()
    report = score_checkpoint(home, config, path, "validation", diagnostics=diagnostics)
    conclude(home, config, report)
    return {"report": report, "seconds": time.perf_counter() - began, "threads": threads}


def checkpoint_run(
    sessions: int, simulations: int | None, quick: bool, seed: int, repeats: int = 1
) -> dict:
    """Score one default-config checkpoint on `sessions` sessions with and without the
    diagnostics; seconds, their ratio and the breakdown."""
    overrides: dict[str, object] = {
        "data.train_fraction": 0.05,
        "data.validation_fraction": 0.85,
        "validation.max_sessions": sessions,
    }
    if simulations is not None:
        overrides["validation.simulations"] = simulations
    if quick:
        overrides.update({"validation.bootstrap_runs": 100, "validation.random_baselines": 100})
    config = replace(Config(), **overrides)
    with tempfile.TemporaryDirectory(prefix="micro-bench-validate-") as tmp:
        template = prepared_home(Path(tmp) / "template", config, sessions, seed)
        torch.manual_seed(seed)
        net = StochasticMuZeroNet(config.model, config.features.window)
        path = template.checkpoints / "ckpt_ep0000050.pth"
        save_checkpoint(path, net, config, episode=50, learner_step=1)
        warm = replace(config, **{"validation.max_sessions": 2})
        timed_scoring(template.root, Path(tmp) / "warm", warm, diagnostics=True)
        references, fulls = [], []
        for k in range(max(1, repeats)):
            references.append(timed_scoring(template.root, Path(tmp) / f"ref{k}", config, False))
            fulls.append(timed_scoring(template.root, Path(tmp) / f"full{k}", config, True))
    reference = min(references, key=lambda run: run["seconds"])
    full = min(fulls, key=lambda run: run["seconds"])
    report, seconds = full["report"], full["seconds"]
    timing = report["timing"]
    diagnostics = report["diagnostics"]
    gain = diagnostics["planning_gain"]
    ratio = seconds / reference["seconds"]
    return {
        "checkpoint_seconds": round(seconds, 3),
        "reference_checkpoint_seconds": round(reference["seconds"], 3),
        "checkpoint_time_ratio": round(ratio, 3),
        "checkpoint_all_seconds": [round(run["seconds"], 3) for run in fulls],
        "reference_checkpoint_all_seconds": [round(run["seconds"], 3) for run in references],
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO,
        "checkpoint_sessions": report["sessions"]["count"],
        "checkpoint_simulations": report["evaluation"]["simulations"],
        "checkpoint_decisions": report["evaluation"]["decisions"],
        "checkpoint_trades": report["metrics"]["trades"],
        "evaluation_seconds": round(timing["evaluation_seconds"], 3),
        "statistics_seconds": round(timing["statistics_seconds"], 3),
        "baselines_seconds": round(timing["baselines_seconds"], 3),
        "diagnostics_seconds": round(timing["diagnostics_seconds"], 3),
        "diagnostics_share": round(timing["diagnostics_seconds"] / timing["total_seconds"], 4),
        "reference_evaluation_seconds": round(
            reference["report"]["timing"]["evaluation_seconds"], 3
        ),
        "decisions_per_second": round(timing["decisions_per_second"], 1),
        "prior_trades": gain["policy_prior"]["trades"],
        "random_trades": gain["random"]["trades"],
        "brier": diagnostics["chance_calibration"]["brier"],
        "value_mae_pips": diagnostics["value_error"]["mae_pips"],
        "bootstrap_runs": config.validation.bootstrap_runs,
        "torch_threads": full["threads"],
    }


def run(
    seconds: float,
    quick: bool,
    sessions: int | None,
    simulations: int | None,
    seed: int,
    repeats: int = 1,
) -> dict:
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
    if simulations is None and quick:
        simulations = QUICK_SIMULATIONS
    report.update(checkpoint_run(chosen, simulations, quick, seed, repeats))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="rough time given to the reference loop ×10"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny checkpoint run (tests)")
    parser.add_argument("--sessions", type=int, default=None, help="default 100 (--quick: 4)")
    parser.add_argument(
        "--simulations", type=int, default=None, help="default validation.simulations (--quick: 5)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=2, help="alternating timed runs of each (--quick: 1)"
    )
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(
        json.dumps(
            run(args.seconds, args.quick, args.sessions, args.simulations, args.seed, repeats)
        )
    )


if __name__ == "__main__":
    main()
