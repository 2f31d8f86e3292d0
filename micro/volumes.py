"""The files the services share: every name and pattern, and the records other processes read.

One module owns the contract between the services (ARCHITECTURE.md, "File contracts"): where each
file lives in the volumes, how numbered files are named, and the typed records of the files one
service writes and another reads (trainer status, validator status, a report's summary, the best
checkpoint's metrics, the live trader's state, `micro up`'s status). Writers build a record and
write `to_dict()`; readers call `from_dict`, which refuses a schema version it does not know
(`SchemaError`, one line naming the file and both versions) and reads a field of the wrong type
as None, so a dashboard shows "–" for a foreign value instead of failing (`micro.records`). A
file written before the stamp existed carries no version and reads as version 1.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from micro.config import MODEL_SECTIONS, Config
from micro.home import Home
from micro.records import Record, check_schema, read_field
from micro.records import SchemaError as SchemaError  # readers catch it from here

# ---------------------------------------------------------------- checkpoints/

LATEST = "latest.pth"  # the trainer's newest weights (resume)
BEST = "best.pth"  # the validator's promoted checkpoint (the live trader trades it)
NUMBERED = re.compile(r"^ckpt_ep(\d{7,})\.pth$")  # the trainer's numbered checkpoints
SIDECAR_SUFFIX = ".json"  # ckpt_ep0000050.pth -> ckpt_ep0000050.json
TRAIN_LOCK = ".trainer.lock"  # one `micro train` writing a home's checkpoints


def numbered_name(episode: int) -> str:
    """`ckpt_ep{N:07d}.pth`: the numbered checkpoint of episode N."""
    return f"ckpt_ep{episode:07d}.pth"


def checkpoint_episode(path: Path | str) -> int | None:
    """N of `ckpt_ep{N:07d}.pth`, or None for another name."""
    match = NUMBERED.match(Path(path).name)
    return int(match.group(1)) if match else None


def sidecar_path(path: Path | str) -> Path:
    """The JSON sidecar of a checkpoint: `ckpt_ep0000050.pth` -> `ckpt_ep0000050.json`."""
    return Path(path).with_suffix(SIDECAR_SUFFIX)


def numbered_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(episode, path) of every numbered checkpoint in `folder`, oldest first."""
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            episode = checkpoint_episode(path)
            if episode is not None:
                found.append((episode, path))
    return sorted(found)


def latest_checkpoint(home: Home) -> Path:
    return home.checkpoints / LATEST


def best_checkpoint(home: Home) -> Path:
    return home.checkpoints / BEST


# ---------------------------------------------------------------- validation/

# one report per scored file: validation_ep{N:07d}_{checkpoint stem}_{sha256[:12]}.json
REPORT = re.compile(r"^validation_ep(\d{7,})(?:_(.+)_([0-9a-f]{12}))?\.json$")
REPORT_SPLITS = ("validation", "test")  # test-split reports live apart, in validation/test/
REPORT_SHA_CHARS = 12  # hex digits of the checkpoint's sha256 in its report's name
BEST_METRICS = "best_metrics.json"
EVENTS = "events.jsonl"
STATUS = "status.json"
WATCH_LOCK = ".watcher.lock"  # one `micro validate --watch` per home
PROMOTION_LOCK = ".promotion.lock"  # deciding and promoting, one process at a time


def report_name(episode: int, checkpoint_file: str, sha256: str) -> str:
    """`validation_ep{N:07d}_{checkpoint stem}_{sha256[:12]}.json`: the report of one file's bytes.

    Named by the checkpoint's file and content hash, not its episode alone, so a hand-scored
    `latest.pth` of episode N never takes the name of `ckpt_ep{N:07d}.pth`'s report (which the
    watcher looks for, and the trainer's retention counts as scored).
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(checkpoint_file).stem) or "checkpoint"
    return f"validation_ep{episode:07d}_{stem}_{sha256[:REPORT_SHA_CHARS]}.json"


def reports_folder(home: Home, split: str) -> Path:
    """Where reports of `split` go: validation/ (selection) or validation/test/ (never mixed)."""
    if split not in REPORT_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {REPORT_SPLITS}")
    return home.validation if split == "validation" else home.validation / "test"


def report_path(home: Home, split: str, episode: int, checkpoint_file: str, sha256: str) -> Path:
    """validation[/test]/validation_ep{N:07d}_{stem}_{sha12}.json."""
    return reports_folder(home, split) / report_name(episode, checkpoint_file, sha256)


def report_files(folder: Path) -> list[tuple[int, Path]]:
    """(episode, path) of every report in `folder`, lowest episode first ([] without a folder).

    Names of before the content hash (`validation_ep{N:07d}.json`) are listed too: readers show
    them; they carry no data fingerprint, so nothing compares a new checkpoint with them.
    """
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
    found = [(int(m.group(1)), folder / name) for name in names if (m := REPORT.match(name))]
    return sorted(found)


def best_metrics_path(home: Home) -> Path:
    return home.validation / BEST_METRICS


def validator_events_path(home: Home) -> Path:
    return home.validation / EVENTS


def validator_status_path(home: Home) -> Path:
    return home.validation / STATUS


# ---------------------------------------------------------------- live/

JOURNAL = "journal.jsonl"
LIVE_STATE = "state.json"
KILL = "KILL"  # present: the live trader flattens and halts entries
PAUSE = "PAUSE"  # present: no new entries; the position keeps its stop (`micro live pause`)
RESET_HALT = "RESET_HALT"  # present: the trader clears its drawdown halt once and removes it
LIVE_PAGE = "index.html"  # the live page, rewritten by the trader (`micro.live.page`)


def journal_path(home: Home) -> Path:
    return home.live / JOURNAL


def live_state_path(home: Home) -> Path:
    return home.live / LIVE_STATE


def kill_path(home: Home) -> Path:
    return home.live / KILL


def pause_path(home: Home) -> Path:
    return home.live / PAUSE


def reset_halt_path(home: Home) -> Path:
    return home.live / RESET_HALT


def live_page_path(home: Home) -> Path:
    return home.live / LIVE_PAGE


# ---------------------------------------------------------------- monitoring/

TRAINER = "trainer"  # monitoring/trainer/: status.json, metrics.jsonl, config.json
METRICS = "metrics.jsonl"
RUN_CONFIG = "config.json"  # the trainer's full effective config (secrets redacted)
TENSORBOARD = "tensorboard"


def trainer_folder(home: Home) -> Path:
    return home.monitoring / TRAINER


def trainer_status_path(home: Home) -> Path:
    return trainer_folder(home) / STATUS


def trainer_metrics_path(home: Home) -> Path:
    return trainer_folder(home) / METRICS


def trainer_lock_path(home: Home) -> Path:
    return home.checkpoints / TRAIN_LOCK


def trainer_config_path(home: Home) -> Path:
    return trainer_folder(home) / RUN_CONFIG


def tensorboard_run_name(config: Config) -> str:
    """run-{model/features config hash}: one TensorBoard run per trainable config."""
    return f"run-{config.section_hash(*MODEL_SECTIONS)}"


def tensorboard_run(home: Home, config: Config) -> Path:
    """monitoring/tensorboard/run-{hash}: the trainer's scalars and the validator's curve."""
    return home.monitoring / TENSORBOARD / tensorboard_run_name(config)


def up_folder(home: Home) -> Path:
    """monitoring/up/: `micro up`'s status.json and one log file per service."""
    return home.monitoring / "up"


def up_status_path(home: Home) -> Path:
    return up_folder(home) / STATUS


# Where each volume's owner writes its rotating log file.
LOG_FILES = {
    "data": Path("data/logs/data.log"),
    "train": Path("monitoring/trainer/trainer.log"),
    "validation": Path("validation/logs/validator.log"),
    "live": Path("live/logs/live.log"),
    "monitoring": Path("monitoring/logs/micro.log"),
}

SERVICES = ("trainer", "validator", "live")


def status_path(home: Home, service: str) -> Path:
    """Where `service` publishes the snapshot that tells whether it is up."""
    if service == "trainer":
        return trainer_status_path(home)
    if service == "validator":
        return validator_status_path(home)
    if service == "live":
        return live_state_path(home)
    raise ValueError(f"unknown service {service!r}; expected one of {SERVICES}")


# ---------------------------------------------------------------- trainer status


@dataclass(frozen=True)
class ActorStatus(Record):
    """One self-play actor process as the trainer last saw it."""

    id: int | None = None
    alive: bool | None = None
    pid: int | None = None
    restarts: int | None = None
    episodes: int | None = None


@dataclass(frozen=True)
class TrainerStatus(Record):
    """`monitoring/trainer/status.json`: the trainer's progress, rewritten every report.

    Counters are totals since the run began (resumes included); rates are per second over the
    last report interval. `extra` keeps any figure the trainer reports that this record does not
    name (written flat beside the others).
    """

    SCHEMA = 1
    WHAT = "monitoring/trainer/status.json"
    SERVICE = "trainer"
    EXTRA = True

    pid: int | None = None
    started_at: str | None = None  # ISO 8601 UTC
    updated_at: str | None = None  # ISO 8601 UTC
    updated_unix: float | None = None  # s UTC: what readers age the file by
    state: str | None = None  # "running", "stopped", …
    episodes: int | None = None
    learner_steps: int | None = None
    env_steps: int | None = None
    weight_version: int | None = None
    weight_lag: int | None = None  # weight versions the newest episode was played behind
    env_steps_per_s: float | None = None
    learner_steps_per_s: float | None = None
    learner_samples_per_s: float | None = None
    unroll_starts_per_position: float | None = None
    reanalysis_shift_pips: float | None = None  # mean |fresh − stored| bootstrap value (reanalyze)
    selfplay_waiting: bool | None = None  # self-play is ahead of the replay ratio
    buffer_positions: int | None = None
    losses: dict[str, float | None] = field(default_factory=dict)  # by term
    action_distribution: dict[str, float | None] = field(default_factory=dict)  # share by name
    recent: dict[str, float | None] = field(default_factory=dict)  # last episodes' P&L figures
    actors: tuple[ActorStatus, ...] = ()
    config_hash: str | None = None  # model/features config hash of the run
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- validator status


@dataclass(frozen=True)
class ScoringNow(Record):
    """The checkpoint the validator is scoring now."""

    checkpoint: str | None = None  # file name
    episode: int | None = None
    started_at: str | None = None  # ISO 8601 UTC
    child_pid: int | None = None  # the scoring process


@dataclass(frozen=True)
class ScoreCounts(Record):
    """Checkpoints the validator has recorded since it started, by outcome."""

    scored: int = 0
    failed: int = 0
    timeout: int = 0
    promoted: int = 0


@dataclass(frozen=True)
class LastScored(Record):
    """The last checkpoint the validator recorded: scored ("ok"), "failed" or "timeout"."""

    checkpoint: str | None = None
    episode: int | None = None
    status: str | None = None
    at: str | None = None  # ISO 8601 UTC
    seconds: float | None = None  # scoring took
    report: str | None = None  # path of its report
    trades: int | None = None  # "ok" only
    sqn: float | None = None  # "ok" only
    score: float | None = None  # "ok" only: the promotion score
    promoted: bool | None = None  # "ok" only
    reason: str | None = None  # "ok" only: the promotion decision's reason
    error: str | None = None  # "failed"/"timeout" only

    def to_dict(self) -> dict[str, Any]:
        """The fields that belong to its outcome (an "ok" has no error, a failure no score)."""
        scored_only = ("trades", "sqn", "score", "promoted", "reason")
        drop = ("error",) if self.status == "ok" else scored_only
        return {k: v for k, v in super().to_dict().items() if k not in drop}


@dataclass(frozen=True)
class LastError(Record):
    """The last problem the validator met (a checkpoint's, or the store's: checkpoint None)."""

    checkpoint: str | None = None
    error: str | None = None
    at: str | None = None  # ISO 8601 UTC


@dataclass(frozen=True)
class BestSummary(Record):
    """The current best checkpoint in one line of the validator's status."""

    episode: int | None = None
    score_name: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class ValidatorStatus(Record):
    """`validation/status.json`: the validator service, rewritten at every change and poll."""

    SCHEMA = 1
    WHAT = "validation/status.json"
    SERVICE = "validator"

    pid: int | None = None
    state: str | None = None  # "starting", "idle", "scoring", "stopped"
    split: str | None = None
    started_at: str | None = None  # ISO 8601 UTC
    current: ScoringNow | None = None
    last_scored: LastScored | None = None
    counts: ScoreCounts = field(default_factory=ScoreCounts)
    pending: int | None = None  # checkpoints waiting to be scored
    best: BestSummary | None = None
    last_error: LastError | None = None
    poll_seconds: float | None = None
    checkpoint_time_limit_seconds: float | None = None
    updated_at: str | None = None  # ISO 8601 UTC
    updated_unix: float | None = None  # s UTC


# ---------------------------------------------------------------- validation reports

REPORT_SCHEMA = 1  # `schema_version` of a validation report (README documents it)


@dataclass(frozen=True)
class GateResult(Record):
    """One promotion gate as the validator applied it: the figure, its bound, and the verdict."""

    name: str | None = None  # e.g. "min_dsr"
    value: Any = None  # the candidate's figure (a number, or a word)
    threshold: Any = None  # the bound it is held to (None: nothing to compare with)
    passed: bool | None = None
    line: str | None = None  # one line a trader reads, e.g. "DSR 0.97 ≥ validation.min_dsr 0.95"


@dataclass(frozen=True)
class BestOnTest(Record):
    """The best checkpoint scored once on the test split after its promotion (never selects)."""

    status: str | None = None  # "ok", "failed", "timeout"
    error: str | None = None
    trades: int | None = None
    expectancy_pips: float | None = None
    expectancy_p05: float | None = None
    sqn: float | None = None
    max_drawdown_pct: float | None = None
    sharpe: float | None = None  # annualised
    random_entry_percentile: float | None = None
    report: str | None = None  # path of the test report
    scored_at: str | None = None  # ISO 8601 UTC
    drop: float | None = None  # 1 − test expectancy / validation expectancy
    flagged: bool | None = None  # drop beyond validation.max_test_drop (or test expectancy ≤ 0)
    why: str | None = None  # the flag in one line


@dataclass(frozen=True)
class ReportSummary:
    """What other readers take from one validation report (the full report is README's table).

    Figures a report of status "failed"/"timeout" lacks, or a foreign value, read as None.
    """

    episode: int | None = None
    split: str | None = None
    status: str | None = None  # "ok", "failed", "timeout"
    error: str | None = None
    created_unix: float | None = None
    checkpoint_file: str | None = None
    checkpoint_created_at: str | None = None  # the sidecar's created_at (ISO 8601 UTC)
    trades: int | None = None
    expectancy_pips: float | None = None
    expectancy_p05: float | None = None  # 5th percentile of the bootstrap expectancy
    sqn: float | None = None
    sqn_p5: float | None = None  # bootstrap SQN band
    sqn_p95: float | None = None
    max_drawdown_pips: float | None = None
    max_drawdown_pct: float | None = None
    sharpe_daily: float | None = None  # the report's trial for DSR
    random_entry_percentile: float | None = None  # rank against random entry, agent's sides
    fair_coin_percentile: float | None = None  # rank against random entry, fair coin's sides
    buy_share: float | None = None  # share of greedy decisions that bought
    sell_share: float | None = None
    dsr: float | None = None  # over every checkpoint on the same data, at promotion time
    pbo: float | None = None  # probability of backtest overfitting among them
    promoted: bool | None = None
    reason: str | None = None  # the promotion decision in one line
    gates: tuple[GateResult, ...] = ()

    # where each figure sits in the report
    PLACES: ClassVar[dict[str, tuple[str, ...]]] = {
        "checkpoint_file": ("checkpoint", "file"),
        "checkpoint_created_at": ("checkpoint", "sidecar", "created_at"),
        "trades": ("metrics", "trades"),
        "expectancy_pips": ("metrics", "expectancy_pips"),
        "expectancy_p05": ("bootstrap", "expectancy_pips", "p5"),
        "sqn": ("metrics", "sqn"),
        "sqn_p5": ("bootstrap", "sqn", "p5"),
        "sqn_p95": ("bootstrap", "sqn", "p95"),
        "max_drawdown_pips": ("metrics", "max_drawdown_pips"),
        "max_drawdown_pct": ("metrics", "max_drawdown_pct"),
        "sharpe_daily": ("sharpe", "sharpe_daily"),
        "random_entry_percentile": ("baselines", "random_entry", "agent_percentile"),
        "fair_coin_percentile": ("baselines", "random_entry_fair_coin", "agent_percentile"),
        "buy_share": ("evaluation", "actions", "BUY"),
        "sell_share": ("evaluation", "actions", "SELL"),
        "dsr": ("sharpe", "dsr"),
        "pbo": ("selection", "pbo", "pbo"),
        "promoted": ("promotion", "promoted"),
        "reason": ("promotion", "reason"),
        "gates": ("promotion", "gates"),
    }

    @classmethod
    def from_report(cls, report: Mapping[str, Any], what: str = "validation report") -> Self:
        """The summary of a full report; SchemaError for a report of an unknown schema."""
        check_schema(report, what, REPORT_SCHEMA, "schema_version")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value: Any = report
            for key in cls.PLACES.get(f.name, (f.name,)):
                value = value.get(key) if isinstance(value, dict) else None
            values[f.name] = read_field(hints[f.name], value)
        return cls(**values)


@dataclass(frozen=True)
class BestMetrics(Record):
    """`validation/best_metrics.json`: the promoted checkpoint and the figures it won with."""

    SCHEMA = REPORT_SCHEMA  # written from a report, versioned with the reports
    WHAT = "validation/best_metrics.json"

    episode: int | None = None
    checkpoint: str | None = None  # the source checkpoint's file name
    sha256: str | None = None  # of best.pth
    model_config_hash: str | None = None
    score_name: str | None = None  # validation.promotion_score when it was promoted
    score: float | None = None
    scores: dict[str, float | None] = field(default_factory=dict)  # every candidate score
    trades: int | None = None
    expectancy_pips: float | None = None
    sqn: float | None = None
    max_drawdown_pct: float | None = None
    expectancy_p05: float | None = None  # bootstrap 5th percentile (pips per trade)
    random_entry_percentile: float | None = None  # rank against random entry, agent's sides
    dsr: float | None = None  # deflated over every checkpoint on the same data
    effective_trials: float | None = None  # the DSR's N̂
    pbo: float | None = None
    gates: tuple[GateResult, ...] = ()  # every gate it passed, with its value
    data_fingerprint: dict[str, Any] | None = None  # what it was scored on (validation)
    report: str | None = None  # path of its report
    promoted_at: str | None = None  # ISO 8601 UTC
    promoted_unix: float | None = None  # s UTC
    test: BestOnTest | None = None  # None until scored on the test split after promotion


# ---------------------------------------------------------------- live state


@dataclass(frozen=True)
class Connection(Record):
    """The live trader's link to its broker at the last write."""

    ok: bool | None = None  # no error since the last successful request
    last_error: str | None = None
    stream: dict[str, Any] | None = None  # the price stream's state (None: no stream)


@dataclass(frozen=True)
class LiveState(Record):
    """`live/state.json`: the live trader's snapshot, rewritten after every bar and while idle.

    The trader reads it back at start-up to resume its position, pending order and risk state.
    Its parts keep their owners' shapes: `position` is `micro.live.book.Position.to_dict()`,
    `pending_order` and `lost_order` a `PendingOrder`, `risk` a `RiskState.to_dict()`, `circuit`
    the breaker's snapshot, `model` the `ModelInUse`, `last_bar` a `Candle`, `accounting` the
    day's `micro.live.accounting.Ledger`.
    """

    SCHEMA = 1
    WHAT = "live/state.json"
    VERSION_KEY = "state_version"  # the name this file has carried its version under

    broker: str | None = None
    instrument: str | None = None
    position: dict[str, Any] | None = None
    pending_order: dict[str, Any] | None = None
    day_pnl_pips: float | None = None  # realised today + open
    risk: dict[str, Any] = field(default_factory=dict)
    halts: dict[str, str] = field(default_factory=dict)  # name -> why entries are halted
    killed: bool | None = None
    circuit: dict[str, Any] = field(default_factory=dict)
    connection: Connection = field(default_factory=Connection)
    market_open: bool | None = None
    model: dict[str, Any] | None = None
    last_bar: dict[str, Any] | None = None
    bars_processed: int | None = None
    trades: int | None = None
    updated_unix: float | None = None  # s UTC
    written_at: str | None = None  # ISO 8601 UTC
    lost_order: dict[str, Any] | None = None  # an order found not received: its id is fenced
    accounting: dict[str, Any] = field(default_factory=dict)  # the day's `Ledger` (broker-true)
    paused: bool | None = None  # live/PAUSE is present: no new entries


# ---------------------------------------------------------------- micro up


@dataclass(frozen=True)
class SupervisedService(Record):
    """One service as `micro up` runs it."""

    name: str | None = None  # "trainer", "validator", "live"
    state: str | None = None  # "running", "starting", "restarting", "waiting for best.pth"
    pid: int | None = None
    restarts: int | None = None


@dataclass(frozen=True)
class UpStatus(Record):
    """`monitoring/up/status.json`: what `micro up` runs, rewritten every half second."""

    SCHEMA = 1
    WHAT = "monitoring/up/status.json"
    SERVICE = "up"

    pid: int | None = None
    updated_unix: float | None = None  # s UTC
    services: tuple[SupervisedService, ...] = ()


RECORDS: dict[str, type[TrainerStatus] | type[ValidatorStatus] | type[LiveState]] = {
    "trainer": TrainerStatus,
    "validator": ValidatorStatus,
    "live": LiveState,
}
"""The record of each service's status file."""
