"""The trainer's side of checkpoints/: names, listing, and retention that respects the validator.

`latest.pth` is rewritten often; `ckpt_ep{N:07d}.pth` every `checkpoint_every_episodes`. Only the
last `keep_checkpoints` numbered checkpoints are kept, but one is never deleted while the
validator has not scored it (no `validation/validation_ep{N:07d}.json` yet) nor when it is the
source of `best.pth`. Every .pth has a JSON sidecar, removed together with it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from micro import atomic

log = logging.getLogger("micro.train")

LATEST = "latest.pth"
BEST = "best.pth"
NUMBERED = re.compile(r"^ckpt_ep(\d{7,})\.pth$")


def numbered_name(episode: int) -> str:
    return f"ckpt_ep{episode:07d}.pth"


def report_name(episode: int) -> str:
    return f"validation_ep{episode:07d}.json"


def sidecar_path(pth: Path) -> Path:
    return pth.with_suffix(".json")


def numbered_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(episode, path) of every numbered checkpoint, oldest first."""
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = NUMBERED.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def best_source_episode(folder: Path) -> int | None:
    """The episode of the checkpoint that best.pth was promoted from (its sidecar says)."""
    sidecar = atomic.read_json(sidecar_path(folder / BEST))
    if isinstance(sidecar, dict) and isinstance(sidecar.get("episode"), int):
        return sidecar["episode"]
    return None


def prune(checkpoints: Path, validation: Path, keep: int) -> list[Path]:
    """Delete numbered checkpoints beyond the newest `keep` that are scored and not best."""
    numbered = numbered_checkpoints(checkpoints)
    best = best_source_episode(checkpoints)
    removed = []
    for episode, path in numbered[: max(len(numbered) - keep, 0)]:
        if episode == best or not (validation / report_name(episode)).exists():
            continue
        for victim in (path, sidecar_path(path)):
            try:
                victim.unlink()
            except FileNotFoundError:
                pass
        removed.append(path)
        log.info("removed %s (scored by the validator, beyond the last %d)", path.name, keep)
    return removed
