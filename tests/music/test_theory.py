"""Notes, scales, quantising, chords from roman numerals, and voicing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonify.music import theory
from sonify.music.theory import (
    SCALES,
    TheoryError,
    chord,
    fold_into,
    in_scale,
    note_name,
    parse_note,
    parse_pitch_class,
    quantise_to_chord,
    quantise_to_scale,
    scale_pcs,
    voice_chord,
)

REQUIRED_SCALES = ("major", "minor", "dorian", "phrygian", "lydian", "mixolydian", "locrian",
                   "harmonic_minor", "major_pentatonic", "minor_pentatonic", "whole_tone",
                   "chromatic")


def names(ch: theory.Chord) -> list[str]:
    return [theory.NOTE_NAMES[t] for t in ch.tones]


def test_note_names_parse_as_musicians_write_them() -> None:
    assert parse_note("C4") == 60
    assert parse_note("A4") == 69
    assert parse_note("F#3") == 54
    assert parse_note("Bb2") == 46
    assert parse_note("C-1") == 0
    assert parse_note(64) == 64
    assert parse_note("A") == 69  # no octave: octave 4
    assert parse_pitch_class("C") == 0
    assert parse_pitch_class("F#") == 6
    assert parse_pitch_class("Bb") == 10
    assert parse_pitch_class("Cb") == 11
    assert note_name(61) == "C#4"


@pytest.mark.parametrize("bad", ["H4", "C#x", "", "C4 5", 128, -1, "G#9"])
def test_bad_notes_say_what_is_allowed(bad: str | int) -> None:
    with pytest.raises(TheoryError, match="not a note|outside MIDI"):
        parse_note(bad)


def test_every_required_scale_exists_with_its_intervals() -> None:
    for name in REQUIRED_SCALES:
        assert name in SCALES
    assert SCALES["major"] == (0, 2, 4, 5, 7, 9, 11)
    assert SCALES["minor"] == (0, 2, 3, 5, 7, 8, 10)
    assert SCALES["dorian"] == (0, 2, 3, 5, 7, 9, 10)
    assert SCALES["harmonic_minor"] == (0, 2, 3, 5, 7, 8, 11)
    assert SCALES["major_pentatonic"] == (0, 2, 4, 7, 9)
    assert SCALES["whole_tone"] == (0, 2, 4, 6, 8, 10)
    assert len(SCALES["chromatic"]) == 12
    assert scale_pcs(2, "major") == (1, 2, 4, 6, 7, 9, 11)  # D major, sorted


def test_unknown_scale_lists_the_scales() -> None:
    with pytest.raises(TheoryError, match="one of major, minor, dorian"):
        theory.scale_intervals("bebop")


def test_quantise_to_scale_snaps_to_the_nearest_scale_note() -> None:
    assert quantise_to_scale(60, "C", "major") == 60
    assert quantise_to_scale(61, "C", "major") == 60  # C#: a tie, goes down
    assert quantise_to_scale(63, "C", "major") == 62  # Eb: tie D/E, goes down
    assert quantise_to_scale(63.6, "C", "major") == 64
    assert quantise_to_scale(66, 0, "major_pentatonic") == 67  # F# -> G
    assert quantise_to_scale(61, "D", "major") == 61  # C# is in D major
    assert quantise_to_scale(59.0, "C", "minor_pentatonic") == 58


@given(st.floats(min_value=12, max_value=115), st.integers(0, 11), st.sampled_from(list(SCALES)))
def test_quantised_pitch_is_in_the_scale_and_nearest(pitch: float, root: int, scale: str) -> None:
    q = quantise_to_scale(pitch, root, scale)
    assert in_scale(q, root, scale)
    closer = [p for p in range(int(pitch) - 6, int(pitch) + 7)
              if in_scale(p, root, scale) and abs(p - pitch) < abs(q - pitch)]
    assert closer == []


def test_diatonic_chords_of_c_major() -> None:
    expected = {"I": "C E G", "ii": "D F A", "iii": "E G B", "IV": "F A C", "V": "G B D",
                "vi": "A C E", "vii°": "B D F"}
    for numeral, tones in expected.items():
        assert " ".join(names(chord(numeral, "C", "major"))) == tones, numeral


def test_sevenths_and_qualities() -> None:
    assert names(chord("V7", "C", "major")) == ["G", "B", "D", "F"]
    assert names(chord("ii7", "C", "major")) == ["D", "F", "A", "C"]
    assert names(chord("Imaj7", "C", "major")) == ["C", "E", "G", "B"]
    assert names(chord("vii°7", "C", "major")) == ["B", "D", "F", "Ab"]
    assert names(chord("iiø7", "C", "minor")) == ["D", "F", "Ab", "C"]
    assert names(chord("Vsus4", "C", "major")) == ["G", "C", "D"]
    assert names(chord("I+", "C", "major")) == ["C", "E", "Ab"]


def test_plain_numerals_follow_the_scale_and_accidentals_are_chromatic() -> None:
    assert names(chord("ii", "C", "minor")) == ["D", "F", "Ab"]  # diatonic: diminished in minor
    assert names(chord("i", "A", "minor")) == ["A", "C", "E"]
    assert names(chord("V", "C", "harmonic_minor")) == ["G", "B", "D"]
    assert names(chord("bVII", "C", "major")) == ["Bb", "D", "F"]
    assert names(chord("bVI", "C", "major")) == ["Ab", "C", "Eb"]
    assert names(chord("#iv°", "C", "major")) == ["F#", "A", "C"]
    # five-note scales borrow their chords from the seven-note parent
    assert names(chord("IV", "C", "major_pentatonic")) == ["F", "A", "C"]


def test_a_bad_numeral_says_what_a_numeral_is() -> None:
    with pytest.raises(TheoryError, match="roman numeral I..VII"):
        chord("VIII", "C")


def test_quantise_to_chord_snaps_to_chord_tones_in_any_octave() -> None:
    c = chord("I", "C", "major")
    assert quantise_to_chord(61, c) == 60
    assert quantise_to_chord(66, c) == 67
    assert quantise_to_chord(70, c) == 72 or quantise_to_chord(70, c) == 67
    assert quantise_to_chord(41, (5, 9, 0)) == 41


def test_voicing_stays_in_the_register_with_the_chords_tones() -> None:
    for numeral in ("I", "ii", "iii", "IV", "V7", "vi", "vii°"):
        ch = chord(numeral, "D", "major")
        v = voice_chord(ch, 48, 72)
        assert all(48 <= p <= 72 for p in v)
        assert sorted({p % 12 for p in v}) == sorted(set(ch.tones))


def test_voicing_moves_each_voice_as_little_as_possible() -> None:
    previous = voice_chord(chord("I", "C"), 48, 72, centre=60)
    total_moved = 0
    for numeral in ("vi", "IV", "V", "I", "IV", "ii", "V", "I"):
        v = voice_chord(chord(numeral, "C"), 48, 72, previous, centre=60)
        moved = sum(min(abs(p - q) for q in previous) for p in v)
        assert moved <= 5, (numeral, previous, v)  # common tones held, others step
        total_moved += moved
        previous = v
    assert total_moved <= 30


def test_fold_into_moves_by_octaves() -> None:
    assert fold_into(30, 48, 72) == 54
    assert fold_into(90, 48, 72) == 66
    assert fold_into(60, 48, 72) == 60
