from __future__ import annotations

import json
from pathlib import Path

from micro.train.store import prune
from micro.volumes import numbered_checkpoints, numbered_name, report_name


def make_home(tmp_path: Path, episodes: list[int], scored: list[int], best: int | None):
    ckpts, reports = tmp_path / "checkpoints", tmp_path / "validation"
    ckpts.mkdir()
    reports.mkdir()
    for ep in episodes:
        (ckpts / numbered_name(ep)).write_bytes(b"weights")
        (ckpts / numbered_name(ep)).with_suffix(".json").write_text(json.dumps({"episode": ep}))
    for ep in scored:
        (reports / report_name(ep)).write_text("{}")
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


def test_never_deletes_the_source_of_best(tmp_path: Path):
    eps = [50, 100, 150, 200, 250, 300, 350]
    ckpts, reports = make_home(tmp_path, eps, scored=eps, best=50)
    prune(ckpts, reports, keep=5)
    assert [e for e, _ in numbered_checkpoints(ckpts)] == [50, 150, 200, 250, 300, 350]
    assert (ckpts / "best.pth").exists()
