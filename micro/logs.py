"""Logging: rich on the console, a rotating file in the owning volume, secrets never written.

Every handler redacts its records through `micro.redaction` (the token and account id, account
ids in URL paths, URL credentials), and `setup_logging` installs exception hooks that print an
uncaught traceback redacted too: under `micro up` a service's stderr is a file.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from micro.redaction import SECRET_ENV, redact_text, secret_values

__all__ = ["SECRET_ENV", "LOG_FORMAT", "RedactSecrets", "secret_values", "setup_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Passes a record's final message (and its traceback) through `redact_text`."""

    def __init__(self, extra: list[str] | None = None) -> None:
        super().__init__()
        self.extra = list(extra or [])

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = sorted(set(secret_values() + self.extra), key=len, reverse=True)
        message = record.getMessage()
        redacted = redact_text(message, secrets)
        if redacted != message or record.exc_info or record.exc_text or record.stack_info:
            if record.exc_info or record.exc_text:
                text = record.exc_text or ""
                if record.exc_info:
                    text = logging.Formatter().formatException(record.exc_info)
                redacted = f"{redacted}\n{redact_text(text, secrets)}"
                record.exc_info = None
                record.exc_text = None
            if record.stack_info:
                record.stack_info = redact_text(record.stack_info, secrets)
            record.msg, record.args = redacted, None
        return True


def _print_redacted(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    """sys.excepthook: the usual traceback on stderr, redacted."""
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(redact_text(text))


def _print_redacted_thread(args: threading.ExceptHookArgs) -> None:
    """threading.excepthook: a thread's uncaught traceback on stderr, redacted."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact_text(f"Exception in thread {name}:\n{text}"))


def setup_logging(log_file: Path | None, verbose: bool = False, console: bool = True) -> None:
    """Console (rich, stderr) + rotating file; idempotent so tests can call it repeatedly."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_micro", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    sys.excepthook = _print_redacted
    threading.excepthook = _print_redacted_thread
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
