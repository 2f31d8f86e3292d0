"""The soak on a small budget, and an error-heavy session that must leave no identifier behind.

Both run the real `micro live --broker oanda` (bench/soak.py) against the fake v20 server with
random faults and SIGKILLs of the trader; the second then reads every file of the home.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench import soak
from tests.helpers import copy_home

ACCOUNT = "909-008-3141592-653"
TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0-a1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    return soak.prepared_home(tmp_path_factory.mktemp("soak"))


@pytest.mark.slow
def test_a_short_soak_never_doubles_a_position_nor_leaves_one_unprotected_or_unknown(
    prepared: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    template, frame = prepared
    home = copy_home(template, tmp_path)
    options = soak.SoakOptions(bars=400, seed=11, kill_every=70, fault_every=0.3)
    report = soak.soak(home, frame, options)
    summary = json.dumps(report, sort_keys=True)
    for key in soak.MUST_BE_ZERO:
        assert report[key] == 0, f"{key}: {summary}"
    assert report["completed"] and report["final_exit_status"] == 0, summary
    assert report["sigterm_exit_seconds"] < 10, summary
    assert report["bars"] >= 400 and report["orders"] > 0 and report["restarts"] >= 2, summary
    assert len(report["faults"]) >= 4, summary  # several kinds met the trader
    assert report["fake_errors"] == [], summary


@pytest.mark.slow
def test_an_error_heavy_session_leaves_neither_account_id_nor_token_in_any_file_of_the_home(
    prepared: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    template, frame = prepared
    home = copy_home(template, tmp_path)
    account_path = f"/v3/accounts/{ACCOUNT}"
    echoed = {"errorMessage": f"Invalid value specified for 'accountID' {ACCOUNT}"}
    options = soak.SoakOptions(
        bars=200,
        seed=5,
        kill_every=60,
        fault_every=0.08,
        token=TOKEN,
        account=ACCOUNT,
        extra_faults=[
            {"status": 401, "path": account_path + "/openTrades"},  # the first start refuses
            {"status": 400, "path": account_path + "/orders", "body": echoed},
            {"status": 503, "path": account_path + "/pricing/stream", "times": 3},
        ],
    )
    report = soak.soak(home, frame, options)
    assert soak.leaks(home, [ACCOUNT, TOKEN]) == []
    assert report["identifier_leaks"] == 0
    lines, unreadable = soak.journal_lines(home / "live" / "journal.jsonl")
    errors = [x for x in lines if x["kind"] == "error"]
    assert unreadable == 0 and len(errors) >= 20, json.dumps(report)
    assert any("/v3/accounts/***/" in json.dumps(x) for x in errors)  # URLs there, redacted
    outputs = "".join(p.read_text(errors="replace") for p in (home / "soak").iterdir())
    assert "micro: error: OANDA refused GET /v3/accounts/***/openTrades (401" in outputs
    assert report["start_refusals"] >= 1
