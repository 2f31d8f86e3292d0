"""A small OANDA v20 client around oandapyV20: base URLs from config, retries, clear errors.

Shared by `micro data download` and the live trader. Every request carries the configured
timeout; 429, 5xx, timeouts and dropped connections are retried with exponential backoff
(`Retry-After` honoured); 401/403 become a `UserError` pointing at OANDA_TOKEN / OANDA_ACCOUNT.
The token lives only in the session's Authorization header: it is never logged, printed,
put in an exception message or written anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import requests
from oandapyV20 import API
from oandapyV20 import oandapyV20 as v20_module
from oandapyV20.endpoints import accounts as accounts_endpoints
from oandapyV20.endpoints import instruments as instrument_endpoints
from oandapyV20.endpoints.apirequest import APIRequest
from oandapyV20.exceptions import V20Error

from micro.config import OandaConfig
from micro.data.formats import oanda_candles_frame
from micro.errors import ConfigError, UserError
from micro.redaction import register_secret

log = logging.getLogger("micro.oanda")

TOKEN_ENV = "OANDA_TOKEN"
ACCOUNT_ENV = "OANDA_ACCOUNT"
MAX_CANDLES_PER_REQUEST = 5000
"""OANDA's largest `count` for one candles request."""
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 300.0
AUTH_HINT = (
    "check OANDA_TOKEN (a v20 API token for the configured environment) and OANDA_ACCOUNT "
    "(an account that token may use)"
)


class OandaError(UserError):
    """OANDA refused a request or stayed unreachable after every retry."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        outcome_unknown: bool = False,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        # True when a non-GET request may have reached OANDA: look it up before resending.
        self.outcome_unknown = outcome_unknown
        # OANDA's decoded error answer for a refusal (4xx), e.g. an `orderRejectTransaction`
        self.body = body


def token_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The API token from OANDA_TOKEN; a clear UserError when it is missing."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UserError(
            f"{TOKEN_ENV} is not set; export your OANDA v20 API token (practice by default) "
            f"as {TOKEN_ENV} in the environment, never in micro.toml"
        )
    register_secret(token)  # never written to a file or log from here on
    return token


def account_from_env(config: OandaConfig, environ: Mapping[str, str] | None = None) -> str:
    """The account id from OANDA_ACCOUNT, else `live.oanda.account`; a UserError if neither."""
    environ = os.environ if environ is None else environ
    account = environ.get(ACCOUNT_ENV, "").strip() or config.account.strip()
    if not account:
        raise UserError(
            f"{ACCOUNT_ENV} is not set; export your OANDA account id (e.g. 101-001-1234567-001) "
            f"as {ACCOUNT_ENV}"
        )
    register_secret(account)  # from the env or micro.toml: never written from here on
    return account


def base_urls(config: OandaConfig) -> tuple[str, str]:
    """(REST, stream) base URLs: the configured ones, else OANDA's for `environment`."""
    official = v20_module.TRADING_ENVIRONMENTS[config.environment]
    api_url = (config.api_url or official["api"]).rstrip("/")
    stream_url = (config.stream_url or official["stream"]).rstrip("/")
    for key, url in (("live.oanda.api_url", api_url), ("live.oanda.stream_url", stream_url)):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"config: {key} must start with http:// or https://, got {url!r}")
    return api_url, stream_url


def rfc3339(moment: pd.Timestamp | dt.datetime) -> str:
    """A UTC time as OANDA writes it: 2022-01-03T00:00:00.000000000Z (naive means UTC)."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return (
        str(stamp.strftime("%Y-%m-%dT%H:%M:%S."))
        + f"{stamp.microsecond:06d}"
        + (f"{stamp.nanosecond:03d}Z")
    )


class OandaClient:
    """oandapyV20's API bound to micro's config: base URLs, timeout, retries, clear errors."""

    def __init__(
        self,
        config: OandaConfig,
        token: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        register_secret(token)
        self.api_url, self.stream_url = base_urls(config)
        self.environment = _register_environment(self.api_url, self.stream_url)
        self._sleep = sleep
        self._api = API(
            access_token=token,
            environment=self.environment,
            request_params={"timeout": config.timeout_seconds},
        )
        self._last = threading.local()  # headers of this thread's latest response
        self._api.client.hooks["response"].append(self._remember_response)
        self.requests_sent = 0

    def __enter__(self) -> OandaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the token
        return f"OandaClient(api_url={self.api_url!r}, environment={self.config.environment!r})"

    def close(self) -> None:
        self._api.close()

    def request(self, endpoint: APIRequest) -> Any:
        """Send `endpoint`, retrying 429/5xx/timeouts/dropped connections with backoff.

        Returns the decoded JSON. 401/403 raise a UserError about the token and account; other
        4xx raise OandaError with OANDA's errorMessage; exhausted retries raise OandaError.
        Only GETs are retried after they may have reached OANDA; a POST/PUT/PATCH is retried
        on 429 and connect timeouts only, else OandaError(outcome_unknown=True) lets the caller
        look the order up by its client id before resending. Streaming endpoints return
        oandapyV20's generator (their caller reconnects).
        """
        idempotent = endpoint.method.upper() == "GET"
        retries = self.config.max_retries
        attempt = 0
        while True:
            self._last.headers = {}
            self.requests_sent += 1
            try:
                return self._api.request(endpoint)
            except V20Error as exc:
                status = int(exc.code)
                message = _error_message(exc.msg)
                if status in (401, 403):
                    raise UserError(
                        f"OANDA refused {endpoint.method} /{endpoint} ({status}: {message}); "
                        f"{AUTH_HINT}"
                    ) from None
                if status != 429 and status < 500:
                    raise OandaError(
                        f"OANDA refused {endpoint.method} /{endpoint} ({status}: {message})",
                        status=status,
                        body=_error_body(exc.msg),
                    ) from None
                problem = f"{status} {message}"
                wait = _retry_after(self._last.headers)
                safe = idempotent or status == 429
            except (requests.RequestException, json.JSONDecodeError) as exc:
                status = None
                problem = _describe(exc)
                wait = None
                safe = idempotent or isinstance(exc, requests.ConnectTimeout)
            if not safe:
                raise OandaError(
                    f"OANDA {endpoint.method} /{endpoint} failed with {problem}; it may or may "
                    "not have been carried out",
                    status=status,
                    outcome_unknown=True,
                )
            if attempt >= retries:
                raise OandaError(
                    f"OANDA {endpoint.method} /{endpoint} failed {attempt + 1} time(s), last with "
                    f"{problem}; check the network or OANDA's status and try again",
                    status=status,
                )
            if wait is None:
                wait = min(self.config.backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS)
            attempt += 1
            log.warning(
                "OANDA %s /%s: %s; retry %d of %d in %.2f s",
                endpoint.method,
                endpoint,
                problem,
                attempt,
                retries,
                wait,
            )
            self._sleep(wait)

    def candles(
        self,
        instrument: str,
        start: pd.Timestamp | dt.datetime | None = None,
        count: int | None = None,
        end: pd.Timestamp | dt.datetime | None = None,
        price: str = "M",
        granularity: str = "M1",
    ) -> pd.DataFrame:
        """Candles from `start` (UTC) for `count` bars or up to `end`; the latest if no start.

        Returns ts (naive UTC open time), open, high, low, close, volume, complete; prices are
        mid, or the bid/ask average when `price` has no M. `count` is at most 5000.
        """
        if count is not None and not 1 <= count <= MAX_CANDLES_PER_REQUEST:
            raise ValueError(f"count must be 1..{MAX_CANDLES_PER_REQUEST}, got {count}")
        if count is not None and start is not None and end is not None:
            raise ValueError("OANDA takes at most two of start, end and count")
        params: dict[str, Any] = {"granularity": granularity, "price": price}
        if start is not None:
            params["from"] = rfc3339(start)
        if end is not None:
            params["to"] = rfc3339(end)
        if count is not None:
            params["count"] = count
        endpoint = instrument_endpoints.InstrumentsCandles(instrument=instrument, params=params)
        answer = self.request(endpoint)
        candles = answer.get("candles", []) if isinstance(answer, dict) else []
        frame = oanda_candles_frame(candles)
        unreadable = frame[["ts", "open", "high", "low", "close"]].isna().any(axis=1)
        if unreadable.any():
            raise OandaError(
                f"OANDA candles for {instrument} had {int(unreadable.sum())} unreadable "
                "candle(s); report this with the request time"
            )
        return frame

    def account_summary(self, account: str) -> dict[str, Any]:
        """GET /v3/accounts/{account}/summary: the `account` object (balance, NAV, …)."""
        answer = self.request(accounts_endpoints.AccountSummary(accountID=account))
        summary: dict[str, Any] = answer["account"]
        return summary

    def account_instruments(
        self, account: str, names: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """GET /v3/accounts/{account}/instruments: tradeable instruments (all, or `names`)."""
        params = {"instruments": ",".join(names)} if names else None
        endpoint = accounts_endpoints.AccountInstruments(accountID=account, params=params)
        found: list[dict[str, Any]] = self.request(endpoint)["instruments"]
        return found

    def _remember_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.headers = dict(response.headers)


def _register_environment(api_url: str, stream_url: str) -> str:
    """Add the URLs to oandapyV20's TRADING_ENVIRONMENTS under a key of their own."""
    digest = hashlib.sha1(f"{api_url} {stream_url}".encode()).hexdigest()[:10]
    key = f"micro-{digest}"
    v20_module.TRADING_ENVIRONMENTS[key] = {"api": api_url, "stream": stream_url}
    return key


def _error_message(body: str) -> str:
    """OANDA's errorMessage from an error body, or the body's start."""
    try:
        decoded = json.loads(body)
    except (TypeError, ValueError):
        return (body or "").strip()[:200] or "no message"
    if isinstance(decoded, dict) and decoded.get("errorMessage"):
        return str(decoded["errorMessage"])
    return str(decoded)[:200]


def _error_body(body: str) -> Any:
    """An error answer's decoded JSON (None when it is not JSON)."""
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (seconds form), capped; None when absent or odd."""
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer within the timeout"
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return "connection failed or dropped"
    if isinstance(exc, json.JSONDecodeError):
        return "a truncated or invalid JSON answer"
    return type(exc).__name__


class _QuietLibrary(logging.Filter):
    """oandapyV20 logs every failed request as ERROR; this client reports them itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL


_LIBRARY_LOGGER = logging.getLogger("oandapyV20.oandapyV20")
if not any(isinstance(f, _QuietLibrary) for f in _LIBRARY_LOGGER.filters):
    _LIBRARY_LOGGER.addFilter(_QuietLibrary())
