"""The parts of a piece that ``sonify judge`` needs named: melody, chord voices and key.

- **melody**: ``Hints.melody``, else the track named ``melody``, else the busiest monophonic
  pitched track (at most 10% of its onsets shared with another of its notes), preferring one
  whose mean pitch is at least C3 (a bass line is the melody only when there is nothing else);
- **chord voices**: ``Hints.chord_tracks``, else every pitched track where at least half the
  onsets are struck together with another note (pads, stabs); drums (channel 10) and trigger
  tracks never count;
- **key**: the ``key`` markers (``stated``), else ``Hints.key`` (a scene with a fixed key),
  else estimated from the notes (Krumhansl & Kessler 1982 profiles, duration-weighted:
  ``estimated``).

``Hints`` carries what a file does not say and the caller knows, usually from the scene that
played it (``hints_from_scene``; the scene is read through a Protocol, so this layer does not
import ``sonify.scene``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sonify.music import theory
from sonify.music.piece import TRIGGER_PREFIX, Marker, Piece, PieceNote

BASS_BELOW = 48  # a track whose mean pitch is under C3 is a bass line, the melody's last resort
MONOPHONIC_MAX = 0.10  # the share of onsets struck with another note a monophonic track allows
CHORDAL_MIN = 0.5
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) key profiles
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass(frozen=True)
class Hints:
    """What the file does not say but the caller knows (``hints_from_scene``)."""

    melody: str | None = None
    chord_tracks: tuple[str, ...] | None = None
    registers: dict[str, tuple[int, int]] = field(default_factory=dict)
    key: tuple[int, str] | None = None  # (root pc, scale name) of a scene with a fixed key


class _VoiceLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def register_(self) -> tuple[int, int]: ...


class _ChoiceLike(Protocol):
    @property
    def choices(self) -> list[str]: ...
    @property
    def feature(self) -> str | None: ...


class _KeyLike(Protocol):
    @property
    def root(self) -> _ChoiceLike: ...
    @property
    def scale(self) -> _ChoiceLike: ...


class SceneLike(Protocol):
    @property
    def voices(self) -> Sequence[_VoiceLike]: ...
    @property
    def key(self) -> _KeyLike: ...


def hints_from_scene(scene: SceneLike, melody: str | None = None) -> Hints:
    """Registers of the scene's voices, its chord voices, and its key when fixed."""
    key = None
    root, scale = scene.key.root, scene.key.scale
    if root.feature is None and scale.feature is None:
        text = root.choices[0]
        key = (theory.parse_pitch_class(int(text) if text.isdigit() else text),
               theory.SCALE_ALIASES.get(scale.choices[0], scale.choices[0]))
    return Hints(melody=melody,
                 chord_tracks=tuple(v.name for v in scene.voices if v.kind == "chords"),
                 registers={v.name: (int(v.register_[0]), int(v.register_[1]))
                            for v in scene.voices},
                 key=key)


# -- the parts ------------------------------------------------------------------------------------

def _shared_onset_share(notes: Sequence[PieceNote]) -> float:
    starts = Counter(n.start_tick for n in notes)
    return sum(1 for n in notes if starts[n.start_tick] > 1) / max(1, len(notes))


def voice_tracks(piece: Piece) -> dict[str, list[PieceNote]]:
    tracks: dict[str, list[PieceNote]] = {}
    for n in piece.notes:
        if n.pitched and not n.track.startswith(TRIGGER_PREFIX):
            tracks.setdefault(n.track, []).append(n)
    return tracks


def find_melody(piece: Piece, hints: Hints) -> str | None:
    tracks = voice_tracks(piece)
    for name in (hints.melody, "melody"):
        if name is not None and name in tracks:
            return name
    if hints.melody is not None:
        return None
    chordal = set(hints.chord_tracks or ())
    mono = [(name, ns) for name, ns in tracks.items()
            if name not in chordal and _shared_onset_share(ns) <= MONOPHONIC_MAX]
    if not mono:
        return None
    return max(mono, key=lambda item: (sum(n.pitch for n in item[1]) / len(item[1])
                                       >= BASS_BELOW, len(item[1])))[0]


def find_chord_tracks(piece: Piece, hints: Hints, melody: str | None) -> tuple[str, ...]:
    tracks = voice_tracks(piece)
    if hints.chord_tracks is not None:
        return tuple(t for t in hints.chord_tracks if t in tracks)
    return tuple(name for name, ns in tracks.items()
                 if name != melody and _shared_onset_share(ns) >= CHORDAL_MIN)


def _key_of(m: Marker) -> tuple[int, str, tuple[int, ...]]:
    root = int(m.fields["root"]) if m.fields.get("root", "").isdigit() else \
        theory.parse_pitch_class(m.fields.get("root", "C"))
    pcs = tuple(int(p) % 12 for p in m.fields.get("pcs", "").split(",") if p.strip())
    scale = m.fields.get("scale", "major")
    if not pcs:
        pcs = theory.scale_pcs(root, scale)
    return root, scale, pcs


def estimate_key(notes: Sequence[PieceNote]) -> tuple[int, str]:
    """Krumhansl-Kessler: the key whose profile best correlates with the duration-weighted
    pitch-class histogram (``(0, "major")`` for a silent piece)."""
    hist = [0.0] * 12
    for n in notes:
        if n.pitched:
            hist[n.pitch % 12] += n.end_s - n.start_s
    if not any(hist):
        return 0, "major"
    best = (-2.0, 0, "major")
    for scale, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for root in range(12):
            rotated = [profile[(pc - root) % 12] for pc in range(12)]
            best = max(best, (_correlation(hist, rotated), root, scale))
    return best[1], best[2]


def _correlation(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    den = math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    return num / den if den else 0.0


class Keys:
    """The key at any tick: from markers, the scene, or an estimate."""

    def __init__(self, piece: Piece, hints: Hints) -> None:
        marks = piece.markers_of("key")
        self.ticks = [m.tick for m in marks]
        self.keys = [_key_of(m) for m in marks]
        if marks:
            self.source = "stated"
        elif hints.key is not None:
            self.source = "scene"
            root, scale = hints.key
            self.ticks, self.keys = [0], [(root, scale, theory.scale_pcs(root, scale))]
        else:
            self.source = "estimated"
            root, scale = estimate_key(piece.notes)
            self.ticks, self.keys = [0], [(root, scale, theory.scale_pcs(root, scale))]
        spans: Counter[tuple[int, str]] = Counter()
        bounds = [*self.ticks[1:], piece.end_tick]
        for (root, scale, _), a, b in zip(self.keys, self.ticks, bounds, strict=True):
            spans[(root, scale)] += max(b - a, 1)
        self.main = spans.most_common(1)[0][0]

    def at(self, tick: int) -> tuple[int, str, tuple[int, ...]]:
        i = max(0, sum(1 for t in self.ticks if t <= tick) - 1)
        return self.keys[i]

    def names(self) -> tuple[str, ...]:
        out: list[str] = []
        for root, scale, _ in self.keys:
            name = f"{NOTE_NAMES[root]} {scale}"
            if not out or out[-1] != name:
                out.append(name)
        return tuple(out)
