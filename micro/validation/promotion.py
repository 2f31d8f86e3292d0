"""Promotion: the validator is the only writer of best.pth, and only a checkpoint that earns it.

A checkpoint must show evidence of skill, the first time too. Every gate is applied and kept
in the report (`promotion.gates`, each with its figure and bound); the first that fails is the
reason given:

1. `split`: the report is of the validation split (the test split never promotes anything);
2. `promotable`: a numbered checkpoint in the home's checkpoints/ (never latest.pth, best.pth or
   a file elsewhere);
3. `data_fingerprint`: the checkpoint records the data it was trained on (and scoring it
   checked that data is the store's);
4. `min_trades`: at least `validation.min_trades` trades;
5. `max_drawdown_pct`: max drawdown within `validation.max_drawdown_pct` of the account;
6. `min_expectancy_p5_pips`: the bootstrap's 5th-percentile expectancy above
   `validation.min_expectancy_p5_pips` (default 0: it makes money at the 95% level);
7. `min_random_entry_percentile`: at or above `validation.min_random_entry_percentile` (95)
   against random-entry traders with the agent's own sides (timing skill, not a side bet);
8. `min_dsr`: the Deflated Sharpe Ratio at or above `validation.min_dsr` (0.95), deflated over
   every checkpoint scored on the same data with the effective number of independent trials,
   recomputed now under the lock (`micro.validation.selection`);
9. `beats_best`: its score (`validation.promotion_score`, default the bootstrap SQN's 25th
   percentile) strictly above the current best's. A best made with another model/features
   config, or scored on other data (another validation fingerprint), is not comparable: it is
   replaced by a candidate that passes every other gate, and the reason names what differs.

On promotion, in this order, each file written atomically: `checkpoints/best.pth` (the very
bytes scored, checked against the sidecar's sha256), `checkpoints/best.json` (the source's
sidecar, so the trainer knows which episode is best and never prunes it), then
`validation/best_metrics.json` (its `test` empty), then a line in `validation/events.jsonl`.
The report is written last, so a trainer that prunes scored checkpoints cannot delete the source
before it is copied. The new best is then scored once on the test split (`record_test`): the
figures go beside the validation ones into best_metrics.json and the validation report, and a
large drop from validation to test is flagged. Deciding and promoting hold an exclusive lock,
so `micro validate CKPT` run beside the watcher cannot interleave with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from micro import atomic
from micro.config import Config, ValidationConfig
from micro.data.fingerprint import differences, same_data
from micro.home import Home
from micro.validation.report import OK, utc_now
from micro.validation.selection import selection, trials_on_same_data
from micro.volumes import (
    BEST,
    PROMOTION_LOCK,
    BestMetrics,
    BestOnTest,
    GateResult,
    best_checkpoint,
    best_metrics_path,
    report_path,
    reports_folder,
    sidecar_path,
    validator_events_path,
)

log = logging.getLogger("micro.validation")

SCORE_NAMES = ("sqn_p25", "sqn", "expectancy_p25", "car25")
UNKNOWN_SHA = "0" * 64  # names the report of a file whose bytes could not be read


@dataclass(frozen=True)
class Decision:
    """Whether a scored checkpoint becomes best.pth, and why (one line a trader can read)."""

    promoted: bool
    reason: str
    score_name: str
    score: float | None
    best_score: float | None = None
    best_episode: int | None = None
    gates: tuple[GateResult, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gates"] = [g.to_dict() for g in self.gates]
        return out


def scores(report: Mapping[str, Any]) -> dict[str, float | None]:
    """Every candidate score of a full report, by `validation.promotion_score` name."""
    boot = report["bootstrap"]
    return {
        "sqn_p25": boot["sqn"]["p25"],
        "sqn": report["metrics"]["sqn"],
        "expectancy_p25": boot["expectancy_pips"]["p25"],
        "car25": report["safe_f"]["car25"],
    }


def candidate(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the gates read of a full report (its `selection` computed: see `conclude`)."""
    sidecar = report["checkpoint"].get("sidecar") or {}
    random_entry = (report.get("baselines") or {}).get("random_entry") or {}
    chosen = report.get("selection") or {}
    return {
        "episode": report["episode"],
        "split": report["split"],
        "promotable": bool(report["checkpoint"]["promotable"]),
        "bound": isinstance(sidecar.get("data_fingerprint"), dict),
        "trades": report["metrics"]["trades"],
        "max_drawdown_pct": report["metrics"]["max_drawdown_pct"],
        "expectancy_p5": report["bootstrap"]["expectancy_pips"].get("p5"),
        "random_entry_percentile": random_entry.get("agent_percentile"),
        "dsr": chosen.get("dsr"),
        "trials": chosen.get("trials"),
        "effective_trials": chosen.get("effective_trials"),
        "scores": scores(report),
        "model_config_hash": sidecar.get("model_config_hash"),
        "data_fingerprint": report.get("data_fingerprint"),
    }


def gates(
    figures: Mapping[str, Any], best: Mapping[str, Any] | None, validation: ValidationConfig
) -> tuple[list[GateResult], str | None]:
    """Every gate applied to `figures` (see `candidate`), and why a current best is not comparable.

    `best` is the content of best_metrics.json (None: no current best).
    """
    v = validation
    out = [
        GateResult(
            "split",
            figures["split"],
            "validation",
            figures["split"] == "validation",
            "validation split"
            if figures["split"] == "validation"
            else f"the {figures['split']} split never promotes",
        ),
        GateResult(
            "promotable",
            figures["promotable"],
            True,
            figures["promotable"],
            "a numbered checkpoint in checkpoints/"
            if figures["promotable"]
            else "only numbered checkpoints in checkpoints/ are promoted (not latest/best)",
        ),
        GateResult(
            "data_fingerprint",
            figures["bound"],
            True,
            figures["bound"],
            "bound to the data it was trained on"
            if figures["bound"]
            else "the checkpoint carries no data fingerprint (made before micro recorded one)",
        ),
        _at_least("min_trades", "trades", figures["trades"], v.min_trades, ".0f"),
        _at_most(
            "max_drawdown_pct", "max drawdown %", figures["max_drawdown_pct"], v.max_drawdown_pct
        ),
        _above(
            "min_expectancy_p5_pips",
            "bootstrap 5th-percentile expectancy (pips)",
            figures["expectancy_p5"],
            v.min_expectancy_p5_pips,
        ),
        _at_least(
            "min_random_entry_percentile",
            "percentile against random entry with its own sides",
            figures["random_entry_percentile"],
            v.min_random_entry_percentile,
            ".1f",
        ),
        _at_least("min_dsr", "DSR", figures["dsr"], v.min_dsr, ".3f", _trials(figures)),
    ]
    name = v.promotion_score
    score = figures["scores"].get(name)
    superseded = None
    if best is not None and best.get("model_config_hash") != figures.get("model_config_hash"):
        superseded = "the best was made with another model/features config"
    elif best is not None and not same_data(
        best.get("data_fingerprint"), figures.get("data_fingerprint"), "validation"
    ):
        differ = differences(
            best.get("data_fingerprint"), figures.get("data_fingerprint") or {}, "validation",
            "best", "now",
        )  # fmt: skip
        superseded = f"the best was scored on other data ({'; '.join(differ)})"
    best_score, best_episode = _best_score(None if superseded else best, name)
    if score is None:
        beats = GateResult(
            "beats_best", None, best_score, False, f"{name} is undefined (no spread of outcomes)"
        )
    elif best_score is None:
        why = f"; {superseded}" if superseded else ""
        beats = GateResult(
            "beats_best", score, None, True, f"{name} {_fmt(score)}: no comparable best{why}"
        )
    else:
        passed = score > best_score
        beats = GateResult(
            "beats_best",
            score,
            best_score,
            passed,
            f"{name} {_fmt(score)} {'>' if passed else 'does not beat'} the best's "
            f"{_fmt(best_score)} (episode {best_episode})",
        )
    out.append(beats)
    return out, superseded


def decide(
    figures: Mapping[str, Any], best: Mapping[str, Any] | None, validation: ValidationConfig
) -> Decision:
    """Apply every gate to `figures` (see `candidate`) against the current `best`."""
    name = validation.promotion_score
    score = figures["scores"].get(name)
    applied, superseded = gates(figures, best, validation)
    best_score, best_episode = _best_score(None if superseded else best, name)
    failed = [g for g in applied if not g.passed]
    if failed:
        more = f" (and {len(failed) - 1} more gate(s) failed)" if len(failed) > 1 else ""
        reason = f"{failed[0].line}{more}"
        return Decision(False, reason, name, score, best_score, best_episode, tuple(applied))
    skill = [str(g.line) for g in applied if g.name in SKILL_GATES]
    reason = f"{'; '.join(skill)}; {applied[-1].line}"
    return Decision(True, reason, name, score, best_score, best_episode, tuple(applied))


SKILL_GATES = ("min_expectancy_p5_pips", "min_random_entry_percentile", "min_dsr")


def _trials(figures: Mapping[str, Any]) -> str:
    trials, effective = figures.get("trials"), figures.get("effective_trials")
    if trials is None:
        return ""
    return f" over {trials} trial(s), {_fmt(effective)} effective"


def _at_least(
    name: str, label: str, value: float | None, bound: float, spec: str = ".4g", tail: str = ""
) -> GateResult:
    passed = value is not None and value >= bound
    sign = "≥" if passed else "<"
    shown = "n/a" if value is None else format(value, spec)
    return GateResult(
        name, value, bound, passed, f"{label} {shown} {sign} validation.{name} {bound:g}{tail}"
    )


def _at_most(name: str, label: str, value: float | None, bound: float) -> GateResult:
    passed = value is not None and value <= bound
    sign = "≤" if passed else ">"
    return GateResult(
        name, value, bound, passed, f"{label} {_fmt(value)} {sign} validation.{name} {bound:g}"
    )


def _above(name: str, label: str, value: float | None, bound: float) -> GateResult:
    passed = value is not None and value > bound
    sign = ">" if passed else "≤"
    return GateResult(
        name, value, bound, passed, f"{label} {_fmt(value)} {sign} validation.{name} {bound:g}"
    )


def _best_score(best: Mapping[str, Any] | None, name: str) -> tuple[float | None, int | None]:
    if best is None:
        return None, None
    value = (best.get("scores") or {}).get(name)
    episode = best.get("episode")
    return (float(value) if isinstance(value, int | float) else None), (
        int(episode) if isinstance(episode, int) else None
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def current_best(home: Home) -> dict[str, Any] | None:
    """best_metrics.json as its record reads it, or None when it or best.pth is missing.

    A best_metrics.json of an unknown schema version raises SchemaError.
    """
    if not best_checkpoint(home).exists():
        return None
    best = atomic.read_json(best_metrics_path(home))
    return BestMetrics.from_dict(best).to_dict() if isinstance(best, dict) else None


@contextmanager
def promotion_lock(home: Home) -> Iterator[None]:
    """Exclusive lock over deciding and promoting (held by one validator process at a time)."""
    home.validation.mkdir(parents=True, exist_ok=True)
    with open(home.validation / PROMOTION_LOCK, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def content_sha(checkpoint: Mapping[str, Any]) -> str:
    """The sha256 of a report's checkpoint: its sidecar's, else of the file's bytes now."""
    sidecar = checkpoint.get("sidecar") or {}
    if isinstance(sidecar.get("sha256"), str):
        return str(sidecar["sha256"])
    try:
        return hashlib.sha256(Path(checkpoint["path"]).read_bytes()).hexdigest()
    except OSError:
        return UNKNOWN_SHA


def report_file(home: Home, report: Mapping[str, Any]) -> Path:
    """Where `report` is written: named by its split, episode, checkpoint file and sha256."""
    checkpoint = report["checkpoint"]
    return report_path(
        home, report["split"], report["episode"], checkpoint["file"], content_sha(checkpoint)
    )


def select(home: Home, config: Config, report: dict[str, Any], path: Path) -> None:
    """Add `selection` (DSR over the same-data trials, PBO) to a scored report; fix its DSR."""
    fingerprint = report.get("data_fingerprint")
    split = report["split"]
    if not isinstance(fingerprint, dict):
        report["selection"] = None
        return
    others = trials_on_same_data(reports_folder(home, split), fingerprint, split, exclude=path)
    chosen = selection(report, others, config.validation.pbo_blocks)
    report["selection"] = chosen
    report["sharpe"].update(
        dsr=chosen["dsr"],
        dsr_trials=chosen["trials"],
        dsr_effective_trials=chosen["effective_trials"],
        expected_max_sharpe_daily=chosen["expected_max_sharpe_daily"],
    )


def conclude(home: Home, config: Config, report: dict[str, Any]) -> Path:
    """Decide on a full ("ok") report, promote if it earns it, then write the report; its path."""
    if report["status"] != OK:
        raise ValueError("only a scored report can be concluded; use write_report")
    path = report_file(home, report)
    with promotion_lock(home):
        select(home, config, report, path)
        best = current_best(home)
        decision = decide(candidate(report), best, config.validation)
        if decision.promoted:
            decision = promote(home, report, decision, best, path)
        report["promotion"] = decision.to_dict()
        atomic.write_json(path, report)
        return path


def write_report(home: Home, report: dict[str, Any]) -> Path:
    """Write `report` atomically to validation[/test]/ under its name (`report_file`); its path."""
    path = report_file(home, report)
    atomic.write_json(path, report)
    return path


def promote(
    home: Home,
    report: dict[str, Any],
    decision: Decision,
    previous: Mapping[str, Any] | None,
    path: Path,
) -> Decision:
    """Copy the scored checkpoint to best.pth (+ best.json, best_metrics, event); the outcome.

    The copy is of the bytes whose sha256 the sidecar gives; a source deleted or changed since
    it was scored is not promoted (the decision says so) and nothing is written.
    """
    source = Path(report["checkpoint"]["path"])
    sidecar = report["checkpoint"].get("sidecar")
    try:
        blob = source.read_bytes()
    except OSError as exc:
        return _withdrawn(decision, f"{source.name} vanished before it could be copied ({exc})")
    if not sidecar or hashlib.sha256(blob).hexdigest() != sidecar.get("sha256"):
        return _withdrawn(decision, f"{source.name} changed since it was scored")
    promoted_at, promoted_unix = utc_now()
    best_path = best_checkpoint(home)
    atomic.write_bytes(best_path, blob)
    atomic.write_json(
        sidecar_path(best_path),
        {**sidecar, "file": BEST, "source_file": source.name, "promoted_at": promoted_at},
    )
    metrics, chosen = report["metrics"], report.get("selection") or {}
    figures = candidate(report)
    best = BestMetrics(
        episode=report["episode"],
        checkpoint=source.name,
        sha256=sidecar["sha256"],
        model_config_hash=sidecar.get("model_config_hash"),
        score_name=decision.score_name,
        score=decision.score,
        scores=scores(report),
        trades=metrics["trades"],
        expectancy_pips=metrics["expectancy_pips"],
        sqn=metrics["sqn"],
        max_drawdown_pct=metrics["max_drawdown_pct"],
        expectancy_p05=figures["expectancy_p5"],
        random_entry_percentile=figures["random_entry_percentile"],
        dsr=chosen.get("dsr"),
        effective_trials=chosen.get("effective_trials"),
        pbo=(chosen.get("pbo") or {}).get("pbo"),
        gates=decision.gates,
        data_fingerprint=report.get("data_fingerprint"),
        report=str(path),
        promoted_at=promoted_at,
        promoted_unix=promoted_unix,
        test=None,
    )
    atomic.write_json(best_metrics_path(home), best.to_dict())
    atomic.append_jsonl(
        validator_events_path(home),
        {
            "event": "promoted",
            "at": promoted_at,
            "unix": promoted_unix,
            "episode": report["episode"],
            "checkpoint": source.name,
            "score_name": decision.score_name,
            "score": decision.score,
            "previous_best_episode": (previous or {}).get("episode"),
            "previous_best_score": decision.best_score,
            "reason": decision.reason,
        },
    )
    log.info("promoted %s to best.pth: %s", source.name, decision.reason)
    return decision


def _withdrawn(decision: Decision, why: str) -> Decision:
    log.warning("not promoted: %s", why)
    return Decision(
        False,
        why,
        decision.score_name,
        decision.score,
        decision.best_score,
        decision.best_episode,
        decision.gates,
    )


# ---------------------------------------------------------------- the best on the test split


def untested_best(home: Home) -> tuple[int, Path] | None:
    """(episode, source checkpoint) of a best not yet scored on the test split, if any.

    The source must still hold the promoted bytes (the trainer never prunes it).
    """
    best = current_best(home)
    if best is None or best.get("test") is not None or not best.get("checkpoint"):
        return None
    source = home.checkpoints / str(best["checkpoint"])
    sidecar = atomic.read_json(sidecar_path(source))
    if not isinstance(sidecar, dict) or sidecar.get("sha256") != best.get("sha256"):
        return None
    return int(best["episode"]), source


def figures_on_test(
    test: Mapping[str, Any], validation: Mapping[str, Any], max_drop: float, path: Path | None
) -> BestOnTest:
    """The test report's figures beside the validation best's, the drop flagged (or a failure)."""
    at, _ = utc_now()
    if test.get("status") != OK:
        return BestOnTest(
            status=test.get("status"), error=test.get("error"), report=str(path), scored_at=at
        )
    m = test["metrics"]
    on_test, on_validation = m.get("expectancy_pips"), validation.get("expectancy_pips")
    drop = None
    if isinstance(on_test, int | float) and isinstance(on_validation, int | float):
        drop = 1.0 - on_test / on_validation if on_validation > 0 else None
    flagged = (on_test is None or on_test <= 0) or (drop is not None and drop > max_drop)
    if on_test is None:
        why = "no trades on the test split"
    elif flagged:
        why = (
            f"expectancy fell from {_fmt(on_validation)} pips on validation to {_fmt(on_test)} "
            f"on test (drop {_fmt(None if drop is None else 100 * drop)}%, "
            f"validation.max_test_drop {100 * max_drop:g}%)"
        )
    else:
        why = f"expectancy {_fmt(on_validation)} pips on validation, {_fmt(on_test)} on test"
    random_entry = (test.get("baselines") or {}).get("random_entry") or {}
    return BestOnTest(
        status=OK,
        trades=m.get("trades"),
        expectancy_pips=on_test,
        expectancy_p05=test["bootstrap"]["expectancy_pips"].get("p5"),
        sqn=m.get("sqn"),
        max_drawdown_pct=m.get("max_drawdown_pct"),
        sharpe=(test.get("sharpe") or {}).get("sharpe"),
        random_entry_percentile=random_entry.get("agent_percentile"),
        report=str(path),
        scored_at=at,
        drop=drop,
        flagged=flagged,
        why=why,
    )


def record_test(home: Home, config: Config, test: dict[str, Any]) -> BestOnTest | None:
    """Write the best's test-split report, and its figures into best_metrics and its report.

    `test` is a full or failure report of the best's source on the test split. Nothing is
    selected by it. Returns the figures recorded (None: best.pth changed meanwhile; the test
    report is still written).
    """
    test["promotion"] = {
        "promoted": False,
        "reason": "scored on the test split after its promotion; never used to select",
        "gates": [],
    }
    with promotion_lock(home):
        path = write_report(home, test)
        best = current_best(home)
        sha = content_sha(test["checkpoint"])
        if best is None or best.get("sha256") != sha:
            return None
        figures = figures_on_test(test, best, config.validation.max_test_drop, path)
        record = BestMetrics.from_dict({**best, "test": figures.to_dict()})
        atomic.write_json(best_metrics_path(home), record.to_dict())
        report_of_best = Path(str(best.get("report")))
        validation = atomic.read_json(report_of_best)
        if isinstance(validation, dict):
            validation["test"] = figures.to_dict()
            atomic.write_json(report_of_best, validation)
    if figures.flagged:
        log.warning("the new best's test result is flagged: %s", figures.why)
    record_event(
        home, "tested", episode=test["episode"], checkpoint=test["checkpoint"]["file"],
        report=str(path), status=figures.status, flagged=figures.flagged, why=figures.why,
    )  # fmt: skip
    return figures


def record_event(home: Home, event: str, **fields: Any) -> None:
    """Append one validator event (scored, failed, timeout, …) to validation/events.jsonl."""
    at, unix = utc_now()
    atomic.append_jsonl(
        validator_events_path(home), {"event": event, "at": at, "unix": unix, **fields}
    )
