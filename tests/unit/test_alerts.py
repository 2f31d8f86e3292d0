"""Alerts through apprise to a webhook on 127.0.0.1: delivered, deduplicated, rate-limited,
never blocking the caller, and never leaking a target URL."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from micro.alerts import Alerter, alert_urls
from micro.config import AlertsConfig
from micro.errors import ConfigError
from micro.redaction import redact_text
from tests.alert_sink import alert_sink
from tests.helpers import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_alert_reaches_the_webhook_with_its_title_body_and_level() -> None:
    with alert_sink() as sink:
        alerter = Alerter(AlertsConfig(), "live", [sink.url])
        assert alerter.send("halt", "drawdown halt", "equity fell 300 pips", level="failure")
        alerter.close()
        assert sink.titles() == ["micro live: drawdown halt"]
        assert sink.messages()[0].startswith("equity fell 300 pips\n")
        assert sink.received[0]["type"] == "failure"
        assert alerter.delivered == 1 and alerter.failed == 0


def test_the_same_key_within_the_dedupe_window_is_sent_once() -> None:
    clock = Clock()
    with alert_sink() as sink:
        alerter = Alerter(AlertsConfig(dedupe_seconds=60.0), "live", [sink.url], monotonic=clock)
        assert alerter.send("mismatch", "mismatch", "a", key="mismatch")
        clock.now += 30
        assert not alerter.send("mismatch", "mismatch", "b", key="mismatch")
        assert alerter.send("halt", "other", "c", key="halt")  # another key goes through
        clock.now += 31
        assert alerter.send("mismatch", "mismatch", "d", key="mismatch")
        alerter.close()
        assert [m.split("\n")[0] for m in sink.messages()] == ["a", "c", "d"]
        assert alerter.deduplicated == 1


def test_past_the_hourly_limit_alerts_are_held_back_and_counted_in_the_next() -> None:
    clock = Clock()
    with alert_sink() as sink:
        config = AlertsConfig(max_per_hour=2, dedupe_seconds=0.0)
        alerter = Alerter(config, "validator", [sink.url], monotonic=clock)
        sent = [alerter.send("k", f"t{i}", f"m{i}", key=f"k{i}") for i in range(5)]
        assert sent == [True, True, False, False, False]
        clock.now += 3600.0
        assert alerter.send("k", "t5", "m5", key="k5")
        alerter.close()
        assert sink.titles() == ["micro validator: t0", "micro validator: t1",
                                 "micro validator: t5"]  # fmt: skip
        assert "3 earlier alert(s) held back" in sink.messages()[-1]


def test_a_slow_channel_never_blocks_the_sender() -> None:
    with alert_sink(delay_seconds=3.0) as slow:
        config = AlertsConfig(timeout_seconds=1.0, dedupe_seconds=0.0)
        alerter = Alerter(config, "live", [slow.url])
        started = time.monotonic()
        for i in range(5):
            alerter.send("halt", f"h{i}", "x", key=f"h{i}")
        assert time.monotonic() - started < 0.2
        wait_for(lambda: alerter.failed >= 1, timeout=30)  # timed out after 1 s, not 3


def test_a_dead_channel_is_counted_as_failed_and_the_others_still_get_it() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"json://127.0.0.1:{s.getsockname()[1]}/hook"
    with alert_sink() as sink:
        alerter = Alerter(AlertsConfig(timeout_seconds=2.0), "up", [dead, sink.url])
        alerter.send("crash", "trainer crashed", "exit 1")
        alerter.close()
        assert alerter.failed == 1 and alerter.delivered == 1
        assert sink.titles() == ["micro up: trainer crashed"]


def test_no_targets_means_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MICRO_ALERT_URLS", raising=False)
    alerter = Alerter.from_env(AlertsConfig(), "live")
    assert not alerter.enabled and not alerter.send("halt", "t", "b")
    alerter.close()


def test_urls_come_from_the_environment_and_never_reach_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "tgram://123456789:AAHsecretTOKENxyz/987654"
    env = {"MICRO_ALERT_URLS": f"{secret}, json://127.0.0.1:9/hook"}
    assert alert_urls(env) == [secret, "json://127.0.0.1:9/hook"]
    with caplog.at_level(logging.DEBUG):
        Alerter.from_env(AlertsConfig(), "live", env)
        logging.getLogger("micro.test").warning("target is %s", secret)
    assert "AAHsecretTOKENxyz" not in redact_text(caplog.text)
    assert redact_text(f"url {secret} here") == "url *** here"


def test_a_url_apprise_cannot_read_is_one_clear_line_without_the_url() -> None:
    with pytest.raises(ConfigError) as caught:
        Alerter(AlertsConfig(), "live", ["json://127.0.0.1:9/ok", "nosuch://token-abcdef/x"])
    text = str(caught.value)
    assert "MICRO_ALERT_URLS: target 2 (nosuch://…)" in text and "token-abcdef" not in text
