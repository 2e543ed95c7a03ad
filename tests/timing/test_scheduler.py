"""The scheduler on a manual clock: order, the note-off ledger, panic, stop."""

from __future__ import annotations

import threading
import time

import pytest

from sonify.events import ControlChange, Event, Note, NoteOff, NoteOn, OscMessage
from sonify.outputs.base import Output
from sonify.timing.clock import ManualTime, RealTime, TempoClock
from sonify.timing.scheduler import Scheduler


class Log(Output):
    """Records (clock time at send, event); optionally only MIDI."""

    def __init__(self, clock: ManualTime | RealTime, midi_only: bool = False) -> None:
        super().__init__()
        self.clock = clock
        self.midi_only = midi_only
        self.sent: list[tuple[float, Event]] = []
        self.panics = 0

    def wants(self, event: Event) -> bool:
        return not (self.midi_only and isinstance(event, OscMessage))

    def _send(self, event: Event) -> None:
        self.sent.append((self.clock.now(), event))

    def _panic(self) -> None:
        self.panics += 1


def setup() -> tuple[ManualTime, Log, Scheduler]:
    clock = ManualTime()
    out = Log(clock)
    return clock, out, Scheduler([out], clock)


def kinds(out: Log) -> list[tuple[float, str, int]]:
    res = []
    for t, ev in out.sent:
        if isinstance(ev, NoteOn):
            res.append((round(t, 9), "on", ev.pitch))
        elif isinstance(ev, NoteOff):
            res.append((round(t, 9), "off", ev.pitch))
    return res


def test_every_note_on_gets_its_note_off_at_the_right_time() -> None:
    _, out, sched = setup()
    sched.schedule([Note(1.0, 0, 60, 100, 0.5), Note(2.0, 0, 64, 90, 0.25)])
    sched.run_until(10.0)
    assert kinds(out) == [(1.0, "on", 60), (1.5, "off", 60), (2.0, "on", 64), (2.25, "off", 64)]
    assert sched.held_notes() == []


def test_events_are_sent_in_time_order_whatever_the_schedule_order() -> None:
    _, out, sched = setup()
    sched.schedule([ControlChange(3.0, 0, 74, 1), ControlChange(1.0, 0, 74, 2),
                    ControlChange(2.0, 0, 74, 3)])
    sched.run_until(5.0)
    assert [ev.value for _, ev in out.sent] == [2, 3, 1]
    assert [t for t, _ in out.sent] == [1.0, 2.0, 3.0]


def test_retrigger_ends_the_old_note_first_and_its_late_note_off_is_skipped() -> None:
    _, out, sched = setup()
    sched.schedule([Note(0.0, 0, 60, 100, 2.0), Note(1.0, 0, 60, 80, 0.5)])
    sched.run_until(5.0)
    # old note ended at 1.0 before the new one starts; the old note-off at 2.0 is not sent
    assert kinds(out) == [(0.0, "on", 60), (1.0, "off", 60), (1.0, "on", 60), (1.5, "off", 60)]


def test_repeated_note_at_the_same_time_as_its_end_is_off_then_on() -> None:
    _, out, sched = setup()
    sched.schedule([Note(0.0, 0, 60, 100, 1.0), Note(1.0, 0, 60, 100, 1.0)])
    sched.run_until(5.0)
    assert kinds(out) == [(0.0, "on", 60), (1.0, "off", 60), (1.0, "on", 60), (2.0, "off", 60)]


def test_panic_ends_held_notes_then_sends_the_controller_sequence() -> None:
    clock, out, sched = setup()
    sched.schedule([Note(0.0, 0, 60, 100, 10.0), Note(0.0, 3, 67, 100, 10.0)])
    sched.run_until(1.0)
    assert sched.held_notes() == [(0, 60), (3, 67)]
    sched.panic()
    offs = [(ev.channel, ev.pitch) for _, ev in out.sent if isinstance(ev, NoteOff)]
    assert offs == [(0, 60), (3, 67)] and out.panics == 1
    sched.run_until(20.0)  # the notes' own note-offs are skipped: already ended
    assert len([ev for _, ev in out.sent if isinstance(ev, NoteOff)]) == 2


def test_stop_drops_pending_notes_and_leaves_nothing_hanging() -> None:
    _, out, sched = setup()
    sched.schedule([Note(0.0, 0, 60, 100, 5.0), Note(2.0, 0, 62, 100, 1.0)])
    sched.run_until(1.0)
    sched.stop()
    ons = [ev for _, ev in out.sent if isinstance(ev, NoteOn)]
    offs = [ev for _, ev in out.sent if isinstance(ev, NoteOff)]
    assert [e.pitch for e in ons] == [60] and [e.pitch for e in offs] == [60]
    assert sched.pending() == 0 and sched.held_notes() == []


def test_each_output_gets_only_what_it_wants_and_its_own_latency() -> None:
    clock = ManualTime()
    midi, everything = Log(clock, midi_only=True), Log(clock)
    everything.latency_s = 0.5
    sched = Scheduler([midi, everything], clock)
    sched.schedule([OscMessage(1.0, "/x", (1.0,)), Note(1.0, 0, 60, 100, 1.0)])
    sched.run_until(5.0)
    assert [type(ev).__name__ for _, ev in midi.sent] == ["NoteOn", "NoteOff"]
    assert [t for t, _ in everything.sent] == [1.5, 1.5, 2.5]


def test_reconnecting_output_gets_a_panic() -> None:
    clock, out, sched = setup()
    sched.schedule([Note(0.0, 0, 60, 100, 10.0)])
    sched.run_until(1.0)
    assert out.on_reconnect is not None
    out.on_reconnect(out)
    assert out.panics == 1 and sched.held_notes() == []


def test_output_errors_never_reach_the_scheduler() -> None:
    class Broken(Output):
        def _send(self, event: Event) -> None:
            raise OSError("port gone")

    clock = ManualTime()
    broken, log = Broken(), Log(clock)
    sched = Scheduler([broken, log], clock)
    sched.schedule([Note(0.0, 0, 60, 100, 1.0)])
    sched.run_until(2.0)
    assert broken.stats.dropped == 2 and len(log.sent) == 2


def test_lateness_is_zero_on_a_manual_clock() -> None:
    _, _, sched = setup()
    sched.schedule([ControlChange(i * 0.001, 0, 1, i % 128) for i in range(100)])
    sched.run_until(1.0)
    stats = sched.lateness()
    assert stats.count == 100 and stats.p99_ms == 0.0


def test_real_time_dispatch_sends_each_event_near_its_time() -> None:
    clock = RealTime()
    out = Log(clock)
    sched = Scheduler([out], clock)
    sched.start()
    try:
        t0 = clock.now() + 0.05
        sched.schedule([ControlChange(t0 + i * 0.01, 0, 1, i) for i in range(20)])
        deadline = time.monotonic() + 5.0
        while len(out.sent) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sched.stop()
    assert len(out.sent) == 20
    for (sent_at, ev) in out.sent:
        assert ev.t <= sent_at < ev.t + 0.1  # never early; generous bound for a shared VM
    assert out.panics == 1


def test_schedule_from_another_thread_wakes_the_dispatcher_early() -> None:
    clock = RealTime()
    out = Log(clock)
    sched = Scheduler([out], clock)
    sched.start()
    try:
        sched.schedule([ControlChange(clock.now() + 30.0, 0, 1, 0)])  # far away
        time.sleep(0.05)
        done = threading.Event()
        soon = clock.now() + 0.02
        sched.schedule([ControlChange(soon, 0, 1, 1)])
        deadline = time.monotonic() + 3.0
        while not out.sent and time.monotonic() < deadline:
            done.wait(0.005)
        assert out.sent and out.sent[0][1].value == 1
    finally:
        sched.stop()


def test_tempo_clock_maps_beats_and_keeps_the_grid_across_tempo_changes() -> None:
    tc = TempoClock(120.0, origin_s=10.0)
    assert tc.time_at(4.0) == pytest.approx(12.0)
    tc.set_tempo(60.0, at_s=12.0)
    assert tc.beat_at(12.0) == pytest.approx(4.0)
    assert tc.time_at(5.0) == pytest.approx(13.0)
    with pytest.raises(ValueError, match="BPM"):
        tc.set_tempo(0.0, 13.0)


def test_a_note_is_counted_once_however_many_outputs_play_it() -> None:
    clock = ManualTime()
    a, b = Log(clock), Log(clock)
    sched = Scheduler([a, b], clock)
    sched.schedule([Note(0.1 * i, 0, 60 + i, 90, 0.05) for i in range(5)])
    sched.run_until(2.0)
    assert sched.notes_sent == 5
    assert sum(isinstance(e, NoteOn) for _, e in a.sent + b.sent) == 10


def test_recent_lateness_covers_only_the_last_seconds() -> None:
    clock, _, sched = setup()
    sched.schedule([ControlChange(1.0, 0, 1, 1)])
    clock.set(1.5)  # 500 ms late
    sched.dispatch_due()
    sched.schedule([ControlChange(10.0 + i * 0.1, 0, 1, 1) for i in range(10)])
    sched.run_until(12.0)  # on time
    assert sched.recent_lateness(0.0).max_ms == pytest.approx(500.0)
    recent = sched.recent_lateness(5.0)
    assert recent.count == 10 and recent.max_ms == 0.0
