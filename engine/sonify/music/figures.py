"""The musical figures of a piece (``sonify judge``): numbers from the MIDI, not impressions.

``judge(path)`` reads a MIDI file (``piece.py``) and measures what ``../shared/MUSIC.md`` and
issue 12 ask of a piece. The melody, the chord voices and the key are found as ``parts.py``
says.

The figures (each ``None`` when the piece lacks what it needs, e.g. no melody):

- ``restatement``: the share of the melody's bars (with notes) that restate the motif: the
  bar's onsets, quantised to an eighth of a beat, equal a motif bar's, and its successive
  intervals equal the motif bar's, in semitones or in scale steps, as they are or inverted
  (sign flipped). Only bars of two notes or more count (one note has no contour: a melody of
  one note a bar restates nothing). The motif is the ``motif`` marker (its ``steps`` split into
  bars) or else the melody's first such bar, which is then left out of the count;
- ``clash``: the share of melody note-time during which a chord voice sounds a note a semitone
  from it, in any octave (|melody - chord| mod 12 = 1: minor second, minor ninth, ...);
- ``leaps``: the share of successive melody intervals larger than 7 semitones;
- ``register_edge``: the share of melody notes within 2 semitones of the register's edges;
  the register is ``Hints.registers[melody]`` (a scene's voice), else a ``voice`` marker
  (``name=melody register=55,84``), else the melody's own lowest and highest notes (``notes``:
  this always counts the extremes themselves);
- ``outside_scale``: pitched notes (not channel 10) whose pitch class is not in the key active
  at the note's start, nor in the key that starts within a sixteenth after it (a humanised note
  may sound a few milliseconds before the downbeat that changes the key); ``None`` when the
  key is only estimated;
- ``ending``: the final chord (the last ``chord`` marker, else the chord voices' last struck
  notes) has the key's tonic as its root, and its notes sound until half a beat before the end
  of the file or later.

How far two pieces lie apart is ``distance.py``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sonify.music import theory
from sonify.music.parts import (
    NOTE_NAMES,
    Hints,
    Keys,
    find_chord_tracks,
    find_melody,
    voice_tracks,
)
from sonify.music.piece import TRIGGER_PREFIX, Piece, PieceNote, read_piece

GRID = 8  # onsets are compared on a grid of an eighth of a beat (humanised timing rounds away)
LEAP_SEMITONES = 7
EDGE_SEMITONES = 2
MIN_BAR_NOTES = 2  # a bar of one note has no contour to restate: it is not judged


@dataclass(frozen=True, slots=True)
class Motif:
    """1-2 bars of rhythm and contour: onsets in beats from its start, scale degrees."""

    onsets: tuple[float, ...]
    degrees: tuple[int, ...]
    source: str  # "marker", "marker (chord tones)" or "first bar"

    def text(self) -> str:
        return (f"onsets {','.join(f'{o:g}' for o in self.onsets)}  "
                f"degrees {','.join(str(d) for d in self.degrees)}")


@dataclass(frozen=True)
class Figures:
    path: str
    length_s: float
    melody: str | None
    chord_tracks: tuple[str, ...]
    key_source: str  # "stated" (markers), "scene", "estimated"
    keys: tuple[str, ...]  # "D major", in order of appearance
    main_key: tuple[int, str]  # (root pc, scale) sounding longest
    sections: tuple[str, ...]
    cadences: tuple[str, ...]
    motif: Motif | None
    restatement: float | None
    bars: int  # melody bars judged for restatement
    clash: float | None
    leaps: float | None
    register: tuple[int, int] | None
    register_source: str
    register_edge: float | None
    outside_scale: int | None
    outside_by_voice: dict[str, int]
    ending_chord: str
    ending_tonic: bool | None
    ending_held: bool | None
    tempo_min: float
    tempo_max: float
    tempo_mean: float
    mean_pitch: float | None  # the melody's (else every pitched note's)
    density: dict[str, float]  # notes per second per track
    triggers: dict[str, int]  # trigger notes per trigger track

    @property
    def tempo_range(self) -> float:
        return self.tempo_max - self.tempo_min

    @property
    def ending_ok(self) -> bool:
        return bool(self.ending_tonic and self.ending_held)


# -- the figures ----------------------------------------------------------------------------------

def _degree(pitch: int, pcs: tuple[int, ...]) -> int:
    return theory.ladder_index(tuple(sorted(set(pcs))), pitch)


@dataclass(frozen=True, slots=True)
class _Bar:
    rhythm: tuple[int, ...]  # onsets in grid units from the bar's start
    semis: tuple[int, ...] | None  # successive intervals in semitones (None: unknown)
    steps: tuple[int, ...] | None  # successive intervals in scale steps
    # successive intervals in steps of the sounding chord's tones (a motif on the chord ladder:
    # ``ladder=chord`` in its marker, as an arpeggio or a bass riff plays it)
    chord_steps: tuple[int, ...] | None = None

    def restates(self, other: _Bar) -> bool:
        if self.rhythm != other.rhythm:
            return False
        for mine, theirs in ((self.semis, other.semis), (self.steps, other.steps),
                             (self.chord_steps, other.chord_steps)):
            if mine is not None and theirs is not None and (
                    mine == theirs or mine == tuple(-i for i in theirs)):
                return True
        return False


def _line(notes: Sequence[PieceNote]) -> list[PieceNote]:
    """The melody as a line: one note per onset (the highest of notes struck together)."""
    by_onset: dict[int, PieceNote] = {}
    for n in notes:
        if n.start_tick not in by_onset or n.pitch > by_onset[n.start_tick].pitch:
            by_onset[n.start_tick] = n
    return [by_onset[t] for t in sorted(by_onset)]


def _melody_bars(piece: Piece, line: Sequence[PieceNote], keys: Keys) -> list[tuple[int, _Bar]]:
    unit = piece.ticks_per_beat / GRID
    bar_units = round(piece.beats_per_bar * GRID)
    grouped: dict[int, list[tuple[int, PieceNote]]] = {}
    for n in line:
        q = round(n.start_tick / unit)
        grouped.setdefault(q // bar_units, []).append((q % bar_units, n))
    chords = [(m.tick, tuple(int(x) % 12 for x in m.fields.get("pcs", "").split(",")
                             if x.strip().lstrip("-").isdigit()))
              for m in piece.markers_of("chord")]
    chord_ticks = [tick for tick, _ in chords]
    bars = []
    for index in sorted(grouped):
        items = grouped[index]
        pitches = [n.pitch for _, n in items]
        pcs = keys.at(items[0][1].start_tick)[2]
        degrees = [_degree(p, pcs) for p in pitches]
        chord_degrees: list[int] | None = [] if chords else None
        for _, n in items:
            i = bisect_right(chord_ticks, n.start_tick) - 1
            tones = chords[max(i, 0)][1] if chord_degrees is not None else ()
            if chord_degrees is not None and tones:
                chord_degrees.append(_degree(n.pitch, tones))
            else:
                chord_degrees = None
        bars.append((index, _Bar(tuple(pos for pos, _ in items), _diffs(pitches),
                                 _diffs(degrees),
                                 _diffs(chord_degrees) if chord_degrees is not None else None)))
    return bars


def _diffs(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(b - a for a, b in zip(values, values[1:], strict=False))


def _marker_motifs(piece: Piece) -> list[tuple[int, Motif]]:
    """Every ``motif`` marker as (its tick, the motif), in order (unreadable ones skipped)."""
    out: list[tuple[int, Motif]] = []
    for mark in piece.markers_of("motif"):
        f = mark.fields
        try:
            onsets = tuple(float(x) for x in f.get("steps", "").split(",") if x.strip())
            degrees = tuple(int(d) for d in f.get("degrees", "").split(",") if d.strip())
        except ValueError:
            continue
        if onsets and len(onsets) == len(degrees):
            source = "marker (chord tones)" if f.get("ladder") == "chord" else "marker"
            out.append((mark.tick, Motif(onsets, degrees, source)))
    return out


def _marker_motif(piece: Piece) -> Motif | None:
    motifs = _marker_motifs(piece)
    return motifs[0][1] if motifs else None


def _motif_bars(motif: Motif, beats_per_bar: float) -> list[_Bar]:
    bar_units = round(beats_per_bar * GRID)
    grouped: dict[int, list[tuple[int, int]]] = {}
    for onset, degree in zip(motif.onsets, motif.degrees, strict=True):
        q = round(onset * GRID)
        grouped.setdefault(q // bar_units, []).append((q % bar_units, degree))
    on_chord = motif.source == "marker (chord tones)"
    return [_Bar(tuple(p for p, _ in items), None,
                 None if on_chord else _diffs([d for _, d in items]),
                 _diffs([d for _, d in items]) if on_chord else None)
            for _, items in sorted(grouped.items())]


def restatement(piece: Piece, line: Sequence[PieceNote], keys: Keys
                ) -> tuple[float | None, int, Motif | None]:
    """(share of bars restating the motif, bars judged, the motif)."""
    bars = [(i, b) for i, b in _melody_bars(piece, line, keys) if len(b.rhythm) >= MIN_BAR_NOTES]
    marked = _marker_motifs(piece)
    if marked:
        # each bar against the motif in force at its start (a new section or picture may
        # derive a new one; the return of a section brings its motif back)
        bar_ticks = round(piece.ticks_per_beat * piece.beats_per_bar)
        in_force = [(tick, [m for m in _motif_bars(motif, piece.beats_per_bar)
                            if len(m.rhythm) >= MIN_BAR_NOTES]) for tick, motif in marked]
        hits = 0
        for index, bar in bars:
            start = index * bar_ticks
            models = next((ms for tick, ms in reversed(in_force) if tick <= start),
                          in_force[0][1])
            hits += any(bar.restates(m) for m in models)
        return (hits / len(bars) if bars else None), len(bars), marked[0][1]
    if bars:
        index, first = bars[0]
        unit = piece.ticks_per_beat / GRID
        bar_units = round(piece.beats_per_bar * GRID)
        notes = [n for n in line if round(n.start_tick / unit) // bar_units == index]
        pcs = keys.at(notes[0].start_tick)[2]
        base = _degree(notes[0].pitch, pcs)
        motif = Motif(tuple(p / GRID for p in first.rhythm),
                      tuple(_degree(n.pitch, pcs) - base for n in notes), "first bar")
        models, judged = [first], bars[1:]
    else:
        return None, 0, None
    if not judged:
        return None, 0, motif
    hits = sum(1 for _, bar in judged if any(bar.restates(m) for m in models))
    return hits / len(judged), len(judged), motif


def clash_share(melody: Sequence[PieceNote], chords: Sequence[PieceNote]) -> float | None:
    total = sum(n.end_s - n.start_s for n in melody)
    if total <= 0:
        return None
    clashing = 0.0
    for m in melody:
        spans = sorted((max(c.start_s, m.start_s), min(c.end_s, m.end_s)) for c in chords
                       if c.start_s < m.end_s and c.end_s > m.start_s
                       and abs(c.pitch - m.pitch) % 12 == 1)
        end = -math.inf
        for a, b in spans:  # the union: two clashing chord tones at once count once
            a = max(a, end)
            if b > a:
                clashing += b - a
                end = b
    return clashing / total


def leap_share(line: Sequence[PieceNote]) -> float | None:
    steps = _diffs([n.pitch for n in line])
    if not steps:
        return None
    return sum(1 for s in steps if abs(s) > LEAP_SEMITONES) / len(steps)


def _register(piece: Piece, hints: Hints, melody: str, line: Sequence[PieceNote]
              ) -> tuple[tuple[int, int] | None, str]:
    if melody in hints.registers:
        return hints.registers[melody], "scene"
    for m in piece.markers_of("voice"):
        if m.fields.get("name") == melody and "register" in m.fields:
            lo, _, hi = m.fields["register"].partition(",")
            if lo.strip().isdigit() and hi.strip().isdigit():
                return (int(lo), int(hi)), "marker"
    if not line:
        return None, "none"
    return (min(n.pitch for n in line), max(n.pitch for n in line)), "notes"


def edge_share(line: Sequence[PieceNote], register: tuple[int, int]) -> float | None:
    if not line:
        return None
    lo, hi = register
    return sum(1 for n in line if n.pitch <= lo + EDGE_SEMITONES
               or n.pitch >= hi - EDGE_SEMITONES) / len(line)


def _chord_root(pcs: set[int], bass: int | None) -> int | None:
    """The root of a set of pitch classes: the pc with the most of its third and fifth present
    (a tie goes to the bass)."""
    if not pcs:
        return None

    def score(r: int) -> tuple[int, bool]:
        return (((r + 7) % 12 in pcs) * 2 + ((r + 3) % 12 in pcs or (r + 4) % 12 in pcs)
                + ((r + 2) % 12 in pcs and (r + 7) % 12 in pcs), r == bass)
    return max(sorted(pcs), key=score)


def ending(piece: Piece, chord_notes: Sequence[PieceNote], keys: Keys
           ) -> tuple[str, bool | None, bool | None]:
    """(the final chord, its root is the tonic, it sounds to the end)."""
    pool = list(chord_notes) or [n for n in piece.notes if n.pitched
                                 and not n.track.startswith(TRIGGER_PREFIX)]
    if not pool:
        return "-", None, None
    tol = piece.ticks_per_beat // 2
    marks = piece.markers_of("chord")
    if marks:
        last = marks[-1]
        pcs = {int(p) % 12 for p in last.fields.get("pcs", "").split(",") if p.strip()}
        root = int(last.fields.get("root", "-1")) % 12 if last.fields.get("root") else None
        name, at = last.fields.get("name", "?"), last.tick
    else:
        at = max(n.start_tick for n in pool)
        struck = [n for n in pool if n.start_tick >= at - tol]
        pcs = {n.pitch % 12 for n in struck}
        root = _chord_root(pcs, min(struck, key=lambda n: n.pitch).pitch % 12)
        name = "?"
    tonic = keys.at(at)[0]
    sounding = [n for n in pool if n.end_tick >= piece.end_tick - tol and n.start_tick < n.end_tick]
    held = bool(sounding) and all(n.pitch % 12 in pcs for n in sounding) if pcs else bool(sounding)
    label = f"{name} on {NOTE_NAMES[root]}" if root is not None else name
    return label, (root == tonic) if root is not None else None, held


def _tempo_stats(piece: Piece) -> tuple[float, float, float]:
    bpms = [bpm for _, _, bpm in piece.tempos]
    spans = []
    for i, (_, s, bpm) in enumerate(piece.tempos):
        end = piece.tempos[i + 1][1] if i + 1 < len(piece.tempos) else piece.length_s
        spans.append((max(end - s, 0.0), bpm))
    weight = sum(w for w, _ in spans)
    mean = sum(w * b for w, b in spans) / weight if weight > 0 else bpms[0]
    if weight > 0:  # tempos that never last a tick do not count towards the range
        bpms = [b for w, b in spans if w > 0] or bpms
    return min(bpms), max(bpms), mean


def judge(path: str | Path | Piece, hints: Hints | None = None) -> Figures:
    """The figures of the MIDI file ``path`` (see the module docstring)."""
    piece = path if isinstance(path, Piece) else read_piece(path)
    hints = hints or Hints()
    keys = Keys(piece, hints)
    melody = find_melody(piece, hints)
    chords = find_chord_tracks(piece, hints, melody)
    chord_notes = [n for n in piece.notes if n.track in chords]
    line = _line(piece.notes_of(melody)) if melody else []
    share, bars, motif = restatement(piece, line, keys) if line else (None, 0, None)
    register, register_source = _register(piece, hints, melody, line) if melody else (None,
                                                                                     "none")
    pitched = [n for n in piece.notes if n.pitched]
    outside: dict[str, int] = {}
    if keys.source != "estimated":
        early = piece.ticks_per_beat // 4  # a sixteenth
        for n in pitched:
            pc = n.pitch % 12
            if pc not in keys.at(n.start_tick)[2] and pc not in keys.at(n.start_tick + early)[2]:
                outside[n.track] = outside.get(n.track, 0) + 1
    chord_name, tonic, held = ending(piece, chord_notes, keys)
    t_min, t_max, t_mean = _tempo_stats(piece)
    mean_from = line or pitched
    length = max(piece.length_s, 1e-9)
    density = {name: round(len(ns) / length, 4) for name, ns in voice_tracks(piece).items()}
    triggers = Counter(n.track for n in piece.notes if n.track.startswith(TRIGGER_PREFIX))
    return Figures(
        path=piece.path, length_s=piece.length_s, melody=melody, chord_tracks=chords,
        key_source=keys.source, keys=keys.names(), main_key=keys.main,
        sections=tuple(m.fields.get("name", "?") for m in piece.markers_of("section")),
        cadences=tuple(m.fields.get("type", "?") for m in piece.markers_of("cadence")),
        motif=motif, restatement=share, bars=bars,
        clash=clash_share(piece.notes_of(melody), chord_notes) if melody else None,
        leaps=leap_share(line), register=register, register_source=register_source,
        register_edge=edge_share(line, register) if register else None,
        outside_scale=sum(outside.values()) if keys.source != "estimated" else None,
        outside_by_voice=outside, ending_chord=chord_name, ending_tonic=tonic,
        ending_held=held, tempo_min=t_min, tempo_max=t_max, tempo_mean=t_mean,
        mean_pitch=sum(n.pitch for n in mean_from) / len(mean_from) if mean_from else None,
        density=density, triggers=dict(triggers))


def figures_dict(f: Figures) -> dict[str, object]:
    """The figures as JSON-able data (with the main key named, the tempo range, ending_ok)."""
    out = asdict(f)
    out["main_key"] = {"root": NOTE_NAMES[f.main_key[0]], "scale": f.main_key[1]}
    out["tempo_range"] = f.tempo_range
    out["ending_ok"] = f.ending_ok
    return out
