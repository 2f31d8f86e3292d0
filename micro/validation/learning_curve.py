"""The validator's learning curve in TensorBoard, beside the trainer's scalars.

For every checkpoint the validator scores with status "ok" it writes, under the tag prefix of the
split (`validation/…`, or `test/…` for a watcher of the test split):

    expectancy_pips          mean net pips per trade (`metrics.expectancy_pips`)
    expectancy_p05           5th percentile of the bootstrap expectancy (`bootstrap…p5`)
    sqn                      `metrics.sqn`
    trades                   `metrics.trades`
    random_entry_percentile  rank against random entry with the agent's sides (0–100)
    fair_coin_percentile     rank against random entry with a fair coin's sides (0–100)
    buy_share, sell_share    share of the greedy decisions that bought / sold (as the trainer's
                             `actions/BUY`, `actions/SELL` of self-play)

at global step = the checkpoint's episode and wall time = the checkpoint's `created_at` (its
sidecar; the report's time when it has none), into the trainer's run folder
`monitoring/tensorboard/run-{model/features config hash}`. The validator has a writer of its own
(an event file of its own, suffix `.validator`): one writer per file. The trainer's own scalars
are at its learner step, so read the two side by side on TensorBoard's "Wall" axis, or by
episode on the trainer's `progress/episodes`. A figure that does not exist (no trades: no
expectancy) is left out, never written as NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from micro.config import Config
from micro.home import Home
from micro.volumes import ReportSummary, tensorboard_run

log = logging.getLogger("micro.validation")

WRITER_SUFFIX = ".validator"


def curve_scalars(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The learning-curve figures of one scored report, by tag (None where undefined)."""
    summary = ReportSummary.from_report(report)
    figures = {
        "expectancy_pips": summary.expectancy_pips,
        "expectancy_p05": summary.expectancy_p05,
        "sqn": summary.sqn,
        "trades": None if summary.trades is None else float(summary.trades),
        "random_entry_percentile": summary.random_entry_percentile,
        "fair_coin_percentile": summary.fair_coin_percentile,
        "buy_share": summary.buy_share,
        "sell_share": summary.sell_share,
    }
    return {f"{summary.split}/{name}": value for name, value in figures.items()}


def checkpoint_walltime(report: Mapping[str, Any]) -> float:
    """Unix seconds the scored checkpoint was written (sidecar `created_at`), else the report's."""
    summary = ReportSummary.from_report(report)
    if summary.checkpoint_created_at is not None:
        try:
            return datetime.fromisoformat(summary.checkpoint_created_at).timestamp()
        except ValueError:
            pass
    if summary.created_unix is None:
        raise ValueError("the report has neither a checkpoint created_at nor a created_unix")
    return summary.created_unix


class LearningCurve:
    """Writes each scored report's figures as TensorBoard scalars; never stops the validator."""

    def __init__(self, home: Home, config: Config) -> None:
        self.folder = tensorboard_run(home, config)
        self.writer: Any = None
        self.disabled = False

    def write(self, report: Mapping[str, Any]) -> dict[str, float]:
        """Add the scalars of an "ok" report at its episode; the ones written, by tag."""
        writer = self._writer()
        if writer is None:
            return {}
        step, walltime = int(report["episode"]), checkpoint_walltime(report)
        written = {tag: v for tag, v in curve_scalars(report).items() if v is not None}
        for tag, value in written.items():
            writer.add_scalar(tag, value, global_step=step, walltime=walltime)
        writer.flush()
        return written

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _writer(self) -> Any:
        if self.writer is None and not self.disabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.folder.mkdir(parents=True, exist_ok=True)
                self.writer = SummaryWriter(log_dir=str(self.folder), filename_suffix=WRITER_SUFFIX)
            except Exception as exc:  # TensorBoard is optional at run time, never fatal
                log.warning("TensorBoard learning curve disabled: %s", exc)
                self.disabled = True
        return self.writer
