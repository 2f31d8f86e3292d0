"""`micro validate CHECKPOINT` as a user runs it: a real prepared store and checkpoints, the CLI."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from micro.config import load_config
from micro.data.fingerprint import read_fingerprint
from micro.data.market import load_market
from micro.home import Home
from micro.model.checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from micro.model.networks import StochasticMuZeroNet
from micro.train.store import best_source_episode, is_scored
from micro.validation.evaluate import evaluate, evaluation_starts
from micro.validation.watcher import pending
from tests.conftest import REPO, micro_env, run_micro
from tests.helpers import TINY_MODEL
from tests.skill import momentum_network

TINY = (
    TINY_MODEL
    + """
[mcts]
simulations = 2
[validation]
simulations = 2
bootstrap_runs = 100
random_baselines = 100
poll_seconds = 0.3
account_pips = 100000.0
min_trades = 5
"""
)


def micro_command(*args: str) -> list[str]:
    """argv of the real `micro ARGS` as a subprocess."""
    return [sys.executable, "-m", "micro.cli", *args]


def validate(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `micro validate ARGS` in `home` as a real subprocess."""
    return subprocess.run(
        micro_command("validate", *args),
        cwd=home,
        env=micro_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def make_checkpoint(
    home: Path, episode: int, name: str | None = None, net: torch.nn.Module | None = None
) -> Path:
    """Save a real tiny network (seeded by episode, or `net`) as checkpoints/ckpt_ep{N:07d}.pth,
    bound to the store's data as the trainer binds its checkpoints (when there is a store)."""
    config = load_config(home, environ={})
    torch.manual_seed(episode)
    if net is None:
        net = StochasticMuZeroNet(config.model, config.features.window)
    store = home / "data" / "market.duckdb"
    data = read_fingerprint(store, config, config.mcts.simulations) if store.exists() else None
    path = home / "checkpoints" / (name or f"ckpt_ep{episode:07d}.pth")
    save_checkpoint(
        path, net, config, episode=episode, learner_step=3 * episode, data_fingerprint=data
    )
    return path


def report_of(folder: Path, episode: int, file: str | None = None) -> Path:
    """The one report of `file` (default the numbered checkpoint) of `episode` in `folder`."""
    stem = Path(file or f"ckpt_ep{episode:07d}.pth").stem
    (path,) = folder.glob(f"validation_ep{episode:07d}_{stem}_*.json")
    return path


def strict_json(path: Path) -> Any:
    """The JSON in `path`, refusing NaN and ±Infinity (which are not JSON)."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{path} holds {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def documented_keys() -> list[str]:
    """The report keys README.md's "Validation reports" table documents (dotted for nesting)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Validation reports", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_.]+)` \|", section, flags=re.MULTILINE)


def lookup(report: dict[str, Any], dotted: str) -> Any:
    node: Any = report
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"report lacks {dotted}"
        node = node[part]
    return node


def prepare_home(home: Path) -> Path:
    """30 days of synthetic bars in `home`, prepared through the CLI, and the tiny config."""
    assert run_micro(home, "data", "synth", "--days", "30", "--seed", "3").returncode == 0
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(TINY)
    return home


SKILL_DAYS = 90  # enough validation days for a real edge to reach a DSR of 0.95


def prepare_skill_home(home: Path) -> Path:
    """90 days of synthetic trend bars, where a momentum trader has timing skill."""
    synth = run_micro(home, "data", "synth", "--days", str(SKILL_DAYS), "--seed", "3")
    assert synth.returncode == 0, synth.stderr
    assert run_micro(home, "data", "prepare").returncode == 0
    (home / "micro.toml").write_text(TINY)
    return home


def skill_checkpoint(home: Path, episode: int) -> Path:
    """checkpoints/ckpt_ep{N:07d}.pth holding the hand-made momentum trader (tests/skill.py)."""
    return make_checkpoint(home, episode, net=momentum_network(load_config(home, environ={})))


@pytest.fixture(scope="module")
def prepared_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_home(tmp_path_factory.mktemp("validate-template"))


@pytest.fixture
def vhome(prepared_template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(prepared_template, home)
    return home


def test_a_report_has_every_documented_key_is_strict_json_and_no_skill_is_never_promoted(
    vhome: Path,
) -> None:
    make_checkpoint(vhome, 50)
    result = validate(vhome, "checkpoints/ckpt_ep0000050.pth")
    assert result.returncode == 0, result.stderr
    report_file = report_of(vhome / "validation", 50)
    assert f"report: {report_file}" in result.stdout
    assert "SQN" in result.stdout and "trades" in result.stdout
    report = strict_json(report_file)
    keys = documented_keys()
    assert len(keys) > 30  # the table exists and is parsed
    for key in keys:
        lookup(report, key)
    assert report["status"] == "ok" and report["episode"] == 50 and report["split"] == "validation"
    market = load_market(vhome / "data" / "market.duckdb", load_config(vhome, environ={}))
    assert report["sessions"]["count"] == market.sessions("validation").size > 0
    assert report["evaluation"]["simulations"] == 2
    assert report["metrics"]["trades"] == report["bootstrap"]["trades"]
    assert report["config"]["model"]["hidden"] == 32
    assert len(report["sessions"]["pnl_pips"]) == report["sessions"]["count"]
    assert report["data_fingerprint"]["keys"]["validation"]
    # An untrained network: the skill gates refuse it, first time or not, and say why.
    decision = report["promotion"]
    assert not decision["promoted"], decision
    failed = [g["name"] for g in decision["gates"] if not g["passed"]]
    assert set(failed) & {"min_expectancy_p5_pips", "min_random_entry_percentile", "min_dsr"}
    assert f"not promoted: {decision['reason']}" in result.stdout
    assert not (vhome / "checkpoints" / "best.pth").exists()

    make_checkpoint(vhome, 100)
    assert validate(vhome, "ckpt_ep0000100.pth").returncode == 0  # a name in checkpoints/
    second = strict_json(report_of(vhome / "validation", 100))
    assert second["selection"]["checkpoints"] == 2  # both scored on the same data


def test_a_latest_copy_is_named_by_its_file_and_hash_never_promoted_and_hides_nothing(
    vhome: Path,
) -> None:
    numbered = make_checkpoint(vhome, 70)
    make_checkpoint(vhome, 71, name="latest.pth")  # the trainer's latest of the same episode
    latest = vhome / "checkpoints" / "latest.pth"
    save_checkpoint(
        latest,
        load_checkpoint(latest, load_config(vhome, environ={})).net,
        load_config(vhome, environ={}),
        episode=70,
        learner_step=1,
        data_fingerprint=read_sidecar(numbered)["data_fingerprint"],
    )
    result = validate(vhome, "checkpoints/latest.pth")
    assert result.returncode == 0, result.stderr
    report = strict_json(report_of(vhome / "validation", 70, "latest.pth"))
    assert report["checkpoint"]["file"] == "latest.pth" and not report["checkpoint"]["promotable"]
    assert not report["promotion"]["promoted"] and "numbered" in report["promotion"]["reason"]
    assert not (vhome / "checkpoints" / "best.pth").exists()
    # The numbered checkpoint of that episode is still waiting for the watcher, and the
    # trainer's retention does not count it as scored.
    assert pending(Home(vhome), "validation") == [(70, numbered)]
    assert not is_scored(numbered, 70, vhome / "validation")


def test_the_test_split_reports_apart_and_never_promotes(vhome: Path) -> None:
    make_checkpoint(vhome, 50)
    result = validate(vhome, "checkpoints/ckpt_ep0000050.pth", "--split", "test")
    assert result.returncode == 0, result.stderr
    report = strict_json(report_of(vhome / "validation" / "test", 50))
    assert report["split"] == "test" and report["sessions"]["count"] > 0
    assert not report["promotion"]["promoted"] and "test split" in report["promotion"]["reason"]
    assert not list((vhome / "validation").glob("validation_ep*.json"))
    assert not (vhome / "checkpoints" / "best.pth").exists()


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:4000])


def junk(path: Path) -> None:
    """Bytes torch cannot read, under a sidecar whose sha256 matches them."""
    blob = b"\x00not a torch file" * 100
    path.write_bytes(blob)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    sidecar.update(sha256=hashlib.sha256(blob).hexdigest(), size_bytes=len(blob))
    path.with_suffix(".json").write_text(json.dumps(sidecar))


@pytest.mark.parametrize(
    ("damage", "extra", "expected"),
    [
        (truncate, (), "truncated or corrupt"),
        (junk, (), "truncated or corrupt"),
        (None, ("--set", "model.hidden=48"), "model.hidden"),
    ],
    ids=["truncated", "corrupt", "incompatible"],
)
def test_a_broken_checkpoint_exits_2_with_one_clear_line(
    vhome: Path, damage: Any, extra: tuple[str, ...], expected: str
) -> None:
    path = make_checkpoint(vhome, 50)
    if damage is not None:
        damage(path)
    result = validate(vhome, str(path), *extra)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "ckpt_ep0000050" in lines[0]
    assert not list((vhome / "validation").glob("validation_ep*.json"))


def test_a_missing_checkpoint_or_no_argument_exits_2_with_one_line(vhome: Path) -> None:
    missing = validate(vhome, "checkpoints/ckpt_ep0009999.pth")
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    neither = validate(vhome)
    assert neither.returncode == 2 and "--watch" in neither.stderr


def test_an_unprepared_store_exits_2_saying_what_to_run(home: Path) -> None:
    (home / "micro.toml").write_text(TINY)
    path = make_checkpoint(home, 50)
    result = validate(home, str(path))
    assert result.returncode == 2 and "micro data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_greedy_evaluation_plays_every_session_to_its_end_reproducibly(vhome: Path) -> None:
    config = load_config(vhome, environ={})
    market = load_market(vhome / "data" / "market.duckdb", config)
    net = load_checkpoint(make_checkpoint(vhome, 50), config).net
    starts = evaluation_starts(market, "validation")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.validation.threads)  # as the validator runs it
    try:
        first = evaluate(net, market, config, starts)
        again = evaluate(net, market, config, starts)
    finally:
        torch.set_num_threads(threads)
    assert first.decisions == starts.size * (config.data.session_bars - 1)
    assert int(first.action_counts.sum()) == first.decisions
    assert set(np.unique(first.trades["session"])) <= set(starts.tolist())
    assert np.array_equal(first.trades, again.trades)
    capped = evaluation_starts(market, "validation", max_sessions=3)
    assert capped.size == 3 and capped[0] == starts[0] and capped[-1] == starts[-1]


@pytest.fixture(scope="module")
def skill_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_skill_home(tmp_path_factory.mktemp("skill-template"))


def test_a_checkpoint_with_skill_is_promoted_then_scored_once_on_the_test_split(
    skill_template: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(skill_template, home)
    skill_checkpoint(home, 50)
    result = validate(home, "checkpoints/ckpt_ep0000050.pth")
    assert result.returncode == 0, result.stderr
    report = strict_json(report_of(home / "validation", 50))
    decision = report["promotion"]
    assert decision["promoted"], decision["reason"]
    assert all(g["passed"] for g in decision["gates"])
    assert f"promoted to best.pth: {decision['reason']}" in result.stdout
    assert best_source_episode(home / "checkpoints") == 50
    # At once scored on the test split, beside validation in best_metrics and the report.
    assert "test split:" in result.stdout
    best = strict_json(home / "validation" / "best_metrics.json")
    assert best["test"]["status"] == "ok" and best["test"]["trades"] > 0
    assert best["test"]["report"] == str(report_of(home / "validation" / "test", 50))
    assert strict_json(report_of(home / "validation", 50))["test"] == best["test"]
    assert best["expectancy_pips"] == report["metrics"]["expectancy_pips"]

    make_checkpoint(home, 100)  # an untrained network, scored on the same data
    assert validate(home, "checkpoints/ckpt_ep0000100.pth").returncode == 0
    refused = strict_json(report_of(home / "validation", 100))
    assert not refused["promotion"]["promoted"]
    assert refused["selection"]["checkpoints"] == 2
    assert best_source_episode(home / "checkpoints") == 50


def test_every_scoring_runs_at_the_validators_thread_count(
    vhome: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numba's parallel safe-f kernel resizes the OpenMP pool torch shares; the next scoring in
    the same process (the test split right after a promotion) must not inherit that size."""
    from micro.validation import report as report_module
    from micro.validation.sizing import PARALLEL_STEPS, _simulate

    config = load_config(vhome, environ={})
    checkpoint = make_checkpoint(vhome, 50)
    seen: list[int] = []

    def spying_evaluate(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(report_module, "evaluate", spying_evaluate)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        returns = np.random.default_rng(0).normal(0.001, 0.01, 200)
        _simulate(returns, 1.0, 2_000, PARALLEL_STEPS // 2_000, 1, 1.0)  # the parallel kernel
        # Whether numba's kernel resized the pool depends on the threading layer it picked in
        # this process; leave the pool at another size either way, as that kernel can.
        torch.set_num_threads(config.validation.threads + 1)
        report_module.score_checkpoint(Home(vhome), config, checkpoint, "validation")
    finally:
        torch.set_num_threads(threads)
    assert seen and set(seen) == {config.validation.threads}
