"""The `micro` command: `micro [--home DIR] [--set k=v] data|config|up …`.

Every command gets a `Context` (home, effective config). A `UserError` ends the command with
one line on stderr and exit status 2; nothing else is printed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from micro import __version__
from micro.errors import UserError
from micro.redaction import redact_text

# Command groups: each module defines `register(subparsers, common)`; heavy imports stay inside
# the handlers so `micro --help` is fast.
COMMAND_MODULES = (
    "micro.data.commands",
    "micro.config_commands",
    "micro.train.commands",
    "micro.validation.commands",
    "micro.validation.report_commands",
    "micro.live.commands",
    "micro.monitoring.commands",
    "micro.up",
)


def common_options() -> argparse.ArgumentParser:
    """--home, --set and -v accepted both before and after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="root of the runtime volumes (default: $MICRO_HOME or the current directory)",
    )
    common.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=argparse.SUPPRESS,
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="micro",
        parents=[common],
        description="micro: a Stochastic MuZero agent that trades FX on 1-minute bars.",
    )
    parser.add_argument("--version", action="version", version=f"micro {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except UserError as exc:
        print(f"micro: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("micro: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from micro.config import load_config
    from micro.home import Home
    from micro.runtime import Context

    home = Home.resolve(getattr(args, "home", None))
    if home.root.exists() and not home.root.is_dir():
        raise UserError(f"--home {home.root}: not a directory; give a folder for the volumes")
    config = load_config(home.root, getattr(args, "sets", None) or [])
    ctx = Context(home=home, config=config, args=args, verbose=getattr(args, "verbose", False))
    return int(args.handler(ctx) or 0)


if __name__ == "__main__":
    sys.exit(main())
