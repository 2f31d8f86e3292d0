"""No token, account id or account URL reaches a file: JSON, JSONL, logs, tracebacks, CLI errors."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from micro import atomic
from micro.live.journal import Journal, StateFile
from micro.logs import setup_logging
from micro.redaction import redact, redact_text, register_secret
from tests.conftest import REPO

ACCOUNT = "909-004-7777777-042"
TOKEN = "f00dfeed0123456789abcdef-0123456789abcdef0123"


def test_an_account_in_a_url_path_is_starred_even_when_micro_was_not_told_about_it() -> None:
    text = "OANDA refused POST /v3/accounts/101-001-9999999-001/orders (400: bad)"
    assert redact_text(text) == "OANDA refused POST /v3/accounts/***/orders (400: bad)"
    url = "https://user:pw@api-fxtrade.oanda.com/v3/accounts/001-1/pricing/stream?instruments=X"
    assert (
        redact_text(url)
        == "https://***@api-fxtrade.oanda.com/v3/accounts/***/pricing/stream?instruments=X"
    )


def test_registered_and_environment_secrets_are_starred_anywhere_in_a_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OANDA_ACCOUNT", ACCOUNT)
    register_secret(TOKEN)
    record = {
        "error": f"account {ACCOUNT} said no",
        "nested": [{"why": f"Bearer {TOKEN}"}, ("x", ACCOUNT)],
        ACCOUNT: 1,
        "n": 3.5,
    }
    assert redact(record) == {
        "error": "account *** said no",
        "nested": [{"why": "Bearer ***"}, ["x", "***"]],
        "***": 1,
        "n": 3.5,
    }
    assert redact_text("abc") == "abc"  # short values are never secrets
    register_secret("ab")
    assert redact_text("abc") == "abc"


def test_journal_and_state_never_hold_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OANDA_ACCOUNT", ACCOUNT)
    journal = Journal(tmp_path / "journal.jsonl")
    journal.record("error", error=f"OANDA GET /v3/accounts/{ACCOUNT}/openTrades failed")
    journal.record("fill", raw={"accountID": ACCOUNT, "path": Path(f"/x/{ACCOUNT}")})
    atomic.write_json(tmp_path / "state.json", {"last_error": f"stream {ACCOUNT} dropped"})
    StateFile(tmp_path / "live_state.json").write({"connection": {"last_error": ACCOUNT}})
    for path in tmp_path.iterdir():
        assert ACCOUNT not in path.read_text(), path
    assert "/v3/accounts/***/openTrades" in (tmp_path / "journal.jsonl").read_text()


def test_log_records_and_their_tracebacks_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_secret(TOKEN)
    log_file = tmp_path / "live.log"
    setup_logging(log_file, console=False)
    try:
        log = logging.getLogger("micro.test")
        log.warning("GET /v3/accounts/%s/trades failed", "123-456-789")
        try:
            raise RuntimeError(f"token {TOKEN}")
        except RuntimeError:
            log.exception("boom")
        for handler in logging.getLogger().handlers:
            handler.flush()
    finally:
        setup_logging(None, console=False)
    text = log_file.read_text()
    assert TOKEN not in text and "123-456-789" not in text
    assert "/v3/accounts/***/trades" in text and "RuntimeError: token ***" in text


def test_an_uncaught_traceback_and_a_cli_error_are_printed_redacted(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from micro.logs import setup_logging\n"
        "from micro.redaction import register_secret\n"
        f"register_secret({TOKEN!r})\n"
        "setup_logging(None, console=False)\n"
        f"raise KeyError('time in /v3/accounts/{ACCOUNT}/orders with {TOKEN}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "KeyError" in done.stderr and "Traceback" in done.stderr
    assert ACCOUNT not in done.stderr and TOKEN not in done.stderr

    not_a_folder = tmp_path / f"home-of-{ACCOUNT}"
    not_a_folder.write_text("")
    code = subprocess.run(
        [sys.executable, "-m", "micro.cli", "--home", str(not_a_folder), "config", "show"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "OANDA_ACCOUNT": ACCOUNT},
    )  # fmt: skip
    assert code.returncode == 2, code.stderr
    assert code.stderr.startswith("micro: error:") and "home-of-***" in code.stderr
    assert ACCOUNT not in code.stderr
