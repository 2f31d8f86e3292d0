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
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from micro.config import MODEL_SECTIONS, Config
from micro.home import Home

log = logging.getLogger("micro.validation")

WRITER_SUFFIX = ".validator"


def run_name(config: Config) -> str:
    """The trainer's TensorBoard run name for `config`: run-{model/features section hash}."""
    return f"run-{config.section_hash(*MODEL_SECTIONS)}"


def run_folder(home: Home, config: Config) -> Path:
    """monitoring/tensorboard/run-{hash}: where the trainer of `config` writes its scalars."""
    return home.monitoring / "tensorboard" / run_name(config)


def curve_scalars(report: dict[str, Any]) -> dict[str, float | None]:
    """The learning-curve figures of one scored report, by tag (None where undefined)."""
    prefix = report["split"]
    metrics = report.get("metrics") or {}
    bootstrap = report.get("bootstrap") or {}
    baselines = report.get("baselines") or {}
    actions = (report.get("evaluation") or {}).get("actions") or {}
    figures = {
        "expectancy_pips": metrics.get("expectancy_pips"),
        "expectancy_p05": (bootstrap.get("expectancy_pips") or {}).get("p5"),
        "sqn": metrics.get("sqn"),
        "trades": metrics.get("trades"),
        "random_entry_percentile": (baselines.get("random_entry") or {}).get("agent_percentile"),
        "fair_coin_percentile": (baselines.get("random_entry_fair_coin") or {}).get(
            "agent_percentile"
        ),
        "buy_share": actions.get("BUY"),
        "sell_share": actions.get("SELL"),
    }
    return {f"{prefix}/{name}": _finite(value) for name, value in figures.items()}


def checkpoint_walltime(report: dict[str, Any]) -> float:
    """Unix seconds the scored checkpoint was written (sidecar `created_at`), else the report's."""
    sidecar = (report.get("checkpoint") or {}).get("sidecar") or {}
    created = sidecar.get("created_at")
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created).timestamp()
        except ValueError:
            pass
    return float(report["created_unix"])


class LearningCurve:
    """Writes each scored report's figures as TensorBoard scalars; never stops the validator."""

    def __init__(self, home: Home, config: Config) -> None:
        self.folder = run_folder(home, config)
        self.writer: Any = None
        self.disabled = False

    def write(self, report: dict[str, Any]) -> dict[str, float]:
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


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
