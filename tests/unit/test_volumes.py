"""The shared files' records: round trips, a clear refusal of an unknown schema, foreign values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micro.errors import UserError
from micro.home import Home
from micro.volumes import (
    RECORDS,
    ActorStatus,
    BestMetrics,
    Connection,
    LastScored,
    LiveState,
    ReportSummary,
    SchemaError,
    ScoreCounts,
    ScoringNow,
    TrainerStatus,
    UpStatus,
    ValidatorStatus,
    checkpoint_episode,
    numbered_checkpoints,
    numbered_name,
    report_files,
    report_name,
    sidecar_path,
    status_path,
)

EXAMPLES = [
    TrainerStatus(
        pid=7,
        state="running",
        episodes=50,
        env_steps_per_s=1234.5,
        losses={"policy": 1.25, "value": None},
        actors=(ActorStatus(id=0, alive=True, pid=8, restarts=1, episodes=50),),
        extra={"a_figure_added_later": 3},
    ),
    ValidatorStatus(
        pid=9,
        state="scoring",
        current=ScoringNow("ckpt_ep0000050.pth", 50, "2027-01-01T00:00:00+00:00", 10),
        last_scored=LastScored(checkpoint="ckpt_ep0000000.pth", status="failed", error="corrupt"),
        counts=ScoreCounts(scored=2, failed=1),
    ),
    BestMetrics(episode=50, checkpoint="ckpt_ep0000050.pth", score=1.5, scores={"sqn": 2.0}),
    LiveState(
        broker="sim",
        position={"side": 1, "units": 1000},
        halts={"kill": "kill switch on"},
        connection=Connection(ok=False, last_error="poll: timeout"),
        updated_unix=1_800_000_000.0,
    ),
    UpStatus(pid=11, updated_unix=1_800_000_000.0),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_every_record_reads_back_what_it_wrote_through_json(record: object) -> None:
    text = json.dumps(record.to_dict())  # type: ignore[attr-defined]
    assert type(record).from_dict(json.loads(text)) == record  # type: ignore[attr-defined]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_an_unknown_schema_version_is_refused_with_one_line_naming_the_file(
    record: object,
) -> None:
    data = record.to_dict()  # type: ignore[attr-defined]
    key = "state_version" if isinstance(record, LiveState) else "schema_version"
    assert data[key] == 1
    data[key] = 2
    with pytest.raises(SchemaError) as refused:
        type(record).from_dict(data)  # type: ignore[attr-defined]
    message = str(refused.value)
    assert isinstance(refused.value, UserError) and "\n" not in message
    assert type(record).WHAT in message and "schema version 2" in message  # type: ignore[attr-defined]
    assert "reads version 1" in message


def test_a_file_from_before_the_version_stamp_reads_as_version_1() -> None:
    assert TrainerStatus.from_dict({"state": "running", "episodes": 8}).episodes == 8
    assert LiveState.from_dict({"broker": "sim"}).broker == "sim"


def test_foreign_values_read_as_none_never_as_an_exception() -> None:
    status = TrainerStatus.from_dict(
        {"episodes": "many", "losses": [1], "actors": "four", "recent": 7, "state": 3}
    )
    assert status.episodes is None and status.state is None
    assert status.losses == {} and status.actors == () and status.recent == {}
    validator = ValidatorStatus.from_dict({"counts": None, "current": "odd", "pending": True})
    assert validator.counts == ScoreCounts() and validator.current is None
    assert validator.pending is None  # a bool is not a count


def test_a_failed_checkpoint_is_recorded_without_the_figures_of_a_scored_one() -> None:
    failed = LastScored(checkpoint="x.pth", status="failed", error="corrupt").to_dict()
    assert failed["error"] == "corrupt" and "sqn" not in failed and "promoted" not in failed
    scored = LastScored(checkpoint="x.pth", status="ok", sqn=1.5, promoted=True).to_dict()
    assert scored["sqn"] == 1.5 and "error" not in scored


def test_a_report_summary_reads_the_figures_others_use_from_a_full_report() -> None:
    report = {
        "schema_version": 1,
        "episode": 50,
        "split": "validation",
        "status": "ok",
        "checkpoint": {"file": "ckpt_ep0000050.pth", "sidecar": {"created_at": "2027-01-01"}},
        "metrics": {"trades": 40, "sqn": 1.7, "max_drawdown_pct": 4.5},
        "bootstrap": {"sqn": {"p5": -0.2, "p95": 3.1}, "expectancy_pips": {"p5": 0.1}},
        "sharpe": {"sharpe_daily": 0.12},
        "baselines": {"random_entry": {"agent_percentile": 97.0}},
        "evaluation": {"actions": {"BUY": 0.03, "SELL": 0.05}},
        "promotion": {"promoted": True},
    }
    summary = ReportSummary.from_report(report)
    assert (summary.episode, summary.trades, summary.sqn_p95) == (50, 40, 3.1)
    assert summary.checkpoint_file == "ckpt_ep0000050.pth" and summary.sharpe_daily == 0.12
    assert summary.random_entry_percentile == 97.0 and summary.fair_coin_percentile is None
    assert summary.promoted is True and summary.sell_share == 0.05
    with pytest.raises(SchemaError):
        ReportSummary.from_report({**report, "schema_version": 2})


def test_numbered_files_are_named_and_found_by_one_pattern(tmp_path: Path) -> None:
    sha = "0123456789abcdef" * 4
    for episode in (100, 50):
        (tmp_path / numbered_name(episode)).write_bytes(b"w")
        (tmp_path / report_name(episode, numbered_name(episode), sha)).write_text("{}")
    (tmp_path / report_name(70, "latest.pth", sha)).write_text("{}")
    (tmp_path / "validation_ep0000020.json").write_text("{}")  # a report named before the hash
    (tmp_path / "latest.pth").write_bytes(b"w")
    assert numbered_name(50) == "ckpt_ep0000050.pth" and checkpoint_episode("latest.pth") is None
    assert [e for e, _ in numbered_checkpoints(tmp_path)] == [50, 100]
    assert [e for e, _ in report_files(tmp_path)] == [20, 50, 70, 100]
    assert sidecar_path(tmp_path / "best.pth") == tmp_path / "best.json"


def test_a_report_is_named_by_its_checkpoint_file_and_content_hash() -> None:
    sha = "0123456789abcdef" * 4
    numbered = report_name(50, "ckpt_ep0000050.pth", sha)
    assert numbered == "validation_ep0000050_ckpt_ep0000050_0123456789ab.json"
    assert report_name(50, "latest.pth", sha) == "validation_ep0000050_latest_0123456789ab.json"
    assert report_name(50, "latest.pth", "f" * 64) != report_name(50, "latest.pth", sha)
    assert report_name(5, "my run/a b.pth", sha) == "validation_ep0000005_a-b_0123456789ab.json"


def test_each_service_status_file_has_a_record(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert set(RECORDS) == {"trainer", "validator", "live"}
    assert status_path(home, "live") == tmp_path / "live" / "state.json"
    assert status_path(home, "trainer") == tmp_path / "monitoring" / "trainer" / "status.json"
