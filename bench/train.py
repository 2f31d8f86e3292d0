"""Trainer throughput end to end: episodes per hour, self-play steps/s, learner samples/s.

Runs the real `micro train` (default model, 360-bar sessions, 5 simulations) as a subprocess on
synthetic data for `--seconds`, and reads its metrics.jsonl: rates are measured between the first
finished episode and the end, so start-up (spawn, numba compilation) does not count. The plain
reference in the same run is single-environment self-play with the reference search (Python
objects, batch-1 network calls), as a straightforward implementation would do it.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _micro import micro  # noqa: E402  (bench/ is this script's own folder)


def trainer_rates(home: Path, seconds: float, sims: int, envs: int) -> dict:
    started = time.monotonic()
    result = micro(
        home,
        "train",
        "--max-minutes",
        str(seconds / 60),
        "--envs-per-actor",
        str(envs),
        "--set",
        f"mcts.simulations={sims}",
        "--set",
        "train.report_every_seconds=2",
        timeout=seconds + 600,
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"bench/train.py: micro train failed: {result.stderr[-2000:]}")
    lines = [
        json.loads(line)
        for line in (home / "monitoring" / "trainer" / "metrics.jsonl").read_text().splitlines()
    ]
    with_episodes = [m for m in lines if (m.get("progress/episodes") or 0) > 0]
    first, last = with_episodes[0], lines[-1]
    from datetime import datetime

    def t(m: dict) -> float:
        return datetime.fromisoformat(m["time"]).timestamp()

    span = max(t(last) - t(first), 1e-9)
    status = json.loads((home / "monitoring" / "trainer" / "status.json").read_text())
    config = json.loads((home / "monitoring" / "trainer" / "config.json").read_text())
    batch = config["train"]["batch_size"]
    episodes = last["progress/episodes"] - first["progress/episodes"]
    steps = last["progress/learner_steps"] - first["progress/learner_steps"]
    positions = last["progress/env_steps"] - first["progress/env_steps"]
    return {
        "episodes_per_hour": episodes / span * 3600,
        "selfplay_steps_per_s": positions / span,
        "learner_steps_per_s": steps / span,
        "learner_samples_per_s": steps * batch / span,
        "unroll_starts_per_position": steps * batch / positions if positions else None,
        "replay_ratio": config["train"]["replay_ratio"],
        "episodes": int(status["episodes"]),
        "measured_seconds": span,
        "wall_seconds": wall,
        "envs_per_actor": envs,
        "simulations": sims,
    }


def reference_rate(home: Path, seconds: float, sims: int) -> dict:
    """Self-play steps/s of one environment at a time through the reference search."""
    import numpy as np
    import torch

    from micro.config import load_config, replace
    from micro.data.market import load_market
    from micro.env.trading import TradingEnv
    from micro.mcts.agent import Agent, Observations
    from micro.mcts.reference import reference_search
    from micro.model.networks import StochasticMuZeroNet

    torch.set_num_threads(1)
    config = replace(load_config(home, environ={}), **{"mcts.simulations": sims})
    market = load_market(home / "data" / "market.duckdb", config)
    net = StochasticMuZeroNet(config.model, window=config.features.window).eval()
    agent = Agent(net, config.mcts, search_fn=reference_search)
    env = TradingEnv(market, config, 1)
    rng = np.random.default_rng(0)
    obs = env.reset(market.sessions("train")[:1])
    steps, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        window = market.windows(obs.rows)
        actions, _ = agent.act(
            Observations(window, obs.static, obs.legal, obs.side), "explore", rng
        )
        result = env.step(actions)
        obs = result.observation
        if result.done[0]:
            obs = env.reset(market.sessions("train")[:1])
        steps += 1
    rate = steps / (time.monotonic() - started)
    return {"steps_per_s": rate, "episodes_per_hour": rate * 3600 / (market.session_bars - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="trainer run time")
    parser.add_argument("--days", type=int, default=60, help="synthetic days of data")
    parser.add_argument("--simulations", type=int, default=5)
    parser.add_argument("--envs", type=int, default=128, help="environments per actor")
    parser.add_argument("--reference-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="micro-bench-train-") as tmp:
        home = Path(tmp)
        for step in (
            ("data", "synth", "--days", str(args.days), "--seed", "1"),
            ("data", "prepare"),
        ):
            done = micro(home, *step)
            if done.returncode != 0:
                raise SystemExit(f"bench/train.py: {' '.join(step)} failed: {done.stderr}")
        trainer = trainer_rates(home, args.seconds, args.simulations, args.envs)
        reference = reference_rate(home, args.reference_seconds, args.simulations)
    trainer["reference_episodes_per_hour"] = reference["episodes_per_hour"]
    trainer["reference_selfplay_steps_per_s"] = reference["steps_per_s"]
    trainer["speedup_vs_reference"] = trainer["episodes_per_hour"] / reference["episodes_per_hour"]
    trainer["target_episodes_per_hour"] = 10_000
    print(json.dumps(trainer))


if __name__ == "__main__":
    main()
