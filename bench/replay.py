"""Benchmark of the learner's replay draw: prioritised (sum tree) vs uniform vs a plain O(n) draw.

Fills a `ReplayBuffer` at the default capacity and learner shapes (`Config().train`: capacity,
batch, unroll, n-step; 360-position episodes) past its wrap, with random priorities, and times
per learner step:

- `sample` with `train.prioritized` (the sum tree draw plus the batch's targets), then
  `update_priorities` of the drawn ids, as the trainer does every step;
- the same `sample` without priorities (uniform ids, the same targets);
- the plain reference in the same run: normalise every stored priority and draw with
  `rng.choice(n, p=…)`, what a straightforward implementation does (and the buffer did before
  the sum tree), O(n) per step.

It also checks the sum tree draws by priority: the drawn ids' mean priority against the plain
draw's over the same buffer (they must agree within sampling error). Prints one JSON object;
times are medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from micro.config import Config  # noqa: E402
from micro.train.replay import ReplayBuffer, Trajectory  # noqa: E402

EPISODE = 360


def episode(rng: np.random.Generator, index: int) -> Trajectory:
    t = EPISODE
    return Trajectory(
        rows=np.arange(index * t, (index + 1) * t, dtype=np.int64),
        static=rng.standard_normal((t, 6)).astype(np.float32),
        side=np.zeros(t, np.int8),
        actions=rng.integers(0, 4, t).astype(np.int8),
        rewards=rng.standard_normal(t).astype(np.float32),
        outcomes=rng.integers(0, 3, t).astype(np.int8),
        root_values=rng.standard_normal(t).astype(np.float32),
        policies=np.full((t, 4), 0.25, np.float32),
        weight_version=0,
        actor=0,
    )


def filled(prioritized: bool, capacity: int, seed: int) -> ReplayBuffer:
    train = Config().train
    replay = ReplayBuffer(
        capacity,
        unroll_steps=train.unroll_steps,
        n_step=train.n_step,
        discount=Config().mcts.discount,
        prioritized=prioritized,
        priority_alpha=train.priority_alpha,
        priority_beta=train.priority_beta,
    )
    rng = np.random.default_rng(seed)
    for i in range(capacity // EPISODE + 3):  # past the wrap: the ring's oldest is not slot 0
        replay.add(episode(rng, i))
    return replay


def median_ms(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return 1000.0 * float(np.median(times))


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # bad input: one line, exit status 2, nothing run
        print(f"bench/replay.py: {message}", file=sys.stderr)
        raise SystemExit(2)


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=Config().train.replay_capacity)
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per variant")
    args = parser.parse_args()
    if args.capacity < 1000 or args.repeats < 1:
        parser.error("--capacity must be at least 1000 positions and --repeats at least 1")
    batch = Config().train.batch_size
    rng = np.random.default_rng(0)

    prioritised = filled(True, args.capacity, seed=1)
    n = len(prioritised)

    def tree_step() -> None:
        drawn = prioritised.sample(batch, rng)
        prioritised.update_priorities(drawn.ids, np.abs(rng.standard_normal(batch)) * 10)

    tree_ms = median_ms(tree_step, args.repeats)

    def plain_draw() -> np.ndarray:
        slots = np.arange(prioritised.oldest, prioritised.total) % prioritised.capacity
        p = prioritised.priority[slots]
        return prioritised.oldest + rng.choice(n, size=batch, p=p / p.sum())

    def plain_step() -> None:
        ids = plain_draw()
        prioritised._batch(ids, np.ones(batch, np.float32))
        prioritised.update_priorities(ids, np.abs(rng.standard_normal(batch)) * 10)

    plain_ms = median_ms(plain_step, args.repeats)

    # Does the tree draw by priority? Mean priority of drawn ids, tree vs plain, same buffer.
    def drawn_priority(ids: np.ndarray) -> float:
        return float(prioritised.priority[ids % prioritised.capacity].mean())

    draws = 40
    tree_mean = np.mean([drawn_priority(prioritised.sample(batch, rng).ids) for _ in range(draws)])
    plain_mean = np.mean([drawn_priority(plain_draw()) for _ in range(draws)])
    stored_mean = float(prioritised.priority.total / n)

    uniform = filled(False, args.capacity, seed=1)
    uniform_ms = median_ms(lambda: uniform.sample(batch, rng), args.repeats)

    print(
        json.dumps(
            {
                "positions": n,
                "batch_size": batch,
                "prioritised_step_ms": round(tree_ms, 3),
                "uniform_step_ms": round(uniform_ms, 3),
                "reference_prioritised_step_ms": round(plain_ms, 3),
                "speedup_vs_reference": round(plain_ms / tree_ms, 1),
                "prioritised_over_uniform": round(tree_ms / uniform_ms, 2),
                "drawn_mean_priority": round(float(tree_mean), 4),
                "reference_drawn_mean_priority": round(float(plain_mean), 4),
                "stored_mean_priority": round(stored_mean, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
