"""Logging: rich on the console, a rotating file in the owning volume, secrets never written."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from micro.config import REDACTED

SECRET_ENV = ("OANDA_TOKEN", "OANDA_ACCOUNT")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def secret_values() -> list[str]:
    """The values that must never appear in a log line (token and account from the env)."""
    return [v for k in SECRET_ENV if (v := os.environ.get(k, "").strip()) and len(v) >= 4]


class RedactSecrets(logging.Filter):
    """Replaces every secret value in a record's final message by '***'."""

    def __init__(self, extra: list[str] | None = None) -> None:
        super().__init__()
        self.extra = list(extra or [])

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values() + self.extra
        if not secrets:
            return True
        message = record.getMessage()
        redacted = message
        for value in secrets:
            redacted = redacted.replace(value, REDACTED)
        if redacted != message or record.exc_info:
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                for value in secrets:
                    text = text.replace(value, REDACTED)
                redacted = f"{redacted}\n{text}"
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = redacted, None
        return True


def setup_logging(log_file: Path | None, verbose: bool = False, console: bool = True) -> None:
    """Console (rich, stderr) + rotating file; idempotent so tests can call it repeatedly."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_micro", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    redact = RedactSecrets()
    if console:
        stream: logging.Handler
        if sys.stderr.isatty():
            from rich.logging import RichHandler

            stream = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
            stream.setFormatter(logging.Formatter("%(message)s"))
        else:
            stream = logging.StreamHandler(sys.stderr)
            stream.setFormatter(logging.Formatter(LOG_FORMAT))
        stream.setLevel(logging.DEBUG if verbose else logging.INFO)
        stream.addFilter(redact)
        setattr(stream, "_micro", True)  # noqa: B010 (our mark on a handler of rich or logging)
        root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        fh.setFormatter(logging.Formatter(LOG_FORMAT))
        fh.setLevel(logging.DEBUG)
        fh.addFilter(redact)
        fh._micro = True  # type: ignore[attr-defined]
        root.addHandler(fh)
    for noisy in ("numba", "urllib3", "matplotlib", "oandapyV20"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
