"""Errors a user can fix: the CLI prints their one line and exits with status 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad file, bad config, missing token): one clear line."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration key that is unknown, of the wrong type, or out of range."""


class DataError(UserError):
    """Market data that cannot be imported or a store that cannot be used as it is."""


class CheckpointError(UserError):
    """A checkpoint that is missing, broken, or made with an incompatible configuration."""
