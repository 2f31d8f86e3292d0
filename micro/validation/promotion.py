"""Promotion: the validator is the only writer of best.pth, and only a checkpoint that earns it.

Rules, in the order they are checked (the first that fails is the reason given):

1. the report is of the validation split (the test split never promotes anything);
2. the checkpoint is a numbered one in the home's checkpoints/ (never latest.pth, best.pth or a
   file elsewhere);
3. it made at least `validation.min_trades` trades;
4. its max drawdown is within `validation.max_drawdown_pct` of the account;
5. its score (`validation.promotion_score`, default the 25th percentile of the bootstrap SQN) is
   defined and strictly above the current best's, read from `validation/best_metrics.json`.
   There is no current best when best.pth or best_metrics.json is missing, or when the best was
   made with another model/features config (its weights cannot be loaded by this run anyway).

On promotion, in this order, each file written atomically: `checkpoints/best.pth` (the very
bytes scored, checked against the sidecar's sha256), `checkpoints/best.json` (the source's
sidecar, so the trainer knows which episode is best and never prunes it), then
`validation/best_metrics.json`, then a line in `validation/events.jsonl`. The report is written
last, so a trainer that prunes scored checkpoints cannot delete the source before it is copied.
Deciding and promoting hold an exclusive lock, so `micro validate CKPT` run beside the watcher
cannot interleave with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from micro import atomic
from micro.config import Config, ValidationConfig
from micro.home import Home
from micro.validation.report import OK, utc_now
from micro.volumes import (
    BEST,
    PROMOTION_LOCK,
    BestMetrics,
    best_checkpoint,
    best_metrics_path,
    report_path,
    sidecar_path,
    validator_events_path,
)

log = logging.getLogger("micro.validation")

SCORE_NAMES = ("sqn_p25", "sqn", "expectancy_p25", "car25")


@dataclass(frozen=True)
class Decision:
    """Whether a scored checkpoint becomes best.pth, and why (one line a trader can read)."""

    promoted: bool
    reason: str
    score_name: str
    score: float | None
    best_score: float | None = None
    best_episode: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """What the rules read of a full report: trades, drawdown %, scores, model config hash."""
    sidecar = report["checkpoint"].get("sidecar") or {}
    return {
        "episode": report["episode"],
        "split": report["split"],
        "promotable": bool(report["checkpoint"]["promotable"]),
        "trades": report["metrics"]["trades"],
        "max_drawdown_pct": report["metrics"]["max_drawdown_pct"],
        "scores": scores(report),
        "model_config_hash": sidecar.get("model_config_hash"),
    }


def decide(
    figures: Mapping[str, Any], best: Mapping[str, Any] | None, validation: ValidationConfig
) -> Decision:
    """Apply the promotion rules to `figures` (see `candidate`) against the current `best`.

    `best` is the content of best_metrics.json (None: no current best).
    """
    name = validation.promotion_score
    score = figures["scores"].get(name)

    def refuse(reason: str) -> Decision:
        return Decision(False, reason, name, score, *_best_score(best, name))

    if figures["split"] != "validation":
        return refuse(f"the {figures['split']} split never promotes")
    if not figures["promotable"]:
        return refuse("only numbered checkpoints in checkpoints/ are promoted (not latest/best)")
    if figures["trades"] < validation.min_trades:
        return refuse(
            f"{figures['trades']} trades, fewer than validation.min_trades {validation.min_trades}"
        )
    drawdown = figures["max_drawdown_pct"]
    if drawdown is None or drawdown > validation.max_drawdown_pct:
        return refuse(
            f"max drawdown {_fmt(drawdown)}% exceeds validation.max_drawdown_pct "
            f"{validation.max_drawdown_pct:g}%"
        )
    if score is None:
        return refuse(f"score {name} is undefined (no spread of trade outcomes)")
    if best is not None and best.get("model_config_hash") != figures.get("model_config_hash"):
        best = None  # a best of another model/features config: superseded, not comparable
    best_score, best_episode = _best_score(best, name)
    if best is not None and best_score is not None and not score > best_score:
        return Decision(
            False,
            f"{name} {_fmt(score)} does not beat the best's {_fmt(best_score)} "
            f"(episode {best_episode})",
            name,
            score,
            best_score,
            best_episode,
        )
    if best is None or best_score is None:
        reason = f"{name} {_fmt(score)}; first checkpoint to pass the gates"
    else:
        reason = f"{name} {_fmt(score)} > best's {_fmt(best_score)} (episode {best_episode})"
    return Decision(True, reason, name, score, best_score, best_episode)


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


def conclude(home: Home, config: Config, report: dict[str, Any]) -> Path:
    """Decide on a full ("ok") report, promote if it earns it, then write the report; its path."""
    if report["status"] != OK:
        raise ValueError("only a scored report can be concluded; use write_report")
    with promotion_lock(home):
        best = current_best(home)
        decision = decide(candidate(report), best, config.validation)
        if decision.promoted:
            decision = promote(home, report, decision, best)
        report["promotion"] = decision.to_dict()
        return write_report(home, report)


def write_report(home: Home, report: dict[str, Any]) -> Path:
    """Write `report` atomically to validation[/test]/validation_ep{N:07d}.json; its path."""
    path = report_path(home, report["split"], report["episode"])
    atomic.write_json(path, report)
    return path


def promote(
    home: Home, report: dict[str, Any], decision: Decision, previous: Mapping[str, Any] | None
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
    metrics = report["metrics"]
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
        report=str(report_path(home, report["split"], report["episode"])),
        promoted_at=promoted_at,
        promoted_unix=promoted_unix,
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
        False, why, decision.score_name, decision.score, decision.best_score, decision.best_episode
    )


def record_event(home: Home, event: str, **fields: Any) -> None:
    """Append one validator event (scored, failed, timeout, …) to validation/events.jsonl."""
    at, unix = utc_now()
    atomic.append_jsonl(
        validator_events_path(home), {"event": event, "at": at, "unix": unix, **fields}
    )
