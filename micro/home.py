"""The runtime home: the root of the volumes data/ checkpoints/ validation/ live/ monitoring/."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

VOLUMES = ("data", "checkpoints", "validation", "live", "monitoring")


@dataclass(frozen=True)
class Home:
    """Paths of one micro home; `--home DIR` or MICRO_HOME chooses it, default the cwd."""

    root: Path

    @classmethod
    def resolve(cls, option: str | os.PathLike[str] | None = None) -> Home:
        chosen = option or os.environ.get("MICRO_HOME") or os.getcwd()
        return cls(Path(chosen).expanduser().resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def store(self) -> Path:
        """The market store: written only by `micro data …`."""
        return self.data / "market.duckdb"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def validation(self) -> Path:
        return self.root / "validation"

    @property
    def live(self) -> Path:
        return self.root / "live"

    @property
    def monitoring(self) -> Path:
        return self.root / "monitoring"

    def volume(self, name: str) -> Path:
        if name not in VOLUMES:
            raise ValueError(f"unknown volume {name!r}")
        return self.root / name
