"""A recording killed mid-way: its spool becomes a valid MIDI file; and the one atomic writer.

The killed recordings here are real processes that SIGKILL themselves after recording, so the
spool is exactly what such a death leaves (no close, no cleanup, the lock released by the
kernel).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from sonify.outputs.spool import find_spools, read_commit, recover_beside, recover_spool
from sonify.util.atomicio import atomic_write, staged

KILLED_RUN = """
import os, signal, sys
from sonify.events import NoteOff, NoteOn, ProgramChange
from sonify.outputs.midifile import MidiFileRecorder

rec = MidiFileRecorder(sys.argv[1], start_s=0.0)
rec.send(ProgramChange(0.0, 0, 5, voice="lead"))
for i in range(20):
    rec.send(NoteOn(i * 0.5, 0, 60 + i, 100, voice="lead"))
    rec.send(NoteOff(i * 0.5 + 0.25, 0, 60 + i, voice="lead"))
rec.send(NoteOn(10.0, 1, 40, 90, voice="bass"))  # still sounding at the kill
rec.flush()
rec.send(NoteOn(11.0, 0, 90, 100, voice="lead"))  # never flushed: lost with the process
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_recording(path: Path) -> Path:
    """Record into ``path`` in a process that is SIGKILLed; its spool."""
    done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    [spool] = find_spools(path)
    assert not path.exists()
    return spool


def notes(path: Path) -> list[tuple[float, str, int, int]]:
    """(seconds, type, channel, note) of every note message, as a player reads the file."""
    out = []
    for msg in mido.MidiFile(path):  # merged, in seconds
        if msg.type in ("note_on", "note_off"):
            kind = "note_off" if msg.type == "note_off" or msg.velocity == 0 else "note_on"
            out.append((round(msg.time, 6), kind, msg.channel, msg.note))
    t, timed = 0.0, []
    for dt, kind, ch, n in out:
        t += dt
        timed.append((round(t, 3), kind, ch, n))
    return timed


def balanced(timed: list[tuple[float, str, int, int]]) -> bool:
    sounding: dict[tuple[int, int], int] = {}
    for _, kind, ch, n in timed:
        sounding[(ch, n)] = sounding.get((ch, n), 0) + (1 if kind == "note_on" else -1)
        if sounding[(ch, n)] < 0:
            return False
    return not any(sounding.values())


def test_a_killed_recording_becomes_a_valid_file_up_to_its_last_flush(tmp_path: Path) -> None:
    path = tmp_path / "show.mid"
    spool = killed_recording(path)
    [r] = recover_beside(path)
    assert r.path == path and r.error is None and r.notes == 21
    assert os.listdir(tmp_path) == ["show.mid"] and not spool.exists()
    timed = notes(path)
    assert balanced(timed)  # the bass note held at the kill is ended
    assert sorted(n for _, k, _, n in timed if k == "note_on") == [40, *range(60, 80)]
    assert 90 not in [n for _, _, _, n in timed]  # after the last flush: lost
    assert max(t for t, _, _, _ in timed) == pytest.approx(10.0, abs=0.01)
    mid = mido.MidiFile(path)
    assert [t.name for t in mid.tracks] == ["tempo", "lead", "bass"]
    assert next(m for m in mid.tracks[1] if m.type == "program_change").program == 5


def test_without_a_commit_the_last_whole_event_counts_and_a_torn_one_is_dropped(
        tmp_path: Path) -> None:
    """Killed before its first commit (or both commits unreadable): every whole event on
    disk counts; a torn one at the end, or the zeros a power cut can leave, do not."""
    path = tmp_path / "torn.mid"
    spool = killed_recording(path)
    for commit in spool.glob("commit-*"):
        commit.write_bytes(b"deadbeef {garbage")
    lead = spool / "001.trk"
    with lead.open("ab") as f:
        f.write(b"\x00\x90\x55\x64")  # a whole note-on (85) at the last time...
        f.write(b"\x10\x90\x56")  # ...and a torn one (86): no velocity
    with (spool / "002.trk").open("ab") as f:
        f.write(b"\x00" * 512)  # a block of zeros after a power cut
    [r] = recover_beside(tmp_path)
    assert r.path == path
    timed = notes(path)
    ons = [n for _, k, _, n in timed if k == "note_on"]
    assert 85 in ons and 86 not in ons and balanced(timed)


def test_bytes_after_the_last_commit_are_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "late.mid"
    spool = killed_recording(path)
    commit = read_commit(spool)
    assert commit is not None and commit["notes"] == 21
    with (spool / "001.trk").open("ab") as f:
        f.write(b"\x00\x90\x50\x64")  # written but never committed
    [r] = recover_beside(path)
    assert 80 not in [n for _, _, _, n in notes(path)]
    assert r.notes == 21


def test_a_spool_that_holds_no_note_is_removed(tmp_path: Path) -> None:
    spool = tmp_path / ".silent.mid.rec"
    spool.mkdir()
    (spool / "meta.json").write_text(json.dumps({"final": "silent.mid"}))
    (spool / "000.trk").write_bytes(b"\x00\xff\x03\x05tempo")
    [r] = recover_beside(tmp_path)
    assert r.path is None and r.error is None and os.listdir(tmp_path) == []
    assert "played no note" in r.describe()


def test_a_spool_a_live_recording_holds_is_left_alone(tmp_path: Path) -> None:
    from sonify.events import NoteOn
    from sonify.outputs.midifile import MidiFileRecorder

    rec = MidiFileRecorder(tmp_path / "live.mid", start_s=0.0)
    rec.send(NoteOn(0.0, 0, 60, 100))
    rec.flush()
    [spool] = find_spools(tmp_path)
    r = recover_spool(spool)
    assert r.in_use and spool.is_dir() and not (tmp_path / "live.mid").exists()
    rec.close(end_s=1.0)
    assert os.listdir(tmp_path) == ["live.mid"]


def test_a_recording_finished_just_before_the_kill_is_not_made_twice(tmp_path: Path) -> None:
    """The kill came between putting the file in place and removing the spool."""
    path = tmp_path / "twice.mid"
    spool = killed_recording(path)
    [r] = recover_beside(path)
    made = path.read_bytes()
    spool.mkdir()  # as it was just before its removal, with the done marker
    (spool / "meta.json").write_text(json.dumps({"final": "twice.mid"}))
    (spool / "done").write_text(json.dumps({"final": "twice.mid", "size": len(made)}))
    (spool / "000.trk").write_bytes(b"\x00\x90\x3c\x64")
    [again] = recover_beside(path)
    assert again.path == path and os.listdir(tmp_path) == ["twice.mid"]
    assert path.read_bytes() == made


def test_a_recovery_never_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "day.mid"
    killed_recording(path)
    path.write_bytes(b"someone else's file")  # appeared meanwhile
    [r] = recover_beside(tmp_path)
    assert r.path == tmp_path / "day-001.mid" and path.read_bytes() == b"someone else's file"


# -- the one atomic writer ---------------------------------------------------------------------

def test_a_written_file_has_ordinary_permissions_and_no_temp_is_left(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.bin", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["a.bin"]


def test_overwrite_false_never_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "keep.bin"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        atomic_write(target, b"new", overwrite=False)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["keep.bin"]


def test_staged_files_are_all_written_or_none(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("the old b")
    with pytest.raises(FileNotFoundError):
        with staged() as batch:
            atomic_write(tmp_path / "a.txt", b"a")
            atomic_write(tmp_path / "b.txt", b"b")
            atomic_write(tmp_path / "missing" / "c.txt", b"c")  # a real error from the OS
            batch.commit()
    assert sorted(os.listdir(tmp_path)) == ["b.txt"]
    assert (tmp_path / "b.txt").read_text() == "the old b"
    with staged() as batch:
        atomic_write(tmp_path / "a.txt", b"a")
        atomic_write(tmp_path / "b.txt", b"b")
        assert sorted(os.listdir(tmp_path)) != ["a.txt", "b.txt"]  # not yet in place
        assert batch.commit() == [tmp_path / "a.txt", tmp_path / "b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]
    assert (tmp_path / "b.txt").read_bytes() == b"b"


def test_sonify_recover_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sonify.cli import main

    killed_recording(tmp_path / "night.mid")
    assert main(["recover", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.split() == [str(tmp_path / "night.mid")] and "21 notes" in err
    assert main(["recover", str(tmp_path)]) == 0
    assert "no unfinished recording" in capsys.readouterr().err
