"""The harmonic plan: phrases and cadences, sections, the ending, cuts, colour, pentatonic
scenes and gray pictures (sonify.scene.harmony)."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import pytest

from sonify.events import Marker
from sonify.music import theory
from sonify.render import render
from sonify.scene import load_scene, parse_scene
from sonify.scene.harmony import motif_seed, phrase_plan
from tests.features import images
from tests.scene.helpers import notes, play, settled
from tests.test_render import cut_video

PHOTOS = Path(__file__).parents[1] / "data" / "photos"


def markers(events: list, kind: str) -> list[Marker]:
    return [e for e in events if isinstance(e, Marker) and e.kind == kind]


def test_a_period_ends_its_antecedent_on_v_and_its_consequent_on_v_i() -> None:
    bars = phrase_plan(8, ("I", "vi", "IV", "V"), 1, "authentic", "major", plagal=False)
    assert [b.numeral for b in bars] == ["I", "vi", "IV", "V", "I", "vi", "V", "I"]
    assert [b.cadence for b in bars] == [None] * 3 + ["half"] + [None] * 3 + ["authentic"]
    plagal = phrase_plan(8, ("I", "vi"), 2, "final", "major", plagal=True)
    assert [b.numeral for b in plagal] == ["I", "I", "vi", "V", "I", "I", "IV", "I"]
    assert plagal[-1].cadence == "final"
    # phrygian's v is diminished: its cadences lean on VII
    assert phrase_plan(4, ("i",), 1, "authentic", "phrygian", False, "authentic")[-2].numeral \
        == "VII"


def test_pentatonic_chords_use_only_the_pentatonic() -> None:
    for scale in ("major_pentatonic", "minor_pentatonic"):
        pcs = set(theory.scale_pcs(5, scale))
        for numeral in ("I", "ii", "iii", "IV", "V", "vi", "vii", "bVII", "V7"):
            for colour in theory.CHORD_COLOURS:
                c = theory.coloured_chord(numeral, 5, scale, colour)
                assert set(c.tones) <= pcs and len(c.tones) >= 3, (scale, numeral, c)
    assert theory.coloured_chord("I", "F", "major_pentatonic").numeral == "Iadd9"
    assert theory.coloured_chord("IV", "F", "major_pentatonic").numeral == "iisus2"


@pytest.mark.parametrize("scene", ["calm", "starry"])
def test_every_note_of_a_pentatonic_scene_is_in_its_pentatonic(scene: str) -> None:
    sc = load_scene(scene)
    root = theory.parse_pitch_class(sc.key.root.choices[0])
    allowed = set(theory.scale_pcs(root, sc.key.scale.choices[0]))
    for picture in (images.solid((40, 120, 230)), images.solid((200, 60, 40)),
                    images.solid((128, 128, 128))):
        events, _, _ = play(scene, settled(picture), seconds=40,
                            onsets=lambda i: ("stars_onset",) if i % 400 == 5 else ())
        played = notes(events)
        assert played
        outside = [n for n in played if n.pitch % 12 not in allowed]
        assert outside == []
        for m in markers(events, "chord"):
            assert {int(p) for p in m.fields()["pcs"].split(",")} <= allowed


def test_a_gray_picture_plays_in_the_default_key_not_reds() -> None:
    scene = parse_scene("""
name = "g"
tempo = { bpm = 120 }
[key]
root = { feature = "hue", choices = ["C", "G", "D", "A"] }
default = "D"
[[voices]]
name = "pad"
kind = "chords"
channel = 1
""")
    gray, _, _ = play(scene, settled(images.solid((128, 128, 128))), seconds=2)
    tinted, _, _ = play(scene, settled(images.solid((128, 128, 135))), seconds=2)
    red, _, _ = play(scene, settled(images.solid((30, 30, 220))), seconds=2)
    assert markers(gray, "key")[0].fields()["root"] == "D"
    assert markers(tinted, "key")[0].fields()["root"] == "D"
    assert markers(red, "key")[0].fields()["root"] == "C"


def test_sevenths_and_inversions_give_a_bass_that_moves_by_step() -> None:
    scene = parse_scene("""
name = "s"
tempo = { bpm = 120 }
[harmony]
colour = "sevenths"
inversions = true
progressions = { default = ["I", "V", "vi", "IV"] }
[[voices]]
name = "pad"
kind = "chords"
channel = 1
[[voices]]
name = "bass"
kind = "notes"
channel = 2
rhythm = { steps = "x", step_beats = 4 }
pitch = { value = 40, quantise = "root" }
spread_steps = 0
register = ["E1", "E3"]
""")
    events, _, _ = play(scene, settled(images.solid((60, 160, 220))), seconds=32)
    chords = markers(events, "chord")
    assert any(len(m.fields()["pcs"].split(",")) == 4 for m in chords)  # sevenths
    inverted = [m for m in chords if m.fields()["bass"] != m.fields()["root"]]
    assert inverted  # I V6 vi ...: the third of V in the bass, a step from I's root
    bass = notes(events, "bass")
    for m in chords:  # the bass plays each chord's bass note on its downbeat
        at = [n for n in bass if abs(n.t - m.t) < 1e-6]
        assert at and at[0].pitch % 12 == int(m.fields()["bass"])


def test_live_sections_change_every_two_phrases_and_b_brings_new_material() -> None:
    events, _, _ = play(parse_scene("""
name = "l"
tempo = { bpm = 240 }
[harmony]
progressions = { default = ["I", "IV"] }
[[voices]]
name = "pad"
kind = "chords"
channel = 1
"""), settled(images.solid((60, 160, 220))), seconds=36)  # 36 bars of 1 s
    sections = [(round(m.t), m.fields()["name"]) for m in markers(events, "section")]
    assert sections == [(0, "A"), (16, "B"), (32, "A'")]
    assert motif_seed(0, "A") == motif_seed(0, "A'") != motif_seed(0, "B")


def _midi(path: Path) -> tuple[list[tuple[float, str]], list[tuple[str, int, float, float]],
                               float]:
    """(markers, notes as (track, pitch, on_s, off_s), the file's length in seconds)."""
    mid = mido.MidiFile(file=io.BytesIO(path.read_bytes()))
    tempo_map: list[tuple[int, int]] = []
    tick = 0
    marks: list[tuple[int, str]] = []
    for msg in mid.tracks[0]:
        tick += msg.time
        if msg.type == "set_tempo":
            tempo_map.append((tick, msg.tempo))
        elif msg.type == "marker":
            marks.append((tick, msg.text))

    def seconds(t: int) -> float:
        s, last_tick, us = 0.0, 0, 500_000
        for at, tempo_us in tempo_map:
            if at >= t:
                break
            s += (at - last_tick) * us / mid.ticks_per_beat / 1e6
            last_tick, us = at, tempo_us
        return s + (t - last_tick) * us / mid.ticks_per_beat / 1e6

    played: list[tuple[str, int, float, float]] = []
    end = 0
    for track in mid.tracks[1:]:
        tick, on = 0, {}
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                on[msg.note] = tick
            elif msg.type in ("note_off", "note_on") and msg.note in on:
                played.append((track.name, msg.note, seconds(on.pop(msg.note)), seconds(tick)))
        end = max(end, tick)
    return [(seconds(t), text) for t, text in marks], played, seconds(end)


@pytest.mark.parametrize("scene,photo,seconds", [("gallery", "coffee.jpg", 40.0),
                                                 ("calm", "gravel.jpg", 60.0)])
def test_a_still_ends_on_the_tonic_held_to_the_end_of_the_file(tmp_path: Path, scene: str,
                                                                photo: str,
                                                                seconds: float) -> None:
    out = tmp_path / "piece.mid"
    render(str(PHOTOS / photo), [str(out)], scene=scene, duration_s=seconds)
    marks, played, length = _midi(out)
    assert length == pytest.approx(seconds, abs=0.01)
    chords = [text for _, text in marks if text.startswith("sonify:chord")]
    assert chords[-1].split()[1].removeprefix("name=").lstrip("b")[0] == "I"
    assert [text for _, text in marks if text.startswith("sonify:cadence")][-1] \
        == "sonify:cadence type=final"
    sections = [text.split("=")[1] for _, text in marks if text.startswith("sonify:section")]
    assert sections[0] == "A" and sections[-1] == "A'" and "B" in sections
    key = [text for _, text in marks if text.startswith("sonify:key")][-1]
    tonic = int(key.split("pcs=")[1].split(",")[0])
    last_chord_pcs = {int(p) for p in chords[-1].split("pcs=")[1].split()[0].split(",")}
    assert tonic in last_chord_pcs
    pad = [n for n in played if n[0] == "pad"]
    last_on = max(n[2] for n in pad)
    final = [n for n in pad if n[2] == last_on]
    assert {n[1] % 12 for n in final} == last_chord_pcs
    assert all(n[3] == pytest.approx(length, abs=0.01) for n in final)  # held to the end
    assert length - last_on >= 60.0 / 120 * 4  # struck at least a bar before the end


def test_a_video_cut_ends_the_old_chord_and_strikes_the_new_on_the_cut(tmp_path: Path) -> None:
    video = cut_video(tmp_path / "cut.avi", cut_s=2.0, total_s=5.0)
    out = tmp_path / "cut.json"
    render(str(video), [str(out)], scene="gallery", duration_s=5.0)
    import json

    piece = json.loads(out.read_text())
    sections = [m for m in piece["markers"] if m["kind"] == "section"]
    assert [m["text"] for m in sections] == ["name=A", "name=B"]
    cut_t = sections[1]["t"]
    assert 2.0 <= cut_t <= 2.0 + 1 / 30  # within one frame
    assert any(m["kind"] == "chord" and m["t"] == cut_t for m in piece["markers"])
    pad = [n for n in piece["notes"] if n["voice"] == "pad"]
    assert any(abs(n["t"] - cut_t) < 1e-6 for n in pad)  # struck on the cut
    for n in pad:  # nothing from before the cut rings on after it
        if n["t"] < cut_t:
            assert n["t"] + n["duration_s"] <= cut_t + 1e-6


def test_live_a_cut_strikes_the_new_chord_within_a_beat(tmp_path: Path) -> None:
    from sonify.capture import open_source
    from sonify.config import Config
    from sonify.events import NoteOn
    from sonify.features.analyzer import Analyzer
    from sonify.outputs.recording import RecordingOutput
    from sonify.performance import Form, Performance
    from sonify.performance import play as perform
    from sonify.scene.harmony import KeyState  # noqa: F401  (importable from both modules)
    from sonify.scene.player import KeyState as FromPlayer  # noqa: F401
    from sonify.timing.clock import ManualTime
    from sonify.timing.scheduler import Scheduler

    video = cut_video(tmp_path / "cut.avi", cut_s=2.0, total_s=3.0)
    out, clock = RecordingOutput(), ManualTime(0.0)
    config = Config()
    config.scene.name = "gallery"
    perf = Performance(config, Scheduler([out], clock), form=Form(sections_at_cuts=True),
                       strict=True)
    perf.start(0.0)
    with open_source(str(video), realtime=False, loop=False, seed=0) as src:
        perform(iter(src), perf, clock, analyze=Analyzer().analyze, start_s=0.0,
                duration_s=3.0, block_s=0.01, lookahead_s=0.1)  # a live lookahead
    perf.scheduler.stop(panic=True)
    b = [e for e in out.events if isinstance(e, Marker) and e.text == "name=B"]
    assert len(b) == 1
    beat_s = 60.0 / perf.driver.tempo.bpm if perf.driver else 1.0
    assert 2.0 <= b[0].t <= 2.0 + beat_s  # within one beat of the cut
    ons = [e for e in out.events if isinstance(e, NoteOn) and e.voice == "pad"]
    assert any(abs(e.t - b[0].t) < 1e-6 for e in ons)
    # no old pad note sounds after the new section starts
    sounding: set[tuple[int, int]] = set()
    for e in out.events:
        if e.t >= b[0].t + 1e-6:
            break
        if isinstance(e, NoteOn) and e.voice == "pad":
            sounding.add((e.channel, e.pitch))
        elif type(e).__name__ == "NoteOff":
            sounding.discard((e.channel, e.pitch))  # type: ignore[union-attr]
    assert sounding <= {(e.channel, e.pitch) for e in ons if abs(e.t - b[0].t) < 1e-6}
