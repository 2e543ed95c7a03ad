"""The watchdog decision: ping at half the interval only while capture and dispatch loops beat."""

from __future__ import annotations

import logging

import pytest

from sonify.install.notify import Watchdog


def run(wd: Watchdog, start: float, end: float, *, capture_every: float | None = 1.0,
        dispatch_every: float | None = 0.5, step: float = 0.5) -> list[float]:
    """Step a manual clock from ``start`` to ``end``: loops beat at their pace (None: silent),
    the music loop polls every ``step``; returns the times a ping went out."""
    pings = []
    t = start
    while t <= end + 1e-9:
        if capture_every is not None and abs(t / capture_every - round(t / capture_every)) < 1e-9:
            wd.beat("capture", t)
        if dispatch_every is not None and abs(t / dispatch_every
                                              - round(t / dispatch_every)) < 1e-9:
            wd.beat("dispatch", t)
        if wd.poll(t):
            pings.append(t)
        t = round(t + step, 6)
    return pings


def test_pings_every_half_interval_while_frames_flow_and_the_scheduler_dispatches() -> None:
    wd = Watchdog(30.0)
    assert run(wd, 0.0, 100.0) == [0.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0]
    assert wd.pings == 7


def test_no_ping_before_both_loops_have_beaten() -> None:
    wd = Watchdog(30.0)
    wd.beat("dispatch", 0.0)
    assert not wd.poll(0.0)
    assert wd.stale(0.0) == ["capture loop has not started"]
    wd.beat("capture", 1.0)
    assert wd.poll(1.0)


def test_a_hung_capture_stops_the_pings_and_they_resume_when_it_beats_again(
        caplog: pytest.LogCaptureFixture) -> None:
    wd = Watchdog(30.0, {"capture": 30.0, "dispatch": 5.0})
    assert run(wd, 0.0, 60.0)[-1] == 60.0
    with caplog.at_level(logging.WARNING, logger="sonify.install.notify"):
        # the capture thread hangs right after its beat at 60 s: fine up to 90 s, then silent
        silent = run(wd, 60.5, 200.0, capture_every=None)
        assert silent == [75.0, 90.0]
        assert not wd.healthy(200.0)
        assert wd.stale(200.0) == ["capture loop silent for 140.0 s (limit 30 s)"]
        # systemd would have killed it by now; if the loop comes back first, pinging resumes
        # at once (the last ping is old), then every 15 s again
        assert run(wd, 200.5, 230.0) == [201.0, 216.0]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "capture loop silent" in errors[0].getMessage()
    assert "pinging resumes" in caplog.text


def test_a_stuck_dispatch_loop_stops_the_pings() -> None:
    wd = Watchdog(20.0, {"capture": 30.0, "dispatch": 5.0})
    assert run(wd, 0.0, 20.0) == [0.0, 10.0, 20.0]
    pings = run(wd, 20.5, 120.0, dispatch_every=None)
    assert pings == []  # the dispatcher last beat at 20 s; the next ping was due at 30 s
    assert wd.stale(30.0) == ["dispatch loop silent for 10.0 s (limit 5 s)"]


def test_a_lost_camera_that_is_being_retried_is_healthy() -> None:
    # the camera is unplugged: no frames, but the capture loop beats after every reconnect
    # attempt (back-off up to 5 s), the music plays its idle behaviour: keep pinging
    wd = Watchdog(30.0)
    assert run(wd, 0.0, 300.0, capture_every=5.0) == [15.0 * i for i in range(21)]


def test_silence_outside_opening_hours_is_healthy() -> None:
    # nothing to send: the dispatch loop still wakes every 0.5 s and beats
    wd = Watchdog(30.0)
    assert len(run(wd, 0.0, 3600.0, dispatch_every=0.5)) == 241


def test_without_a_watchdog_interval_it_never_pings_but_still_judges_health() -> None:
    wd = Watchdog(None)
    assert run(wd, 0.0, 60.0) == []
    assert wd.healthy(60.0)
    assert not wd.healthy(100.0)


def test_beats_from_the_future_of_the_polling_thread_count_as_fresh() -> None:
    # another thread may read the clock after the poller did
    wd = Watchdog(30.0)
    wd.beat("capture", 10.001)
    wd.beat("dispatch", 10.002)
    assert wd.poll(10.0)


def test_bad_settings_and_unknown_beats_are_errors() -> None:
    with pytest.raises(ValueError):
        Watchdog(0.0)
    with pytest.raises(ValueError):
        Watchdog(30.0, {})
    with pytest.raises(ValueError):
        Watchdog(30.0, {"capture": 0.0})
    with pytest.raises(ValueError, match="unknown watchdog beat 'camera'"):
        Watchdog(30.0).beat("camera", 0.0)
