"""The melody voice: motif-and-phrase melodies, measured on rendered pieces (issue 12).

The figures are read from the MIDI file as the brief defines them: a bar restates the motif
(the ``motif`` marker in force at the bar) when its onsets (to an eighth of a beat) equal a
motif bar's and its intervals, in scale steps of the key in force, equal that bar's or their
inversion; the clash share is melody note-time a semitone (any octave) from a note another
pitched voice sounds.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import mido
import numpy as np
import pytest

from sonify.events import Marker
from sonify.music import theory
from sonify.render.core import render
from sonify.scene import ScenePlayer, load_scene
from sonify.scene.melody import Melody
from sonify.scene.voices import MelodyVoice
from tests.scene.helpers import notes, play, settled

PHOTOS = Path("tests/data/photos")
GRID = 8


def _read(path: Path) -> tuple[int, dict[str, list[tuple[int, int, int, int]]],
                               list[tuple[int, str, dict[str, str]]]]:
    mf = mido.MidiFile(path)
    tracks: dict[str, list[tuple[int, int, int, int]]] = {}
    markers: list[tuple[int, str, dict[str, str]]] = []
    for tr in mf.tracks:
        name, t, on, found = "", 0, {}, []
        for m in tr:
            t += m.time
            if m.type == "track_name":
                name = m.name
            elif m.type == "marker" and m.text.startswith("sonify:"):
                kind, _, rest = m.text[len("sonify:"):].partition(" ")
                markers.append((t, kind, dict(p.split("=", 1) for p in rest.split())))
            elif m.type == "note_on" and m.velocity > 0:
                on[(m.channel, m.note)] = t
            elif m.type in ("note_on", "note_off") and (m.channel, m.note) in on:
                found.append((on.pop((m.channel, m.note)), t, m.note, m.channel))
        if name and found:
            tracks[name] = sorted(found)
    markers.sort(key=lambda x: x[0])
    return mf.ticks_per_beat, tracks, markers


def melody_figures(path: Path, melody: str, register: tuple[int, int],
                   beats_per_bar: int = 4) -> dict[str, float]:
    tpb, tracks, markers = _read(path)
    mel = tracks[melody]
    others = [n for k, v in tracks.items() if k != melody and not k.startswith("trigger")
              for n in v if n[3] != 9]
    bar, q = tpb * beats_per_bar, tpb / GRID

    def last(kind: str, tick: float) -> dict[str, str]:
        return [f for t, k, f in markers if k == kind and t <= tick + q][-1]

    bars: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, _, p, _ in mel:
        grid_pos = round(s / q)
        bars[int(grid_pos * q // bar)].append((grid_pos - round(grid_pos * q // bar * bar / q), p))
    restated = 0
    for b, items in bars.items():
        mot, key = last("motif", b * bar), last("key", b * bar)
        pcs = sorted(int(x) for x in key["pcs"].split(","))
        if mot.get("ladder") == "chord":
            pcs = sorted(int(x) for x in last("chord", b * bar)["pcs"].split(","))
        idx = [theory.ladder_index(tuple(pcs), p) for _, p in items]
        steps = tuple(y - x for x, y in zip(idx, idx[1:], strict=False))
        models: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for beat, deg in zip(mot["steps"].split(","), mot["degrees"].split(","), strict=True):
            pos = round(float(beat) * GRID)
            models[pos // (beats_per_bar * GRID)].append((pos % (beats_per_bar * GRID), int(deg)))
        for model in models.values():
            iv = tuple(y[1] - x[1] for x, y in zip(model, model[1:], strict=False))
            if tuple(p for p, _ in model) == tuple(p for p, _ in items) and (
                    steps == iv or steps == tuple(-x for x in iv)):
                restated += 1
                break
    ints = [abs(b[2] - a[2]) for a, b in zip(mel, mel[1:], strict=False)]
    lo, hi = register
    total = sum(e - s for s, e, _, _ in mel)
    clash = 0.0
    for s, e, p, _ in mel:
        spans = sorted((max(s, s2), min(e, e2)) for s2, e2, p2, _ in others
                       if s2 < e and e2 > s and (p - p2) % 12 in (1, 11))
        end = -1.0
        for a, b2 in spans:
            a = max(a, end)
            if b2 > a:
                clash += b2 - a
                end = b2
    return {"restated": restated / len(bars),
            "leaps": sum(i > 7 for i in ints) / max(1, len(ints)),
            "edge": sum(p - lo <= 2 or hi - p <= 2 for _, _, p, _ in mel) / len(mel),
            "clash": clash / total}


def _blue_field(tmp_path: Path) -> Path:
    img = np.zeros((240, 320, 3), np.uint8)
    img[:] = (200, 60, 20)
    path = tmp_path / "blue.png"
    cv2.imwrite(str(path), img)
    return path


@pytest.mark.parametrize("picture", ["astronaut.jpg", "brick.jpg", "gravel.jpg", "blue"])
def test_gallery_melody_restates_its_motif_in_phrases_that_fit_the_harmony(
        picture: str, tmp_path: Path) -> None:
    src = _blue_field(tmp_path) if picture == "blue" else PHOTOS / picture
    out = tmp_path / "piece.mid"
    render(str(src), [str(out)], scene="gallery", duration_s=60)
    voice = next(v for v in load_scene("gallery").voices if v.name == "melody")
    f = melody_figures(out, "melody", voice.register_)
    assert f["restated"] >= 0.4, f
    assert f["leaps"] <= 0.10, f
    assert f["edge"] <= 0.25, f
    assert f["clash"] <= 0.03, f


def test_a_motif_marker_comes_before_the_first_melody_note() -> None:
    img = cv2.imread(str(PHOTOS / "coffee.jpg"))
    events, player, _ = play("gallery", settled(img), seconds=12)
    marks = [e for e in events if isinstance(e, Marker) and e.kind == "motif"]
    first = notes(events, "melody")[0]
    assert marks and marks[0].t <= first.t
    voice: Melody = next(v for v in player._voices if isinstance(v, MelodyVoice)).melody
    assert marks[0].text == voice.marker_text()
    assert "voice=melody" in marks[0].text


def test_the_same_picture_and_seed_play_the_same_melody_however_time_is_sliced() -> None:
    feats = settled(cv2.imread(str(PHOTOS / "chelsea.jpg")))
    a, _, _ = play("gallery", feats, seconds=20, window_s=0.02)
    b, _, _ = play("gallery", feats, seconds=20, window_s=0.05)
    key = [(round(n.t, 6), n.pitch, round(n.duration_s, 6)) for n in notes(a, "melody")]
    assert key and key == [(round(n.t, 6), n.pitch, round(n.duration_s, 6))
                           for n in notes(b, "melody")]


def test_different_pictures_play_different_melodies() -> None:
    lines = {}
    for name in ("coffee", "rocket", "camera"):
        events, _, _ = play("gallery", settled(cv2.imread(str(PHOTOS / f"{name}.jpg"))),
                            seconds=16)
        lines[name] = tuple(n.pitch for n in notes(events, "melody"))
    assert len(set(lines.values())) == 3


def test_calm_melody_stays_in_its_pentatonic_scale() -> None:
    events, _, _ = play("calm", settled(cv2.imread(str(PHOTOS / "astronaut.jpg"))),
                        seconds=40)
    pcs = theory.scale_pcs(theory.parse_pitch_class("F"), "major_pentatonic")
    vibes = notes(events, "vibes")
    assert vibes and all(n.pitch % 12 in pcs for n in vibes)


def test_energize_arp_walks_chord_tones() -> None:
    events, player, _ = play("energize", settled(cv2.imread(str(PHOTOS / "coffee.jpg"))),
                             seconds=8)
    arp = notes(events, "arp")
    assert len(arp) > 50
    chords = [e for e in events if isinstance(e, Marker) and e.kind == "chord"]
    for n in arp:
        now = [c for c in chords if c.t <= n.t + 1e-6][-1]
        assert n.pitch % 12 in {int(x) for x in now.fields()["pcs"].split(",")}


def test_motif_true_loads_with_defaults() -> None:
    scene = load_scene("gallery").model_copy()
    data = {"name": "m", "kind": "notes", "channel": 1, "motif": True}
    from sonify.scene.schema import NotesVoice
    voice = NotesVoice.model_validate(data)
    assert voice.motif is not None and voice.motif.bars == 2
    assert NotesVoice.model_validate({**data, "motif": False}).motif is None
    assert ScenePlayer(scene)  # the shipped gallery builds its melody voice
