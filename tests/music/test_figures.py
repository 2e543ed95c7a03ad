"""Issue 12's measured targets, asserted on a small survey: 3 pictures x every note-playing
scene, 30 s each, two seeds on two pictures (``sonify.render.survey``; the full survey is
``sonify survey``: every photo and drawn picture, 60 s).

Each test is one row of the issue's table. On the baseline (HEAD d5fd2fe, before the musical
layer) these FAIL: restatement, clash, leaps, register edge, ending, city tempo range and
triggers, gallery modes, loudness and video cut (see each test's comment); "outside the
stated scale" could not be judged there (no key markers, and only calm/starry/scan fix their
key). The survey runs once per module (about 40-60 s).
"""

from __future__ import annotations

import pytest

from sonify.render.survey import DARK_BLUE, WARM, Survey, Target, survey, targets

PICTURES = ["coffee", WARM, DARK_BLUE]


@pytest.fixture(scope="module")
def measured() -> Survey:
    return survey(seconds=30.0, pictures=PICTURES, seed_pairs=2)


@pytest.fixture(scope="module")
def rows(measured: Survey) -> dict[str, Target]:
    return {r.figure: r for r in targets(measured)}


def _check(rows: dict[str, Target], start: str) -> Target:
    found = [r for name, r in rows.items() if name.startswith(start)]
    assert found, f"no target row starting {start!r} in {list(rows)}"
    row = found[0]
    assert row.passed, f"{row.figure}: {row.value} (target {row.target}; {row.per_scene})"
    return row


def test_every_note_scene_was_judged_on_every_picture(measured: Survey) -> None:
    scenes = {r.scene for r in measured.records}
    assert {"gallery", "calm", "city", "energize", "starry"} <= scenes
    for scene in scenes:
        assert {r.picture for r in measured.of(scene)} == set(PICTURES)


def test_melody_bars_restate_the_motif(rows: dict[str, Target]) -> None:
    _check(rows, "melody bars restating the motif")  # baseline: FAILS (0-7%)


def test_melody_rarely_clashes_with_the_chords(rows: dict[str, Target]) -> None:
    _check(rows, "melody note-time a semitone")  # baseline: FAILS (about 5%)


def test_melody_leaps_are_rare(rows: dict[str, Target]) -> None:
    _check(rows, "melody intervals larger than 7")  # baseline: FAILS (about 15-25%)


def test_melody_keeps_off_its_register_edges(rows: dict[str, Target]) -> None:
    _check(rows, "melody notes within 2 semitones")  # baseline: FAILS (about 40%)


def test_no_note_outside_the_stated_scale(rows: dict[str, Target]) -> None:
    _check(rows, "notes outside the stated scale")  # baseline: FAILS (calm's pad: IV/V chords)


def test_every_piece_ends_on_the_tonic_held(rows: dict[str, Target]) -> None:
    _check(rows, "pieces ending on the tonic")  # baseline: FAILS (most end on V or mid-chord)


def test_city_keeps_a_steady_tempo_on_a_still(rows: dict[str, Target]) -> None:
    _check(rows, "city tempo range on a still")  # baseline: FAILS (92 <-> 137 BPM)


def test_city_fires_at_most_one_trigger_on_a_still(rows: dict[str, Target]) -> None:
    _check(rows, "city trigger firings on a still")  # baseline: FAILS (7-35 crashes)


def test_gallery_plays_a_bright_warm_picture_major(rows: dict[str, Target]) -> None:
    _check(rows, f"gallery: {WARM}")  # baseline: FAILS (valence never reaches major)


def test_gallery_plays_a_dark_blue_picture_minor(rows: dict[str, Target]) -> None:
    _check(rows, f"gallery: {DARK_BLUE}")


def test_pictures_differ_more_than_seeds(rows: dict[str, Target]) -> None:
    _check(rows, "pictures differ")


def test_calm_is_much_quieter_than_energize(rows: dict[str, Target]) -> None:
    _check(rows, "calm vs energize loudness")  # baseline: FAILS (every WAV normalised alike)


def test_a_video_cut_strikes_a_new_chord_within_a_frame(rows: dict[str, Target]) -> None:
    _check(rows, "video: new chord")  # baseline: FAILS (the old chord rings on)
