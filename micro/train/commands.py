"""`micro train`: run self-play actors and the learner until stopped or a limit is reached."""

from __future__ import annotations

import argparse

from micro.runtime import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    train = sub.add_parser(
        "train",
        parents=[common],
        help="self-play trainer (runs until stopped; resumes from checkpoints/latest.pth)",
    )
    train.add_argument(
        "--max-episodes",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N episodes of this run: a run resumed at episode 208 with "
        "--max-episodes 240 stops at 448 (default: run until stopped)",
    )
    train.add_argument(
        "--max-minutes",
        type=_positive_float,
        default=None,
        metavar="M",
        help="stop after M minutes (default: run until stopped)",
    )
    train.add_argument(
        "--actors",
        type=_positive_int,
        default=None,
        metavar="K",
        help="actor processes (default: train.actors)",
    )
    train.add_argument(
        "--envs-per-actor",
        type=_positive_int,
        default=None,
        metavar="B",
        help="environments per actor (default: train.envs_per_actor)",
    )
    train.add_argument(
        "--backend",
        default=None,
        metavar="local|ray",
        help="where self-play actors run: processes of this trainer (local) or Ray actors "
        "across a cluster (ray) (default: train.backend, local)",
    )
    train.add_argument(
        "--address",
        default=None,
        metavar="HOST:PORT|auto",
        help="Ray cluster to join with --backend ray: its head's HOST:PORT, or auto for the one "
        "`ray start --head` began on this machine (default: train.ray_address; empty: a "
        "private Ray on this machine)",
    )
    train.set_defaults(handler=run_train)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def run_train(ctx: Context) -> int:
    from micro import atomic
    from micro.config import replace
    from micro.errors import UserError
    from micro.locks import hold_lock
    from micro.train.trainer import Limits, Trainer
    from micro.volumes import trainer_config_path, trainer_lock_path

    ctx.start_logging("train")
    config = ctx.config
    overrides = {}
    if ctx.args.actors is not None:
        overrides["train.actors"] = ctx.args.actors
    if ctx.args.envs_per_actor is not None:
        overrides["train.envs_per_actor"] = ctx.args.envs_per_actor
    if ctx.args.backend is not None:
        overrides["train.backend"] = ctx.args.backend
    if ctx.args.address is not None:
        overrides["train.ray_address"] = ctx.args.address
    if overrides:
        config = replace(config, **overrides)
    if ctx.args.address is not None and config.train.backend != "ray":
        raise UserError("--address names a Ray cluster: add --backend ray (or drop --address)")
    if config.train.backend == "ray":  # a head that does not answer: refused before any write
        from micro.train.ray_backend import check_reachable

        check_reachable(config)
    lock = hold_lock(
        trainer_lock_path(ctx.home),
        f"{ctx.home.checkpoints}: another `micro train` (pid {{pid}}) is training in this home; "
        "stop it first (two trainers would write the same checkpoints; under `docker compose "
        "--profile ray`, add `--scale trainer=0`)",
    )
    limits = Limits(max_episodes=ctx.args.max_episodes, max_minutes=ctx.args.max_minutes)
    trainer: Trainer
    if config.train.backend == "ray":
        from micro.train.ray_backend import RayTrainer

        trainer = RayTrainer(ctx.home, config, limits)
    else:
        trainer = Trainer(ctx.home, config, limits)
    atomic.write_json(trainer_config_path(ctx.home), config.to_dict())
    try:
        return trainer.run()
    finally:
        lock.close()
