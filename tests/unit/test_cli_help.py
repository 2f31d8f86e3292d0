"""Every option of every `micro` command has help text, and it states the default it has.

Walks the real parser tree (`micro.cli.build_parser`: each command module registers its group)
so a command added later is held to the same rule.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from micro.cli import build_parser

FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._CountAction)
"""Switches: off unless given, which needs no saying."""


def parsers(
    parser: argparse.ArgumentParser, path: str = "micro"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser and subparser of the tree, with its command path ('micro data import')."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


def options(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, argparse.Action, str]]:
    """Each argument but -h/--version and the subcommand choice, with its expanded help."""
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(
            action,
            argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction,
        ):
            continue
        name = "/".join(action.option_strings) or action.dest
        help_text = formatter._expand_help(action) if action.help else ""
        yield name, action, help_text


def has_a_default(action: argparse.Action) -> bool:
    if isinstance(action, FLAG_ACTIONS):
        return False
    return action.default is not None and action.default is not argparse.SUPPRESS


def test_the_tree_holds_every_command_group() -> None:
    paths = {path for path, _ in parsers(build_parser())}
    for command in ("micro data import", "micro train", "micro validate", "micro live", "micro up"):
        assert command in paths


def test_every_option_has_help_text() -> None:
    missing = [
        f"{path} {name}"
        for path, parser in parsers(build_parser())
        for name, action, text in options(parser)
        if action.help is not argparse.SUPPRESS and not text.strip()
    ]
    assert missing == [], "options without help text:\n" + "\n".join(missing)


def test_every_option_with_a_default_states_it() -> None:
    unstated = [
        f"{path} {name} (default {action.default!r}): {text!r}"
        for path, parser in parsers(build_parser())
        for name, action, text in options(parser)
        if action.help is not argparse.SUPPRESS
        and has_a_default(action)
        and not ("default" in text and _shown(action.default) in text)
    ]
    assert unstated == [], "help that does not state the default:\n" + "\n".join(unstated)


def _shown(default: object) -> str:
    """The default as help text writes it: 1.0, auto, a list joined by commas."""
    if isinstance(default, list | tuple):
        return ", ".join(str(v) for v in default)
    return str(default)
