"""Trainer throughput end to end: episodes per hour, self-play steps/s, learner samples/s.

Runs the real `micro train` (default model, 360-bar sessions, 5 simulations) as a subprocess on
synthetic data for `--seconds`, and reads its metrics.jsonl: rates are measured between the first
finished episode and the end, so start-up (spawn, numba compilation) does not count. The plain
reference in the same run is single-environment self-play with the reference search (Python
objects, batch-1 network calls), as a straightforward implementation would do it.

`--backend ray` runs the same trainer twice more on this machine with its actors as Ray actors
(a private Ray, `train.actors` of them): once as configured, beside the local figures, and once
with the learner out of self-play's way (replay ratio 0.01) for the actors' own capacity per
core. With the learner's ceiling (gradient steps/s on all cores, nothing else running) it
projects episodes/hour against the number of worker cores: min(cores × per core, ceiling).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _micro import micro  # noqa: E402  (bench/ is this script's own folder)


def trainer_rates(
    home: Path,
    seconds: float,
    sims: int,
    envs: int,
    backend: str = "local",
    actors: int = 1,
    sets: tuple[str, ...] = (),
) -> dict:
    started = time.monotonic()
    for stale in ("checkpoints", "monitoring"):  # each run starts fresh, not resumed
        shutil.rmtree(home / stale, ignore_errors=True)
    result = micro(
        home,
        "train",
        "--max-minutes",
        str(seconds / 60),
        "--envs-per-actor",
        str(envs),
        "--actors",
        str(actors),
        "--backend",
        backend,
        "--set",
        f"mcts.simulations={sims}",
        "--set",
        "train.report_every_seconds=2",
        *(arg for value in sets for arg in ("--set", value)),
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
        "backend": backend,
        "actors": actors,
    }


def learner_ceiling(home: Path, sims: int, steps: int) -> dict:
    """Learner steps/s with every core to itself: replay filled with random episodes."""
    import numpy as np
    import torch

    from micro.config import load_config, replace
    from micro.data.market import load_market
    from micro.env.actions import NUM_ACTIONS
    from micro.model.networks import StochasticMuZeroNet
    from micro.train.learner import Learner
    from micro.train.replay import ReplayBuffer, Trajectory, mirror_batch

    torch.set_num_threads(os.cpu_count() or 1)
    config = replace(load_config(home, environ={}), **{"mcts.simulations": sims})
    train = config.train
    market = load_market(home / "data" / "market.duckdb", config)
    net = StochasticMuZeroNet(config.model, window=config.features.window)
    learner = Learner(net, config)
    replay = ReplayBuffer(
        train.replay_capacity,
        unroll_steps=train.unroll_steps,
        n_step=train.n_step,
        discount=config.mcts.discount,
    )
    rng = np.random.default_rng(0)
    t = market.session_bars - 1
    for start in market.sessions("train")[:64]:
        replay.add(
            Trajectory(
                rows=np.arange(start, start + t, dtype=np.int64),
                static=np.zeros((t, 6), np.float32),
                side=np.zeros(t, np.int8),
                actions=np.zeros(t, np.int8),
                rewards=rng.normal(size=t).astype(np.float32),
                outcomes=rng.integers(0, 3, t).astype(np.int8),
                root_values=rng.normal(size=t).astype(np.float32),
                policies=np.full((t, NUM_ACTIONS), 1 / NUM_ACTIONS, np.float32),
                weight_version=0,
                actor=0,
            )
        )

    def one_step() -> None:
        batch = replay.sample(train.batch_size, rng)
        windows = market.windows(batch.rows)
        if train.mirror:
            batch, windows = mirror_batch(batch, windows, rng.random(len(batch.ids)) < 0.5)
        learner.step(batch, windows)

    for _ in range(3):  # warm-up
        one_step()
    started, done = time.monotonic(), 0
    while done < steps or time.monotonic() - started < 5.0:  # at least 5 s: a busy machine
        one_step()
        done += 1
    rate = done / (time.monotonic() - started)
    positions_per_s = rate * train.batch_size / train.replay_ratio
    return {
        "steps_per_s": rate,
        "threads": torch.get_num_threads(),
        "episodes_per_hour": positions_per_s * 3600 / t,
    }


def ray_comparison(home: Path, args: argparse.Namespace) -> dict:
    """Local against Ray on this machine, the actors' capacity per core, the projection."""
    ceiling = learner_ceiling(home, args.simulations, args.learner_steps)
    local = trainer_rates(home, args.seconds, args.simulations, args.envs, "local", args.actors)
    ray = trainer_rates(home, args.seconds, args.simulations, args.envs, "ray", args.actors)
    capacity = trainer_rates(
        home,
        args.seconds,
        args.simulations,
        args.envs,
        "ray",
        args.actors,
        sets=("train.replay_ratio=0.01",),
    )
    per_core = capacity["episodes_per_hour"] / args.actors  # one CPU per actor (the default)
    cores_axis = (1, 2, 4, 8, 16, 32, 64, 128)
    selfplay_only = {str(cores): cores * per_core for cores in cores_axis}
    projection = {
        cores: min(episodes, ceiling["episodes_per_hour"])
        for cores, episodes in selfplay_only.items()
    }
    return {
        "backend": "ray",
        "machine_cores": os.cpu_count(),
        "local": local,
        "ray": ray,
        "ray_vs_local_episodes_per_hour": ray["episodes_per_hour"] / local["episodes_per_hour"],
        "ray_vs_local_learner_steps_per_s": (
            ray["learner_steps_per_s"] / local["learner_steps_per_s"]
            if local["learner_steps_per_s"]
            else None
        ),
        "selfplay_episodes_per_hour_per_core": per_core,
        "selfplay_capacity_run": capacity,
        "learner_ceiling": ceiling,
        "projected_episodes_per_hour_by_worker_cores": projection,
        "selfplay_episodes_per_hour_by_worker_cores": selfplay_only,  # were the learner no limit
        "cores_to_reach_learner_ceiling": ceiling["episodes_per_hour"] / per_core,
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
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="ray: compare the Ray backend with local and project by cores (default: local)",
    )
    parser.add_argument("--actors", type=int, default=1, help="actors (default: 1)")
    parser.add_argument(
        "--learner-steps",
        type=int,
        default=30,
        help="learner steps timed for the ceiling with --backend ray (default: 30)",
    )
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
        if args.backend == "ray":
            print(json.dumps(ray_comparison(home, args)))
            return
        trainer = trainer_rates(home, args.seconds, args.simulations, args.envs)
        reference = reference_rate(home, args.reference_seconds, args.simulations)
    trainer["reference_episodes_per_hour"] = reference["episodes_per_hour"]
    trainer["reference_selfplay_steps_per_s"] = reference["steps_per_s"]
    trainer["speedup_vs_reference"] = trainer["episodes_per_hour"] / reference["episodes_per_hour"]
    trainer["target_episodes_per_hour"] = 10_000
    print(json.dumps(trainer))


if __name__ == "__main__":
    main()
