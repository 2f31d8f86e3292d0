"""OandaClient against the fake v20 server: URLs, retries, backoff, errors, candles; the fake."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import requests
from oandapyV20.endpoints.apirequest import APIRequest

from micro.config import OandaConfig
from micro.data import oanda_client
from micro.data.oanda_client import OandaClient, OandaError, token_from_env
from micro.errors import ConfigError, UserError
from tests.fakes import ApiError, Call, FakeOanda, Reply, oanda_v20
from tests.fakes.oanda_v20 import heartbeat

TOKEN = "secret-token-4f2a9c"
ACCOUNT = "101-001-7654321-001"


def gbpjpy_bars(count: int, start: str = "2022-01-03 00:00") -> pd.DataFrame:
    """`count` consecutive M1 bars with JPY precision (3 decimals)."""
    ts = pd.date_range(start, periods=count, freq="min")
    rng = np.random.default_rng(3)
    close = np.round(155.0 + np.cumsum(rng.normal(0.0, 0.01, count)), 3)
    open_ = np.concatenate([[155.0], close[:-1]])
    return pd.DataFrame(
        {
            "ts": ts,
            "open": open_,
            "high": np.maximum(open_, close) + 0.005,
            "low": np.minimum(open_, close) - 0.005,
            "close": close,
            "volume": rng.integers(1, 100, count).astype(float),
        }
    )


@pytest.fixture
def fake() -> Iterator[FakeOanda]:
    with FakeOanda(candles=gbpjpy_bars(100), token=TOKEN, account=ACCOUNT) as server:
        yield server
    assert server.errors == []


class Sleeps(list):
    """An injectable sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(fake: FakeOanda, sleeps: Sleeps | None = None, **settings) -> OandaClient:
    config = OandaConfig(api_url=fake.api_url, stream_url=fake.stream_url, **settings)
    return OandaClient(config, TOKEN, sleep=sleeps if sleeps is not None else Sleeps())


def test_default_urls_follow_the_environment() -> None:
    assert oanda_client.base_urls(OandaConfig()) == (
        "https://api-fxpractice.oanda.com",
        "https://stream-fxpractice.oanda.com",
    )
    assert oanda_client.base_urls(OandaConfig(environment="live")) == (
        "https://api-fxtrade.oanda.com",
        "https://stream-fxtrade.oanda.com",
    )
    custom = OandaConfig(api_url="http://127.0.0.1:9/", stream_url="http://127.0.0.1:8")
    assert oanda_client.base_urls(custom) == ("http://127.0.0.1:9", "http://127.0.0.1:8")
    with pytest.raises(ConfigError, match="live.oanda.api_url must start with http"):
        oanda_client.base_urls(OandaConfig(api_url="127.0.0.1:9"))


def test_two_clients_with_different_urls_each_reach_their_own_server() -> None:
    with (
        FakeOanda(candles=gbpjpy_bars(5), token=TOKEN) as one,
        FakeOanda(candles=gbpjpy_bars(7), token=TOKEN) as two,
    ):
        first, second = client_for(one), client_for(two)
        assert first.environment != second.environment
        assert len(first.candles("GBP_JPY", count=50)) == 5
        assert len(second.candles("GBP_JPY", count=50)) == 7


def test_every_request_carries_the_configured_timeout(fake: FakeOanda) -> None:
    client = client_for(fake, timeout_seconds=2.5)
    assert client._api.request_params == {"timeout": 2.5}


def test_candles_are_mid_prices_with_utc_times(fake: FakeOanda) -> None:
    bars = gbpjpy_bars(100)
    frame = client_for(fake).candles("GBP_JPY", start=pd.Timestamp("2022-01-03 00:10"), count=5)
    assert frame["ts"].tolist() == list(pd.date_range("2022-01-03 00:10", periods=5, freq="min"))
    expected = bars.iloc[10:15].reset_index(drop=True)
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(frame[column], expected[column], atol=1e-9)
    assert frame["complete"].all()
    (request,) = fake.requests
    assert request.query == {
        "granularity": "M1",
        "price": "M",
        "from": "2022-01-03T00:10:00.000000000Z",
        "count": "5",
    }


def test_bid_ask_candles_average_to_mid(fake: FakeOanda) -> None:
    client = client_for(fake)
    mid = client.candles("GBP_JPY", start=pd.Timestamp("2022-01-03"), count=3)
    both = client.candles("GBP_JPY", start=pd.Timestamp("2022-01-03"), count=3, price="BA")
    np.testing.assert_allclose(both["close"], mid["close"], atol=1e-9)


def test_the_bar_still_forming_is_marked_incomplete(fake: FakeOanda) -> None:
    fake.now = pd.Timestamp("2022-01-03 00:04:30")
    frame = client_for(fake).candles("GBP_JPY", start=pd.Timestamp("2022-01-03"), count=100)
    assert frame["complete"].tolist() == [True, True, True, True, False]


def test_5xx_is_retried_with_doubling_backoff(fake: FakeOanda) -> None:
    sleeps = Sleeps()
    fake.inject(status=503, times=3)
    client = client_for(fake, sleeps, backoff_seconds=0.5)
    assert len(client.candles("GBP_JPY", count=10)) == 10
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.requests) == 4


def test_backoff_is_capped_at_sixty_seconds(fake: FakeOanda) -> None:
    sleeps = Sleeps()
    fake.inject(status=500, times=4)
    client_for(fake, sleeps, backoff_seconds=25.0).candles("GBP_JPY", count=1)
    assert sleeps == [25.0, 50.0, 60.0, 60.0]


def test_429_waits_as_long_as_retry_after_says(fake: FakeOanda) -> None:
    sleeps = Sleeps()
    fake.inject(status=429, retry_after=7)
    client_for(fake, sleeps, backoff_seconds=0.01).candles("GBP_JPY", count=1)
    assert sleeps == [7.0]


def test_exhausted_retries_end_in_one_clear_error(fake: FakeOanda) -> None:
    fake.inject(status=502, times=10)
    with pytest.raises(OandaError, match=r"failed 3 time\(s\), last with 502") as caught:
        client_for(fake, max_retries=2).candles("GBP_JPY", count=1)
    assert caught.value.status == 502
    assert len(fake.requests) == 3


def test_timeouts_and_dropped_connections_are_retried(fake: FakeOanda) -> None:
    sleeps = Sleeps()
    fake.inject(delay=3)
    fake.inject(drop=True)
    client = client_for(fake, sleeps, timeout_seconds=0.3, backoff_seconds=0.01)
    assert len(client.candles("GBP_JPY", count=20)) == 20
    assert sleeps == [0.01, 0.02]
    assert len(fake.requests) == 3


def test_wrong_token_is_a_user_error_naming_oanda_token_without_the_token(
    fake: FakeOanda,
) -> None:
    config = OandaConfig(api_url=fake.api_url)
    client = OandaClient(config, "wrong-token-123456", sleep=Sleeps())
    with pytest.raises(UserError) as caught:
        client.candles("GBP_JPY", count=1)
    message = str(caught.value)
    assert "OANDA_TOKEN" in message and "401" in message
    assert "wrong-token-123456" not in message and TOKEN not in message
    assert len(fake.requests) == 1  # never retried
    assert "wrong-token" not in repr(client)


def test_other_account_is_refused_with_the_account_hint(fake: FakeOanda) -> None:
    with pytest.raises(UserError, match="OANDA_ACCOUNT"):
        client_for(fake).account_summary("101-001-0000000-001")


def test_bad_request_is_not_retried_and_quotes_oandas_message(fake: FakeOanda) -> None:
    with pytest.raises(OandaError, match="Invalid value specified for 'instrument'"):
        client_for(fake).candles("XAU_USD", count=1)
    assert len(fake.requests) == 1


def test_post_is_not_resent_after_a_server_error(fake: FakeOanda) -> None:
    class Post(APIRequest):
        def __init__(self) -> None:
            super().__init__(f"v3/accounts/{ACCOUNT}/orders", method="POST", expected_status=201)
            self.data = {"order": {"units": "1"}}

    fake.add_route("POST", r"/v3/accounts/(?P<account>[^/]+)/orders", lambda f, c: Reply({}, 201))
    fake.inject(status=503)
    with pytest.raises(OandaError) as caught:
        client_for(fake).request(Post())
    assert caught.value.outcome_unknown
    assert len(fake.requests) == 1
    fake.inject(status=429, retry_after=0)
    assert client_for(fake).request(Post()) == {}
    assert [r.body for r in fake.requests_to("/v3/accounts")][-1] == {"order": {"units": "1"}}


def test_account_summary_and_instruments_have_oandas_shapes(fake: FakeOanda) -> None:
    client = client_for(fake)
    summary = client.account_summary(ACCOUNT)
    assert summary["id"] == ACCOUNT
    assert summary["balance"] == "100000.0000" and summary["openTradeCount"] == 0
    (gbpjpy,) = client.account_instruments(ACCOUNT, ["GBP_JPY"])
    assert gbpjpy["pipLocation"] == -2 and gbpjpy["displayPrecision"] == 3


def test_the_token_comes_only_from_the_environment() -> None:
    assert token_from_env({"OANDA_TOKEN": " abc-123 "}) == "abc-123"
    with pytest.raises(UserError, match="OANDA_TOKEN is not set"):
        token_from_env({})


def test_the_token_is_never_logged(fake: FakeOanda, caplog: pytest.LogCaptureFixture) -> None:
    fake.inject(status=503)
    with caplog.at_level(logging.DEBUG):
        client_for(fake, backoff_seconds=0.0).candles("GBP_JPY", count=1)
    assert "retry 1 of 6" in caplog.text
    assert TOKEN not in caplog.text


def test_rfc3339_has_nanoseconds_and_utc() -> None:
    assert oanda_client.rfc3339(pd.Timestamp("2022-01-03 04:05")) == (
        "2022-01-03T04:05:00.000000000Z"
    )
    aware = pd.Timestamp("2022-01-03 06:05", tz="Etc/GMT-2")
    assert oanda_client.rfc3339(aware) == "2022-01-03T04:05:00.000000000Z"


# ---------------------------------------------------------------- the fake itself


def test_fake_refuses_requests_without_the_bearer_token(fake: FakeOanda) -> None:
    answer = requests.get(f"{fake.api_url}/v3/accounts/{ACCOUNT}/summary", timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"errorMessage": "Insufficient authorization to perform request."}
    assert answer.headers["Content-Type"] == "application/json"
    assert "RequestID" in answer.headers


def test_fake_candle_queries_follow_oandas_rules(fake: FakeOanda) -> None:
    def get(**params: str) -> requests.Response:
        return requests.get(
            f"{fake.api_url}/v3/instruments/GBP_JPY/candles",
            params={"granularity": "M1", **params},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )

    first = get(**{"from": "2022-01-03T00:05:00Z", "count": "3", "includeFirst": "false"})
    assert [c["time"] for c in first.json()["candles"]] == [
        "2022-01-03T00:06:00.000000000Z",
        "2022-01-03T00:07:00.000000000Z",
        "2022-01-03T00:08:00.000000000Z",
    ]
    assert isinstance(first.json()["candles"][0]["mid"]["o"], str)
    ranged = get(**{"from": "2022-01-03T00:00:00Z", "to": "2022-01-03T00:10:00Z"})
    assert len(ranged.json()["candles"]) == 10
    latest = get(count="2")
    assert [c["time"][11:16] for c in latest.json()["candles"]] == ["01:38", "01:39"]
    assert get(count="5001").status_code == 400
    both = get(**{"from": "2022-01-03T00:00:00Z", "to": "2022-01-03T00:10:00Z", "count": "5"})
    assert both.status_code == 400
    future = get(**{"from": "2999-01-01T00:00:00Z"})
    assert "future" in future.json()["errorMessage"]


def test_fake_faults_can_be_scoped_to_a_path(fake: FakeOanda) -> None:
    fake.inject(status=503, path="/v3/accounts")
    client = client_for(fake, backoff_seconds=0.0)
    client.candles("GBP_JPY", count=1)  # not under the fault's path
    assert fake.pending_faults() == 1
    client.account_summary(ACCOUNT)
    assert [r.path.split("/")[2] for r in fake.requests] == ["instruments", "accounts", "accounts"]
    assert fake.pending_faults() == 0


def test_fake_routes_can_be_added_and_can_stream_json_lines(fake: FakeOanda) -> None:
    def pricing_stream(server: FakeOanda, call: Call) -> Reply:
        if call.groups["account"] != server.account.id:
            raise ApiError(403, "The provided request was forbidden.")
        return Reply(stream=(heartbeat(pd.Timestamp("2022-01-03")) for _ in range(3)))

    fake.add_route("GET", r"/v3/accounts/(?P<account>[^/]+)/pricing/stream", pricing_stream)
    answer = requests.get(
        f"{fake.stream_url}/v3/accounts/{ACCOUNT}/pricing/stream",
        headers={"Authorization": f"Bearer {TOKEN}"},
        stream=True,
        timeout=5,
    )
    lines = [line for line in answer.iter_lines() if line]
    assert len(lines) == 3 and b'"HEARTBEAT"' in lines[0]
    assert fake.routes[0].pattern.pattern.endswith("pricing/stream")


fake_oanda = oanda_v20.fake_oanda  # the shared fixture, as other test modules will use it


def test_shared_fixture_serves_candles_once_given_some(fake_oanda: FakeOanda) -> None:
    client = OandaClient(OandaConfig(api_url=fake_oanda.api_url), oanda_v20.DEFAULT_TOKEN)
    with pytest.raises(OandaError, match="'instrument'"):
        client.candles("GBP_JPY", count=1)
    fake_oanda.set_candles(gbpjpy_bars(3))
    assert client.candles("GBP_JPY", count=5)["close"].tolist() == gbpjpy_bars(3)["close"].tolist()
    assert client.account_summary(oanda_v20.DEFAULT_ACCOUNT)["id"] == "101-001-1234567-001"
