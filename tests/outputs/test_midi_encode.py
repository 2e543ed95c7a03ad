"""MIDI bytes, without a port: each event kind, the panic sequence, finding ports by name."""

from __future__ import annotations

import mido
import pytest

from sonify.events import (
    ControlChange,
    NoteOff,
    NoteOn,
    OscMessage,
    PitchBend,
    ProgramChange,
    Tempo,
)
from sonify.outputs.midi import (
    MidiOutput,
    MidiPortError,
    available_apis,
    encode,
    match_port,
    panic_messages,
)


def test_each_midi_event_has_its_exact_bytes() -> None:
    assert encode(NoteOn(0.0, 0, 60, 100)) == [0x90, 0x3C, 0x64]
    assert encode(NoteOn(0.0, 15, 127, 1)) == [0x9F, 0x7F, 0x01]
    assert encode(NoteOff(0.0, 3, 60)) == [0x83, 0x3C, 0x40]
    assert encode(ControlChange(0.0, 1, 74, 127)) == [0xB1, 0x4A, 0x7F]
    assert encode(ProgramChange(0.0, 9, 42)) == [0xC9, 0x2A]
    assert encode(PitchBend(0.0, 0, 0)) == [0xE0, 0x00, 0x40]
    assert encode(PitchBend(0.0, 2, -8192)) == [0xE2, 0x00, 0x00]
    assert encode(PitchBend(0.0, 2, 8191)) == [0xE2, 0x7F, 0x7F]


@pytest.mark.parametrize("event, message", [
    (NoteOn(0.0, 5, 64, 90), mido.Message("note_on", channel=5, note=64, velocity=90)),
    (NoteOff(0.0, 5, 64), mido.Message("note_off", channel=5, note=64, velocity=64)),
    (ControlChange(0.0, 7, 1, 33), mido.Message("control_change", channel=7, control=1,
                                                 value=33)),
    (PitchBend(0.0, 1, -1234), mido.Message("pitchwheel", channel=1, pitch=-1234)),
    (PitchBend(0.0, 1, 4321), mido.Message("pitchwheel", channel=1, pitch=4321)),
    (ProgramChange(0.0, 0, 127), mido.Message("program_change", channel=0, program=127)),
])
def test_encoding_agrees_with_mido(event: object, message: mido.Message) -> None:
    assert encode(event) == message.bytes()  # type: ignore[arg-type]


def test_events_that_are_not_midi_encode_to_nothing() -> None:
    assert encode(OscMessage(0.0, "/x", (1,))) is None
    assert encode(Tempo(0.0, 120.0)) is None


def test_panic_is_sustain_off_all_notes_off_all_sound_off_on_every_channel() -> None:
    msgs = panic_messages()
    assert len(msgs) == 48
    assert msgs[:3] == [[0xB0, 64, 0], [0xB0, 123, 0], [0xB0, 120, 0]]
    assert msgs[-3:] == [[0xBF, 64, 0], [0xBF, 123, 0], [0xBF, 120, 0]]
    assert {m[0] & 0x0F for m in msgs} == set(range(16))


def test_ports_are_found_by_name_ignoring_case_and_an_exact_name_wins() -> None:
    ports = ["system:midi_playback_1", "dumper:input2", "dumper:input", "FLUID:midi_00"]
    assert match_port(ports, "dumper:input") == 2
    assert match_port(ports, "DUMPER") == 1
    assert match_port(ports, "fluid") == 3
    assert match_port(ports, "nosuch") is None
    assert match_port([], "fluid") is None


def test_port_and_virtual_are_exclusive() -> None:
    with pytest.raises(ValueError, match="port= .* or virtual="):
        MidiOutput()
    with pytest.raises(ValueError, match="not both"):
        MidiOutput("a", virtual="b")


def test_an_unknown_midi_system_is_a_clear_error() -> None:
    with pytest.raises(MidiPortError, match="unknown MIDI system 'pulse'"):
        MidiOutput("x", api="pulse")


def test_available_apis_uses_our_names() -> None:
    apis = available_apis()
    assert apis and set(apis) <= {"alsa", "jack", "coremidi", "winmm"}
