"""Promotion rules on hand-made figures, and what a promotion writes (real files, a fake .pth)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from micro.config import Config, ValidationConfig
from micro.home import Home
from micro.train.store import best_source_episode
from micro.validation.promotion import (
    candidate,
    conclude,
    current_best,
    decide,
)
from micro.volumes import BEST_METRICS, EVENTS

RULES = ValidationConfig(min_trades=30, max_drawdown_pct=20.0, promotion_score="sqn_p25")


def figures(**changes: Any) -> dict[str, Any]:
    """A candidate that passes every gate unless `changes` says otherwise."""
    base = {
        "episode": 100,
        "split": "validation",
        "promotable": True,
        "trades": 40,
        "max_drawdown_pct": 10.0,
        "scores": {"sqn_p25": 1.5, "sqn": 2.0, "expectancy_p25": 0.4, "car25": 0.1},
        "model_config_hash": "abc",
    }
    base.update(changes)
    return base


def best(score: float | None, episode: int = 50, model_hash: str = "abc") -> dict[str, Any]:
    return {"episode": episode, "scores": {"sqn_p25": score}, "model_config_hash": model_hash}


def test_a_candidate_passing_every_gate_with_no_best_is_promoted() -> None:
    decision = decide(figures(), None, RULES)
    assert decision.promoted and decision.score == 1.5 and "first" in decision.reason


def test_fewer_than_min_trades_is_never_promoted() -> None:
    decision = decide(figures(trades=29), None, RULES)
    assert not decision.promoted
    assert "29 trades" in decision.reason and "min_trades" in decision.reason
    assert decide(figures(trades=30), None, RULES).promoted


def test_a_drawdown_beyond_the_limit_is_never_promoted() -> None:
    decision = decide(figures(max_drawdown_pct=20.5), None, RULES)
    assert not decision.promoted and "max_drawdown_pct" in decision.reason
    assert decide(figures(max_drawdown_pct=20.0), None, RULES).promoted


def test_the_score_must_be_strictly_above_the_current_best() -> None:
    assert decide(figures(), best(1.0), RULES).promoted
    equal = decide(figures(), best(1.5, episode=77), RULES)
    assert not equal.promoted and "episode 77" in equal.reason and equal.best_score == 1.5
    assert not decide(figures(), best(2.0), RULES).promoted


def test_the_configured_score_is_the_one_compared() -> None:
    rules = ValidationConfig(promotion_score="car25")
    current = {"episode": 50, "scores": {"sqn_p25": 9.0, "car25": 0.05}, "model_config_hash": "abc"}
    decision = decide(figures(), current, rules)
    assert decision.promoted and decision.score_name == "car25" and decision.best_score == 0.05


def test_an_undefined_score_is_never_promoted() -> None:
    scores = {"sqn_p25": None, "sqn": None, "expectancy_p25": 0.0, "car25": None}
    decision = decide(figures(scores=scores), None, RULES)
    assert not decision.promoted and "undefined" in decision.reason


def test_the_test_split_never_promotes_even_a_great_checkpoint() -> None:
    decision = decide(figures(split="test"), None, RULES)
    assert not decision.promoted and "test split" in decision.reason


def test_latest_or_best_copies_never_promote() -> None:
    decision = decide(figures(promotable=False), None, RULES)
    assert not decision.promoted and "numbered" in decision.reason


def test_a_best_of_another_model_config_is_superseded() -> None:
    assert decide(figures(), best(99.0, model_hash="other"), RULES).promoted


# ---------------------------------------------------------------- promotion writes real files


def fake_report(home: Home, episode: int, sqn_p25: float, content: bytes) -> dict[str, Any]:
    """A minimal full report about a fake numbered checkpoint holding `content`."""
    pth = home.checkpoints / f"ckpt_ep{episode:07d}.pth"
    pth.parent.mkdir(parents=True, exist_ok=True)
    pth.write_bytes(content)
    sidecar = {
        "format_version": 1,
        "file": pth.name,
        "episode": episode,
        "learner_step": 3,
        "model_config_hash": "abc",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size_bytes": len(content),
    }
    pth.with_suffix(".json").write_text(json.dumps(sidecar))
    return {
        "schema_version": 1,
        "status": "ok",
        "episode": episode,
        "split": "validation",
        "checkpoint": {"path": str(pth), "file": pth.name, "promotable": True, "sidecar": sidecar},
        "metrics": {
            "trades": 50,
            "max_drawdown_pct": 5.0,
            "sqn": 2.0,
            "expectancy_pips": 1.0,
        },
        "bootstrap": {"sqn": {"p25": sqn_p25}, "expectancy_pips": {"p25": 0.5}},
        "safe_f": {"car25": 0.1},
        "promotion": None,
    }


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def config() -> Config:
    return Config()


def test_promotion_copies_the_checkpoint_and_sidecar_then_metrics_then_an_event(
    home: Home,
) -> None:
    report = fake_report(home, 100, 1.5, b"weights-100")
    path = conclude(home, config(), report)
    assert (home.checkpoints / "best.pth").read_bytes() == b"weights-100"
    assert best_source_episode(home.checkpoints) == 100  # the trainer will not prune it
    metrics = json.loads((home.validation / BEST_METRICS).read_text())
    assert metrics["episode"] == 100 and metrics["score"] == 1.5
    assert metrics["scores"]["sqn_p25"] == 1.5
    events = [json.loads(line) for line in (home.validation / EVENTS).read_text().splitlines()]
    assert [e["event"] for e in events] == ["promoted"] and events[0]["episode"] == 100
    written = json.loads(path.read_text())
    assert path.name == "validation_ep0000100.json" and written["promotion"]["promoted"]


def test_a_weaker_checkpoint_leaves_best_alone_and_says_why(home: Home) -> None:
    conclude(home, config(), fake_report(home, 100, 1.5, b"weights-100"))
    path = conclude(home, config(), fake_report(home, 150, 1.0, b"weights-150"))
    assert (home.checkpoints / "best.pth").read_bytes() == b"weights-100"
    reason = json.loads(path.read_text())["promotion"]["reason"]
    assert "does not beat" in reason and "episode 100" in reason
    stronger = conclude(home, config(), fake_report(home, 200, 2.5, b"weights-200"))
    assert json.loads(stronger.read_text())["promotion"]["promoted"]
    assert (home.checkpoints / "best.pth").read_bytes() == b"weights-200"
    assert current_best(home)["episode"] == 200


def test_a_checkpoint_deleted_before_the_copy_is_not_promoted_and_nothing_is_written(
    home: Home,
) -> None:
    report = fake_report(home, 100, 1.5, b"weights-100")
    Path(report["checkpoint"]["path"]).unlink()
    path = conclude(home, config(), report)
    promotion = json.loads(path.read_text())["promotion"]
    assert not promotion["promoted"] and "vanished" in promotion["reason"]
    assert not (home.checkpoints / "best.pth").exists()
    assert not (home.validation / BEST_METRICS).exists()


def test_a_candidate_is_read_from_the_report_as_the_rules_need_it(home: Home) -> None:
    figures_ = candidate(fake_report(home, 100, 1.5, b"w"))
    assert figures_["trades"] == 50 and figures_["scores"]["sqn_p25"] == 1.5
    assert figures_["model_config_hash"] == "abc" and figures_["promotable"]


def test_without_best_pth_there_is_no_current_best(home: Home) -> None:
    conclude(home, config(), fake_report(home, 100, 1.5, b"weights-100"))
    assert current_best(home) is not None
    (home.checkpoints / "best.pth").unlink()
    assert current_best(home) is None
