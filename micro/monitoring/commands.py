"""`micro dash [--once] [--refresh SECONDS]` and `micro health SERVICE [--max-age SECONDS]`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from micro.runtime import Context
from micro.volumes import SERVICES


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `dash` and `health` to the `micro` command."""
    dash = sub.add_parser(
        "dash",
        parents=[common],
        help="terminal dashboard of the trainer, validator and live trader (reads their files)",
    )
    dash.add_argument(
        "--once", action="store_true", help="print one frame and exit (plain text when piped)"
    )
    dash.add_argument(
        "--refresh",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between frames (default: 1.0)",
    )
    dash.set_defaults(handler=run_dash)

    health = sub.add_parser(
        "health",
        parents=[common],
        help="exit 0 when SERVICE's status file is fresh, else 1 (Docker HEALTHCHECK)",
        description=(
            "Healthy: the service's status file is readable, written within the max age, and "
            "does not say it stopped. Default max age: 3 x the writer's interval, at least 30 s "
            "(trainer: train.report_every_seconds; validator: validation.poll_seconds; live: "
            "60 s bar + live.poll_seconds)."
        ),
    )
    health.add_argument("service", choices=SERVICES, metavar="SERVICE", help="|".join(SERVICES))
    health.add_argument(
        "--max-age",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="age in seconds of the oldest status file still healthy (default: per service, "
        "see above)",
    )
    health.set_defaults(handler=run_health)


def _positive_float(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def run_dash(ctx: Context) -> int:
    """One frame with --once, else the live view until Ctrl-C or SIGTERM (exit status 0)."""
    if ctx.args.once:
        from micro.monitoring.dashboard import print_once

        print_once(ctx.home, ctx.config, sys.stdout)
        return 0
    stop = threading.Event()
    with stop_on_signals(stop):  # first: a signal during the imports below is not lost
        from micro.monitoring.dashboard import run_dashboard

        run_dashboard(
            ctx.home, ctx.config, refresh_seconds=ctx.args.refresh, should_stop=stop.is_set
        )
    return 0


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` while inside; the previous handlers come back after.

    Explicit handlers, because a process started without a terminal (`cmd &` in a script, CI)
    inherits SIGINT as ignored, and Python then never raises KeyboardInterrupt.
    """
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_health(ctx: Context) -> int:
    """Print one line; 0 when healthy, 1 when not (Docker HEALTHCHECK semantics)."""
    from micro.monitoring.health import check, health_line

    result = check(ctx.home, ctx.config, ctx.args.service, max_age=ctx.args.max_age)
    print(health_line(result))
    return 0 if result.up else 1
