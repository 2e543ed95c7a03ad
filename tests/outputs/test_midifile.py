"""The MIDI file recorder: tracks per voice, the tempo map, note times within a tick, length."""

from __future__ import annotations

import os
from pathlib import Path

import mido
import pytest

from engine.events import ControlChange, NoteOff, NoteOn, OscMessage, PitchBend, Tempo
from engine.outputs.midifile import MidiFileRecorder

T0 = 1000.0  # engine-clock time of the first event


def absolute(track: mido.MidiTrack) -> list[tuple[int, mido.Message]]:
    tick, out = 0, []
    for msg in track:
        tick += msg.time
        out.append((tick, msg))
    return out


def note_seconds(path: Path) -> list[tuple[float, str, str, int]]:
    """(seconds, track name, type, note) of each note event, as a player reads the file."""
    mid = mido.MidiFile(path)
    names = {}
    for i, track in enumerate(mid.tracks):
        for msg in track:
            if msg.type == "track_name":
                names[i] = msg.name
    out = []
    # merge the tracks, keeping track of where each message came from
    tagged = []
    for i, track in enumerate(mid.tracks):
        for tick, msg in absolute(track):
            tagged.append((tick, i, msg))
    tagged.sort(key=lambda x: (x[0], x[1]))
    tempo, last_tick, seconds = 500000, 0, 0.0
    for tick, i, msg in tagged:
        seconds += mido.tick2second(tick - last_tick, mid.ticks_per_beat, tempo)
        last_tick = tick
        if msg.type == "set_tempo":
            tempo = msg.tempo
        elif msg.type in ("note_on", "note_off"):
            out.append((seconds, names[i], msg.type, msg.note))
    return out


def test_a_recording_has_a_tempo_track_and_one_named_track_per_voice(tmp_path: Path) -> None:
    path = tmp_path / "run.mid"
    rec = MidiFileRecorder(path)
    rec.send(NoteOn(T0, 0, 60, 100, voice="bass"))
    rec.send(NoteOn(T0 + 0.25, 1, 72, 90, voice="lead"))
    rec.send(ControlChange(T0 + 0.3, 1, 74, 64, voice="lead"))
    rec.send(PitchBend(T0 + 0.35, 1, 1000, voice="lead"))
    rec.send(NoteOff(T0 + 0.5, 0, 60, voice="bass"))
    rec.send(NoteOn(T0 + 0.6, 9, 36, 127))  # no voice
    rec.send(NoteOff(T0 + 0.7, 9, 36))
    rec.send(NoteOff(T0 + 1.0, 1, 72, voice="lead"))
    rec.send(OscMessage(T0, "/ignored"))
    rec.close()

    mid = mido.MidiFile(path)
    assert mid.type == 1 and mid.ticks_per_beat == 480
    names = [next(m.name for m in t if m.type == "track_name") for t in mid.tracks]
    assert names == ["tempo", "bass", "lead", "sonify"]
    tempo_track = mid.tracks[0]
    assert [(m.type, m.tempo) for m in tempo_track if m.type == "set_tempo"] == [
        ("set_tempo", 500000)]
    sig = next(m for m in tempo_track if m.type == "time_signature")
    assert (sig.numerator, sig.denominator) == (4, 4)
    lead = [m for m in mid.tracks[2] if not m.is_meta]
    assert [m.type for m in lead] == ["note_on", "control_change", "pitchwheel", "note_off"]
    assert lead[2].pitch == 1000
    # at 120 BPM, 480 ticks a beat: 960 ticks a second
    assert [(t, m.type) for t, m in absolute(mid.tracks[1]) if not m.is_meta] == [
        (0, "note_on"), (480, "note_off")]
    assert mid.length == pytest.approx(1.0, abs=1 / 960)


def test_note_times_follow_the_tempo_map_within_a_tick(tmp_path: Path) -> None:
    path = tmp_path / "tempo.mid"
    rec = MidiFileRecorder(path, start_s=T0)
    rec.send(Tempo(T0, 90.0))
    times = [0.0, 0.3337, 0.91, 1.5, 2.123, 2.5, 3.7777, 4.25]
    rec.send(Tempo(T0 + 1.2345, 140.0))
    rec.send(Tempo(T0 + 2.5, 140.0))  # the same tempo again: no new set_tempo
    rec.send(Tempo(T0 + 3.01, 61.5))
    events: list[NoteOn | NoteOff] = []
    for i, s in enumerate(times):
        events.append(NoteOn(T0 + s, 0, 60 + i, 100, voice="v"))
        events.append(NoteOff(T0 + s + 0.1, 0, 60 + i, voice="v"))
    for ev in sorted(events, key=lambda e: e.t):
        rec.send(ev)
    rec.close()

    mid = mido.MidiFile(path)
    tempos = [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(90.0), mido.bpm2tempo(140.0), mido.bpm2tempo(61.5)]
    got = [(s, kind, note) for s, _, kind, note in note_seconds(path)]
    want = sorted([(s, "note_on", 60 + i) for i, s in enumerate(times)]
                  + [(s + 0.1, "note_off", 60 + i) for i, s in enumerate(times)])
    assert [(k, n) for _, k, n in got] == [(k, n) for _, k, n in want]
    slowest_tick_s = 60 / 61.5 / 480
    for (s_got, _, _), (s_want, _, _) in zip(got, want, strict=True):
        assert s_got == pytest.approx(s_want, abs=slowest_tick_s)


def test_the_file_lasts_as_long_as_the_run(tmp_path: Path) -> None:
    path = tmp_path / "long.mid"
    rec = MidiFileRecorder(path, start_s=T0, duration_s=10.0)
    rec.send(NoteOn(T0 + 1.0, 0, 60, 100))
    rec.send(NoteOff(T0 + 2.0, 0, 60))
    rec.close()
    mid = mido.MidiFile(path)
    assert mid.length == pytest.approx(10.0, abs=1 / 960)
    ends = {absolute(t)[-1][0] for t in mid.tracks}
    assert ends == {9600}  # every track ends at the same tick
    # close(end_s=...) wins over the constructor's duration
    rec2 = MidiFileRecorder(tmp_path / "b.mid", duration_s=10.0)
    rec2.send(NoteOn(T0, 0, 60, 100))
    rec2.close(end_s=T0 + 3.5)
    assert mido.MidiFile(tmp_path / "b.mid").length == pytest.approx(3.5, abs=1 / 960)


def test_notes_ended_by_a_panic_land_on_their_voice_track(tmp_path: Path) -> None:
    path = tmp_path / "panic.mid"
    rec = MidiFileRecorder(path)
    rec.send(NoteOn(T0, 2, 50, 100, voice="pad"))
    rec.send(NoteOff(T0 + 1.0, 2, 50))  # the scheduler's panic note-off has no voice
    rec.close()
    assert [(n, k) for _, n, k, _ in note_seconds(path)] == [("pad", "note_on"),
                                                             ("pad", "note_off")]


def test_a_note_still_held_at_the_end_is_ended(tmp_path: Path) -> None:
    path = tmp_path / "held.mid"
    rec = MidiFileRecorder(path)
    rec.send(NoteOn(T0, 0, 60, 100, voice="drone"))
    rec.close(end_s=T0 + 2.0)
    assert [(round(s, 3), k) for s, _, k, _ in note_seconds(path)] == [
        (0.0, "note_on"), (2.0, "note_off")]


def test_writing_is_atomic_and_save_can_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "out" / "live.mid"
    rec = MidiFileRecorder(path)
    rec.send(NoteOn(T0, 0, 60, 100))
    rec.save()
    first = mido.MidiFile(path)
    assert sum(1 for m in first.tracks[1] if m.type == "note_on") == 1
    rec.send(NoteOff(T0 + 0.5, 0, 60))
    rec.send(NoteOn(T0 + 1.0, 0, 62, 100))
    rec.close()
    assert sum(1 for m in mido.MidiFile(path).tracks[1] if m.type == "note_on") == 2
    assert os.listdir(path.parent) == ["live.mid"]  # no temp file left behind


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keep.mid"
    rec = MidiFileRecorder(path)
    rec.send(NoteOn(T0, 0, 60, 100))
    rec.save()
    before = path.read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(mido.MidiFile, "save", crash)
    rec.send(NoteOn(T0 + 1, 0, 61, 100))
    with pytest.raises(OSError, match="disk full"):
        rec.save()
    rec.close()  # never raises: logged
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.mid"]
