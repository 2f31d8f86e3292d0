"""`micro validate CHECKPOINT [--split validation|test]` and `micro validate --watch`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from micro.runtime import Context

SPLIT_CHOICES = ("validation", "test")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    validate = sub.add_parser(
        "validate",
        parents=[common],
        help="score a checkpoint on held-out sessions, or watch checkpoints/ as a service",
        description=(
            "Score CHECKPOINT with greedy decisions on the validation (or test) sessions: "
            "metrics, Monte Carlo bootstrap, safe-f/CAR25, Sharpe/PSR/DSR and baselines, "
            "written to validation/validation_ep{N:07d}_{file}_{sha256[:12]}.json (test: "
            "validation/test/). A numbered checkpoint that passes every promotion gate (skill "
            "at the 95% level, DSR over every checkpoint on the same data, and beating the "
            "best) becomes checkpoints/best.pth and is then scored once on the test split. "
            "--watch runs the validator service: every new numbered checkpoint is scored "
            "until stopped."
        ),
    )
    validate.add_argument(
        "checkpoint",
        nargs="?",
        metavar="CHECKPOINT",
        help="a .pth file (or its name in checkpoints/), e.g. checkpoints/ckpt_ep0000050.pth",
    )
    validate.add_argument(
        "--split",
        choices=SPLIT_CHOICES,
        default=None,
        help="sessions to score (default: validation.split); the test split never promotes",
    )
    validate.add_argument(
        "--watch", action="store_true", help="run the validator service until stopped"
    )
    validate.set_defaults(handler=run_validate)


def run_validate(ctx: Context) -> int:
    from micro.errors import UserError

    args = ctx.args
    split = args.split or ctx.config.validation.split
    if args.watch and args.checkpoint:
        raise UserError("micro validate: give either CHECKPOINT or --watch, not both")
    if args.watch:
        from micro.validation.watcher import watch

        ctx.start_logging("validation")
        return watch(ctx.home, ctx.config, split)
    if not args.checkpoint:
        raise UserError(
            "micro validate: give a CHECKPOINT (e.g. checkpoints/ckpt_ep0000050.pth) or --watch"
        )
    return validate_one(ctx, resolve_checkpoint(ctx, args.checkpoint), split)


def resolve_checkpoint(ctx: Context, given: str) -> Path:
    """The .pth meant by `given`: a path, or a name in the home's checkpoints/; a sidecar's .pth."""
    from micro.errors import CheckpointError

    path = Path(given).expanduser()
    if not path.exists() and not path.is_absolute():
        beside = ctx.home.checkpoints / path.name
        path = beside if beside.exists() else path
    if path.suffix == ".json":
        pth = path.with_suffix(".pth")
        if not pth.exists():
            raise CheckpointError(
                f"{path}: not a checkpoint (a .json file without a .pth beside it); give a "
                ".pth file such as checkpoints/ckpt_ep0000050.pth"
            )
        path = pth
    if path.is_dir():
        raise CheckpointError(
            f"{path}: is a folder; give a .pth file such as checkpoints/ckpt_ep0000050.pth"
        )
    return path


def validate_one(ctx: Context, checkpoint: Path, split: str) -> int:
    """Score one checkpoint, decide on promotion, write the report, print a short summary.

    A promoted checkpoint is then scored once on the test split, beside its validation figures.
    """
    from micro.errors import UserError
    from micro.validation.evaluate import simulations_for
    from micro.validation.html import write_html_logged
    from micro.validation.promotion import conclude, record_event, record_test
    from micro.validation.report import FAILED, failure_report, score_checkpoint, summary_lines

    ctx.start_logging("validation", console=False)
    config = ctx.config
    if config.validation.threads:
        import torch

        torch.set_num_threads(config.validation.threads)
    print(
        f"scoring {checkpoint} on the {split} split at {simulations_for(config)} simulations…",
        flush=True,
    )
    report = score_checkpoint(ctx.home, config, checkpoint, split)
    path = conclude(ctx.home, config, report)
    record_event(
        ctx.home,
        "scored",
        episode=report["episode"],
        checkpoint=report["checkpoint"]["file"],
        report=str(path),
        promoted=report["promotion"]["promoted"],
    )
    for line in summary_lines(report):
        print(line)
    print(f"report: {path}")
    page = write_html_logged(path)
    if page is not None:
        print(f"page: {page}")
    if report["promotion"]["promoted"]:
        print("scoring the new best once on the test split (never used to select)…", flush=True)
        try:
            test = score_checkpoint(ctx.home, config, checkpoint, "test")
        except UserError as exc:  # no test sessions, say: recorded, the promotion stands
            info = report["checkpoint"]
            test = failure_report(_info(info), "test", FAILED, str(exc), 0.0)
        figures = record_test(ctx.home, config, test)
        if figures is not None:
            flag = "FLAGGED: " if figures.flagged else ""
            print(f"  test split: {flag}{figures.why or figures.error}")
            print(f"test report: {figures.report}")
            write_html_logged(figures.report)
            write_html_logged(path)  # the validation page again, now with its test figures
    return 0


def _info(checkpoint: dict[str, Any]) -> Any:
    """The CheckpointInfo of a report's `checkpoint` block."""
    from micro.validation.report import CheckpointInfo

    return CheckpointInfo(
        path=Path(checkpoint["path"]),
        episode=int(checkpoint["episode"]),
        sidecar=checkpoint.get("sidecar"),
        learner_step=checkpoint.get("learner_step"),
        promotable=bool(checkpoint.get("promotable")),
    )
