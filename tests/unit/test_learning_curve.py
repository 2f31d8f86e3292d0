"""The validator's TensorBoard learning curve: figures by tag, the trainer's run folder, no NaN."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from micro.config import Config
from micro.home import Home
from micro.train.trainer import Trainer
from micro.validation.learning_curve import LearningCurve, checkpoint_walltime, curve_scalars
from micro.volumes import tensorboard_run as run_folder

CONFIG = Config()


def scored_report(episode: int, created_at: str, split: str = "validation") -> dict[str, Any]:
    """The parts of an "ok" validation report the curve reads."""
    return {
        "status": "ok",
        "episode": episode,
        "split": split,
        "created_unix": 1_800_000_000.0,
        "checkpoint": {"sidecar": {"episode": episode, "created_at": created_at}},
        "evaluation": {"actions": {"HOLD": 0.9, "BUY": 0.03, "SELL": 0.05, "CLOSE": 0.02}},
        "metrics": {"trades": 40, "expectancy_pips": 2.5 + episode / 100, "sqn": 1.7},
        "bootstrap": {"expectancy_pips": {"p5": -0.4, "p50": 2.4}},
        "baselines": {
            "random_entry": {"agent_percentile": 62.0},
            "random_entry_fair_coin": {"agent_percentile": 97.5},
        },
    }


def read_curve(folder: Path) -> EventAccumulator:
    (events,) = folder.glob("events.out.tfevents.*.validator")
    curve = EventAccumulator(str(events))
    curve.Reload()
    return curve


def test_the_curve_lands_in_the_trainers_run_folder(tmp_path: Path) -> None:
    trainer_run = Trainer._run_name(SimpleNamespace(config=CONFIG))  # the trainer's own naming
    assert run_folder(Home(tmp_path), CONFIG) == tmp_path / "monitoring/tensorboard" / trainer_run


def test_scored_checkpoints_are_points_at_their_episode_and_creation_time(tmp_path: Path) -> None:
    curve = LearningCurve(Home(tmp_path), CONFIG)
    later, earlier = "2026-03-01T12:30:00+00:00", "2026-03-01T12:00:00+00:00"
    curve.write(scored_report(100, later))  # the watcher scores the newest first
    curve.write(scored_report(50, earlier))
    curve.close()

    events = read_curve(run_folder(Home(tmp_path), CONFIG))
    points = sorted(events.Scalars("validation/expectancy_pips"), key=lambda e: e.step)
    assert [p.step for p in points] == [50, 100]
    assert [p.value for p in points] == pytest.approx([3.0, 3.5])
    assert [p.wall_time for p in points] == [
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp(),
        datetime(2026, 3, 1, 12, 30, tzinfo=UTC).timestamp(),
    ]
    (coin,) = [e for e in events.Scalars("validation/fair_coin_percentile") if e.step == 50]
    assert coin.value == pytest.approx(97.5)
    assert len(events.Tags()["scalars"]) == 8


def test_undefined_figures_are_left_out_never_written_as_nan() -> None:
    report = scored_report(50, "2026-03-01T12:00:00+00:00", split="test")
    report["metrics"].update(trades=0, expectancy_pips=None, sqn=float("nan"))
    report["bootstrap"]["expectancy_pips"]["p5"] = None
    report["baselines"]["random_entry"]["agent_percentile"] = None
    del report["baselines"]["random_entry_fair_coin"]  # a report from before that baseline

    scalars = curve_scalars(report)

    assert set(scalars) == {
        f"test/{t}"
        for t in (
            "expectancy_pips", "expectancy_p05", "sqn", "trades", "random_entry_percentile",
            "fair_coin_percentile", "buy_share", "sell_share",
        )
    }  # fmt: skip
    assert {tag for tag, v in scalars.items() if v is not None} == {
        "test/trades", "test/buy_share", "test/sell_share",
    }  # fmt: skip


def test_a_checkpoint_without_a_readable_creation_time_uses_the_reports() -> None:
    report = scored_report(50, "not a time")
    assert checkpoint_walltime(report) == 1_800_000_000.0
    report["checkpoint"]["sidecar"] = None
    assert checkpoint_walltime(report) == 1_800_000_000.0


def test_a_curve_that_cannot_be_written_is_disabled_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "monitoring").write_text("a file where the volume should be")
    curve = LearningCurve(Home(tmp_path), CONFIG)

    assert curve.write(scored_report(50, "2026-03-01T12:00:00+00:00")) == {}
    assert curve.write(scored_report(100, "2026-03-01T12:30:00+00:00")) == {}
    assert "learning curve disabled" in caplog.text
    curve.close()
