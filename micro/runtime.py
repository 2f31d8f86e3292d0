"""What every command receives: the home, the effective config, and how to set up logging."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from micro.config import Config
from micro.home import Home
from micro.logs import setup_logging
from micro.volumes import LOG_FILES


@dataclass(frozen=True)
class Context:
    home: Home
    config: Config
    args: argparse.Namespace
    verbose: bool = False

    def start_logging(self, owner: str, console: bool = True) -> None:
        """Console + the rotating log file of the volume `owner` writes."""
        setup_logging(self.home.root / LOG_FILES[owner], verbose=self.verbose, console=console)
