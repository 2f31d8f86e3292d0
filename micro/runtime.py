"""What every command receives: the home, the effective config, and how to set up logging."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from micro.config import Config
from micro.home import Home
from micro.logs import setup_logging

# Where each volume's owner writes its rotating log file.
LOG_FILES = {
    "data": Path("data/logs/data.log"),
    "train": Path("monitoring/trainer/trainer.log"),
    "validation": Path("validation/logs/validator.log"),
    "live": Path("live/logs/live.log"),
    "monitoring": Path("monitoring/logs/micro.log"),
}


@dataclass(frozen=True)
class Context:
    home: Home
    config: Config
    args: argparse.Namespace
    verbose: bool = False

    def start_logging(self, owner: str, console: bool = True) -> None:
        """Console + the rotating log file of the volume `owner` writes."""
        setup_logging(self.home.root / LOG_FILES[owner], verbose=self.verbose, console=console)
