"""OANDA's request limits on the client side: a sliding window never holds more than the rate."""

from __future__ import annotations

import pytest

from micro.live.pacing import Pacer


class FakeTime:
    """A monotonic clock that only moves when something waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_no_window_of_a_second_ever_holds_more_than_the_rate() -> None:
    clock = FakeTime()
    pacer = Pacer(100, 1.0, monotonic=clock.monotonic, wait=clock.wait)
    stamps = []
    for _ in range(350):
        pacer.acquire()
        stamps.append(clock.now)
        clock.now += 0.001  # a request takes a millisecond
    for i, start in enumerate(stamps):
        inside = [t for t in stamps[i:] if t < start + 1.0]
        assert len(inside) <= 100
    assert stamps[100] == pytest.approx(1.0)  # the 101st waits for the first to age out
    assert pacer.waited_seconds == pytest.approx(sum(clock.waits))


def test_two_new_connections_a_second_at_most() -> None:
    clock = FakeTime()
    pacer = Pacer(2, 1.0, monotonic=clock.monotonic, wait=clock.wait)
    stamps = []
    for _ in range(6):
        pacer.acquire()
        stamps.append(clock.now)
    assert stamps == pytest.approx([0.0, 0.0, 1.0, 1.0, 2.0, 2.0])


def test_a_pacer_under_its_rate_never_waits() -> None:
    clock = FakeTime()
    pacer = Pacer(2, 1.0, monotonic=clock.monotonic, wait=clock.wait)
    for _ in range(10):
        pacer.acquire()
        clock.now += 0.6
    assert clock.waits == []


def test_a_wait_that_raises_gives_up_the_event() -> None:
    clock = FakeTime()

    def stopping(seconds: float) -> None:
        raise InterruptedError("stopping")

    pacer = Pacer(1, 1.0, monotonic=clock.monotonic, wait=stopping)
    pacer.acquire()
    with pytest.raises(InterruptedError):
        pacer.acquire()
    clock.now = 5.0
    pacer.acquire()  # the failed attempt took no slot
