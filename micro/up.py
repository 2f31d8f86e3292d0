"""`micro up`: the whole system on one machine. Until the services exist it prepares the data."""

from __future__ import annotations

import argparse
import logging

from micro.runtime import Context

log = logging.getLogger("micro.up")

SERVICES_PENDING = (
    "trainer (micro train)",
    "validator (micro validate --watch)",
    "live trader (micro live)",
    "dashboard (micro dash)",
)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    up = sub.add_parser("up", parents=[common], help="prepare data and run the whole system")
    up.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop everything after this many seconds",
    )
    up.set_defaults(handler=run_up)


def run_up(ctx: Context) -> int:
    from micro.data.prepare import ensure_default_data

    ctx.start_logging("monitoring")
    ensure_default_data(ctx.home, ctx.config)
    log.info("not built yet: %s", ", ".join(SERVICES_PENDING))
    return 0
