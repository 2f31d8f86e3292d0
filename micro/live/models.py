"""The model the trader decides with, and its hot reload from checkpoints/best.pth between bars.

The validator replaces best.pth (and then its sidecar) atomically. Between bars the trader reads
the sidecar: when its sha256 differs from the model in use it loads the new checkpoint; one that
is broken or incompatible with the running config is refused once per sha, with an event, and
the old model keeps trading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micro.config import Config
from micro.errors import CheckpointError
from micro.mcts.agent import Agent
from micro.model.checkpoint import load_checkpoint, read_sidecar


@dataclass(frozen=True)
class ModelInUse:
    """Which checkpoint the agent was built from."""

    path: str
    sha256: str | None
    episode: int
    learner_step: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "episode": self.episode,
            "learner_step": self.learner_step,
        }


class ModelSlot:
    """Holds the agent built from `path` and swaps it when the checkpoint changes."""

    def __init__(self, path: Path, config: Config) -> None:
        self.path = Path(path)
        self.config = config
        self.agent: Agent
        self.model: ModelInUse
        self._refused_sha: str | None = None
        if not self.path.is_file():
            raise CheckpointError(
                f"{self.path}: not found; the live trader trades the validator's best.pth "
                "(run `micro validate --watch` until it promotes one)"
            )
        self._load()

    def maybe_reload(self) -> dict[str, Any] | None:
        """Load a changed best.pth; the journal event (loaded or refused), or None if unchanged."""
        sidecar = read_sidecar(self.path)
        sha = sidecar.get("sha256") if sidecar else None
        if sha is None or sha == self.model.sha256 or sha == self._refused_sha:
            return None
        try:
            self._load()
        except CheckpointError as exc:
            self._refused_sha = sha
            return {"outcome": "refused", "sha256": sha, "reason": str(exc), **self._in_use()}
        return {"outcome": "loaded", **self._in_use()}

    def _load(self) -> None:
        loaded = load_checkpoint(self.path, self.config)
        # the validator's simulation count: live decides exactly as the checkpoint was scored
        simulations = self.config.validation.simulations or self.config.mcts.simulations
        self.agent = Agent(loaded.net, self.config.mcts, num_simulations=simulations)
        sha = loaded.sidecar.get("sha256") if loaded.sidecar else None
        self.model = ModelInUse(str(self.path), sha, loaded.episode, loaded.learner_step)
        self._refused_sha = None

    def _in_use(self) -> dict[str, Any]:
        return {"model": self.model.to_dict()}
