"""What the scenes play for pictures, through the real Analyzer, on virtual time."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections import Counter
from functools import cache

import numpy as np
import pytest

from sonify.events import (
    ControlChange,
    Event,
    Marker,
    Note,
    OscMessage,
    PitchBend,
    ProgramChange,
)
from sonify.features.analyzer import Features
from sonify.features.registry import SCALAR_NAMES
from sonify.music.theory import chord, scale_pcs
from sonify.scene import Scene, ScenePlayer, load_scene, parse_scene
from sonify.scene.stream import stream_layout
from sonify.timing.clock import TempoClock
from tests.features import images
from tests.scene.helpers import analyse, demo_frames, notes, play, settled

SHIPPED = ("gallery", "starry", "city", "calm", "energize", "scan", "vj")


@cache
def city_moving() -> tuple[Features, ...]:
    return tuple(analyse(demo_frames("city", 480)))


@cache
def city_still() -> tuple[Features, ...]:
    return tuple(settled(demo_frames("city", 1)[0], 480))


@cache
def night() -> Features:
    return analyse(demo_frames("night", 60))[-1]


def notes_per_s(events: list[Event], seconds: float) -> float:
    return len(notes(events)) / seconds


# -- what the pictures play -----------------------------------------------------------------------

def test_warm_image_plays_higher_than_cool_image_in_gallery() -> None:
    warm, _, _ = play("gallery", settled(images.gradient(warm=True)))
    cool, _, _ = play("gallery", settled(images.gradient(warm=False)))
    warm_pitch = statistics.mean(n.pitch for n in notes(warm, "melody"))
    cool_pitch = statistics.mean(n.pitch for n in notes(cool, "melody"))
    assert len(notes(warm, "melody")) >= 8 and len(notes(cool, "melody")) >= 8
    assert warm_pitch > cool_pitch + 12


def test_a_starfield_sparkles_more_than_a_blank_sky() -> None:
    sky = images.starfield(images.scattered_points(12, 480, 270, 30))
    stars, _, _ = play("starry", settled(sky))
    blank, _, _ = play("starry", settled(images.starfield([])))
    assert len(notes(stars, "sparkle")) > 40
    assert len(notes(blank, "sparkle")) == 0
    assert len(notes(blank, "pad")) > 0  # the pad plays on under an empty sky


def test_higher_stars_play_higher_notes() -> None:
    high, _, _ = play("starry", settled(images.starfield([(100, 30), (300, 40)])), seconds=8)
    low, _, _ = play("starry", settled(images.starfield([(100, 230), (300, 240)])), seconds=8)
    lowest_high = min(n.pitch for n in notes(high, "sparkle"))
    assert lowest_high > max(n.pitch for n in notes(low, "sparkle"))


def test_more_motion_makes_city_faster_and_denser() -> None:
    moving, moving_player, _ = play("city", city_moving())
    still, still_player, _ = play("city", city_still())
    moving_bpm = moving_player.tempo_bpm(city_moving()[-1])
    assert moving_bpm > still_player.tempo_bpm(city_still()[-1]) + 10
    assert notes_per_s(moving, 16) > 1.3 * notes_per_s(still, 16)
    hats = [n for n in notes(moving, "drums") if n.pitch in (42, 46)]
    still_hats = [n for n in notes(still, "drums") if n.pitch in (42, 46)]
    assert len(hats) > len(still_hats)


def bars(columns: tuple[int, ...], w: int = 480, h: int = 270) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    cell = w // 8
    for c in columns:
        img[:, c * cell:(c + 1) * cell] = 255
    return img


def test_scan_plays_the_bright_columns_and_is_silent_for_black() -> None:
    events, _, tempo = play("scan", settled(bars((2, 5))), seconds=8)
    played = notes(events, "scan")
    assert played
    step_s = 0.5 * tempo.beat_s
    columns = {round(n.t / step_s) % 8 for n in played}
    assert columns == {2, 5}
    # a full-height bar plays every row: the 8 lowest C major pentatonic notes from C3
    first = sorted(n.pitch for n in played if abs(n.t - played[0].t) < 1e-9)
    assert first == [48, 50, 52, 55, 57, 60, 62, 64]
    black, _, _ = play("scan", settled(images.solid((0, 0, 0))), seconds=8)
    assert [e for e in black if not isinstance(e, Marker)] == []  # markers, no notes


def test_scan_rows_are_pitches_from_the_bottom_up() -> None:
    top = np.zeros((270, 480, 3), np.uint8)
    top[:34, :] = 255  # the top row of the grid
    bottom = np.zeros((270, 480, 3), np.uint8)
    bottom[-34:, :] = 255
    high, _, _ = play("scan", settled(top), seconds=3)
    low, _, _ = play("scan", settled(bottom), seconds=3)
    assert {n.pitch for n in notes(high)} == {64}
    assert {n.pitch for n in notes(low)} == {48}


def test_vj_streams_every_feature_as_osc_and_cc_and_plays_no_note() -> None:
    events, _, _ = play("vj", city_moving(), seconds=4)
    assert notes(events) == []
    addresses = {e.address for e in events if isinstance(e, OscMessage)}
    for name in SCALAR_NAMES:
        assert f"/feature/{name}" in addresses
    assert {"/feature/mood", "/feature/grid", "/feature/star_points"} <= addresses
    ccs = {(e.channel, e.control) for e in events if isinstance(e, ControlChange)}
    assert ccs == {(15, 20 + i) for i in range(len(SCALAR_NAMES))}
    scalars = {f"/feature/{name}" for name in SCALAR_NAMES}
    for e in events:
        if isinstance(e, OscMessage) and e.address in scalars:
            assert len(e.args) == 1 and 0.0 <= float(e.args[0]) <= 1.0  # type: ignore[arg-type]


def test_vj_with_changes_only_sends_a_value_only_when_it_changes() -> None:
    f = city_still()[-1]
    vj = load_scene("vj")
    assert vj.stream is not None
    stream = vj.stream.model_copy(update={"changes_only": True})
    player = ScenePlayer(vj.model_copy(update={"stream": stream}))
    tempo = TempoClock(120)
    first = [e for i in range(100) for e in player.render(f, tempo, i * 0.02, (i + 1) * 0.02)]
    per_target = Counter(e.address if isinstance(e, OscMessage) else e.control for e in first
                         if isinstance(e, (OscMessage, ControlChange)))
    assert set(per_target.values()) == {1}
    assert len(per_target) == len(stream_layout()) + len(SCALAR_NAMES)  # OSC, then the CCs
    brighter = dataclasses.replace(f, values={**f.values, "brightness": f.values["brightness"]
                                              + 0.1})
    again = [e for i in range(100, 150)
             for e in player.render(brighter, tempo, i * 0.02, (i + 1) * 0.02)]
    assert {e.address if isinstance(e, OscMessage) else e.control  # type: ignore[union-attr]
            for e in again} == {"/feature/brightness", 20}
    assert len(again) == 2  # one OSC, one CC
    # a change below the OSC resolution (1e-4) and below one CC step sends nothing
    tiny = dataclasses.replace(brighter, values={**brighter.values,
                                                 "brightness": brighter.values["brightness"]
                                                 + 1e-5})
    assert [e for i in range(150, 200)
            for e in player.render(tiny, tempo, i * 0.02, (i + 1) * 0.02)] == []


# -- time -----------------------------------------------------------------------------------------

def render_windows(scene: str | Scene, f: Features, edges: list[float],
                   seed: int = 3) -> list[Event]:
    player = ScenePlayer(load_scene(scene) if isinstance(scene, str) else scene, seed=seed)
    tempo = TempoClock(player.tempo_bpm(f))
    out: list[Event] = []
    for a, b in zip(edges, edges[1:], strict=False):
        got = player.render(f, tempo, a, b)
        assert all(a <= e.t < b for e in got)
        out.extend(got)
    return out


@pytest.mark.parametrize("scene", SHIPPED)
def test_render_windows_tile_exactly(scene: str) -> None:
    f = night()
    one = render_windows(scene, f, [0.0, 1.0])
    fifty = render_windows(scene, f, [i * 0.02 for i in range(51)])
    assert one == fifty
    rng = np.random.default_rng(1)
    edges = [0.0, *np.cumsum(rng.uniform(0.001, 0.03, 400)).tolist()]
    edges = [e for e in edges if e < 4.0] + [4.0]
    assert render_windows(scene, f, [0.0, 4.0]) == render_windows(scene, f, edges)
    if scene != "vj":
        assert notes(render_windows(scene, f, [0.0, 4.0]))


def test_windows_tile_exactly_with_swing_humanise_and_drum_voice_mappings() -> None:
    scene = parse_scene("""
name = "smooth drums"
tempo = { bpm = 133 }
[[voices]]
name = "kit"
kind = "drums"
swing = 0.2
humanise_ms = 9
density = { feature = "brightness", out = [0.3, 1.0], smoothing_s = 2.0 }
velocity = { feature = "contrast", out = [60, 127], smoothing_s = 1.0 }
parts = [{ sound = "kick", rhythm = { steps = "x.x.", step_beats = 0.25 } },
         { sound = "hat", rhythm = { euclid = { pulses = 5, steps = 8 }, step_beats = 0.25 } }]
""")
    f = night()
    edges = [i * 0.011 for i in range(int(3.0 / 0.011))] + [3.0]
    assert render_windows(scene, f, [0.0, 3.0]) == render_windows(scene, f, edges)


def test_the_same_seed_plays_the_same_and_another_seed_differs() -> None:
    a, _, _ = play("city", city_moving(), seconds=4, seed=1)
    b, _, _ = play("city", city_moving(), seconds=4, seed=1)
    c, _, _ = play("city", city_moving(), seconds=4, seed=2)
    assert a == b
    assert a != c


def test_no_features_yet_means_silence_at_the_resting_tempo() -> None:
    player = ScenePlayer(load_scene("city"))
    tempo = TempoClock(player.tempo_bpm(None))
    assert player.tempo_bpm(None) == 116.0  # the middle of 92..140
    windows = [(i * 0.02, (i + 1) * 0.02) for i in range(50)]
    assert [e for a, b in windows for e in player.render(None, tempo, a, b, ["cut_onset"])] == []


def test_swing_delays_the_off_beats() -> None:
    scene = parse_scene("""
name = "swing"
tempo = { bpm = 120 }
[[voices]]
name = "v"
kind = "notes"
channel = 1
rhythm = { steps = "x", step_beats = 0.5 }
swing = 0.3333
""")
    events, _, _ = play(scene, [night()], seconds=2, follow_tempo=False)
    times = [n.t for n in notes(events)]
    assert times[:4] == pytest.approx([0.0, 0.25 + 0.25 * 0.3333, 0.5, 0.75 + 0.25 * 0.3333])


def test_density_is_the_share_of_steps_that_sound() -> None:
    def scene(density: float) -> str:
        return f"""
name = "d"
tempo = {{ bpm = 120 }}
[[voices]]
name = "v"
kind = "notes"
channel = 1
rhythm = {{ steps = "x", step_beats = 0.25 }}
density = {density}
"""
    counts = [len(notes(play(parse_scene(scene(d)), [night()], seconds=20)[0]))
              for d in (0.0, 0.5, 1.0)]
    assert counts[0] == 0 and counts[2] == 160
    assert 60 < counts[1] < 100


def test_triggers_fire_once_per_onset() -> None:
    events, _, _ = play("city", city_still(), seconds=4,
                        onsets=lambda i: ["cut_onset", "motion_onset"] if i == 10 else [])
    crash = [n for n in notes(events) if n.voice == "trigger:motion_onset"]
    assert len(crash) == 1 and crash[0].t == pytest.approx(0.2) and crash[0].pitch == 49
    cut = [e for e in events if isinstance(e, OscMessage) and e.address == "/city/cut"]
    assert len(cut) == 1 and cut[0].t == pytest.approx(0.2)
    vj, _, _ = play("vj", city_still(), seconds=1, onsets=lambda i: ["stars_onset"] if i in (3, 30)
                    else [])
    stars = [e for e in vj if isinstance(e, OscMessage) and e.address == "/onset/stars"]
    assert [e.t for e in stars] == pytest.approx([0.06, 0.6])


def test_scale_quantised_voices_stay_in_the_scale() -> None:
    for scene, voice, root, scale in (("calm", "vibes", 5, "major_pentatonic"),
                                      ("starry", "sparkle", 4, "major_pentatonic"),
                                      ("scan", "scan", 0, "major_pentatonic")):
        picture = images.noise() if scene == "scan" else demo_frames("night", 1)[0]
        events, _, _ = play(scene, settled(picture), seconds=16)
        played = notes(events, voice)
        assert played, scene
        assert {n.pitch % 12 for n in played} <= set(scale_pcs(root, scale)), scene
    events, player, _ = play("gallery", settled(images.gradient(warm=True)))
    assert player.key is not None
    assert {n.pitch % 12 for n in notes(events, "melody")} <= set(player.key.scale_pcs)


PROGRESSION_SCENE = """
name = "progression"
tempo = { bpm = 120 }
key = { root = "C", scale = "major" }
[harmony]
beats_per_bar = 4
bars_per_chord = 1
progressions = { default = ["I", "IV", "V", "vi"], sad = ["vi", "ii", "iii", "vi"] }
[[voices]]
name = "pad"
kind = "chords"
channel = 1
[[voices]]
name = "arp"
kind = "notes"
channel = 2
rhythm = { steps = "x", step_beats = 0.25 }
pitch = { feature = "warmth", out = ["C4", "C6"], quantise = "chord" }
spread_steps = 3
"""


def test_the_progression_follows_the_mood_from_the_next_phrase_with_cadences() -> None:
    # the harmony plan (sonify.scene.harmony; this test asserted the old looped progression):
    # 8-bar phrases, 4 + 4, a half cadence on V, an authentic V-I; the mood's loop is chosen
    # at a phrase's start, and a held chord is struck once and held
    happy = night()
    happy = dataclasses.replace(happy, mood="happy")
    sad = dataclasses.replace(happy, mood="sad")

    def feats(t: float) -> Features:
        return happy if t < 3.0 else sad  # the mood turns sad during the 2nd bar

    events, _, _ = play(parse_scene(PROGRESSION_SCENE), feats, seconds=32, follow_tempo=False)
    by_bar: dict[int, set[int]] = {}
    for n in notes(events, "pad"):
        by_bar.setdefault(int(n.t // 2.0), set()).add(n.pitch % 12)
    first = ["I", "IV", "V", "V", "I", "IV", "V", "I"]  # happy: the default loop
    second = ["vi", "ii", "iii", "V", "vi", "ii", "V", "I"]  # sad, from bar 8 on
    expected = first + second
    struck = [b for b in range(16) if b in by_bar]
    assert 3 not in struck  # bar 2's V holds into the half cadence's bar: not struck again
    assert [by_bar[b] for b in struck] == [set(chord(expected[b], 0, "major").tones)
                                            for b in struck]
    for n in notes(events, "arp"):  # chord-quantised notes follow the chord of their bar
        assert n.pitch % 12 in set(chord(expected[int(n.t // 2.0)], 0, "major").tones)
    cadences = [(round(m.t), m.text) for m in events
                if isinstance(m, Marker) and m.kind == "cadence"]
    assert cadences == [(6, "type=half"), (14, "type=authentic"), (22, "type=half"),
                        (30, "type=authentic")]


def test_a_new_key_waits_for_the_next_phrase() -> None:
    scene = parse_scene("""
name = "k"
tempo = { bpm = 120 }
[key]
root = "C"
scale = { feature = "valence", choices = ["minor", "major"], hysteresis = 0.0 }
[[voices]]
name = "v"
kind = "notes"
channel = 1
rhythm = { steps = "x", step_beats = 0.25 }
""")
    f = night()
    sad = dataclasses.replace(f, values={**f.values, "valence": 0.1})
    glad = dataclasses.replace(f, values={**f.values, "valence": 0.9})
    events, _, _ = play(scene, lambda t: sad if t < 2.5 else glad, seconds=20,
                        follow_tempo=False)
    for n in notes(events):
        scale = "minor" if n.t < 16.0 else "major"  # 8 bars of 2 s: the change at bar 8
        assert n.pitch % 12 in scale_pcs(0, scale)
    keys = [(m.t, m.text) for m in events if isinstance(m, Marker) and m.kind == "key"]
    assert keys == [(0.0, "root=C scale=minor pcs=0,2,3,5,7,8,10"),
                    (16.0, "root=C scale=major pcs=0,2,4,5,7,9,11")]


def test_an_osc_voice_sends_pitch_velocity_and_duration() -> None:
    scene = parse_scene("""
name = "o"
tempo = { bpm = 120 }
[[voices]]
name = "lead"
kind = "notes"
osc = "/lead"
rhythm = { steps = "x", step_beats = 1 }
velocity = 127
length_beats = 0.5
[[voices]]
name = "both"
kind = "notes"
osc = "/both"
channel = 3
rhythm = { steps = "x", step_beats = 1 }
""")
    events, _, _ = play(scene, [night()], seconds=2, follow_tempo=False)
    lead = [e for e in events if isinstance(e, OscMessage) and e.address == "/lead"]
    assert len(lead) == 4 and not [n for n in notes(events) if n.voice == "lead"]
    pitch, level, duration_s = lead[0].args
    assert isinstance(pitch, int) and level == 1.0 and duration_s == pytest.approx(0.25)
    both = [e for e in events if getattr(e, "voice", "") == "both"]
    assert Counter(type(e) for e in both) == {Note: 4, OscMessage: 4}
    assert all(n.channel == 2 for n in notes(events, "both"))


def test_start_and_stop_events() -> None:
    player = ScenePlayer(load_scene("gallery"))
    assert player.start_events(1.5) == [ProgramChange(1.5, 0, 89, "pad"),
                                        ProgramChange(1.5, 1, 0, "melody"),
                                        ProgramChange(1.5, 2, 32, "bass")]
    bend = parse_scene("""
name = "b"
[[controls]]
name = "wobble"
feature = "motion_x"
pitch_bend = true
channel = 4
""")
    assert ScenePlayer(bend).stop_events(2.0) == [PitchBend(2.0, 3, 0, "wobble")]


def test_a_pitch_bend_control_spans_14_bits() -> None:
    scene = parse_scene("""
name = "b"
[[controls]]
name = "wobble"
feature = "motion_x"
pitch_bend = true
channel = 4
rate_hz = 50
""")
    f = night()
    player = ScenePlayer(scene)
    tempo = TempoClock(120)
    got = []
    for i, x in enumerate((0.0, 0.5, 1.0)):
        g = dataclasses.replace(f, values={**f.values, "motion_x": x})
        got += player.render(g, tempo, i * 0.1, (i + 1) * 0.1)
    assert [e.value for e in got] == [-8192, 0, 8191]  # type: ignore[union-attr]


@pytest.mark.parametrize("scene", ["energize", "city", "vj", "starry"])
def test_rendering_a_20_ms_window_is_cheap(scene: str) -> None:
    frames = city_moving()
    player = ScenePlayer(load_scene(scene))
    tempo = TempoClock(player.tempo_bpm(frames[0]))
    costs = []
    for i in range(800):
        f = frames[min(int(i * 0.02 * 30), len(frames) - 1)]
        started = time.perf_counter()
        player.render(f, tempo, i * 0.02, (i + 1) * 0.02)
        costs.append(time.perf_counter() - started)
    assert statistics.median(costs) < 0.5e-3


def test_drum_parts_play_their_sounds_at_their_velocities() -> None:
    events, _, _ = play("energize", [night()], seconds=2, follow_tempo=False)
    kicks = [n for n in notes(events, "drums") if n.pitch == 36]
    assert kicks and all(n.channel == 9 for n in notes(events, "drums"))
    assert {n.velocity for n in kicks} == {104, 124}  # X steps accented by 20
    assert {n.velocity for n in notes(events, "drums") if n.pitch == 46} == {70}
