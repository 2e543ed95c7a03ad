"""Phrases from a motif: each transformation, the 8-bar layout, and the fit to the harmony."""

from __future__ import annotations

from sonify.music import theory
from sonify.music.motif import Motif
from sonify.music.phrase import (
    CLOSE,
    HALF,
    Figure,
    PhraseNote,
    augment,
    cadence_pitch,
    diminish,
    fit_unit,
    fragment,
    from_motif,
    invert,
    phrase_layout,
    sequence,
    settle,
    unit_figure,
)

MOTIF = Motif(16, (0, 2, 4, 8, 12), (2, 2, 4, 4, 4), (0, 2, 1, 3, 1),
              (True, False, False, True, False))
C_MAJOR = theory.scale_pcs(0, "major")


def _degrees(fig: Figure) -> list[int]:
    return [n.degree for n in fig.notes]


def test_sequence_moves_every_note_by_scale_steps() -> None:
    assert _degrees(sequence(from_motif(MOTIF), 2)) == [2, 4, 3, 5, 3]


def test_inversion_mirrors_the_contour() -> None:
    assert _degrees(invert(from_motif(MOTIF))) == [0, -2, -1, -3, -1]


def test_augmentation_and_diminution_scale_the_rhythm() -> None:
    aug = augment(from_motif(MOTIF))
    assert aug.length == 32 and [n.onset for n in aug.notes] == [0, 4, 8, 16, 24]
    dim = diminish(from_motif(MOTIF))
    assert dim.length == 8 and [n.onset for n in dim.notes] == [0, 1, 2, 4, 6]
    assert _degrees(dim) == _degrees(from_motif(MOTIF))


def test_fragment_keeps_the_head() -> None:
    head = fragment(from_motif(MOTIF))
    assert head.length == 8 and [n.onset for n in head.notes] == [0, 2, 4]
    assert all(n.onset + n.duration <= 8 for n in head.notes)


def test_an_eight_bar_period_is_antecedent_and_consequent() -> None:
    layout = phrase_layout(8, 2, period=True)
    assert [(u.start, u.bars, u.ending) for u in layout] == [
        (0, 2, ""), (2, 2, HALF), (4, 2, ""), (6, 2, CLOSE)]
    one_bar = phrase_layout(8, 1, period=True)
    assert [u.ending for u in one_bar] == ["", "", "", HALF, "", "", "", CLOSE]


def test_odd_phrases_still_cover_every_bar_and_end_with_a_cadence() -> None:
    for bars in range(1, 12):
        layout = phrase_layout(bars, 2, period=bars >= 6)
        assert sum(u.bars for u in layout) == bars
        assert layout[-1].ending == CLOSE


def test_the_motif_returns_and_the_ending_breathes() -> None:
    layout = phrase_layout(8, 2, period=True)
    figs = [unit_figure(MOTIF, u, 8, "A", rest=2) for u in layout]
    assert figs[0] == from_motif(MOTIF) and figs[2] == from_motif(MOTIF)
    end = figs[3].notes[-1]
    assert end.role == CLOSE and end.onset == 8 and end.onset + end.duration == 14
    assert figs[1].notes[-1].role == HALF


def test_b_sections_invert_the_motif() -> None:
    u = phrase_layout(8, 2, period=True)[0]
    fig = unit_figure(MOTIF, u, 8, "A")
    assert _degrees(unit_figure(MOTIF, phrase_layout(8, 1, True)[1], 16, "B")) == \
        _degrees(invert(fig))


def test_fit_keeps_the_unit_inside_the_register_and_reflects_off_the_top() -> None:
    rising = Figure(8, tuple(PhraseNote(i, 1, i) for i in range(8)))
    anchor = theory.ladder_index(C_MAJOR, 79)  # near the top of 60..84
    fit = fit_unit(rising, C_MAJOR, anchor, (0, 4, 7), 60, 84, None)
    pitches = [theory.ladder_pitch(C_MAJOR, anchor + fit.degree(n.degree)) for n in rising.notes]
    assert all(60 <= p <= 84 for p in pitches)
    assert fit.inverted or fit.shift < 0


def test_fit_puts_accents_on_chord_tones_without_long_clashes() -> None:
    # three neighbouring scale notes: a placement without a semitone clash exists (C D E)
    fig = from_motif(Motif(16, (0, 2, 4, 8, 12), (2, 2, 4, 4, 4), (0, 2, 1, 2, 0),
                           (True, False, False, True, False)))
    anchor = theory.ladder_index(C_MAJOR, 75)
    fit = fit_unit(fig, C_MAJOR, anchor, (0, 4, 7), 55, 90, None)
    on_chord = 0
    for n in fig.notes:
        p = theory.ladder_pitch(C_MAJOR, anchor + fit.degree(n.degree))
        on_chord += n.accent and p % 12 in (0, 4, 7)
        if n.duration >= 2:
            assert all((p - c) % 12 not in (1, 11) for c in (0, 4, 7))
    assert on_chord >= 1


def test_settle_moves_a_long_clash_and_leaves_a_short_one() -> None:
    f5 = 77  # F over C major: a semitone above E
    moved = settle(f5, C_MAJOR, (0, 4, 7), long=True, strong=False, low=60, high=84)
    assert moved != f5 and all((moved - c) % 12 not in (1, 11) for c in (0, 4, 7))
    assert settle(f5, C_MAJOR, (0, 4, 7), long=False, strong=False, low=60, high=84) == f5


def test_cadence_notes() -> None:
    close = cadence_pitch(CLOSE, 0, C_MAJOR, (0, 4, 7), 70, 60, 84)
    assert close % 12 in (0, 4) and abs(close - 70) <= 6
    half = cadence_pitch(HALF, 0, C_MAJOR, (7, 11, 2), 70, 60, 84)
    assert half % 12 in (7, 2, 11)
    # a pentatonic key has no 7th: the half cadence takes its 2nd or 5th
    pent = theory.scale_pcs(5, "major_pentatonic")
    assert cadence_pitch(HALF, 5, pent, (0, 7), 70, 57, 77) % 12 in (0, 7)
