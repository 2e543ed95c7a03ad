"""A MIDI file read back as a piece: notes in seconds and ticks, markers, tempo map, voices.

What ``sonify judge`` measures (``figures.py``) is read from the file alone, so it judges any
MIDI file, not only sonify's: type 0 or 1, any tick rate. sonify writes one track per voice,
named after the voice (``outputs/smf.py``), the tempo map on track 0, and (issue 12) its musical
plan as MIDI Marker meta events (FF 06) whose text is ``sonify:<kind> <key=value ...>``:

- ``key``: ``root=D scale=major pcs=2,4,6,7,9,11,1`` (the scale's pitch classes, root first)
- ``chord``: ``name=V7 root=9 pcs=9,1,4,7 bass=9``
- ``section``: ``name=A`` (``bars=N``); ``phrase``: ``bars=8``; ``cadence``: ``type=final``
- ``motif``: ``steps=0,1,1.5,2`` (onset beats) ``degrees=0,2,4,2`` (scale degrees)

Markers without the ``sonify:`` prefix are kept with kind ``""``. Seconds come from the file's
own tempo map (``set_tempo`` on any track), so a note's time is what a player would hear.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import mido

DRUM_CHANNEL = 9  # MIDI channel 10
MARKER_PREFIX = "sonify:"
TRIGGER_PREFIX = "trigger:"  # sonify's trigger notes sit on tracks "trigger:<onset>"


class PieceError(ValueError):
    """A file that cannot be read as a MIDI piece: the message says which and why."""


@dataclass(frozen=True, slots=True)
class PieceNote:
    track: str
    channel: int  # 0..15
    pitch: int
    velocity: int
    start_tick: int
    end_tick: int
    start_s: float
    end_s: float

    @property
    def pitched(self) -> bool:
        return self.channel != DRUM_CHANNEL


@dataclass(frozen=True, slots=True)
class Marker:
    """A marker meta event: ``kind`` and its ``key=value`` fields (``text`` when not sonify's)."""

    tick: int
    t: float
    kind: str
    fields: dict[str, str]
    text: str


@dataclass(frozen=True)
class Piece:
    path: str
    ticks_per_beat: int
    beats_per_bar: float
    end_tick: int
    length_s: float
    notes: tuple[PieceNote, ...]
    markers: tuple[Marker, ...]
    tempos: tuple[tuple[int, float, float], ...]  # (tick, seconds, bpm) of each tempo change
    tracks: tuple[str, ...] = field(default=())

    def markers_of(self, kind: str) -> list[Marker]:
        return [m for m in self.markers if m.kind == kind]

    def notes_of(self, track: str) -> list[PieceNote]:
        return [n for n in self.notes if n.track == track]

    def bpm_at(self, tick: int) -> float:
        i = bisect_right([t for t, _, _ in self.tempos], tick) - 1
        return self.tempos[max(i, 0)][2]


def parse_marker_text(text: str) -> tuple[str, dict[str, str]]:
    """``"sonify:chord name=V7 root=9"`` -> ``("chord", {"name": "V7", "root": "9"})``;
    a marker that is not sonify's -> ``("", {})``."""
    if not text.startswith(MARKER_PREFIX):
        return "", {}
    kind, _, rest = text[len(MARKER_PREFIX):].partition(" ")
    fields: dict[str, str] = {}
    for item in rest.split():
        key, sep, value = item.partition("=")
        if sep:
            fields[key] = value
    return kind.strip(), fields


class _TempoMap:
    """Ticks -> seconds through the file's tempo changes (120 BPM until the first)."""

    def __init__(self, changes: list[tuple[int, int]], ticks_per_beat: int) -> None:
        self.tpb = ticks_per_beat
        self.points: list[tuple[int, float, int]] = [(0, 0.0, 500_000)]  # tick, s, us/beat
        for tick, us in sorted(changes, key=lambda c: c[0]):
            t0, s0, us0 = self.points[-1]
            s = s0 + (tick - t0) * us0 / 1e6 / self.tpb
            if tick == t0:
                self.points[-1] = (t0, s0, us)
            else:
                self.points.append((tick, s, us))
        self._ticks = [p[0] for p in self.points]

    def seconds(self, tick: int) -> float:
        t0, s0, us = self.points[bisect_right(self._ticks, tick) - 1]
        return s0 + (tick - t0) * us / 1e6 / self.tpb


def read_piece(path: str | Path) -> Piece:
    """The piece in the MIDI file ``path``; PieceError when it is not a readable MIDI file."""
    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        why = str(exc) or "it is empty, truncated or not a Standard MIDI File"
        raise PieceError(f"cannot read {str(path)!r} as a MIDI file: {why}") from exc
    if mid.type == 2:
        raise PieceError(f"{str(path)!r} is a type-2 MIDI file (independent patterns): "
                         "judge reads type 0 and 1 only")
    tpb = mid.ticks_per_beat
    tempo_changes: list[tuple[int, int]] = []
    beats_per_bar = 4.0
    raw_markers: list[tuple[int, str]] = []
    raw_notes: list[tuple[str, int, int, int, int, int]] = []
    names: list[str] = []
    end_tick = 0
    for index, track in enumerate(mid.tracks):
        name = track.name or f"track {index}"
        names.append(name)
        tick = 0
        held: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempo_changes.append((tick, msg.tempo))
            elif msg.type == "time_signature" and tick == 0:
                beats_per_bar = msg.numerator * 4 / msg.denominator
            elif msg.type == "marker":
                raw_markers.append((tick, msg.text))
            elif msg.type == "note_on" and msg.velocity > 0:
                held.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                starts = held.get((msg.channel, msg.note))
                if starts:
                    on, vel = starts.pop(0)
                    raw_notes.append((name, msg.channel, msg.note, vel, on, tick))
        end_tick = max(end_tick, tick)
        for (channel, pitch), starts in held.items():  # a hanging note ends with its track
            raw_notes.extend((name, channel, pitch, vel, on, tick) for on, vel in starts)
    tmap = _TempoMap(tempo_changes, tpb)
    notes = tuple(sorted(
        (PieceNote(name, ch, p, v, a, b, tmap.seconds(a), tmap.seconds(b))
         for name, ch, p, v, a, b in raw_notes),
        key=lambda n: (n.start_tick, n.track, n.pitch)))
    markers = []
    for tick, text in sorted(raw_markers, key=lambda m: m[0]):
        kind, fields = parse_marker_text(text)
        markers.append(Marker(tick, tmap.seconds(tick), kind, fields, text))
    tempos = tuple((tick, s, mido.tempo2bpm(us)) for tick, s, us in tmap.points)
    return Piece(str(path), tpb, beats_per_bar, end_tick, tmap.seconds(end_tick), notes,
                 tuple(markers), tempos, tuple(names))
