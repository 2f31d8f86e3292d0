"""`micro data download` through the real CLI against the fake OANDA v20 server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from micro.data import store
from tests.conftest import micro_env, run_micro
from tests.fakes import FakeOanda

TOKEN = "tok-7d1e5b9c0a3f"
FAST = ("--set", "live.oanda.backoff_seconds=0.01", "--set", "live.oanda.timeout_seconds=1")


def bars(count: int, start: str = "2022-01-03 00:00") -> pd.DataFrame:
    """`count` GBP_JPY M1 bars from `start`, skipping the weekend close (Fri 21:00-Sun 21:00)."""
    stamps = pd.date_range(start, periods=count * 2, freq="min")
    weekday, hour = stamps.day_of_week, stamps.hour
    weekend = ((weekday == 4) & (hour >= 21)) | (weekday == 5) | ((weekday == 6) & (hour < 21))
    stamps = stamps[~weekend][:count]
    rng = np.random.default_rng(11)
    close = np.round(155.0 + np.cumsum(rng.normal(0.0, 0.01, count)), 3)
    open_ = np.concatenate([[155.0], close[:-1]])
    return pd.DataFrame(
        {
            "ts": stamps,
            "open": open_,
            "high": np.round(np.maximum(open_, close) + 0.004, 3),
            "low": np.round(np.minimum(open_, close) - 0.004, 3),
            "close": close,
            "volume": rng.integers(1, 90, count).astype(float),
        }
    )


@pytest.fixture
def market() -> pd.DataFrame:
    return bars(12_000)  # three pages of 5000, across the first weekend


@pytest.fixture
def fake(market: pd.DataFrame) -> Iterator[FakeOanda]:
    with FakeOanda(candles=market, token=TOKEN) as server:
        yield server
    assert server.errors == []


def download(
    home: Path, fake: FakeOanda, *args: str, token: str = TOKEN
) -> subprocess.CompletedProcess:
    env = micro_env(home, OANDA_TOKEN=token, MICRO_LIVE__OANDA__API_URL=fake.api_url)
    result = run_micro(home, "data", "download", *args, *FAST, env=env)
    assert_token_absent(home, result, token)
    return result


def assert_token_absent(home: Path, result: subprocess.CompletedProcess, token: str) -> None:
    """The token is in no output and in no file under the home."""
    assert token not in result.stdout and token not in result.stderr
    for path in home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def stored(home: Path) -> pd.DataFrame:
    con = duckdb.connect(str(home / "data" / "market.duckdb"), read_only=True)
    try:
        return store.read_candles(con, "GBP_JPY")
    finally:
        con.close()


def candle_requests(fake: FakeOanda) -> list[dict[str, str]]:
    return [r.query for r in fake.requests_to("/v3/instruments/GBP_JPY/candles")]


def test_download_pages_through_more_than_5000_bars(
    home: Path, fake: FakeOanda, market: pd.DataFrame
) -> None:
    result = download(home, fake, "--from", "2022-01-03", "--to", "2022-01-20")
    assert result.returncode == 0, result.stderr
    assert "12000 new bars, 0 already stored" in result.stderr
    got = stored(home)
    pd.testing.assert_frame_equal(got, market, check_dtype=False)
    queries = candle_requests(fake)
    assert [q.get("count") for q in queries] == ["5000", "5000", "5000"]
    assert all(q["granularity"] == "M1" and q["price"] == "M" for q in queries)
    assert queries[0]["from"] == "2022-01-03T00:00:00.000000000Z"
    after_first_page = market["ts"].iloc[4999] + pd.Timedelta(minutes=1)
    assert queries[1]["from"] == after_first_page.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


def test_the_candle_still_forming_is_not_stored(
    home: Path, fake: FakeOanda, market: pd.DataFrame
) -> None:
    fake.now = market["ts"].iloc[-1] + pd.Timedelta(seconds=30)
    result = download(home, fake, "--from", "2022-01-03")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 candle(s) still forming" in result.stderr
    assert len(stored(home)) == len(market) - 1
    assert stored(home)["ts"].iloc[-1] == market["ts"].iloc[-2]


def test_second_run_resumes_after_the_last_stored_bar(
    home: Path, fake: FakeOanda, market: pd.DataFrame
) -> None:
    first = download(home, fake, "--from", "2022-01-03", "--to", "2022-01-05")
    assert first.returncode == 0, first.stderr
    count_first = len(stored(home))
    assert count_first == 2 * 1440
    fake.requests.clear()
    second = download(home, fake, "--to", "2022-01-20")
    assert second.returncode == 0, second.stderr
    assert "resuming after the last stored bar, 2022-01-04 23:59 UTC" in second.stderr
    assert candle_requests(fake)[0]["from"] == "2022-01-05T00:00:00.000000000Z"
    assert f"{len(market) - count_first} new bars, 0 already stored" in second.stderr
    pd.testing.assert_frame_equal(stored(home), market, check_dtype=False)
    fake.requests.clear()
    third = download(home, fake, "--from", "2022-01-03", "--to", "2022-01-20")
    assert third.returncode == 0, third.stderr
    assert "0 new bars, 0 already stored" in third.stderr
    after_last = market["ts"].iloc[-1] + pd.Timedelta(minutes=1)  # one look past the last bar
    assert [q["from"] for q in candle_requests(fake)] == [
        after_last.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    ]


def test_503_twice_then_success_with_debug_logging(
    home: Path, fake: FakeOanda, market: pd.DataFrame
) -> None:
    fake.inject(status=503, times=2)
    result = download(home, fake, "-v", "--from", "2022-01-03", "--to", "2022-01-20")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("503 Service unavailable; retry") == 2
    assert len(stored(home)) == len(market)


def test_429_waits_for_retry_after(home: Path, fake: FakeOanda, market: pd.DataFrame) -> None:
    fake.inject(status=429, retry_after=1)
    result = download(home, fake, "--from", "2022-01-03", "--to", "2022-01-20")
    assert result.returncode == 0, result.stderr
    assert "429 Too many requests; retry 1 of 6 in 1.00 s" in result.stderr
    assert len(stored(home)) == len(market)


def test_a_timeout_then_success(home: Path, fake: FakeOanda, market: pd.DataFrame) -> None:
    fake.inject(delay=5)
    fake.inject(drop=True)
    result = download(home, fake, "--from", "2022-01-03", "--to", "2022-01-20")
    assert result.returncode == 0, result.stderr
    assert "no answer within the timeout; retry 1" in result.stderr
    assert "connection failed or dropped; retry 2" in result.stderr
    assert len(stored(home)) == len(market)


def test_wrong_token_is_one_line_about_oanda_token(home: Path, fake: FakeOanda) -> None:
    result = download(home, fake, "--from", "2022-01-03", token="not-the-right-token-99")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "OANDA_TOKEN" in lines[0] and "401" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (home / "data" / "market.duckdb").exists()


def test_missing_token_is_refused_before_anything_happens(home: Path, fake: FakeOanda) -> None:
    env = micro_env(home, MICRO_LIVE__OANDA__API_URL=fake.api_url)
    result = run_micro(home, "data", "download", "--from", "2022-01-03", env=env)
    assert result.returncode == 2
    assert "OANDA_TOKEN is not set" in result.stderr
    assert fake.requests == []


def test_first_download_needs_from(home: Path, fake: FakeOanda) -> None:
    result = download(home, fake)
    assert result.returncode == 2
    assert "pass --from YYYY-MM-DD for the first download" in result.stderr
    assert fake.requests == []


def test_an_interrupted_download_keeps_its_finished_pages(
    home: Path, fake: FakeOanda, market: pd.DataFrame
) -> None:
    fake.inject(status=503, times=50, skip=1)  # the first page passes, then OANDA stays down
    env = micro_env(home, OANDA_TOKEN=TOKEN, MICRO_LIVE__OANDA__API_URL=fake.api_url)
    failed = run_micro(
        home,
        "data",
        "download",
        "--from",
        "2022-01-03",
        "--to",
        "2022-01-20",
        *FAST,
        "--set",
        "live.oanda.max_retries=2",
        env=env,
    )
    assert failed.returncode == 2
    assert "failed 3 time(s), last with 503" in failed.stderr.strip().splitlines()[-1]
    assert len(stored(home)) == 5000
    fake.clear_faults()  # OANDA is back
    resumed = download(home, fake, "--to", "2022-01-20")
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(stored(home), market, check_dtype=False)


def test_a_window_with_only_a_weekend_in_it_stores_nothing_and_succeeds(
    home: Path, fake: FakeOanda
) -> None:
    result = download(home, fake, "--from", "2022-01-07T21:00", "--to", "2022-01-09T21:00")
    assert result.returncode == 0, result.stderr
    assert "0 new bars, 0 already stored" in result.stderr
    assert len(candle_requests(fake)) == 1
