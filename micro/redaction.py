"""What micro never writes to a file or a log: the OANDA token and account id, and URL parts that
identify an account.

One rule, applied at every way out: the log handlers (`micro.logs`), the uncaught-exception
hook, the CLI's one-line errors, and every JSON file or JSONL line (`micro.atomic.write_json`,
`append_jsonl`: journal, state, status files, reports). `redact_text` replaces
- every secret value: OANDA_TOKEN and OANDA_ACCOUNT from the environment, and any value handed to
  `register_secret` (the token and account the OANDA client was given, from env or config);
- the segment after `/accounts/` in any path or URL (`/v3/accounts/***/orders`), so a broker
  error text names the endpoint but never the account, even one micro was not told about;
- the user:password part of a URL (`https://***@host/...`).
A value shorter than 4 characters is not treated as a secret (it would blank ordinary text).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

REDACTED = "***"
SECRET_ENV = ("OANDA_TOKEN", "OANDA_ACCOUNT")
MIN_SECRET_CHARS = 4

_ACCOUNT_IN_PATH = re.compile(r"(/accounts/)[^/?#\s\"'<>]+")
_URL_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s\"'<>]+@")
_registered: set[str] = set()
_lock = threading.Lock()


def _fresh_lock_in_child() -> None:
    """A forked child starts with a free lock (another thread may have held it at the fork)."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


def register_secret(value: str) -> None:
    """Never write `value` anywhere from now on in this process (token, account id)."""
    value = value.strip()
    if len(value) >= MIN_SECRET_CHARS:
        with _lock:
            _registered.add(value)


def secret_values() -> list[str]:
    """Every secret to blank: the environment's and the registered ones, longest first."""
    found = {v for k in SECRET_ENV if len(v := os.environ.get(k, "").strip()) >= MIN_SECRET_CHARS}
    with _lock:
        found |= _registered
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """`text` with secret values, account ids in paths and URL credentials replaced by '***'."""
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    if "/accounts/" in text:
        text = _ACCOUNT_IN_PATH.sub(r"\1" + REDACTED, text)
    if "@" in text and "://" in text:
        text = _URL_USERINFO.sub(r"\1" + REDACTED + "@", text)
    return text


def redact(obj: Any) -> Any:
    """A copy of JSON-like `obj` with every string (values and keys) passed through redact_text."""
    return _redact(obj, secret_values())


def _redact(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if isinstance(obj, dict):
        return {
            (redact_text(k, secrets) if isinstance(k, str) else k): _redact(v, secrets)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_redact(v, secrets) for v in obj]
    return obj
