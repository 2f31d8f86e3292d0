"""The trainer's side of checkpoints/: retention that respects the validator.

`latest.pth` is rewritten often; `ckpt_ep{N:07d}.pth` every `checkpoint_every_episodes` (names in
`micro.volumes`). Only the last `keep_checkpoints` numbered checkpoints are kept, but one is never
deleted while the validator has not scored it (no report named by its file and the sha256 its
sidecar gives, `micro.volumes.report_name`: a report of a hand-scored `latest.pth` of the same
episode does not count) nor when it is the source of `best.pth`. Every .pth has a JSON sidecar,
removed together with it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from micro import atomic
from micro.volumes import (
    BEST,
    LATEST,
    numbered_checkpoints,
    numbered_name,
    report_name,
    sidecar_path,
)

__all__ = ["LATEST", "best_source_episode", "is_scored", "numbered_name", "prune"]

log = logging.getLogger("micro.train")


def best_source_episode(folder: Path) -> int | None:
    """The episode of the checkpoint that best.pth was promoted from (its sidecar says)."""
    sidecar = atomic.read_json(sidecar_path(folder / BEST))
    if isinstance(sidecar, dict) and isinstance(sidecar.get("episode"), int):
        return int(sidecar["episode"])
    return None


def is_scored(path: Path, episode: int, validation: Path) -> bool:
    """Whether the validator wrote a report of exactly this checkpoint (its file and sha256)."""
    sidecar = atomic.read_json(sidecar_path(path))
    sha = sidecar.get("sha256") if isinstance(sidecar, dict) else None
    return isinstance(sha, str) and (validation / report_name(episode, path.name, sha)).exists()


def prune(checkpoints: Path, validation: Path, keep: int) -> list[Path]:
    """Delete numbered checkpoints beyond the newest `keep` that are scored and not best."""
    numbered = numbered_checkpoints(checkpoints)
    best = best_source_episode(checkpoints)
    removed = []
    for episode, path in numbered[: max(len(numbered) - keep, 0)]:
        if episode == best or not is_scored(path, episode, validation):
            continue
        for victim in (path, sidecar_path(path)):
            try:
                victim.unlink()
            except FileNotFoundError:
                pass
        removed.append(path)
        log.info("removed %s (scored by the validator, beyond the last %d)", path.name, keep)
    return removed
