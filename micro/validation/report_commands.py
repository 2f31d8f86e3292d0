"""`micro report CHECKPOINT|REPORT`: the HTML page of a validation report, built on demand.

The validator writes each report's page itself (`micro.validation.html`); this command builds
(or rebuilds) one: from a report file, or from a checkpoint, whose report is found by the
checkpoint's file name and content hash (the report's own name) in `validation/` (or
`validation/test/` with `--split test`). A checkpoint without a report is not scored here: the
line says to run `micro validate` first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from micro.runtime import Context

SPLIT_CHOICES = ("validation", "test")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    report = sub.add_parser(
        "report",
        parents=[common],
        help="build the HTML page of a checkpoint's validation report",
        description=(
            "Write the HTML page of a validation report (charts of equity against the "
            "baselines, the Monte Carlo fan, trade results, the promotion gates, validation "
            "against test, planning gain, calibration and sessions with each trade's "
            "rationale), readable offline: beside the report, with plotly.js in one shared "
            "file beside it. Give the report (validation/validation_ep….json) or the "
            "checkpoint it scored."
        ),
    )
    report.add_argument(
        "target",
        metavar="CHECKPOINT|REPORT",
        help="a checkpoint .pth (or its name in checkpoints/) or a validation report .json",
    )
    report.add_argument(
        "--split",
        choices=SPLIT_CHOICES,
        default="validation",
        help="whose report of a CHECKPOINT to draw (default: validation); ignored for a REPORT",
    )
    report.add_argument(
        "--output",
        metavar="FILE",
        default=None,
        help="where to write the page, a .html path (default: beside the report, same name)",
    )
    report.set_defaults(handler=run_report)


def run_report(ctx: Context) -> int:
    from micro.errors import UserError
    from micro.validation.html import write_html

    args = ctx.args
    output = Path(args.output).expanduser() if args.output else None
    if output is not None and (output.is_dir() or output.suffix.lower() not in (".html", ".htm")):
        raise UserError(f"--output {output}: give a file path ending in .html")
    report = find_report(ctx, args.target, args.split)
    page = write_html(report, output)
    print(f"page: {page}")
    return 0


def find_report(ctx: Context, given: str, split: str) -> Path:
    """The report meant by `given`: a report file (a path, or a name in validation[/test]/), or
    the report of a checkpoint's bytes on `split`. UserError (one line) when there is none."""
    from micro.atomic import read_json
    from micro.errors import CheckpointError, UserError
    from micro.validation.commands import resolve_checkpoint
    from micro.validation.promotion import content_sha
    from micro.volumes import reports_folder, sidecar_path

    path = Path(given).expanduser()
    if path.suffix == ".json" and not path.with_suffix(".pth").exists():
        if not path.exists() and not path.is_absolute():
            for folder in (ctx.home.validation, ctx.home.validation / "test"):
                if (folder / path.name).is_file():
                    return folder / path.name
        return path  # read_report says what is wrong with it
    checkpoint = resolve_checkpoint(ctx, given)
    if not checkpoint.is_file():
        raise CheckpointError(
            f"{given}: no such checkpoint or report; give a .pth (e.g. "
            "checkpoints/ckpt_ep0000050.pth) or a report (validation/validation_ep….json)"
        )
    sidecar = read_json(sidecar_path(checkpoint))
    sidecar = sidecar if isinstance(sidecar, dict) else None
    sha = content_sha({"path": str(checkpoint), "sidecar": sidecar})
    folder = reports_folder(ctx.home, split)
    found = sorted(folder.glob(f"validation_ep*_{checkpoint.stem}_{sha[:12]}.json"))
    if not found:
        raise UserError(
            f"{checkpoint}: no {split} report of these bytes in {folder}; score it first "
            f"(`micro validate {given}{' --split test' if split == 'test' else ''}`)"
        )
    return found[-1]
