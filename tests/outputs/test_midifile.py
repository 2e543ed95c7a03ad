"""The MIDI file recorder: tracks per voice, the tempo map, note times within a tick, length."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

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
from sonify.outputs.midifile import MidiFileRecorder
from sonify.outputs.spool import find_spools, recover_beside

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
    """Changed with streaming: the failure is injected where the file is assembled (the
    recorder no longer goes through mido's save), a failed close keeps the spool, and the
    recovery then finishes the recording over its own earlier save."""
    from sonify.outputs import spool

    path = tmp_path / "keep.mid"
    rec = MidiFileRecorder(path)
    rec.send(NoteOn(T0, 0, 60, 100))
    rec.save()
    before = path.read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "assemble", crash)
    rec.send(NoteOn(T0 + 1, 0, 61, 100))
    with pytest.raises(OSError, match="No space left"):
        rec.save()
    rec.close()  # never raises: logged, and said by failed/failure
    assert rec.failed and "No space left on device" in (rec.failure or "")
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    [left] = find_spools(tmp_path)  # what reached the disk waits for a recovery
    monkeypatch.undo()
    [done] = recover_beside(tmp_path)
    assert done.path == path  # its own earlier save is replaced, not written beside
    assert sorted(os.listdir(tmp_path)) == ["keep.mid"]
    assert [m.note for m in mido.MidiFile(path).tracks[1] if m.type == "note_on"] == [60, 61]


# -- streaming ------------------------------------------------------------------------------

def track_notes(path: Path) -> dict[str, list[tuple[str, int]]]:
    """Each track's note messages, (type, note), by track name."""
    out: dict[str, list[tuple[str, int]]] = {}
    for track in mido.MidiFile(path).tracks:
        name = next(m.name for m in track if m.type == "track_name")
        out[name] = [(m.type, m.note) for m in track if m.type in ("note_on", "note_off")]
    return out


def test_the_music_is_on_disk_while_it_plays_and_nothing_is_kept_in_memory(
        tmp_path: Path) -> None:
    path = tmp_path / "live.mid"
    rec = MidiFileRecorder(path, start_s=T0)
    rec.send(NoteOn(T0, 0, 60, 100, voice="pad"))
    rec.send(ControlChange(T0 + 0.5, 0, 74, 30, voice="pad"))
    rec.flush()
    spool = tmp_path / ".live.mid.rec"
    assert sorted(p.name for p in spool.glob("*.trk")) == ["000.trk", "001.trk"]
    assert (spool / "001.trk").read_bytes().endswith(bytes([0x90, 60, 100]) + b"\x83\x60"
                                                      + bytes([0xB0, 74, 30]))
    assert not path.exists()  # the file itself is made at the end
    part = rec._part
    assert part is not None and not rec._queue and part.backlog() == 0
    rec.send(NoteOff(T0 + 1.0, 0, 60, voice="pad"))
    rec.close(end_s=T0 + 2.0)
    assert os.listdir(tmp_path) == ["live.mid"]
    assert track_notes(path) == {"tempo": [], "pad": [("note_on", 60), ("note_off", 60)]}
    assert mido.MidiFile(path).length == pytest.approx(2.0, abs=1 / 960)
    assert rec.files == [path] and not rec.failed and rec.problem is None


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "piece.mid"
    path.write_bytes(b"yesterday's recording")
    names = []
    for k in range(2):
        rec = MidiFileRecorder(path)
        rec.send(NoteOn(T0, 0, 60 + k, 100))
        rec.close(end_s=T0 + 1.0)
        names += [p.name for p in rec.files]
    assert names == ["piece-001.mid", "piece-002.mid"]
    assert path.read_bytes() == b"yesterday's recording"
    assert [n for _, n in track_notes(tmp_path / "piece-002.mid")["sonify"]] == [61, 61]


def test_a_recording_without_a_note_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "quiet.mid"
    rec = MidiFileRecorder(path)
    rec.close(end_s=T0 + 2130.0)  # a start that failed: no event at all
    rec2 = MidiFileRecorder(path)
    rec2.send(Tempo(T0, 100.0))
    rec2.send(ControlChange(T0, 0, 7, 100))
    rec2.flush()
    rec2.close(end_s=T0 + 5.0)
    assert os.listdir(tmp_path) == [] and rec.files == rec2.files == []
    assert not rec.failed and not rec2.failed


def test_file_names_take_the_date_and_a_daily_recording_splits_at_midnight(
        tmp_path: Path) -> None:
    """An installation records every day: one file per day, each playable on its own (the
    program and the held note carry over into the new day's file)."""
    from datetime import datetime

    before_midnight = datetime(2024, 5, 1, 23, 59, 58).timestamp()
    rec = MidiFileRecorder(tmp_path / "rec" / "%Y-%m-%d.mid", start_s=T0, split="day",
                           wall_clock=lambda: before_midnight)
    rec.send(ProgramChange(T0, 0, 48, voice="strings"))
    rec.send(NoteOn(T0 + 1.0, 0, 60, 90, voice="strings"))  # held across midnight
    rec.send(NoteOff(T0 + 3.0, 0, 60, voice="strings"))
    rec.send(NoteOn(T0 + 3.5, 0, 62, 90, voice="strings"))
    rec.close(end_s=T0 + 4.0)
    assert [p.name for p in rec.files] == ["2024-05-01.mid", "2024-05-02.mid"]
    day1, day2 = (mido.MidiFile(p) for p in rec.files)
    assert day1.length == pytest.approx(2.0, abs=1 / 960)  # ends at midnight
    assert day2.length == pytest.approx(2.0, abs=1 / 960)
    assert track_notes(rec.files[0])["strings"] == [("note_on", 60), ("note_off", 60)]
    strings = [m for m in day2.tracks[1] if not m.is_meta]
    assert (strings[0].type, strings[0].program) == ("program_change", 48)
    assert [(m.type, getattr(m, "note", None)) for m in strings[1:]] == [
        ("note_on", 60), ("note_off", 60), ("note_on", 62), ("note_off", 62)]
    assert strings[1].time == 0
    assert sorted(os.listdir(tmp_path / "rec")) == [p.name for p in rec.files]


def test_an_event_that_comes_late_is_written_where_its_track_is(tmp_path: Path) -> None:
    """The writer sorts each batch; an event older than what its track already holds on disk
    is written at the track's last tick, never as a negative time."""
    path = tmp_path / "late.mid"
    rec = MidiFileRecorder(path, start_s=T0)
    rec.send(NoteOn(T0 + 1.0, 0, 60, 100, voice="v"))
    rec.send(NoteOn(T0 + 0.5, 0, 62, 100, voice="v"))  # same batch: sorted into place
    rec.flush()
    rec.send(NoteOff(T0 + 0.8, 0, 62, voice="v"))  # older than what is stored: at 1.0
    rec.send(NoteOff(T0 + 1.5, 0, 60, voice="v"))
    rec.close()
    got = [(round(s, 3), k, n) for s, _, k, n in note_seconds(path)]
    assert got == [(0.5, "note_on", 62), (1.0, "note_on", 60), (1.0, "note_off", 62),
                   (1.5, "note_off", 60)]


def test_a_tempo_change_after_later_music_keeps_every_event_on_time(tmp_path: Path) -> None:
    path = tmp_path / "tempo-late.mid"
    rec = MidiFileRecorder(path, start_s=T0)
    rec.send(NoteOn(T0 + 1.0, 0, 60, 100))
    rec.flush()
    rec.send(Tempo(T0 + 0.5, 60.0))  # stored music reaches 1.0 s: the change starts there
    rec.send(NoteOff(T0 + 2.0, 0, 60))
    rec.close()
    got = [round(s, 3) for s, _, _, _ in note_seconds(path)]
    assert got == [1.0, 2.0]
    tempos = [(t, m.tempo) for t, m in absolute(mido.MidiFile(path).tracks[0])
              if m.type == "set_tempo"]
    assert tempos == [(0, 500000), (960, 1000000)]


def test_memory_stays_flat_for_a_million_events(tmp_path: Path) -> None:
    """A day at a dense scene is a few million events; the recorder keeps none of them: its
    buffers stay bounded by one flush, and what Python holds does not grow with the piece."""
    import tracemalloc

    rec = MidiFileRecorder(tmp_path / "day.mid", start_s=0.0)
    voices = ("bass", "pad", "lead", "drums")
    high = {"queue": 0, "backlog": 0}
    grown = 0
    n_notes = 500_000
    for i in range(n_notes):
        t = i * 0.05
        rec.send(NoteOn(t, i % 4, 36 + i % 48, 100, voice=voices[i % 4]))
        rec.send(NoteOff(t + 0.04, i % 4, 36 + i % 48, voice=voices[i % 4]))
        if i % 5000 == 4999:  # the writer's flush, done here to run at full speed
            high["queue"] = max(high["queue"], len(rec._queue))
            rec.flush()
            part = rec._part
            assert part is not None
            high["backlog"] = max(high["backlog"], part.backlog())
            if i == 449_999:
                tracemalloc.start()
                before = tracemalloc.get_traced_memory()[0]
    grown = tracemalloc.get_traced_memory()[0] - before  # the last 100,000 events
    tracemalloc.stop()
    assert high["queue"] == 10_000 and high["backlog"] == 0
    assert grown < 256 * 1024, f"{grown} bytes kept for 100,000 events"
    assert len(rec._kept_notes) == 0 and rec._part is not None
    enc = rec._part.encoder
    assert len(enc.held) == 0 and len(enc.state) == 0 and len(enc.tempo_map.segments) == 1
    rec.close()
    counted = count_notes(rec.files[0])
    assert counted == n_notes


def count_notes(path: Path) -> int:
    """Note-ons in a MIDI file, read chunk by chunk (mido is slow for millions)."""
    import io
    import struct

    from sonify.outputs.smf import scan_track

    total = 0
    with path.open("rb") as f:
        assert f.read(4) == b"MThd"
        f.seek(struct.unpack(">I", f.read(4))[0], 1)
        while head := f.read(8):
            assert head[:4] == b"MTrk"
            size = struct.unpack(">I", head[4:])[0]
            data = f.read(size)
            scan = scan_track(io.BytesIO(data), size)
            rest = data[scan.size:]  # all of it but end-of-track (and its delta time)
            assert rest.endswith(b"\xff\x2f\x00") and len(rest) <= 7 and not scan.held
            total += scan.notes
    return total


def test_a_disk_that_refuses_the_recording_is_loud_and_the_show_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The recording's folder cannot be made (a file is in its way: a real ENOTDIR from the
    OS): the recorder says so, keeps a bounded backlog, drops what does not fit (never the
    note-off of a note it kept) and, when the folder can be made, writes what it kept."""
    blocker = tmp_path / "recordings"
    blocker.write_text("not a folder")
    rec = MidiFileRecorder(blocker / "show.mid", start_s=T0, max_queued=100)
    with caplog.at_level(logging.ERROR, logger="sonify.outputs.midifile"):
        for i in range(50):
            rec.send(NoteOn(T0 + i, 0, 60, 100))
            rec.send(NoteOff(T0 + i + 0.5, 0, 60))
        rec.flush()
        assert rec.problem is not None and "cannot write the recording" in rec.problem
        assert "Not a directory" in rec.problem and rec.failed
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "the music plays on" in errors[0].getMessage()
        rec.max_backlog_bytes = 0  # the disk keeps refusing: the backlog is full
        rec.flush()
        rec.send(NoteOn(T0 + 100, 0, 64, 100))  # fits: the queue is empty
        for i in range(150):  # the queue fills: note-ons dropped
            rec.send(NoteOn(T0 + 101 + i, 1, 70, 100))
            rec.send(NoteOff(T0 + 101.5 + i, 1, 70))
        rec.send(NoteOff(T0 + 300, 0, 64))  # the note it kept is ended all the same
        # bounded: the queue's limit, plus the note-offs of the notes it kept (two here)
        assert rec.stats.dropped == 200 and len(rec._queue) == 100 + 2
        assert "the recording is" in rec.stats.last_error
    blocker.unlink()  # the disk is back
    rec.max_backlog_bytes = 1 << 20
    rec.close(end_s=T0 + 400)
    assert rec.problem is None and rec.failed  # it did fail: `sonify run` exits 1
    assert f"{rec.stats.dropped} events lost" in (rec.failure or "")
    notes = track_notes(blocker / "show.mid")["sonify"]
    assert notes.count(("note_on", 60)) == 50 and ("note_on", 64) in notes
    assert notes.count(("note_on", 70)) == notes.count(("note_off", 70)) < 150
    assert notes.count(("note_off", 64)) == 1


def test_a_spool_folder_deleted_while_recording_is_written_again(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture
                                                                 ) -> None:
    import shutil

    path = tmp_path / "gone.mid"
    rec = MidiFileRecorder(path, start_s=T0)
    rec.send(NoteOn(T0, 0, 60, 100, voice="a"))
    rec.send(NoteOff(T0 + 1, 0, 60, voice="a"))
    rec.flush()
    shutil.rmtree(tmp_path / ".gone.mid.rec")  # someone cleans up "hidden junk"
    rec.send(NoteOn(T0 + 2, 0, 62, 100, voice="a"))
    with caplog.at_level(logging.ERROR, logger="sonify.outputs.midifile"):
        rec.flush()
    assert "was removed while recording" in caplog.text
    assert (tmp_path / ".gone.mid.rec" / "001.trk").exists()
    rec.close(end_s=T0 + 3)
    assert track_notes(path)["a"] == [("note_on", 60), ("note_off", 60), ("note_on", 62),
                                      ("note_off", 62)]
    assert os.listdir(tmp_path) == ["gone.mid"]


def test_the_record_settings_are_checked(tmp_path: Path) -> None:
    from sonify.config import Config

    ok = Config.model_validate({"record": {"midi_file": "rec/%Y-%m-%d.mid", "split": "day"}})
    assert ok.record.split == "day"
    with pytest.raises(ValueError, match="file name only"):
        Config.model_validate({"record": {"midi_file": "rec/%Y/%m-%d.mid"}})
    with pytest.raises(ValueError, match="'none', 'hour', 'day'"):
        Config.model_validate({"record": {"split": "weekly"}})
    with pytest.raises(ValueError, match="file name only"):
        MidiFileRecorder(tmp_path / "%Y" / "x.mid")
