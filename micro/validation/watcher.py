"""`micro validate --watch`: the validator service, scoring every checkpoint the trainer writes.

Every `validation.poll_seconds` it lists checkpoints/ and scores the numbered checkpoints that
have a sidecar and no report of their own bytes yet (reports are named by checkpoint file and
sha256, so a hand-scored `latest.pth` never hides one): the newest first, then (re-listing after
each) the older ones it missed. A best not yet scored on the test split goes before them all:
every promotion is followed at once by one scoring of the new best on the test split, whose
figures go beside the validation ones (`micro.validation.promotion.record_test`). Each is
scored in a child process (the `multiprocess` package, spawn start) so that a
run past `validation.checkpoint_time_limit_seconds` can be killed; the parent alone decides
promotion and writes files, so killing a child never leaves anything half-written.

A checkpoint can be anything: truncated, corrupt, incompatible, without a readable sidecar,
deleted while being read. Its problem goes into its report (`"status": "failed"` or
`"timeout"`, with `"error"`), so the trainer may prune it, and into `validation/status.json`;
watching goes on. A store that cannot be read (being re-prepared, say) is not the checkpoint's
fault: no report is written and the checkpoint is tried again at the next poll.

Each checkpoint scored "ok" also adds its figures (expectancy, bootstrap 5th percentile, SQN,
trades, both random-entry ranks, buy/sell shares) to TensorBoard at its episode, in the trainer's
run folder (`micro.validation.learning_curve`): the learning curve on held-out sessions.
Every report written also gets its HTML page beside it (`micro.validation.html`; the best's
validation page again once its test figures are in); a page that fails is logged, never fatal.

`validation/status.json` is rewritten at every change and at least every poll. SIGINT/SIGTERM
abandon the checkpoint being scored (the child is killed; it has no report, so it is scored
again next time), write a last status and exit 0. One watcher per home: a second one is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
import traceback
from pathlib import Path
from typing import IO, Any

from micro import atomic
from micro.alerts import Alerter
from micro.config import Config
from micro.errors import CheckpointError, DataError
from micro.home import Home
from micro.locks import hold_lock
from micro.model.checkpoint import read_sidecar
from micro.processes import die_with_parent
from micro.validation.html import write_html_logged
from micro.validation.learning_curve import LearningCurve
from micro.validation.promotion import (
    conclude,
    content_sha,
    current_best,
    record_event,
    record_test,
    untested_best,
    write_report,
)
from micro.validation.report import (
    FAILED,
    OK,
    TIMEOUT,
    CheckpointInfo,
    failure_report,
    is_promotable,
    utc_now,
)
from micro.volumes import (
    WATCH_LOCK,
    BestSummary,
    LastError,
    LastScored,
    ScoringNow,
    ValidatorStatus,
    numbered_checkpoints,
    report_name,
    reports_folder,
    sidecar_path,
    validator_status_path,
)

Outcome = tuple[str, Any, str | None]  # (kind, report or error, traceback)

log = logging.getLogger("micro.validation")

TICK_SECONDS = 0.2  # how often a wait looks at signals, the child and the clock
KILL_GRACE_SECONDS = 2.0
DATA_ERROR = "data"  # outcome kind of a store problem: retried, never a report
TEST_RETRY_SECONDS = 60.0  # a best the store cannot score on test now waits this long, not others


def pending(home: Home, split: str) -> list[tuple[int, Path]]:
    """(episode, path) of numbered checkpoints with a sidecar file and no report of their bytes,
    newest first (a broken sidecar: the bytes' own sha256 names the report)."""
    folder = reports_folder(home, split)
    found = []
    for episode, path in numbered_checkpoints(home.checkpoints):
        if not sidecar_path(path).exists():
            continue
        sha = content_sha({"path": str(path), "sidecar": read_sidecar(path)})
        if not (folder / report_name(episode, path.name, sha)).exists():
            found.append((episode, path))
    return sorted(found, reverse=True)


def check_store(home: Home, config: Config) -> None:
    """DataError (one line) unless the market store exists and is prepared for this config."""
    from micro.data.stamp import check_prepared

    check_prepared(home.store, config)


def score_in_child(
    home_root: str, config_plain: dict[str, Any], checkpoint: str, split: str, conn: Any
) -> None:
    """Entry point of the scoring process: sends (kind, report or error, traceback) and exits."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the watcher decides when scoring stops
    from micro.logs import setup_logging

    setup_logging(None, console=True)
    try:
        import torch

        from micro.config import config_from_dict
        from micro.validation.report import score_checkpoint

        config = config_from_dict(config_plain, source="validator")
        if config.validation.threads:
            torch.set_num_threads(config.validation.threads)
        report = score_checkpoint(Home(Path(home_root)), config, Path(checkpoint), split)
        message: tuple[str, Any, str | None] = (OK, report, None)
    except CheckpointError as exc:
        message = (FAILED, str(exc), None)
    except DataError as exc:
        message = (DATA_ERROR, str(exc), None)
    except Exception as exc:  # a checkpoint can break scoring in ways no one listed
        message = (FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    conn.send(message)
    conn.close()


class Watcher:
    """The service loop; `run` returns the exit status (0 when stopped by a signal)."""

    def __init__(self, home: Home, config: Config, split: str) -> None:
        self.home = home
        self.config = config
        self.split = split
        self.validation = config.validation
        self.stopping = False
        self.stop_reason = ""
        self.child: Any = None
        self.curve = LearningCurve(home, config)
        self.alerts = Alerter.from_env(config.alerts, "validator")  # promotions
        self.test_retry_at = 0.0  # monotonic s: when to try an untested best's test split again
        started_at, _ = utc_now()
        self.status = ValidatorStatus(
            pid=os.getpid(),
            state="starting",
            split=split,
            started_at=started_at,
            pending=0,
            poll_seconds=self.validation.poll_seconds,
            checkpoint_time_limit_seconds=self.validation.checkpoint_time_limit_seconds,
        )

    # ------------------------------------------------------------------ status

    def write_status(self, **changes: Any) -> None:
        """Apply `changes` (ValidatorStatus fields) and rewrite validation/status.json."""
        best = current_best(self.home)
        at, unix = utc_now()
        self.status = dataclasses.replace(
            self.status,
            **changes,
            best=None if best is None else BestSummary.from_dict(best),
            updated_at=at,
            updated_unix=unix,
        )
        atomic.write_json(validator_status_path(self.home), self.status.to_dict())

    def request_stop(self, reason: str) -> None:
        if not self.stopping:
            log.info("stopping: %s", reason)
        self.stopping = True
        self.stop_reason = reason

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        """Watch until SIGINT/SIGTERM; 0 on a clean stop."""
        previous = {
            s: signal.signal(s, lambda signum, _: self.request_stop(signal.Signals(signum).name))
            for s in (signal.SIGINT, signal.SIGTERM)
        }
        log.info(
            "validator watching %s every %g s (%s split, time limit %g s per checkpoint)",
            self.home.checkpoints,
            self.validation.poll_seconds,
            self.split,
            self.validation.checkpoint_time_limit_seconds,
        )
        try:
            self.write_status(state="idle")
            while not self.stopping:
                untested = untested_best(self.home) if self.split == "validation" else None
                if untested is not None and time.monotonic() >= self.test_retry_at:
                    if self.test_best(*untested):  # the store cannot now: score the others
                        self.test_retry_at = time.monotonic() + TEST_RETRY_SECONDS
                    continue
                todo = pending(self.home, self.split)
                if todo:
                    episode, path = todo[0]
                    self.write_status(pending=len(todo))
                    retry_later = self.score(episode, path)
                    if retry_later:
                        self.wait(self.validation.poll_seconds)
                else:
                    self.write_status(state="idle", current=None, pending=0)
                    self.wait(self.validation.poll_seconds)
        finally:
            self.kill_child()
            self.curve.close()
            self.alerts.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.write_status(state="stopped", current=None)
        log.info("validator stopped (%s)", self.stop_reason or "done")
        return 0

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early on a stop request."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(TICK_SECONDS, max(0.0, deadline - time.monotonic())))

    # ------------------------------------------------------------------ one checkpoint

    def score(self, episode: int, path: Path) -> bool:
        """Score one checkpoint and record the outcome; True when it must be retried later."""
        began = time.monotonic()
        outcome = self.run_child(episode, path, self.split)
        if outcome is None:
            return False
        return self.record(episode, path, outcome, time.monotonic() - began)

    def test_best(self, episode: int, path: Path) -> bool:
        """Score the new best's source once on the test split; True when to retry later."""
        began = time.monotonic()
        outcome = self.run_child(episode, path, "test")
        if outcome is None:
            return False
        kind, payload, trace = outcome
        if kind == DATA_ERROR:
            log.error("cannot score %s on the test split now: %s", path.name, payload)
            return True
        if kind == OK:
            test = payload
        else:
            if trace:
                log.error("scoring %s on the test split failed:\n%s", path.name, trace)
            test = failure_report(
                self.info(episode, path), "test", kind, str(payload), time.monotonic() - began
            )
        try:
            figures = record_test(self.home, self.config, test)
        except Exception:  # never let one report stop the service
            log.exception("recording the test report of %s failed", path.name)
            return True
        if figures is not None:
            log.info("best %s on the test split: %s", path.name, figures.why or figures.error)
        self.write_status(state="idle", current=None)
        if figures is not None:  # the pages (views) after the records readers wait on
            write_html_logged(figures.report)
            write_html_logged((current_best(self.home) or {}).get("report"))  # now with `test`
        return False

    def info(self, episode: int, path: Path) -> CheckpointInfo:
        """What a failure report says of the checkpoint at `path`."""
        sidecar = read_sidecar(path)
        return CheckpointInfo(
            path=path.resolve(),
            episode=episode,
            sidecar=sidecar,
            learner_step=(sidecar or {}).get("learner_step"),
            promotable=is_promotable(self.home, path),
        )

    def run_child(self, episode: int, path: Path, split: str) -> Outcome | None:
        """Score `path` on `split` in a child process; its outcome, None when abandoned."""
        import multiprocess

        limit = self.validation.checkpoint_time_limit_seconds
        began = time.monotonic()
        started_at, _ = utc_now()
        mp = multiprocess.get_context("spawn")
        receiver, sender = mp.Pipe(duplex=False)
        self.child = mp.Process(
            target=score_in_child,
            args=(
                str(self.home.root),
                self.config.to_dict(redact=False),
                str(path),
                split,
                sender,
            ),
            name=f"micro-validate-{episode}",
            daemon=True,
        )
        self.child.start()
        sender.close()  # the child holds the only sending end: EOF when it dies
        log.info("scoring %s on the %s split (pid %d)", path.name, split, self.child.pid)
        current = ScoringNow(path.name, episode, started_at, self.child.pid)
        self.write_status(state="scoring", current=current)
        outcome: Outcome | None = None
        last_status = time.monotonic()
        while outcome is None:
            if self.stopping:
                self.kill_child()
                receiver.close()
                log.info("abandoned %s; it will be scored at the next start", path.name)
                return None
            if receiver.poll(TICK_SECONDS):
                try:
                    outcome = receiver.recv()
                except (EOFError, OSError):
                    outcome = (FAILED, self._death(), None)
            elif not self.child.is_alive():
                outcome = (FAILED, self._death(), None) if not receiver.poll(0) else None
            elif time.monotonic() - began >= limit:
                self.kill_child()
                outcome = (
                    TIMEOUT,
                    f"still scoring after {limit:g} s (validation.checkpoint_time_limit_seconds);"
                    " the scoring process was killed",
                    None,
                )
            if time.monotonic() - last_status >= self.validation.poll_seconds:
                self.write_status()
                last_status = time.monotonic()
        receiver.close()
        self.reap_child()
        return outcome

    def _death(self) -> str:
        self.child.join(timeout=KILL_GRACE_SECONDS)
        return f"the scoring process died without a result (exit code {self.child.exitcode})"

    def record(
        self, episode: int, path: Path, outcome: tuple[str, Any, str | None], seconds: float
    ) -> bool:
        """Write the report of one outcome and update the status; True to retry later."""
        kind, payload, trace = outcome
        at, _ = utc_now()
        counts = self.status.counts
        if kind == DATA_ERROR:
            log.error("cannot score %s now: %s; retrying at the next poll", path.name, payload)
            self.write_status(state="idle", current=None, last_error=LastError(None, payload, at))
            return True
        if kind == OK:
            try:
                report_file = conclude(self.home, self.config, payload)
            except Exception as exc:  # never let one report stop the service
                log.exception("recording the report of %s failed", path.name)
                kind, payload = FAILED, f"recording its report failed ({type(exc).__name__}: {exc})"
        if kind == OK:
            promotion = payload["promotion"]
            metrics = payload["metrics"]
            counts = dataclasses.replace(
                counts,
                scored=counts.scored + 1,
                promoted=counts.promoted + int(promotion["promoted"]),
            )
            log.info(
                "scored %s: %d trades, SQN %s, %s: %s",
                path.name,
                metrics["trades"],
                metrics["sqn"],
                "promoted" if promotion["promoted"] else "not promoted",
                promotion["reason"],
            )
            record_event(
                self.home, "scored", episode=episode, checkpoint=path.name,
                report=str(report_file), promoted=promotion["promoted"],
            )  # fmt: skip
            if promotion["promoted"]:
                self.alerts.send(
                    "promotion",
                    f"promoted {path.name} to best.pth",
                    f"{metrics['trades']} trades, SQN {metrics['sqn']}, score "
                    f"{promotion['score']}: {promotion['reason']}",
                    key=f"promotion:{episode}",
                    level="success",
                )
            try:
                self.curve.write(payload)
            except Exception:  # the curve is a view; losing a point never stops the service
                log.exception("writing the TensorBoard learning curve of %s failed", path.name)
            last = LastScored(
                checkpoint=path.name,
                episode=episode,
                status=OK,
                at=at,
                seconds=seconds,
                report=str(report_file),
                trades=metrics["trades"],
                sqn=metrics["sqn"],
                score=promotion["score"],
                promoted=promotion["promoted"],
                reason=promotion["reason"],
            )
            self.write_status(state="idle", current=None, last_scored=last, counts=counts)
            write_html_logged(report_file)  # a view, after the records readers wait on
            return False
        if trace:
            log.error("scoring %s failed:\n%s", path.name, trace)
        else:
            log.error("%s %s: %s", path.name, kind, payload)
        report_file = write_report(
            self.home,
            failure_report(self.info(episode, path), self.split, kind, str(payload), seconds),
        )
        counts = dataclasses.replace(counts, **{kind: getattr(counts, kind) + 1})
        record_event(
            self.home, kind, episode=episode, checkpoint=path.name, error=str(payload),
            report=str(report_file),
        )  # fmt: skip
        last = LastScored(
            checkpoint=path.name,
            episode=episode,
            status=kind,
            at=at,
            seconds=seconds,
            report=str(report_file),
            error=str(payload),
        )
        error = LastError(path.name, str(payload), at)
        self.write_status(
            state="idle", current=None, last_scored=last, last_error=error, counts=counts
        )
        write_html_logged(report_file)
        return False

    def kill_child(self) -> None:
        """Stop the scoring process, if any: SIGTERM, then SIGKILL after a grace period."""
        child, self.child = self.child, None
        if child is None:
            return
        if child.is_alive():
            child.terminate()
            child.join(timeout=KILL_GRACE_SECONDS)
            if child.is_alive():
                child.kill()
        child.join(timeout=KILL_GRACE_SECONDS)

    def reap_child(self) -> None:
        """Wait for a child that has sent its result to exit (kill it if it lingers)."""
        child = self.child
        if child is not None:
            child.join(timeout=KILL_GRACE_SECONDS)
        self.kill_child()


def hold_watch_lock(home: Home) -> IO[str]:
    """An open file holding the home's exclusive watcher lock; UserError if another holds it."""
    return hold_lock(
        home.validation / WATCH_LOCK,
        f"{home.validation}: another `micro validate --watch` (pid {{pid}}) is watching this "
        "home; stop it first",
    )


def watch(home: Home, config: Config, split: str) -> int:
    """Run the validator service on `home` until stopped; the exit status."""
    check_store(home, config)
    lock = hold_watch_lock(home)
    try:
        return Watcher(home, config, split).run()
    finally:
        lock.close()
