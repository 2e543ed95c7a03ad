"""Markers (the harmony's key, chord, section...) in MIDI files, and nowhere they do not belong."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import pytest

from sonify.events import Marker, Note, NoteOn, Tempo
from sonify.outputs.midifile import MidiFileRecorder
from sonify.outputs.osc import OscOutput
from sonify.outputs.recording import RecordingOutput
from sonify.outputs.smf import encode_midi_file
from sonify.outputs.synth import WavRenderer
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler


def test_a_marker_needs_a_known_kind_and_reads_back_its_fields() -> None:
    m = Marker(1.0, "chord", "name=V7 root=9 pcs=9,1,4,7 bass=9")
    assert m.fields() == {"name": "V7", "root": "9", "pcs": "9,1,4,7", "bass": "9"}
    with pytest.raises(ValueError, match="marker kind"):
        Marker(0.0, "tune", "x=1")


def _markers(data: bytes) -> list[tuple[int, float, str]]:
    mid = mido.MidiFile(file=io.BytesIO(data))
    out = []
    for i, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "marker":
                out.append((i, tick / mid.ticks_per_beat, msg.text))
    return out


def test_markers_are_ff06_meta_events_on_the_tempo_track_at_their_time() -> None:
    events = [Tempo(0.0, 120.0), Marker(0.0, "key", "root=D scale=major pcs=2,4,6,7,9,11,1"),
              Note(0.0, 0, 62, 90, 1.0, "pad"), NoteOn(0.5, 0, 64, 90, "pad"),
              Tempo(1.0, 60.0), Marker(2.0, "chord", "name=V7 root=9 pcs=9,1,4,7 bass=9"),
              Marker(2.0, "cadence", "type=half")]
    data = encode_midi_file(events, end_s=3.0)
    # 120 BPM for 1 s = 2 beats, then 60 BPM: 2 s is beat 3
    assert _markers(data) == [
        (0, 0.0, "sonify:key root=D scale=major pcs=2,4,6,7,9,11,1"),
        (0, 3.0, "sonify:chord name=V7 root=9 pcs=9,1,4,7 bass=9"),
        (0, 3.0, "sonify:cadence type=half")]


def test_the_recorder_writes_markers_and_live_outputs_ignore_them(tmp_path: Path) -> None:
    clock = ManualTime(0.0)
    path = tmp_path / "take.mid"
    recorder = MidiFileRecorder(path, start_s=0.0)
    port_like = RecordingOutput(midi_only=True)
    wav = WavRenderer(tmp_path / "take.wav", start_s=0.0, duration_s=1.0)
    osc = OscOutput.__new__(OscOutput)  # only its wants(): no socket
    osc.midi_as_osc = True
    marker = Marker(0.25, "section", "name=B")
    assert not port_like.wants(marker) and not wav.wants(marker) and not osc.wants(marker)
    scheduler = Scheduler([recorder, port_like], clock)
    scheduler.schedule([Note(0.0, 0, 60, 80, 0.5, "v"), marker])
    clock.set(1.0)
    scheduler.run_until(1.0)
    scheduler.stop(panic=True)
    recorder.close(end_s=1.0)
    assert [e for e in port_like.events if isinstance(e, Marker)] == []
    assert _markers(path.read_bytes()) == [(0, 0.5, "sonify:section name=B")]
