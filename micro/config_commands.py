"""`micro config show`: the effective configuration, secrets redacted."""

from __future__ import annotations

import argparse
import json
from typing import Any

from micro.runtime import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    config = sub.add_parser("config", parents=[common], help="show the effective configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    config_sub.required = True
    show = config_sub.add_parser(
        "show",
        parents=[common],
        help="print the effective config (defaults < micro.toml < env < --set)",
    )
    show.add_argument(
        "--format",
        choices=("toml", "json"),
        default="toml",
        help="output format (default: toml)",
    )
    show.set_defaults(handler=show_config)


def show_config(ctx: Context) -> int:
    plain = ctx.config.to_dict(redact=True)
    if ctx.args.format == "json":
        print(json.dumps(plain, indent=2, allow_nan=False))
    else:
        print(to_toml(plain))
    return 0


def to_toml(tree: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the config tree (tables, scalars, lists)."""
    scalars, tables = [], []
    for key, value in tree.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            scalars.append(f"{_key(key)} = {_value(value)}")
    lines = []
    if prefix and scalars:
        lines.append(f"[{prefix}]")
    lines.extend(scalars)
    for key, value in tables:
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        body = to_toml(value, name)
        if body:
            if lines:
                lines.append("")
            lines.append(body)
    return "\n".join(lines)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)
