"""Phrases from a motif: its transformations, an 8-bar plan, and the notes against the harmony.

A *figure* is a run of notes on a step grid (onset, duration, degree relative to the figure's
anchor, accent, role). A motif (``music/motif.py``) is the first figure; the transformations
make the others:

- ``sequence``: the same shape moved up or down the scale by whole scale steps;
- ``invert``: the contour mirrored (a step up becomes a step down);
- ``augment`` / ``diminish``: the rhythm twice as slow / twice as fast;
- ``fragment``: the head only (the first half of the motif).

``phrase_layout`` lays a phrase out in *units* of the motif's length, and ``unit_figure``
fills each: with a 2-bar motif an 8-bar period is ``motif | head + open ending | motif | head
+ cadence``; with a 1-bar motif ``motif | motif | sequence | head + open ending`` and the same
again closing. A phrase of under 6 bars (the harmony's rule) has one ending, at its end; bars
that do not divide into units get a one-bar unit (the motif's first bar) before the ending. The
first half (antecedent) ends *open* (role ``half``: degree 2, 5 or 7 of the key, over V), the
second (consequent) *closed* (role ``close``: the tonic, or its third), each on a held note
followed by a beat's rest, so the phrase breathes. A ``B`` section varies more (the motif
inverted, its head augmented); ``A'`` restates ``A``.

Against the harmony, each unit is realised by ``fit_unit`` - the whole unit moved by scale
steps (and mirrored if it must be, to reflect off the register's edge instead of folding an
octave) so that its accented notes fall on chord tones, no long note sits a semitone from a
chord tone, the leap into it stays small and its notes keep clear of the register's edges -
and each note is checked again as it plays by ``settle`` (a long note a semitone or minor ninth
from a chord tone moves to the nearest scale note that is not) and ``cadence_pitch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sonify.music import theory
from sonify.music.motif import Motif

HALF, CLOSE = "half", "close"
EDGE_MARGIN = 3  # semitones: notes closer than this to the register's edge cost extra
SHIFT_RANGE = 7  # scale steps a unit may be moved to fit the harmony and register


@dataclass(frozen=True, slots=True)
class PhraseNote:
    """One note of a figure. ``source``: the motif note it comes from (-1 for a cadence note)."""

    onset: int
    duration: int
    degree: int
    accent: bool = False
    role: str = ""
    source: int = -1


@dataclass(frozen=True, slots=True)
class Figure:
    length: int
    notes: tuple[PhraseNote, ...]


def from_motif(motif: Motif) -> Figure:
    return Figure(motif.length, tuple(
        PhraseNote(s, d, g, a, "", i) for i, (s, d, g, a) in enumerate(
            zip(motif.onsets, motif.durations, motif.degrees, motif.accents, strict=True))))


def sequence(fig: Figure, steps: int) -> Figure:
    return replace(fig, notes=tuple(replace(n, degree=n.degree + steps) for n in fig.notes))


def invert(fig: Figure) -> Figure:
    """The contour mirrored about the first note."""
    if not fig.notes:
        return fig
    d0 = fig.notes[0].degree
    return replace(fig, notes=tuple(replace(n, degree=2 * d0 - n.degree) for n in fig.notes))


def augment(fig: Figure, factor: int = 2) -> Figure:
    return Figure(fig.length * factor, tuple(
        replace(n, onset=n.onset * factor, duration=n.duration * factor) for n in fig.notes))


def diminish(fig: Figure) -> Figure:
    """Twice as fast; onsets that would fall between steps are rounded down, and a note that then
    shares its onset with the one before is dropped."""
    notes: list[PhraseNote] = []
    for n in fig.notes:
        onset = n.onset // 2
        if notes and notes[-1].onset == onset:
            continue
        notes.append(replace(n, onset=onset, duration=max(1, n.duration // 2)))
    return Figure(max(1, fig.length // 2), tuple(notes))


def fragment(fig: Figure, share: float = 0.5) -> Figure:
    """The head: the notes starting in the first ``share`` of the figure, cut to that length."""
    cut = max(1, int(round(fig.length * share)))
    notes = tuple(replace(n, duration=min(n.duration, cut - n.onset))
                  for n in fig.notes if n.onset < cut)
    return Figure(cut, notes or fig.notes[:1])


def then(a: Figure, b: Figure) -> Figure:
    """``a`` followed by ``b``."""
    return Figure(a.length + b.length, a.notes + tuple(
        replace(n, onset=n.onset + a.length) for n in b.notes))


def with_ending(head: Figure, length: int, role: str, rest: int) -> Figure:
    """``head`` (cut to half of ``length``), then one held note (``role``) to the end of
    ``length`` less ``rest`` steps (the breath); its degree is a placeholder that
    ``cadence_pitch`` replaces."""
    half = max(1, length // 2)
    head = fragment(head, half / head.length) if head.length > half else head
    last = head.notes[-1].degree if head.notes else 0
    hold = max(1, length - half - rest)
    return Figure(length, head.notes + (PhraseNote(half, hold, last, True, role, -1),))


@dataclass(frozen=True, slots=True)
class UnitPlace:
    """Where a unit sits in its phrase: first bar, length in bars, which half (0 antecedent, 1
    consequent; 0 in a phrase with one cadence), its index in that half, and its ending role
    (``""``, ``HALF`` or ``CLOSE``)."""

    start: int
    bars: int
    half: int
    index: int
    ending: str


def phrase_layout(bars: int, motif_bars: int, period: bool) -> tuple[UnitPlace, ...]:
    """The units of a phrase of ``bars`` bars: in each half (one half without a ``period``)
    units of ``motif_bars`` bars, a one-bar unit where the bars do not divide, and an ending
    unit that closes the half (see the module docstring)."""
    bars = max(1, bars)
    halves = [bars // 2, bars - bars // 2] if period and bars >= 2 else [bars]
    out: list[UnitPlace] = []
    start = 0
    for h, n in enumerate(halves):
        last = min(motif_bars, n)
        body = n - last
        sizes = [motif_bars] * (body // motif_bars) + ([body % motif_bars] if body % motif_bars
                                                       else [])
        sizes.append(last)
        role = HALF if h == 0 and len(halves) == 2 else CLOSE
        for i, size in enumerate(sizes):
            out.append(UnitPlace(start, size, h, i, role if i == len(sizes) - 1 else ""))
            start += size
    return tuple(out)


def unit_figure(motif: Motif, place: UnitPlace, steps_per_bar: int, section: str = "A",
                rest: int = 1) -> Figure:
    """The figure of one unit (see the module docstring); ``rest``: steps of silence after a
    phrase half's ending note."""
    m = from_motif(motif)
    up = -1 if motif.degrees[-1] > 0 else 1  # move against the motif's own drift
    b = section.upper().startswith("B")
    length = place.bars * steps_per_bar
    i = place.index
    if place.ending:
        head = sequence(m, up) if place.ending == HALF and i > 0 else m
        if b:
            head = invert(head)
        return with_ending(head, length, place.ending, rest)
    if b:
        options = (m, invert(m), fragment(augment(m), 0.5), sequence(invert(m), up))
    elif motif.length <= steps_per_bar:  # a one-bar motif says itself twice before moving on
        options = (m, m, sequence(m, up), sequence(m, 2 * up))
    else:
        options = (m, sequence(m, up), m, sequence(m, 2 * up))
    fig = options[i % len(options)]
    return fragment(fig, length / fig.length) if fig.length > length else fig


# -- against the harmony --------------------------------------------------------------------------

def _clashes(pc: int, chord_pcs: Sequence[int]) -> bool:
    """A semitone (or minor ninth / major seventh) from a chord tone."""
    return any((pc - c) % 12 in (1, 11) for c in chord_pcs)


@dataclass(frozen=True, slots=True)
class UnitFit:
    """How a unit is placed: moved ``shift`` scale steps, mirrored if ``inverted``."""

    shift: int
    inverted: bool

    def degree(self, d: int) -> int:
        return (-d if self.inverted else d) + self.shift


def fit_unit(fig: Figure, ladder: tuple[int, ...], anchor: int, chord_pcs: Sequence[int],
             low: int, high: int, previous: int | None, long_steps: int = 2,
             strong_every: int = 4) -> UnitFit:
    """The placement of ``fig`` (degrees above ladder rung ``anchor``) that best fits the chord,
    the register ``low..high`` and the note before (``previous``); see the module docstring.
    ``long_steps``: a note this many steps or longer must not clash; ``strong_every``: the
    steps of the strong beats (beat 1 and 3)."""
    best: tuple[float, int, int, UnitFit] | None = None
    for inverted in (False, True):
        for shift in range(-SHIFT_RANGE, SHIFT_RANGE + 1):
            fit = UnitFit(shift, inverted)
            cost = abs(shift) * 1.5 + (8.0 if inverted else 0.0)
            first: int | None = None
            for n in fig.notes:
                p = theory.ladder_pitch(ladder, anchor + fit.degree(n.degree))
                first = p if first is None else first
                if p < low or p > high:
                    cost += 100.0
                elif p < low + EDGE_MARGIN or p > high - EDGE_MARGIN:
                    cost += 5.0
                if n.role:
                    continue
                pc = p % 12
                strong = n.accent or n.onset % max(1, strong_every) == 0
                if strong and pc not in chord_pcs:
                    cost += 2.0
                if _clashes(pc, chord_pcs):
                    cost += 8.0 if n.duration >= long_steps else 2.5
            if previous is not None and first is not None:
                leap = abs(first - previous)
                cost += 5.0 if leap > 7 else 1.0 if leap > 4 else 0.0
            key = (cost, abs(shift), -shift, fit)
            if best is None or key[:3] < best[:3]:
                best = key
    assert best is not None
    return best[3]


def settle(pitch: int, ladder: tuple[int, ...], chord_pcs: Sequence[int], *, long: bool,
           strong: bool, low: int, high: int) -> int:
    """``pitch`` moved, if it must, to the nearest ladder note that does not clash with the
    chord (a long note) or that is a chord tone (a strong beat), within a scale step or two."""
    pc = pitch % 12
    needs = (long and _clashes(pc, chord_pcs)) or (strong and pc not in chord_pcs)
    if not needs:
        return pitch
    idx = theory.ladder_index(ladder, pitch)
    for d in (1, -1, 2, -2):
        p = theory.ladder_pitch(ladder, idx + d)
        if not low <= p <= high:
            continue
        if strong and p % 12 not in chord_pcs:
            continue
        if long and _clashes(p % 12, chord_pcs):
            continue
        return p
    if long and _clashes(pc, chord_pcs):  # no neighbour fits: the nearest chord tone does
        return max(low, min(high, theory.quantise_to_chord(pitch, tuple(chord_pcs))))
    return pitch


def cadence_pitch(role: str, root: int, scale_pcs: Sequence[int], chord_pcs: Sequence[int],
                  previous: int, low: int, high: int) -> int:
    """The ending note of a phrase half: ``half`` - degree 2, 5 or 7 of the key (over V);
    ``close`` - the tonic, or its third. Chord tones first, then nearness to ``previous``;
    inside ``low..high``."""
    if role == HALF:
        wanted = [(root + i) % 12 for i in (7, 2, 11, 10)]
    else:
        wanted = [(root + i) % 12 for i in (0, 4, 3)]
    in_scale = [pc for pc in wanted if pc in scale_pcs] or [root % 12]
    best: tuple[float, int] | None = None
    for rank, pc in enumerate(in_scale):
        base = previous - 12 + (pc - previous) % 12
        for p in (base, base + 12, base - 12, base + 24):
            if not low <= p <= high:
                continue
            cost = abs(p - previous) + rank * 0.5 + (0.0 if pc in chord_pcs else 6.0) \
                + (8.0 if _clashes(pc, chord_pcs) else 0.0)
            if best is None or cost < best[0]:
                best = (cost, p)
    if best is None:
        return theory.fold_into(root % 12 + 60, low, high)
    return best[1]
