"""The base Output contract and the recording fake shipped with the package."""

from __future__ import annotations

import logging

import pytest

from sonify.events import ControlChange, Event, NoteOff, NoteOn, OscMessage, Tempo
from sonify.outputs import RecordingOutput
from sonify.outputs.base import Output


class Broken(Output):
    name = "broken"

    def _send(self, event: Event) -> None:
        raise OSError("the wire is cut")

    def _panic(self) -> None:
        raise OSError("still cut")

    def _close(self) -> None:
        raise OSError("cannot even close")


def test_an_output_whose_transmit_raises_never_raises_and_counts_drops(
        caplog: pytest.LogCaptureFixture) -> None:
    out = Broken()
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            out.send(NoteOn(float(i), 0, 60, 100))
        out.panic()
        out.close()
    assert out.stats.dropped == 6
    assert out.stats.sent == 0
    assert out.stats.last_error == "still cut"
    assert sum("dropped an event" in r.message for r in caplog.records) == 1  # rate-limited
    assert not out.connected


def test_a_closed_output_ignores_sends() -> None:
    out = RecordingOutput()
    out.close()
    out.send(NoteOn(0.0, 0, 60, 100))
    out.panic()
    assert out.sent == [] and out.panics == []


def test_recording_output_keeps_what_was_sent_and_when() -> None:
    now = [10.0]
    out = RecordingOutput(lambda: now[0])
    out.send(NoteOn(1.0, 0, 60, 100))
    now[0] = 10.5
    out.send(NoteOn(1.5, 1, 64, 90))
    out.send(ControlChange(1.5, 0, 1, 3))
    out.send(NoteOff(2.0, 0, 60))
    out.panic()
    assert [t for t, _ in out.sent] == [10.0, 10.5, 10.5, 10.5]
    assert [n.pitch for n in out.notes_on] == [60, 64]
    assert [n.pitch for n in out.notes_off] == [60]
    assert out.held() == {(1, 64)}
    assert out.panics == [10.5]
    assert out.stats.sent == 4


def test_recording_output_without_a_clock_stamps_the_event_time() -> None:
    out = RecordingOutput()
    out.send(NoteOn(3.25, 0, 60, 100))
    assert out.sent[0][0] == 3.25


def test_a_midi_only_recording_output_skips_osc_without_counting_a_drop() -> None:
    out = RecordingOutput(midi_only=True)
    out.send(OscMessage(0.0, "/x", (1.0,)))
    out.send(Tempo(0.0, 100.0))
    out.send(NoteOn(0.0, 0, 60, 100))
    assert len(out.events) == 1
    assert out.stats.dropped == 0


def test_a_failing_recording_output_counts_drops() -> None:
    out = RecordingOutput(fail=True)
    out.send(NoteOn(0.0, 0, 60, 100))
    assert out.stats.dropped == 1 and out.events == []


def test_simulated_reconnect_calls_back() -> None:
    out = RecordingOutput()
    seen: list[Output] = []
    out.on_reconnect = seen.append
    out.simulate_reconnect()
    assert seen == [out] and out.stats.reconnects == 1
