"""`micro health SERVICE`: exit 0 when the service's status file is fresh, else 1 and why.

Docker's HEALTHCHECK runs it inside each service's container. A service is healthy when its
status file (trainer: monitoring/trainer/status.json, validator: validation/status.json, live:
live/state.json) is readable, was written within the max age, and does not say it stopped.
Default max ages (readers.stale_after_seconds): 3 × the writer's interval, at least 30 s —
trainer 3 × train.report_every_seconds, validator 3 × validation.poll_seconds, live
3 × (60 s bar + live.poll_seconds). `--max-age SECONDS` overrides.
"""

from __future__ import annotations

from micro.config import Config
from micro.home import Home
from micro.monitoring.readers import (
    Liveness,
    format_age,
    liveness,
    now_unix,
    read_status,
    stale_after_seconds,
    tail_jsonl,
)
from micro.volumes import journal_path


def check(
    home: Home, config: Config, service: str, max_age: float | None = None, now: float | None = None
) -> Liveness:
    """Whether `service` is up, judged from its status file alone (and the live journal's end)."""
    now = now_unix() if now is None else now
    status = read_status(home, service)
    stopped = False
    if service == "live":
        last = tail_jsonl(journal_path(home), 1)
        stopped = bool(last) and last[-1].get("kind") == "stop"
    limit = stale_after_seconds(service, config) if max_age is None else max_age
    return liveness(status, limit, now, stopped=stopped)


def health_line(result: Liveness) -> str:
    """The one line `micro health` prints."""
    if result.up:
        age = format_age(result.age_seconds or 0.0)
        return f"{result.service} healthy: {result.state}, status written {age} ago"
    return f"{result.service} unhealthy: {result.reason}"
