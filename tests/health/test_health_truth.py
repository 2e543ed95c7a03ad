"""Health tells the truth: each thing that can go wrong turns it not-ok, says why, and clears
when it is over. The judgement on a manual clock first, then a real running engine whose music
thread, dispatcher and outputs are made to fail."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sonify.commands import Extra
from sonify.config import Config
from sonify.events import ControlChange, Event
from sonify.install.health.monitor import HealthLimits, HealthMonitor
from sonify.live.runtime import Runtime
from sonify.outputs.base import Output
from sonify.outputs.midifile import MidiFileRecorder
from sonify.outputs.recording import RecordingOutput
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler
from tests.conftest import wait_until
from tests.health.test_runtime_health import free_tcp_port

LIMITS = HealthLimits(max_lateness_ms=20.0, window_s=5.0, max_block_lag_s=0.05,
                      music_stall_s=2.0)


class FlakyOutput(Output):
    """Fails every send while ``failing``; its ``problem`` is whatever the test sets."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.trouble: str | None = None

    @property
    def problem(self) -> str | None:
        return self.trouble

    def _send(self, event: Event) -> None:
        if self.failing:
            raise OSError("the peer refused it")


def cc(t: float) -> ControlChange:
    return ControlChange(t, 0, 1, 64)


# -- the judgement, on a manual clock ---------------------------------------------------------

def test_all_is_well_says_nothing() -> None:
    clock = ManualTime(100.0)
    sched = Scheduler([RecordingOutput()], clock)
    mon = HealthMonitor(LIMITS)
    sched.schedule([cc(100.0 + i * 0.01) for i in range(100)])
    sched.run_until(102.0)
    mon.block(102.0, 0.001)
    assert mon.problems(102.0, sched, sched.outputs) == []


def test_late_dispatch_is_reported_with_its_p99_and_forgotten_after_the_window() -> None:
    clock = ManualTime(100.0)
    sched = Scheduler([RecordingOutput()], clock)
    mon = HealthMonitor(LIMITS)
    sched.schedule([cc(100.0 + i * 0.01) for i in range(50)])
    clock.set(100.6)  # everything due so far goes out at once, up to 600 ms late
    sched.dispatch_due()
    mon.block(100.6, 0.0)
    problems = mon.problems(100.6, sched, sched.outputs)
    assert len(problems) == 1 and problems[0].startswith("notes are late: dispatch lateness p99")
    clock.set(106.0)
    mon.block(106.0, 0.0)
    assert mon.problems(106.0, sched, sched.outputs) == []


def test_an_event_waiting_past_its_time_is_reported_even_when_nothing_is_sent() -> None:
    clock = ManualTime(100.0)
    sched = Scheduler([RecordingOutput()], clock)  # nobody dispatches: a stuck dispatcher
    mon = HealthMonitor(LIMITS)
    sched.schedule([cc(100.0)])
    clock.set(100.5)
    mon.block(100.5, 0.0)
    assert mon.problems(100.5, sched, sched.outputs) == [
        "the dispatcher is behind: an event is 0.50 s overdue"]


def test_a_missed_music_deadline_is_reported_then_forgotten() -> None:
    sched = Scheduler([], ManualTime(0.0))
    mon = HealthMonitor(LIMITS)
    mon.block(10.0, 0.3)
    assert mon.problems(10.5, sched, []) == [
        "the music thread missed 1 deadline(s) in the last 5 s (worst 300 ms late)"]
    mon.block(16.0, 0.0)
    assert mon.problems(16.0, sched, []) == [] and mon.blocks_late == 1


def test_a_silent_music_thread_is_reported() -> None:
    sched = Scheduler([], ManualTime(0.0))
    mon = HealthMonitor(LIMITS)
    mon.block(10.0, 0.0)
    assert mon.problems(11.0, sched, []) == []
    assert mon.problems(13.5, sched, []) == ["the music thread has not run for 3.5 s"]
    assert mon.problems(13.5, sched, [], music_running=False) == []


def test_an_output_with_a_problem_or_recent_drops_is_reported() -> None:
    sched = Scheduler([], ManualTime(0.0))
    out = FlakyOutput()
    mon = HealthMonitor(LIMITS)
    mon.sample_outputs(0.0, [out])
    out.trouble = "JACK server is gone"
    assert mon.problems(0.5, sched, [out]) == ["flaky: JACK server is gone"]
    out.trouble = None
    out.failing = True
    for _ in range(3):
        out.send(cc(1.0))
    mon.sample_outputs(1.0, [out])
    assert mon.problems(1.0, sched, [out]) == [
        "flaky: dropped 3 event(s) in the last 5 s (the peer refused it)"]
    out.failing = False
    for t in range(2, 9):
        mon.sample_outputs(float(t), [out])
    assert mon.problems(8.0, sched, [out]) == []


# -- a real running engine --------------------------------------------------------------------

def _health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


def city_config(http_port: int) -> Config:
    c = Config()
    c.source.input = "demo:city"
    c.source.width, c.source.height = 320, 180
    c.scene.name = "city"
    c.scene.watch = False
    c.control.port = 0
    c.http.port = http_port
    return c


@pytest.fixture
def engine() -> Iterator[tuple[Runtime, str, FlakyOutput]]:
    port = free_tcp_port()
    c = city_config(port)
    c.health.window_s = 1.5  # quick to forget, so the test sees health come back
    c.health.max_lateness_ms = 200.0  # generous: a loaded test machine is not a fault
    out = FlakyOutput()
    rt = Runtime(c, [out])
    runner = threading.Thread(target=rt.run, args=(60.0,), daemon=True)
    runner.start()
    base = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: _health(base)[0] == 200 if _reachable(base) else False, 30.0, 0.1)
    try:
        yield rt, base, out
    finally:
        rt.stop()
        runner.join(10.0)


def _reachable(base: str) -> bool:
    try:
        _health(base)
        return True
    except OSError:
        return False


def test_a_stalled_music_thread_turns_health_503_and_it_comes_back(
        engine: tuple[Runtime, str, FlakyOutput]) -> None:
    rt, base, _ = engine
    rt.extra_commands["stall"] = lambda seconds: time.sleep(float(seconds))  # type: ignore[arg-type]
    rt.command(Extra("stall", 2.6))
    seen: list[dict] = []

    def stalled() -> bool:
        code, body = _health(base)
        seen.append(body)
        return code == 503 and any("the music thread has not run" in p
                                   for p in body["problems"])

    assert wait_until(stalled, 10.0, 0.1), seen[-1]
    assert wait_until(lambda: any("missed 1 deadline" in p for p in _health(base)[1]["problems"]),
                      10.0, 0.05)
    assert wait_until(lambda: _health(base)[0] == 200, 15.0, 0.2), _health(base)
    assert rt.monitor.blocks_late >= 1


def test_an_output_that_drops_or_is_gone_turns_health_503_and_says_which(
        engine: tuple[Runtime, str, FlakyOutput]) -> None:
    rt, base, out = engine
    out.failing = True
    assert wait_until(lambda: _health(base)[0] == 503, 10.0, 0.1)
    problems = _health(base)[1]["problems"]
    assert any(p.startswith("flaky: dropped") and "the peer refused it" in p for p in problems)
    out.failing = False
    assert wait_until(lambda: _health(base)[0] == 200, 15.0, 0.2), _health(base)
    out.trouble = "JACK server is gone; waiting for it to return"
    code, body = _health(base)
    assert code == 503 and body["problems"] == ["flaky: JACK server is gone; waiting for it to "
                                                "return"]
    assert body["outputs"][0]["problem"] == out.trouble
    out.trouble = None
    assert _health(base)[0] == 200


def test_late_notes_turn_health_503(engine: tuple[Runtime, str, FlakyOutput]) -> None:
    rt, base, out = engine
    slow = out._send

    def sluggish(event: Event) -> None:  # a peer that takes 50 ms per message
        time.sleep(0.05)
        slow(event)

    out._send = sluggish  # type: ignore[method-assign]
    assert wait_until(lambda: any(p.startswith("notes are late")
                                  for p in _health(base)[1]["problems"]), 15.0, 0.2)
    out._send = slow  # type: ignore[method-assign]
    assert wait_until(lambda: _health(base)[0] == 200, 20.0, 0.2), _health(base)


def test_a_recording_that_cannot_be_written_turns_health_503(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the recording's folder should be")  # ENOTDIR, even as root
    port = free_tcp_port()
    c = city_config(port)
    recorder = MidiFileRecorder(blocker / "show.mid")
    rt = Runtime(c, [recorder, RecordingOutput()])
    runner = threading.Thread(target=rt.run, args=(30.0,), daemon=True)
    runner.start()
    base = f"http://127.0.0.1:{port}"
    try:
        def says_why() -> bool:
            try:
                code, body = _health(base)
            except OSError:
                return False
            return code == 503 and any("cannot write the recording" in p
                                       for p in body["problems"])

        assert wait_until(says_why, 20.0, 0.2), _health(base) if _reachable(base) else None
        assert rt.scheduler.notes_sent > 0  # the show goes on
    finally:
        rt.stop()
        runner.join(15.0)
    assert recorder.failed
