"""Promotion gates on hand-made figures, and what a promotion writes (real files, a fake .pth)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from micro.config import Config, ValidationConfig
from micro.home import Home
from micro.train.store import best_source_episode, is_scored
from micro.validation.promotion import (
    candidate,
    conclude,
    current_best,
    decide,
    record_test,
    untested_best,
)
from micro.volumes import BEST_METRICS, EVENTS, BestMetrics, report_name

RULES = ValidationConfig(min_trades=30, max_drawdown_pct=20.0, promotion_score="sqn_p25")
FINGERPRINT = {
    "instrument": "GBP_JPY",
    "splits": {"validation_start": "2022-01-24T09:03:00+00:00", "test_start": "x"},
    "split_candles": {"validation": {"bars": 10, "checksum": 1}},
    "costs": {"spread_pips": 4.0},
    "stop_loss_pips": 30.0,
    "simulations": 32,
}


def other_data(**changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(FINGERPRINT)
    changed.update(changes)
    return changed


def figures(**changes: Any) -> dict[str, Any]:
    """A candidate that passes every gate unless `changes` says otherwise."""
    base = {
        "episode": 100,
        "split": "validation",
        "promotable": True,
        "bound": True,
        "trades": 40,
        "max_drawdown_pct": 10.0,
        "expectancy_p5": 0.3,
        "random_entry_percentile": 97.0,
        "dsr": 0.97,
        "trials": 12,
        "effective_trials": 3.5,
        "scores": {"sqn_p25": 1.5, "sqn": 2.0, "expectancy_p25": 0.4, "car25": 0.1},
        "model_config_hash": "abc",
        "data_fingerprint": FINGERPRINT,
    }
    base.update(changes)
    return base


def best(
    score: float | None, episode: int = 50, model_hash: str = "abc", data: Any = FINGERPRINT
) -> dict[str, Any]:
    return {
        "episode": episode,
        "scores": {"sqn_p25": score},
        "model_config_hash": model_hash,
        "data_fingerprint": data,
    }


def gate(decision: Any, name: str) -> Any:
    (found,) = [g for g in decision.gates if g.name == name]
    return found


def test_a_candidate_passing_every_gate_with_no_best_is_promoted_saying_why() -> None:
    decision = decide(figures(), None, RULES)
    assert decision.promoted and decision.score == 1.5
    assert "DSR 0.970 ≥ validation.min_dsr 0.95 over 12 trial(s), 3.5 effective" in decision.reason
    assert "no comparable best" in decision.reason
    assert all(g.passed for g in decision.gates)


def test_a_losing_first_checkpoint_is_refused_although_there_is_no_best() -> None:
    # The issue's case: SQN p25 −2.3, enough trades, drawdown within limits, no current best.
    scores = {"sqn_p25": -2.3, "sqn": -1.0, "expectancy_p25": -1.2, "car25": None}
    decision = decide(figures(scores=scores, expectancy_p5=-2.0, dsr=0.02), None, RULES)
    assert not decision.promoted
    assert decision.reason.startswith("bootstrap 5th-percentile expectancy (pips) -2 ≤")
    assert "(and 1 more gate(s) failed)" in decision.reason


@pytest.mark.parametrize(
    ("changes", "name", "words"),
    [
        ({"trades": 29}, "min_trades", "trades 29 < validation.min_trades 30"),
        ({"max_drawdown_pct": 20.5}, "max_drawdown_pct", "max drawdown % 20.5 >"),
        ({"expectancy_p5": 0.0}, "min_expectancy_p5_pips", "0 ≤ validation.min_expectancy_p5"),
        ({"random_entry_percentile": 94.9}, "min_random_entry_percentile", "94.9 <"),
        ({"random_entry_percentile": None}, "min_random_entry_percentile", "n/a <"),
        ({"dsr": 0.949}, "min_dsr", "DSR 0.949 < validation.min_dsr 0.95"),
        ({"dsr": None}, "min_dsr", "DSR n/a <"),
        ({"bound": False}, "data_fingerprint", "carries no data fingerprint"),
        ({"split": "test"}, "split", "test split never promotes"),
        ({"promotable": False}, "promotable", "numbered"),
    ],
)
def test_each_gate_refuses_on_its_own_with_its_value_and_bound(
    changes: dict[str, Any], name: str, words: str
) -> None:
    decision = decide(figures(**changes), None, RULES)
    assert not decision.promoted and words in decision.reason
    assert not gate(decision, name).passed
    assert [g.name for g in decision.gates if not g.passed] == [name]


def test_every_gate_is_recorded_with_its_value_even_after_one_fails() -> None:
    decision = decide(figures(trades=3), None, RULES)
    assert [g.name for g in decision.gates] == [
        "split",
        "promotable",
        "data_fingerprint",
        "min_trades",
        "max_drawdown_pct",
        "min_expectancy_p5_pips",
        "min_random_entry_percentile",
        "min_dsr",
        "beats_best",
    ]
    assert gate(decision, "min_dsr").value == 0.97 and gate(decision, "min_dsr").threshold == 0.95
    json.dumps(decision.to_dict(), allow_nan=False)


def test_the_score_must_be_strictly_above_the_current_best() -> None:
    assert decide(figures(), best(1.0), RULES).promoted
    equal = decide(figures(), best(1.5, episode=77), RULES)
    assert not equal.promoted and "episode 77" in equal.reason and equal.best_score == 1.5
    assert not decide(figures(), best(2.0), RULES).promoted


def test_the_configured_score_is_the_one_compared() -> None:
    rules = ValidationConfig(promotion_score="car25")
    current = {**best(9.0), "scores": {"sqn_p25": 9.0, "car25": 0.05}}
    decision = decide(figures(), current, rules)
    assert decision.promoted and decision.score_name == "car25" and decision.best_score == 0.05


def test_an_undefined_score_is_never_promoted() -> None:
    scores = {"sqn_p25": None, "sqn": None, "expectancy_p25": 0.0, "car25": None}
    decision = decide(figures(scores=scores), None, RULES)
    assert not decision.promoted and "undefined" in decision.reason


def test_a_best_of_another_model_config_is_superseded() -> None:
    assert decide(figures(), best(99.0, model_hash="other"), RULES).promoted


def test_a_best_scored_on_other_data_is_not_compared_and_the_reason_names_what_differs() -> None:
    cheaper = other_data(costs={"spread_pips": 1.0})
    decision = decide(figures(), best(99.0, data=cheaper), RULES)
    assert decision.promoted and decision.best_score is None
    assert "scored on other data (costs: best spread_pips 1, now spread_pips 4)" in decision.reason
    assert not decide(figures(), best(99.0, data=FINGERPRINT), RULES).promoted
    assert decide(figures(), best(99.0, data=None), RULES).promoted  # a best of before the stamp


# ---------------------------------------------------------------- promotion writes real files


def fake_report(
    home: Home,
    episode: int,
    sqn_p25: float,
    content: bytes,
    pnl: list[float] | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A minimal full report about a fake numbered checkpoint holding `content`.

    It passes every gate: per-session P&L `pnl` (default: steady winners) makes its DSR.
    """
    fingerprint = FINGERPRINT if fingerprint is None else fingerprint
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
        "data_fingerprint": fingerprint,
    }
    pth.with_suffix(".json").write_text(json.dumps(sidecar))
    pnl = [5.0, 6.0, 4.0, 7.0, 5.5, 6.5, 4.5, 5.0, 6.0, 5.0] if pnl is None else pnl
    days = np.asarray(pnl)
    return {
        "schema_version": 1,
        "status": "ok",
        "episode": episode,
        "split": "validation",
        "checkpoint": {
            "path": str(pth),
            "file": pth.name,
            "episode": episode,
            "promotable": True,
            "sidecar": sidecar,
        },
        "sessions": {"count": len(pnl), "pnl_pips": pnl},
        "metrics": {"trades": 50, "max_drawdown_pct": 5.0, "sqn": 2.0, "expectancy_pips": 1.0},
        "bootstrap": {"sqn": {"p25": sqn_p25}, "expectancy_pips": {"p5": 0.2, "p25": 0.5}},
        "safe_f": {"car25": 0.1},
        "baselines": {"random_entry": {"agent_percentile": 99.0}},
        "sharpe": {  # one session a day
            "days": len(pnl),
            "sharpe_daily": float(days.mean() / days.std(ddof=1)),
            "daily_skewness": 0.0,
            "daily_kurtosis": 3.0,
            "dsr": None,
        },
        "data_fingerprint": fingerprint,
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
    assert metrics["scores"]["sqn_p25"] == 1.5 and metrics["test"] is None
    assert metrics["dsr"] > 0.95 and metrics["data_fingerprint"] == FINGERPRINT
    assert [g["name"] for g in metrics["gates"]][-1] == "beats_best"
    events = [json.loads(line) for line in (home.validation / EVENTS).read_text().splitlines()]
    assert [e["event"] for e in events] == ["promoted"] and events[0]["episode"] == 100
    written = json.loads(path.read_text())
    sha = hashlib.sha256(b"weights-100").hexdigest()
    assert path.name == report_name(100, "ckpt_ep0000100.pth", sha)
    assert path.name == f"validation_ep0000100_ckpt_ep0000100_{sha[:12]}.json"
    assert written["promotion"]["promoted"] and written["selection"]["trials"] == 1
    assert is_scored(home.checkpoints / "ckpt_ep0000100.pth", 100, home.validation)


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


def test_the_dsr_is_deflated_over_every_checkpoint_on_the_same_data_at_promotion_time(
    home: Home,
) -> None:
    rng = np.random.default_rng(1)
    first = json.loads(conclude(home, config(), fake_report(home, 10, 0.5, b"w10")).read_text())
    assert first["sharpe"]["dsr_trials"] == 1  # alone: DSR = PSR
    # 20 independent no-skill checkpoints on the same sessions, and 5 on other data
    for episode in range(20, 40):
        pnl = list(rng.normal(0.0, 5.0, 10))
        conclude(home, config(), fake_report(home, episode, -1.0, f"w{episode}".encode(), pnl))
    for episode in range(40, 45):
        pnl = list(rng.normal(0.0, 5.0, 10))
        report = fake_report(home, episode, -1.0, f"w{episode}".encode(), pnl, other_data())
        report["data_fingerprint"]["costs"] = {"spread_pips": 1.0}
        conclude(home, config(), report)
    again = fake_report(home, 50, 3.0, b"w50")
    later = json.loads(conclude(home, config(), again).read_text())
    chosen = later["selection"]
    assert chosen["trials"] == 22 and later["sharpe"]["dsr_trials"] == 22  # not the other 5
    assert 15 < chosen["effective_trials"] <= 22  # nearly independent
    assert later["sharpe"]["dsr"] < first["sharpe"]["dsr"]
    assert chosen["pbo"]["pbo"] is not None and chosen["pbo"]["combinations"] == 70


def test_correlated_checkpoints_count_as_fewer_independent_trials(home: Home) -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(0.0, 5.0, 10)
    for episode in range(20, 40):  # neighbours of one run: nearly the same session P&L
        pnl = list(base + rng.normal(0.0, 0.5, 10))
        conclude(home, config(), fake_report(home, episode, -1.0, f"w{episode}".encode(), pnl))
    chosen = json.loads(conclude(home, config(), fake_report(home, 50, 3.0, b"w")).read_text())
    assert chosen["selection"]["effective_trials"] < 5


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


def test_a_candidate_is_read_from_the_report_as_the_gates_need_it(home: Home) -> None:
    figures_ = candidate(fake_report(home, 100, 1.5, b"w"))
    assert figures_["trades"] == 50 and figures_["scores"]["sqn_p25"] == 1.5
    assert figures_["model_config_hash"] == "abc" and figures_["promotable"]
    assert figures_["bound"] and figures_["expectancy_p5"] == 0.2
    assert figures_["random_entry_percentile"] == 99.0


def test_without_best_pth_there_is_no_current_best(home: Home) -> None:
    conclude(home, config(), fake_report(home, 100, 1.5, b"weights-100"))
    assert current_best(home) is not None
    (home.checkpoints / "best.pth").unlink()
    assert current_best(home) is None


def test_the_new_best_is_scored_on_test_beside_validation_and_a_large_drop_is_flagged(
    home: Home,
) -> None:
    validation = conclude(home, config(), fake_report(home, 100, 1.5, b"weights-100"))
    assert untested_best(home) == (100, home.checkpoints / "ckpt_ep0000100.pth")
    test = fake_report(home, 100, 0.1, b"weights-100")
    test.update(split="test", data_fingerprint=None)
    test["metrics"]["expectancy_pips"] = 0.3  # 1.0 on validation: a 70 % drop
    figures_ = record_test(home, config(), test)
    assert figures_ is not None and figures_.flagged and figures_.drop == pytest.approx(0.7)
    assert "fell from 1 pips on validation to 0.3 on test" in str(figures_.why)
    metrics = BestMetrics.from_dict(json.loads((home.validation / BEST_METRICS).read_text()))
    assert metrics.test is not None and metrics.test.expectancy_pips == 0.3
    assert metrics.expectancy_pips == 1.0  # validation beside it
    assert json.loads(validation.read_text())["test"]["flagged"] is True
    test_report = json.loads(Path(str(figures_.report)).read_text())
    assert test_report["split"] == "test" and not test_report["promotion"]["promoted"]
    assert Path(str(figures_.report)).parent == home.validation / "test"
    assert untested_best(home) is None  # scored once


def test_a_small_drop_on_test_is_not_flagged(home: Home) -> None:
    conclude(home, config(), fake_report(home, 100, 1.5, b"weights-100"))
    test = fake_report(home, 100, 0.1, b"weights-100")
    test.update(split="test")
    test["metrics"]["expectancy_pips"] = 0.8
    figures_ = record_test(home, config(), test)
    assert figures_ is not None and not figures_.flagged
