"""Trainer monitoring: TensorBoard scalars, monitoring/trainer/status.json and metrics.jsonl.

The status file is a `micro.volumes.TrainerStatus` record; the dashboard, `micro health` and
`micro up` read it through the same record.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from micro import atomic
from micro.env.actions import ACTION_NAMES
from micro.volumes import METRICS, STATUS, TENSORBOARD, TRAINER, TrainerStatus

log = logging.getLogger("micro.train")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class EpisodeStats:
    """Rolling statistics of finished self-play episodes."""

    window: int = 200
    pips: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    trades: deque[int] = field(default_factory=lambda: deque(maxlen=200))
    wins: deque[int] = field(default_factory=lambda: deque(maxlen=200))
    actions: np.ndarray = field(default_factory=lambda: np.zeros(len(ACTION_NAMES), np.int64))

    def add(self, pips: float, trades: int, wins: int, action_counts: np.ndarray) -> None:
        self.pips.append(pips)
        self.trades.append(trades)
        self.wins.append(wins)
        self.actions += action_counts

    def summary(self) -> dict[str, float | None]:
        trades = sum(self.trades)
        return {
            "episodes": len(self.pips),
            "pips_per_episode": float(np.mean(self.pips)) if self.pips else None,
            "trades_per_episode": float(np.mean(self.trades)) if self.trades else None,
            "expectancy_pips": float(np.sum(self.pips) / trades) if trades else None,
            "win_rate": float(sum(self.wins) / trades) if trades else None,
        }

    def action_distribution(self) -> dict[str, float]:
        total = max(int(self.actions.sum()), 1)
        return {name: float(n / total) for name, n in zip(ACTION_NAMES, self.actions, strict=True)}


class TrainerMonitor:
    """Writes status.json (rewritten), metrics.jsonl (appended) and TensorBoard scalars."""

    def __init__(self, monitoring_dir: Path, run_name: str, tensorboard: bool = True) -> None:
        self.dir = monitoring_dir / TRAINER
        self.dir.mkdir(parents=True, exist_ok=True)
        self.status_path = self.dir / STATUS
        self.metrics_path = self.dir / METRICS
        self.started_at = utc_now()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(monitoring_dir / TENSORBOARD / run_name))
            except Exception as exc:  # TensorBoard is optional at run time, never fatal
                log.warning("TensorBoard disabled: %s", exc)

    def scalars(self, step: int, values: dict[str, float | None]) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            if value is not None and np.isfinite(value):
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def report(self, status: dict[str, Any], scalars: dict[str, float | None], step: int) -> None:
        """Rewrite status.json with the trainer's progress figures `status` (TrainerStatus
        fields), append `scalars` to metrics.jsonl and TensorBoard at `step`."""
        record = TrainerStatus.from_dict(
            {
                **status,
                "pid": os.getpid(),
                "started_at": self.started_at,
                "updated_at": utc_now(),
                "updated_unix": time.time(),
            }
        )
        atomic.write_json(self.status_path, record.to_dict())
        atomic.append_jsonl(self.metrics_path, {"time": record.updated_at, "step": step, **scalars})
        self.scalars(step, scalars)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
