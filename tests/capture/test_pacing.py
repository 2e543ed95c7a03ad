"""Real-time pacing on a fake clock: absolute deadlines, no drift, no burst after a stall."""

from __future__ import annotations

import threading

import pytest

from sonify.capture.pacing import Pacer


class FakeTime:
    """A clock whose ``wait`` sleeps by moving time on, overshooting like a real sleep."""

    def __init__(self, overshoot_s: float = 0.0) -> None:
        self.now_s = 100.0
        self.overshoot_s = overshoot_s
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        self.now_s += timeout + self.overshoot_s
        return False  # never stopped


def paced(fake: FakeTime, fps: float = 10.0) -> Pacer:
    stop = threading.Event()
    stop.wait = fake.wait  # type: ignore[method-assign]
    return Pacer(fps, realtime=True, stop=stop, clock=fake.clock)


def test_offline_times_are_index_over_fps_without_waiting() -> None:
    pacer = Pacer(25.0, realtime=False, stop=threading.Event())
    assert [pacer.wait(index) for index in range(4)] == [0.0, 0.04, 0.08, 0.12]


def test_sleep_overshoot_does_not_accumulate() -> None:
    fake = FakeTime(overshoot_s=0.003)
    pacer = paced(fake)
    times = [pacer.wait(index) for index in range(50)]
    assert times[0] == 100.0
    assert times[49] == pytest.approx(100.0 + 4.9 + 0.003)  # one overshoot, not 49


def test_slightly_late_frame_catches_up_on_the_same_grid() -> None:
    fake = FakeTime()
    pacer = paced(fake)
    pacer.wait(0)
    fake.now_s += 0.15  # work took 1.5 periods: frame 1 is late by half a period
    assert pacer.wait(1) == pytest.approx(100.15)  # delivered at once
    assert pacer.wait(2) == pytest.approx(100.2)  # and frame 2 is back on the grid


def test_stall_is_not_followed_by_a_burst() -> None:
    fake = FakeTime()
    pacer = paced(fake)
    pacer.wait(0)
    fake.now_s += 1.0  # the consumer stalled for ten periods
    resumed = pacer.wait(1)
    assert resumed == pytest.approx(101.0)
    assert pacer.wait(2) == pytest.approx(101.1)  # a period later, not immediately
    assert pacer.wait(3) == pytest.approx(101.2)


def test_stop_ends_the_wait() -> None:
    stop = threading.Event()
    pacer = Pacer(0.1, realtime=True, stop=stop)
    assert pacer.wait(0) is not None
    stop.set()
    assert pacer.wait(1) is None
