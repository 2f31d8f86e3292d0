"""Test doubles that speak real protocols: the fake OANDA v20 server."""

from tests.fakes.oanda_v20 import AccountState, ApiError, Call, FakeOanda, Reply

__all__ = ["AccountState", "ApiError", "Call", "FakeOanda", "Reply"]
