from __future__ import annotations

import hashlib
import json
from pathlib import Path

from micro.train.store import prune
from micro.volumes import numbered_checkpoints, numbered_name, report_name


def sha(episode: int) -> str:
    return hashlib.sha256(f"weights-{episode}".encode()).hexdigest()


def make_home(tmp_path: Path, episodes: list[int], scored: list[int], best: int | None):
    ckpts, reports = tmp_path / "checkpoints", tmp_path / "validation"
    ckpts.mkdir()
    reports.mkdir()
    for ep in episodes:
        (ckpts / numbered_name(ep)).write_bytes(f"weights-{ep}".encode())
        sidecar = {"episode": ep, "sha256": sha(ep)}
        (ckpts / numbered_name(ep)).with_suffix(".json").write_text(json.dumps(sidecar))
    for ep in scored:
        (reports / report_name(ep, numbered_name(ep), sha(ep))).write_text("{}")
    if best is not None:
        (ckpts / "best.pth").write_bytes(b"weights")
        (ckpts / "best.json").write_text(json.dumps({"episode": best}))
    return ckpts, reports


def test_keeps_the_newest_and_deletes_older_scored_ones_with_their_sidecars(tmp_path: Path):
    eps = [50, 100, 150, 200, 250, 300, 350]
    ckpts, reports = make_home(tmp_path, eps, scored=eps, best=None)
    removed = prune(ckpts, reports, keep=5)
    assert [p.name for p in removed] == [numbered_name(50), numbered_name(100)]
    assert [e for e, _ in numbered_checkpoints(ckpts)] == [150, 200, 250, 300, 350]
    assert not (ckpts / "ckpt_ep0000050.json").exists()


def test_never_deletes_an_unscored_checkpoint(tmp_path: Path):
    eps = [50, 100, 150, 200, 250, 300, 350]
    ckpts, reports = make_home(tmp_path, eps, scored=[100, 150, 200], best=None)
    prune(ckpts, reports, keep=5)
    assert [e for e, _ in numbered_checkpoints(ckpts)] == [50, 150, 200, 250, 300, 350]


def test_a_hand_scored_latest_of_the_same_episode_does_not_count_as_scored(tmp_path: Path):
    eps = [50, 100, 150, 200, 250, 300, 350]
    ckpts, reports = make_home(tmp_path, eps, scored=[100], best=None)
    # `micro validate checkpoints/latest.pth` at episode 50: other bytes, other name
    (reports / report_name(50, "latest.pth", sha(999))).write_text("{}")
    # a report of other bytes under the numbered name (the file was rewritten since)
    (reports / report_name(150, numbered_name(150), sha(151))).write_text("{}")
    removed = prune(ckpts, reports, keep=5)
    assert [p.name for p in removed] == [numbered_name(100)]


def test_never_deletes_the_source_of_best(tmp_path: Path):
    eps = [50, 100, 150, 200, 250, 300, 350]
    ckpts, reports = make_home(tmp_path, eps, scored=eps, best=50)
    prune(ckpts, reports, keep=5)
    assert [e for e, _ in numbered_checkpoints(ckpts)] == [50, 150, 200, 250, 300, 350]
    assert (ckpts / "best.pth").exists()
