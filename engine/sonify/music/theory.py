"""Music theory the scenes need: note names, scales, quantising, roman-numeral chords, voicing.

Conventions: a *pitch* is a MIDI note number (C4 = 60, scientific pitch notation, so C-1 = 0);
a *pitch class* (pc) is 0..11 with C = 0. A *scale* is a name from ``SCALES`` plus a root pc.

Pitch sets (a scale, a chord) are handled as *ladders*: the sorted pitch classes repeated in every
octave, indexed by whole steps (``ladder_pitch``/``ladder_index``). A melody that moves "two scale
steps up" moves two rungs on the scale's ladder; quantising is snapping to the nearest rung.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

NOTE_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Spelling used when naming a pitch class (sharps for F# and C#, flats elsewhere)."""

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"": 0, "#": 1, "##": 2, "b": -1, "bb": -2, "♯": 1, "♭": -1}
_NOTE_RE = re.compile(r"^\s*([A-Ga-g])(##|bb|#|b|♯|♭)?(-?\d+)?\s*$")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor (aeolian)
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic_minor": (0, 2, 3, 5, 7, 9, 11),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole_tone": (0, 2, 4, 6, 8, 10),
    "chromatic": tuple(range(12)),
}
"""Scale name -> semitones above the root."""

SCALE_ALIASES: dict[str, str] = {"ionian": "major", "aeolian": "minor", "natural_minor": "minor"}

# Chords are stacked thirds of a seven-note scale; a scale with another number of notes borrows
# its chords from the seven-note scale it is usually heard against.
CHORD_PARENT: dict[str, str] = {
    "major_pentatonic": "major",
    "minor_pentatonic": "minor",
    "blues": "minor",
    "whole_tone": "lydian",
    "chromatic": "major",
}


class TheoryError(ValueError):
    """A note name, scale or numeral that cannot be read; the message says what is allowed."""


# -- notes ----------------------------------------------------------------------------------------

def parse_pitch_class(name: str | int) -> int:
    """``"C"`` -> 0, ``"F#"`` -> 6, ``"Bb"`` -> 10; an int is taken modulo 12."""
    if isinstance(name, bool):
        raise TheoryError(f"not a pitch class: {name!r}")
    if isinstance(name, int):
        return name % 12
    m = _NOTE_RE.match(name)
    if m is None or m.group(3) is not None:
        raise TheoryError(f"not a note name: {name!r} (use a letter A-G with an optional # or b, "
                          "e.g. C, F#, Bb)")
    return (_LETTER_PC[m.group(1).upper()] + _ACCIDENTAL[m.group(2) or ""]) % 12


def parse_note(name: str | int) -> int:
    """A pitch: a MIDI number 0..127, or a name with octave (``"C4"`` = 60, ``"F#3"``, ``"Bb-1"``).

    A name without an octave is taken in octave 4 (``"A"`` = 69).
    """
    if isinstance(name, bool):
        raise TheoryError(f"not a note: {name!r}")
    if isinstance(name, int):
        pitch = name
    else:
        text = name.strip()
        if text.lstrip("-").isdigit():
            pitch = int(text)
        else:
            m = _NOTE_RE.match(text)
            if m is None:
                raise TheoryError(f"not a note: {name!r} (use a MIDI number 0..127 or a name "
                                  "with an octave, e.g. C4 = 60, F#3, Bb2)")
            octave = int(m.group(3)) if m.group(3) is not None else 4
            semis = _LETTER_PC[m.group(1).upper()] + _ACCIDENTAL[m.group(2) or ""]
            pitch = 12 * (octave + 1) + semis
    if not 0 <= pitch <= 127:
        raise TheoryError(f"note {name!r} is outside MIDI 0..127")
    return pitch


def note_name(pitch: int) -> str:
    """60 -> ``"C4"``."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# -- scales ---------------------------------------------------------------------------------------

def scale_intervals(scale: str) -> tuple[int, ...]:
    """The semitones of ``scale`` above its root; a TheoryError listing the scales otherwise."""
    name = SCALE_ALIASES.get(scale, scale)
    try:
        return SCALES[name]
    except KeyError:
        raise TheoryError(f"unknown scale {scale!r}: one of {', '.join(SCALES)}") from None


@lru_cache(maxsize=512)
def scale_pcs(root: int, scale: str) -> tuple[int, ...]:
    """The pitch classes of ``scale`` on ``root``, sorted ascending (a ladder)."""
    return tuple(sorted((root + i) % 12 for i in scale_intervals(scale)))


def in_scale(pitch: int, root: int, scale: str) -> bool:
    return pitch % 12 in scale_pcs(root % 12, scale)


def ladder_pitch(pcs: tuple[int, ...], index: int) -> int:
    """The ``index``-th rung of the ladder of pitch classes ``pcs`` (sorted, 0..11): rung 0 is
    ``pcs[0]`` in MIDI octave -1, rung ``len(pcs)`` the same an octave higher."""
    octave, i = divmod(index, len(pcs))
    return 12 * octave + pcs[i]


def ladder_index(pcs: tuple[int, ...], pitch: float) -> int:
    """The rung nearest ``pitch`` (a tie goes to the lower rung)."""
    n = len(pcs)
    octave = int(pitch // 12)
    base = octave * n
    best = base - 1
    best_d = abs(ladder_pitch(pcs, best) - pitch)
    for idx in range(base, base + n + 1):
        d = abs(ladder_pitch(pcs, idx) - pitch)
        if d < best_d:
            best, best_d = idx, d
    return best


def quantise_to_scale(pitch: float, root: int | str, scale: str) -> int:
    """The scale note nearest ``pitch`` (a tie goes down)."""
    pcs = scale_pcs(parse_pitch_class(root), scale)
    return ladder_pitch(pcs, ladder_index(pcs, pitch))


def quantise_to_chord(pitch: float, tones: tuple[int, ...] | Chord) -> int:
    """The chord tone (any octave) nearest ``pitch`` (a tie goes down)."""
    pcs = tones.ladder if isinstance(tones, Chord) else tuple(sorted({t % 12 for t in tones}))
    return ladder_pitch(pcs, ladder_index(pcs, pitch))


# -- chords ---------------------------------------------------------------------------------------

_ROMAN = {"I": 0, "II": 1, "III": 2, "IV": 3, "V": 4, "VI": 5, "VII": 6}
_NUMERAL_RE = re.compile(
    r"^(?P<acc>b|#|♭|♯)?(?P<roman>VII|VI|V|IV|III|II|I|vii|vi|v|iv|iii|ii|i)"
    r"(?P<quality>°|o|dim|ø|\+|aug)?(?P<ext>maj7|M7|7|sus2|sus4)?$"
)
NUMERAL_HELP = ("a roman numeral I..VII (e.g. I ii iii IV V vi vii°), optionally with b or # "
                "before it and °, ø or + and 7, maj7, sus2 or sus4 after it")


@dataclass(frozen=True, slots=True)
class Chord:
    """A chord as pitch classes: ``tones`` root first in stacking order, ``ladder`` sorted."""

    numeral: str
    root: int
    tones: tuple[int, ...]

    @property
    def ladder(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.tones)))

    def __str__(self) -> str:
        return f"{self.numeral} ({' '.join(NOTE_NAMES[t] for t in self.tones)})"


def check_numeral(numeral: str) -> str:
    if _NUMERAL_RE.match(numeral) is None:
        raise TheoryError(f"not a chord numeral: {numeral!r}: use {NUMERAL_HELP}")
    return numeral


@lru_cache(maxsize=2048)
def chord(numeral: str, root: int | str, scale: str = "major") -> Chord:
    """The chord of a roman numeral in a key.

    A plain numeral is *diatonic*: stacked thirds of the scale on that degree, so the scale
    decides the quality (``"ii"`` in C major is D F A; in C minor, D F Ab) and the numeral's case
    is a reading aid. That lets a scene switch scale (minor <-> major by valence) and keep its
    progressions. Explicit qualities override: ``°`` diminished, ``ø7`` half-diminished seventh,
    ``+`` augmented, ``maj7`` a major seventh, ``sus2``/``sus4`` replace the third with the
    scale's second/fourth; ``7`` adds the scale's seventh. A numeral with an accidental
    (``bVII``, ``#iv°``) is chromatic: its root is that degree of the *major* scale moved a
    semitone, and its case gives the quality (upper major, lower minor; ``7`` a minor seventh).
    Five-, six- and twelve-note scales build chords from ``CHORD_PARENT``.
    """
    m = _NUMERAL_RE.match(check_numeral(numeral))
    assert m is not None
    key = parse_pitch_class(root)
    name = SCALE_ALIASES.get(scale, scale)
    scale_intervals(name)
    parent = scale_intervals(CHORD_PARENT.get(name, name))
    roman = m.group("roman")
    degree = _ROMAN[roman.upper()]
    quality = m.group("quality") or ""
    ext = m.group("ext") or ""
    acc = m.group("acc") or ""

    if acc:
        shift = 1 if acc in ("#", "♯") else -1
        chord_root = (key + SCALES["major"][degree] + shift) % 12
        upper = roman.isupper()
        rel = [0, 4 if upper else 3, 7]
        seventh = 10
    else:
        def step(n: int) -> int:
            octave, i = divmod(degree + n, 7)
            return parent[i] + 12 * octave - parent[degree]

        chord_root = (key + parent[degree]) % 12
        rel = [0, step(2), step(4)]
        seventh = step(6)
        if ext == "sus2":
            rel[1] = step(1)
        elif ext == "sus4":
            rel[1] = step(3)
    if quality in ("°", "o", "dim"):
        rel = [0, 3, 6]
        seventh = 9 if ext == "7" else seventh
    elif quality == "ø":
        rel, seventh = [0, 3, 6], 10
    elif quality in ("+", "aug"):
        rel = [0, 4, 8]
    if ext in ("7", "maj7", "M7") or quality == "ø":
        rel.append(11 if ext in ("maj7", "M7") else seventh)
    tones = tuple((chord_root + r) % 12 for r in rel)
    return Chord(numeral, chord_root, tones)


def voice_chord(
    tones: tuple[int, ...] | Chord,
    low: int,
    high: int,
    previous: tuple[int, ...] | None = None,
    centre: float | None = None,
) -> tuple[int, ...]:
    """Pitches for a chord in the register ``low..high``, chosen for smooth voice leading.

    Candidates are the close-position voicings of every inversion at every octave that fits.
    Without ``previous`` the one nearest ``centre`` (default: the middle of the register) wins;
    with it, the one whose notes move least from ``previous`` (each note to its nearest old
    note), with a gentle pull towards ``centre`` so a long progression does not wander to an
    edge. Ties go to the lower inversion. A register too narrow for the chord gets its root
    position from ``low``, folded down by octaves to fit where possible.
    """
    pcs = tones.tones if isinstance(tones, Chord) else tuple(t % 12 for t in tones)
    mid = (low + high) / 2 if centre is None else centre
    best: tuple[int, ...] | None = None
    best_cost = float("inf")
    n = len(pcs)
    for inv in range(n):
        order = pcs[inv:] + pcs[:inv]
        start = low + (order[0] - low) % 12
        while start <= high:
            notes = [start]
            for pc in order[1:]:
                gap = (pc - notes[-1]) % 12 or 12
                notes.append(notes[-1] + gap)
            if notes[-1] > high:
                break
            mean = sum(notes) / n
            if previous:
                moved = sum(min(abs(p - q) for q in previous) for p in notes)
                cost = moved + 0.5 * abs(mean - mid)
            else:
                cost = abs(mean - mid)
            if cost < best_cost - 1e-9:
                best, best_cost = tuple(notes), cost
            start += 12
    if best is None:
        notes = [low + (pcs[0] - low) % 12]
        for pc in pcs[1:]:
            notes.append(notes[-1] + ((pc - notes[-1]) % 12 or 12))
        best = tuple(p - 12 if p > high and p - 12 >= 0 else p for p in notes)
    return tuple(sorted(best))


def fold_into(pitch: int, low: int, high: int) -> int:
    """Move ``pitch`` by octaves into ``low..high`` (keeping its pitch class); clamp when the
    register is narrower than an octave."""
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    if pitch < low:  # the register is narrower than an octave: no octave of the pc fits
        pitch = low
    return max(0, min(127, pitch))


# -- colour, pentatonic chords, modes -------------------------------------------------------------

CHORD_COLOURS: tuple[str, ...] = ("triads", "sevenths", "ninths")
"""How rich a scene's chords are: plain triads, with their (diatonic) sevenths, or also with a
major ninth where the scale has one (a minor ninth is never added: it is a semitone clash)."""

PARALLEL_SCALE: dict[str, str] = {
    "major": "minor", "minor": "major", "lydian": "dorian", "dorian": "mixolydian",
    "mixolydian": "dorian", "phrygian": "major", "harmonic_minor": "major",
    "melodic_minor": "major", "major_pentatonic": "minor_pentatonic",
    "minor_pentatonic": "major_pentatonic",
}
"""The mode a contrasting section turns to on the same root (major <-> minor, brightest
neighbours otherwise); scales not listed keep their mode."""


def is_pentatonic(scale: str) -> bool:
    return len(scale_intervals(scale)) == 5


def _has_extension(numeral: str) -> bool:
    m = _NUMERAL_RE.match(numeral)
    return m is not None and (m.group("ext") is not None or m.group("quality") == "ø")


def coloured_chord(numeral: str, root: int | str, scale: str, colour: str = "triads") -> Chord:
    """``chord(numeral, root, scale)`` with the scene's colour: ``"sevenths"`` adds the seventh
    (``chord(numeral + "7")``: diatonic, so V7 in major, ii7, Imaj7), ``"ninths"`` also a major
    ninth when it is in the scale. A numeral that names its own extension keeps it. Pentatonic
    scales get ``pentatonic_chord``."""
    if colour not in CHORD_COLOURS:
        raise TheoryError(f"unknown chord colour {colour!r}: one of {', '.join(CHORD_COLOURS)}")
    if is_pentatonic(SCALE_ALIASES.get(scale, scale)):
        return pentatonic_chord(numeral, root, scale, colour)
    base = chord(numeral, root, scale)
    if colour == "triads" or _has_extension(numeral):
        return base
    tones = list(chord(numeral + "7", root, scale).tones)
    name = numeral + "7"
    if colour == "ninths":
        ninth = (base.root + 2) % 12
        key = parse_pitch_class(root)
        if ninth in scale_pcs(key, scale) and ninth not in tones:
            tones.append(ninth)
            name = numeral + "9"
    return Chord(name, base.root, tuple(tones))


def pentatonic_chord(numeral: str, root: int | str, scale: str, colour: str = "triads") -> Chord:
    """A chord of a five-note scale from its own notes only, so nothing clashes (a pentatonic
    has no semitones). The numeral's root (read in ``CHORD_PARENT``'s seven-note scale) is kept
    when it is in the pentatonic, else replaced by the pentatonic note a third below (IV -> ii,
    vii -> V in major pentatonic): the chord that shares most of its notes. On that root: the
    third if the pentatonic has one, else the second (sus2), else the fourth (sus4); the fifth
    if it has one, else the next note up; then the major ninth when the pentatonic has it
    (add9: the open, bell-like pad), and with ``"sevenths"``/``"ninths"`` the minor seventh if
    it is there too. The name says what it is: ``Iadd9``, ``iisus2``."""
    key = parse_pitch_class(root)
    pcs = scale_pcs(key, scale)
    parent = chord(numeral, key, scale)
    r = parent.root
    if r not in pcs:
        r = next((c for c in ((r - 3) % 12, (r - 4) % 12, (r + 3) % 12, (r + 4) % 12)
                  if c in pcs), pcs[0])
    has = set(pcs)

    def first(*intervals: int) -> int | None:
        return next((i for i in intervals if (r + i) % 12 in has), None)

    third = first(4, 3)
    middle = third if third is not None else first(2, 5)
    fifth = first(7, 8, 6, 9)
    rel = [0]
    for i in (middle, fifth):
        if i is not None and i not in rel:
            rel.append(i)
    suffix = "" if third is not None else "sus2" if middle == 2 else "sus4"
    if 2 not in rel and (r + 2) % 12 in has:
        rel.append(14)
        suffix = suffix or "add9"
    if colour != "triads" and (r + 10) % 12 in has:
        rel.append(10)
        suffix += "7"
    parent_steps = scale_intervals(CHORD_PARENT.get(scale, scale))
    offset = (r - key) % 12
    idx = parent_steps.index(offset) if offset in parent_steps else 0
    roman = ("I", "II", "III", "IV", "V", "VI", "VII")[idx]
    if third == 3 or (third is None and idx in (1, 2, 5)):
        roman = roman.lower()
    tones = tuple(dict.fromkeys((r + i) % 12 for i in rel))
    return Chord(roman + suffix, r, tones)


def parallel_scale(scale: str) -> str:
    """The mode a contrasting section plays in (``PARALLEL_SCALE``)."""
    name = SCALE_ALIASES.get(scale, scale)
    return PARALLEL_SCALE.get(name, name)
