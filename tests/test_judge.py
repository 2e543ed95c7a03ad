"""`sonify judge`: the figures of MIDI files written here with mido, markers and all.

The fixture writer makes type-1 files as sonify does (a tempo track with ``sonify:`` markers,
a track per voice named after it), so these tests do not depend on the engine's music.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import mido
import pytest

from sonify.music.distance import components, distance
from sonify.music.figures import Hints, judge
from sonify.music.parts import estimate_key, hints_from_scene
from sonify.music.piece import PieceError, parse_marker_text, read_piece
from sonify.scene import load_scene
from sonify.tools import judge as judge_tool

TPB = 480
BAR = 4 * TPB
C_MAJOR = "root=C scale=major pcs=0,2,4,5,7,9,11"


@dataclass
class Song:
    """Notes as (track, channel, pitch, start beat, length beats); markers (beat, text)."""

    bpm: float = 120.0
    notes: list[tuple[str, int, int, float, float]] = field(default_factory=list)
    markers: list[tuple[float, str]] = field(default_factory=list)
    tempos: list[tuple[float, float]] = field(default_factory=list)  # (beat, bpm) after start
    end_beat: float | None = None

    def add(self, track: str, pitches: list[int], beat: float, length: float = 1.0,
            channel: int = 0) -> None:
        for p in pitches:
            self.notes.append((track, channel, p, beat, length))

    def line(self, track: str, bar: int, onsets: list[float], pitches: list[int],
             length: float = 0.5, channel: int = 1) -> None:
        for o, p in zip(onsets, pitches, strict=True):
            self.notes.append((track, channel, p, 4 * bar + o, length))

    def write(self, path: Path) -> Path:
        mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
        tempo: list[tuple[int, mido.MetaMessage]] = [
            (0, mido.MetaMessage("track_name", name="tempo")),
            (0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
            (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.bpm)))]
        tempo += [(round(b * TPB), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
                  for b, bpm in self.tempos]
        tempo += [(round(b * TPB), mido.MetaMessage("marker", text=f"sonify:{text}"))
                  for b, text in self.markers]
        end = round((self.end_beat if self.end_beat is not None else max(
            [b + n for _, _, _, b, n in self.notes] or [0])) * TPB)
        mid.tracks.append(_track(tempo, end))
        for name in dict.fromkeys(t for t, *_ in self.notes):
            msgs: list[tuple[int, mido.Message | mido.MetaMessage]] = [
                (0, mido.MetaMessage("track_name", name=name))]
            for t, ch, p, b, n in self.notes:
                if t == name:
                    msgs.append((round(b * TPB), mido.Message("note_on", channel=ch, note=p,
                                                              velocity=80)))
                    msgs.append((round((b + n) * TPB), mido.Message("note_off", channel=ch,
                                                                    note=p)))
            mid.tracks.append(_track(msgs, end))
        mid.save(str(path))
        return path


def _track(msgs: list[tuple[int, mido.Message | mido.MetaMessage]], end: int) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    for tick, msg in sorted(msgs, key=lambda m: (m[0], m[1].type == "note_on")):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    return track


def tonic_ending(song: Song, bars: int) -> None:
    """A C major pad chord per bar, the last one held to the end, with chord markers."""
    for bar in range(bars):
        chord = [48, 52, 55] if bar % 2 == 0 or bar == bars - 1 else [43, 47, 50]
        song.add("pad", chord, 4 * bar, 4.0)
        name, root, pcs = (("I", 0, "0,4,7") if chord[0] == 48 else ("V", 7, "7,11,2"))
        song.markers.append((4 * bar, f"chord name={name} root={root} pcs={pcs} bass={root}"))
    song.end_beat = 4 * bars


MOTIF_ONSETS = [0.0, 1.0, 1.5, 2.0, 3.0]
MOTIF = [72, 74, 76, 74, 72]


def test_a_melody_built_from_its_motif_restates_it_transposed_and_inverted(tmp_path: Path
                                                                           ) -> None:
    song = Song(markers=[(0, f"key {C_MAJOR}"),
                         (0, "motif steps=0,1,1.5,2,3 degrees=0,1,2,1,0")])
    song.line("melody", 0, MOTIF_ONSETS, MOTIF)  # C D E D C
    song.line("melody", 1, MOTIF_ONSETS, [76, 77, 79, 77, 76])  # a sequence: E F G F E
    song.line("melody", 2, MOTIF_ONSETS, [79, 77, 76, 77, 79])  # inverted: G F E F G
    song.line("melody", 3, [0.0, 0.5, 1.0, 3.0], [72, 79, 71, 74])  # something else
    tonic_ending(song, 4)
    f = judge(song.write(tmp_path / "a.mid"))
    assert f.motif is not None and f.motif.source == "marker"
    assert f.restatement == pytest.approx(3 / 4) and f.bars == 4
    assert f.key_source == "stated" and f.keys == ("C major",)


def test_a_motif_on_the_chord_ladder_is_restated_over_each_chord(tmp_path: Path) -> None:
    # an arpeggio motif: up the chord tones twice, down one (degrees 0,1,2,1 on the chord)
    song = Song(markers=[(0, f"key {C_MAJOR}"),
                         (0, "motif steps=0,1,2,3 degrees=0,1,2,1 ladder=chord"),
                         (0, "chord name=I root=0 pcs=0,4,7 bass=0"),
                         (4, "chord name=IV root=5 pcs=5,9,0 bass=5"),
                         (8, "chord name=V root=7 pcs=7,11,2 bass=7")])
    onsets = [0.0, 1.0, 2.0, 3.0]
    song.line("melody", 0, onsets, [60, 64, 67, 64])  # C E G E over I
    song.line("melody", 1, onsets, [60, 65, 69, 65])  # C F A F over IV: same chord steps
    song.line("melody", 2, onsets, [62, 67, 71, 74])  # D G B D over V: up, up, up: not it
    song.end_beat = 12
    f = judge(song.write(tmp_path / "a.mid"))
    assert f.motif is not None and f.motif.source == "marker (chord tones)"
    # the first two bars restate it on their chords; the third does not
    assert f.bars == 3 and f.restatement == pytest.approx(2 / 3)


def test_without_a_motif_marker_the_first_bar_is_the_motif_and_is_not_counted(
        tmp_path: Path) -> None:
    song = Song()
    for bar in range(4):
        song.line("melody", bar, MOTIF_ONSETS, [p + 2 * bar for p in MOTIF])
    song.line("melody", 4, [0.0, 2.0], [72, 84])
    f = judge(song.write(tmp_path / "a.mid"))
    assert f.motif is not None and f.motif.source == "first bar"
    assert f.motif.onsets == tuple(MOTIF_ONSETS)
    assert f.bars == 4 and f.restatement == pytest.approx(3 / 4)


def test_clash_is_melody_time_a_semitone_or_minor_ninth_from_a_chord_tone(tmp_path: Path
                                                                          ) -> None:
    song = Song(markers=[(0, f"key {C_MAJOR}")])
    song.add("pad", [48, 52, 55], 0, 8.0)  # C E G, held for two bars
    song.line("melody", 0, [0.0], [61], length=2.0)  # C#: a minor ninth above C3, 2 beats
    song.line("melody", 0, [2.0], [64], length=2.0)  # E: a chord tone
    song.line("melody", 1, [0.0], [65], length=1.0)  # F: a semitone above E, 1 beat
    song.line("melody", 1, [1.0], [67], length=3.0)  # G
    f = judge(song.write(tmp_path / "a.mid"))
    assert f.chord_tracks == ("pad",)
    assert f.clash == pytest.approx(3 / 8)


def test_leaps_and_register_edges(tmp_path: Path) -> None:
    song = Song()
    song.line("melody", 0, [0, 1, 2, 3], [60, 72, 71, 60])  # +12, -1, -11
    song.line("melody", 1, [0, 1, 2, 3], [62, 64, 65, 67])
    path = song.write(tmp_path / "a.mid")
    f = judge(path)
    assert f.leaps == pytest.approx(2 / 7)
    assert f.register == (60, 72) and f.register_source == "notes"
    assert f.register_edge == pytest.approx(5 / 8)  # 60, 72, 71, 60, 62 lie within 2 of an edge
    g = judge(path, Hints(registers={"melody": (48, 84)}))
    assert g.register_source == "scene" and g.register_edge == 0.0


def test_notes_outside_the_stated_scale_follow_key_changes_and_skip_drums(tmp_path: Path
                                                                          ) -> None:
    song = Song(markers=[(0, f"key {C_MAJOR}"), (8, "key root=D scale=major pcs=2,4,6,7,9,11,1")])
    song.line("melody", 0, [0, 1, 2], [60, 66, 61])  # F# and C# are outside C major
    song.line("melody", 2, [0, 1, 2], [62, 66, 61])  # ... and inside D major
    song.add("drums", [37, 42], 0, 0.5, channel=9)  # drums are not pitched
    f = judge(song.write(tmp_path / "a.mid"))
    assert f.outside_scale == 2 and f.outside_by_voice == {"melody": 2}
    assert f.keys == ("C major", "D major")


def test_the_scene_fixes_the_key_when_the_file_states_none(tmp_path: Path) -> None:
    song = Song()
    song.add("pad", [53, 57, 60], 0, 4.0)  # F A C
    song.line("vibes", 0, [0, 1], [64, 69])  # E is outside F major pentatonic
    hints = hints_from_scene(load_scene("calm"))
    assert hints.key == (5, "major_pentatonic") and hints.chord_tracks == ("pad",)
    f = judge(song.write(tmp_path / "a.mid"), hints)
    assert f.key_source == "scene" and f.outside_scale == 1 and f.melody == "vibes"
    assert judge(tmp_path / "a.mid").outside_scale is None  # an estimated key is not stated


def test_an_ending_on_the_tonic_held_to_the_end_passes_and_on_v_fails(tmp_path: Path) -> None:
    song = Song(markers=[(0, f"key {C_MAJOR}")])
    tonic_ending(song, 4)
    f = judge(song.write(tmp_path / "tonic.mid"))
    assert f.ending_tonic and f.ending_held and f.ending_ok
    on_v = Song(markers=[(0, f"key {C_MAJOR}")])
    tonic_ending(on_v, 4)
    on_v.notes = [n for n in on_v.notes if n[3] < 12]
    on_v.markers = [m for m in on_v.markers if m[0] < 12]
    on_v.add("pad", [43, 47, 50], 12, 4.0)
    on_v.markers.append((12, "chord name=V root=7 pcs=7,11,2 bass=7"))
    g = judge(on_v.write(tmp_path / "v.mid"))
    assert g.ending_tonic is False and g.ending_held
    cut = Song(markers=[(0, f"key {C_MAJOR}")])
    tonic_ending(cut, 4)
    cut.end_beat = 20  # the chord stops a bar before the file does
    h = judge(cut.write(tmp_path / "cut.mid"))
    assert h.ending_tonic and not h.ending_held


def test_without_chord_markers_the_last_struck_pad_notes_are_the_final_chord(tmp_path: Path
                                                                             ) -> None:
    song = Song()
    song.add("pad", [43, 47, 50], 0, 2.0)  # G B D
    song.add("pad", [48, 52, 55], 2, 6.0)  # C E G, to the end
    song.line("melody", 0, [0, 1, 2, 3], [60, 62, 64, 65])
    song.line("melody", 1, [0, 1, 2], [67, 71, 72], length=1.0)
    f = judge(song.write(tmp_path / "a.mid"))
    assert f.key_source == "estimated" and f.main_key == (0, "major")
    assert f.ending_chord == "? on C" and f.ending_ok


def test_tempo_map_gives_seconds_and_the_tempo_range(tmp_path: Path) -> None:
    song = Song(bpm=120.0, tempos=[(4, 60.0), (8, 90.0)])
    song.line("melody", 0, [0.0], [60])
    song.line("melody", 3, [0.0], [62], length=4.0)
    path = song.write(tmp_path / "a.mid")
    piece = read_piece(path)
    last = piece.notes[-1]
    assert last.start_s == pytest.approx(4 * 0.5 + 4 * 1.0 + 4 * 2 / 3)
    f = judge(path)
    assert (f.tempo_min, f.tempo_max) == (pytest.approx(60.0), pytest.approx(120.0))
    assert f.tempo_range == pytest.approx(60.0)


def test_the_melody_is_named_or_the_busiest_monophonic_track_above_the_bass(tmp_path: Path
                                                                            ) -> None:
    song = Song()
    for beat in range(16):
        song.add("bass", [36 + beat % 3], beat, 0.5)  # busiest, but a bass line
    for beat in range(0, 16, 2):
        song.add("lead", [72 + beat % 5], beat, 0.5)
    song.add("pad", [60, 64, 67], 0, 16.0)
    f = judge(song.write(tmp_path / "a.mid"))
    assert f.melody == "lead" and f.chord_tracks == ("pad",)
    assert judge(tmp_path / "a.mid", Hints(melody="bass")).melody == "bass"
    assert f.density == {"bass": pytest.approx(16 / 8), "lead": pytest.approx(8 / 8),
                         "pad": pytest.approx(3 / 8)}


def test_markers_parse_and_foreign_markers_are_kept() -> None:
    assert parse_marker_text("sonify:chord name=V7 root=9 pcs=9,1,4,7 bass=9") == (
        "chord", {"name": "V7", "root": "9", "pcs": "9,1,4,7", "bass": "9"})
    assert parse_marker_text("Verse 1") == ("", {})


def test_estimated_keys() -> None:
    from sonify.music.piece import PieceNote

    def notes(pcs: list[int]) -> list[PieceNote]:
        return [PieceNote("x", 0, 60 + pc, 80, i, i + 1, float(i), float(i + 1))
                for i, pc in enumerate(pcs)]
    assert estimate_key(notes([0, 4, 7, 0, 2, 4, 5, 7, 9, 11, 0, 7])) == (0, "major")
    assert estimate_key(notes([9, 0, 4, 9, 11, 0, 2, 4, 5, 7, 9, 4])) == (9, "minor")


def test_distance_is_zero_for_the_same_piece_and_grows_with_difference(tmp_path: Path) -> None:
    def piece(name: str, bpm: float, shift: int, key: str) -> Path:
        song = Song(bpm=bpm, markers=[(0, f"key {key}")])
        for bar in range(4):
            song.line("melody", bar, MOTIF_ONSETS, [p + shift for p in MOTIF])
        song.add("pad", [48 + shift, 52 + shift, 55 + shift], 0, 16.0)
        return song.write(tmp_path / name)
    a = judge(piece("a.mid", 120, 0, C_MAJOR))
    same = judge(piece("b.mid", 120, 0, C_MAJOR))
    far = judge(piece("c.mid", 70, 6, "root=F# scale=minor pcs=6,8,9,11,1,2,4"))
    assert distance(a, same) == 0.0
    assert distance(a, far) == pytest.approx(distance(far, a))
    parts = components(a, far)
    assert parts["key"] == 1.0 and parts["mode"] == pytest.approx(0.5)
    assert parts["register"] == pytest.approx(6 / 24) and parts["tempo"] > 0.7
    assert 0.3 < distance(a, far) <= 1.0


def test_cli_prints_a_table_and_json_with_distances(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    song = Song(markers=[(0, f"key {C_MAJOR}")])
    song.line("melody", 0, MOTIF_ONSETS, MOTIF)
    tonic_ending(song, 1)
    a = song.write(tmp_path / "a.mid")
    b = song.write(tmp_path / "b.mid")
    parser = argparse.ArgumentParser()
    judge_tool.add_arguments(parser)
    assert judge_tool.run(parser.parse_args([str(a), str(b), "--scene", "gallery"])) == 0
    out = capsys.readouterr().out
    assert "a.mid" in out and "b.mid" in out and "55-84 (scene)" in out
    assert "distance a.mid - b.mid: 0.000" in out
    assert judge_tool.run(parser.parse_args([str(a), "--json"])) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["files"][0]["main_key"] == {"root": "C", "scale": "major"}
    assert data["files"][0]["ending_ok"] is True and data["distances"] == []


def test_a_file_that_is_not_midi_is_a_clear_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(PieceError, match="x.mid"):
        read_piece(bad)
    parser = argparse.ArgumentParser()
    judge_tool.add_arguments(parser)
    assert judge_tool.run(parser.parse_args([str(bad)])) == 2
    assert "cannot read" in capsys.readouterr().err
