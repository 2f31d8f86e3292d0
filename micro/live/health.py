"""The live trader's link to its broker: every call's outcome feeds the circuit breaker.

A failed request counts towards the breaker (`risk.circuit_breaker_errors` in a row open it) and
is journaled with the breaker's state; a successful one closes it again. The trader and its
reconciler share one `BrokerHealth`, so an error met while reconciling halts orders too, and
every error asks for a comparison of the book with the broker (`errors_since_check`).
"""

from __future__ import annotations

import logging

from micro.live.journal import Journal
from micro.live.risk import CircuitBreaker

log = logging.getLogger("micro.live")

MAX_WAIT_SECONDS = 60.0


class BrokerHealth:
    """The circuit breaker over the broker's answers, and the last error for state.json."""

    def __init__(self, breaker: CircuitBreaker, journal: Journal) -> None:
        self.breaker = breaker
        self.journal = journal
        self.last_error: str | None = None
        self.errors_since_check = 0  # errors since the reconciler last compared book and broker

    def allow(self) -> bool:
        """Whether a request may be sent now (the breaker is not open)."""
        return self.breaker.allow()

    def ok(self) -> None:
        """The broker answered."""
        before = self.breaker.state
        self.breaker.record_success()
        if before != "closed":
            self.journal.record("risk", event="circuit_closed")
        self.last_error = None

    def failed(self, what: str, exc: Exception, outcome_unknown: bool = False) -> None:
        """A request during `what` failed (an order's outcome may be unknown)."""
        before = self.breaker.state
        self.breaker.record_failure()
        self.errors_since_check += 1
        self.last_error = f"{what}: {exc}"
        self.journal.record(
            "error",
            during=what,
            error=str(exc),
            outcome_unknown=outcome_unknown,
            circuit=self.breaker.snapshot(),
        )
        log.warning("broker error during %s: %s", what, exc)
        if before != "open" and self.breaker.state == "open":
            self.journal.record(
                "risk", event="circuit_open", errors=self.breaker.consecutive_errors
            )

    def backoff(self, poll_seconds: float) -> float:
        """Seconds to wait after a failed poll: doubling with each error in a row, capped."""
        errors = max(self.breaker.consecutive_errors, 1)
        return min(poll_seconds * 2.0 ** (errors - 1), MAX_WAIT_SECONDS)
