"""Standard MIDI File bytes, made as the music plays: no list of events, no whole piece in memory.

``MidiEncoder`` turns Events into the bytes of the MTrk chunks they belong in, one event at a
time: track 0 holds the tempo map (``set_tempo`` from Tempo events, ``default_bpm`` until the
first, and 4/4) and the Marker events (FF 06 ``sonify:<kind> <text>``: key, chord, section...);
then one track per voice, in order of first appearance, named after the voice (``""`` ->
``"sonify"``). Seconds become ticks through the tempo map built so far, as the file
itself will be read back (tempo quantised to whole microseconds per beat, tempo changes at whole
ticks), so every event lands within half a tick of its time. A note-off goes to the track of the
note it ends (the scheduler's panic note-offs carry no voice); a note still held at the end is
ended there (``closing``), so the file never has a hanging note.

Order: the scheduler dispatches in time order, so each event is usually at or after the ones
before it. One that comes late (scheduled after a later one was sent) is written at its track's
last tick (delta 0): it was heard late too. A Tempo event earlier than music already written
takes effect from that music on: the tempo map never changes under written events, so every
event stays within half a tick of its time; only the beat grid moves. Callers that have a batch
sort it by time first (stable), which makes both cases rare.

``assemble`` writes a type-1 file from per-track byte sources (files or bytes) by a streaming
copy; ``scan_track`` reads a track's bytes back, event by event, up to the last whole one.
"""

from __future__ import annotations

import io
import struct
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import mido

from sonify.events import (
    ControlChange,
    Event,
    Marker,
    NoteOff,
    NoteOn,
    PitchBend,
    ProgramChange,
    Tempo,
)

TICKS_PER_BEAT = 480
DEFAULT_BPM = 120.0
DEFAULT_VOICE_TRACK = "sonify"
TEMPO_TRACK_NAME = "tempo"
NOTE_OFF_VELOCITY = 64
END_OF_TRACK = b"\xff\x2f\x00"
MAX_TEMPO_SEGMENTS = 32  # the tempo map keeps its recent past only: memory stays flat
COPY_CHUNK = 1 << 20


def varlen(n: int) -> bytes:
    """A MIDI variable-length quantity (delta times, meta lengths)."""
    if n < 0x80:
        return bytes((n,))
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def meta(kind: int, data: bytes) -> bytes:
    return b"\xff" + bytes((kind,)) + varlen(len(data)) + data


def track_name(name: str) -> bytes:
    return meta(0x03, name.encode("latin-1", "replace"))  # mido's charset for text metas


def marker(kind: str, text: str) -> bytes:
    """A Marker meta event (FF 06) ``sonify:<kind> <text>`` (latin-1, as mido reads it)."""
    return meta(0x06, f"sonify:{kind} {text}".rstrip().encode("latin-1", "replace"))


def set_tempo(tempo_us: int) -> bytes:
    return meta(0x51, tempo_us.to_bytes(3, "big"))


TIME_SIGNATURE_4_4 = meta(0x58, bytes((4, 2, 24, 8)))  # 4/4, 24 clocks a click, 8 32nds a beat


def note_off(channel: int, pitch: int) -> bytes:
    return bytes((0x80 | channel, pitch, NOTE_OFF_VELOCITY))


def message(ev: Event) -> bytes:
    """The channel message of a MIDI event (never running status)."""
    if isinstance(ev, NoteOn):
        return bytes((0x90 | ev.channel, ev.pitch, ev.velocity))
    if isinstance(ev, NoteOff):
        return note_off(ev.channel, ev.pitch)
    if isinstance(ev, ControlChange):
        return bytes((0xB0 | ev.channel, ev.control, ev.value))
    if isinstance(ev, PitchBend):
        v = ev.value + 8192
        return bytes((0xE0 | ev.channel, v & 0x7F, v >> 7))
    if isinstance(ev, ProgramChange):
        return bytes((0xC0 | ev.channel, ev.program))
    raise TypeError(f"not a MIDI event: {ev!r}")


@dataclass
class _Segment:
    start_s: float  # where this tempo starts, in the file's own time
    start_tick: int
    ticks_per_s: float


class TempoMap:
    """Seconds since the origin -> ticks, for tempo changes added in time order."""

    def __init__(self, tempo_us: int, ticks_per_beat: int = TICKS_PER_BEAT) -> None:
        self.ticks_per_beat = ticks_per_beat
        self.tempo_us = tempo_us
        self.segments: deque[_Segment] = deque(
            [_Segment(0.0, 0, ticks_per_beat * 1e6 / tempo_us)], maxlen=MAX_TEMPO_SEGMENTS)

    def ticks(self, seconds: float) -> int:
        seg = self.segments[0]
        for candidate in reversed(self.segments):  # usually the last: music moves forward
            if candidate.start_s <= seconds:
                seg = candidate
                break
        return seg.start_tick + max(0, round((seconds - seg.start_s) * seg.ticks_per_s))

    def change(self, seconds: float, tempo_us: int) -> int:
        """The tempo is ``tempo_us`` from ``seconds`` on; returns the tick it changes at."""
        tick = self.ticks(seconds)
        prev = self.segments[-1]
        rate = self.ticks_per_beat * 1e6 / tempo_us
        if tick == prev.start_tick:
            self.segments[-1] = _Segment(prev.start_s, tick, rate)
        else:  # the change's time as the file will be read: from the rounded tick
            file_s = prev.start_s + (tick - prev.start_tick) / prev.ticks_per_s
            self.segments.append(_Segment(file_s, tick, rate))
        self.tempo_us = tempo_us
        return tick


@dataclass
class Track:
    """One MTrk chunk in the making: ``data`` holds the bytes not yet stored (all of them
    when nothing is stored), ``stored`` counts those already on disk."""

    index: int
    name: str
    last_tick: int = 0
    data: bytearray = field(default_factory=bytearray)
    stored: int = 0

    @property
    def size(self) -> int:
        return self.stored + len(self.data)


class MidiEncoder:
    """Events (engine-clock seconds; ``origin_s`` is tick 0) -> MTrk bytes per track."""

    def __init__(self, origin_s: float, *, ticks_per_beat: int = TICKS_PER_BEAT,
                 tempo_bpm: float = DEFAULT_BPM, tempo_us: int | None = None) -> None:
        self.origin_s = origin_s
        self.ticks_per_beat = ticks_per_beat
        us = tempo_us if tempo_us is not None else mido.bpm2tempo(tempo_bpm)
        self.tempo_map = TempoMap(us, ticks_per_beat)
        tempo = Track(0, TEMPO_TRACK_NAME)
        tempo.data += b"\x00" + track_name(TEMPO_TRACK_NAME) + b"\x00" + TIME_SIGNATURE_4_4
        self.tracks: list[Track] = [tempo]
        self._by_voice: dict[str, Track] = {}
        self._tempo_pending: tuple[int, int] | None = (0, us)  # (tick, us) not yet in track 0
        self.horizon_s = 0.0  # the latest time written (seconds since the origin)
        self.notes = 0  # note-ons written: a file "holds music" when this is > 0
        # the sounding notes, and what a part that starts later needs to sound the same
        self.held: dict[tuple[int, int], tuple[str, int]] = {}  # (ch, pitch) -> (voice, vel)
        self.state: dict[tuple[int, int, int], tuple[str, bytes]] = {}  # (status, ch, num)

    def add(self, ev: Event) -> None:
        """Encode one event (anything but MIDI, Tempo and Marker events is ignored)."""
        s = ev.t - self.origin_s
        if s < 0.0:
            s = 0.0
        if isinstance(ev, Tempo):
            us = mido.bpm2tempo(ev.bpm)
            if us != self.tempo_map.tempo_us:
                self._tempo(max(s, self.horizon_s), us)
            return
        if isinstance(ev, Marker):  # on the tempo track, after a tempo change at its tick
            if s > self.horizon_s:
                self.horizon_s = s
            tick = self.tempo_map.ticks(s)
            if self._tempo_pending is not None and self._tempo_pending[0] <= tick:
                self.settle()
            self._put(self.tracks[0], tick, marker(ev.kind, ev.text))
            return
        if isinstance(ev, NoteOn):
            voice = ev.voice or DEFAULT_VOICE_TRACK
            self.held[(ev.channel, ev.pitch)] = (voice, ev.velocity)
            self.notes += 1
        elif isinstance(ev, NoteOff):
            sounding = self.held.pop((ev.channel, ev.pitch), None)
            voice = sounding[0] if sounding else (ev.voice or DEFAULT_VOICE_TRACK)
        elif isinstance(ev, (ControlChange, PitchBend, ProgramChange)):
            voice = ev.voice or DEFAULT_VOICE_TRACK
        else:
            return  # OSC, MIDI clock: not recorded
        data = message(ev)
        if isinstance(ev, ControlChange):
            self.state[(0xB0, ev.channel, ev.control)] = (voice, data)
        elif isinstance(ev, PitchBend):
            self.state[(0xE0, ev.channel, 0)] = (voice, data)
        elif isinstance(ev, ProgramChange):
            self.state[(0xC0, ev.channel, 0)] = (voice, data)
        if s > self.horizon_s:
            self.horizon_s = s
        self._put(self.track(voice), self.tempo_map.ticks(s), data)

    def track(self, voice: str) -> Track:
        t = self._by_voice.get(voice)
        if t is None:
            t = Track(len(self.tracks), voice)
            t.data += b"\x00" + track_name(voice)
            self.tracks.append(t)
            self._by_voice[voice] = t
        return t

    def _put(self, track: Track, tick: int, data: bytes) -> None:
        if tick < track.last_tick:
            tick = track.last_tick  # came late: see the module doc
        track.data += varlen(tick - track.last_tick)
        track.data += data
        track.last_tick = tick

    def _tempo(self, s: float, us: int) -> None:
        tick = self.tempo_map.change(s, us)
        if self._tempo_pending is not None and self._tempo_pending[0] != tick:
            self.settle()
        self._tempo_pending = (tick, us)  # a later change at the same tick replaces it

    def settle(self) -> None:
        """Write the pending tempo change into track 0 (before its bytes are stored)."""
        if self._tempo_pending is not None:
            tick, us = self._tempo_pending
            self._tempo_pending = None
            self._put(self.tracks[0], tick, set_tempo(us))

    def end_tick(self, end_t: float | None = None) -> int:
        """The tick the file ends at: ``end_t`` (engine clock) if given, never before the last
        event or tempo change."""
        tick = max(t.last_tick for t in self.tracks)
        if self._tempo_pending is not None:
            tick = max(tick, self._tempo_pending[0])
        if end_t is not None:
            tick = max(tick, self.tempo_map.ticks(max(0.0, end_t - self.origin_s)))
        return tick

    def closing(self, track: Track, end_tick: int) -> bytes:
        """What ends ``track`` at ``end_tick``: a note-off for each of its notes still held,
        then end-of-track. (Call ``settle()`` first.)"""
        held = [] if track.index == 0 else [  # a voice may be called "tempo" too
            key for key, (voice, _) in self.held.items() if voice == track.name]
        return closing_bytes(track.last_tick, end_tick, held)

    def carry_over(self, origin_s: float) -> MidiEncoder:
        """A new encoder from ``origin_s`` on (a recording split into parts) that sounds the
        same from its first tick: the tempo, each channel's program, controllers and bend, and
        the notes still held, struck again at tick 0 on their voices' tracks."""
        new = MidiEncoder(origin_s, ticks_per_beat=self.ticks_per_beat,
                          tempo_us=self.tempo_map.tempo_us)
        for track in self.tracks[1:]:
            for (status, _, _), (voice, data) in sorted(self.state.items()):
                if voice == track.name and status == 0xC0:  # programs first
                    new._put(new.track(voice), 0, data)
            for (status, _, _), (voice, data) in sorted(self.state.items()):
                if voice == track.name and status != 0xC0:
                    new._put(new.track(voice), 0, data)
            for (channel, pitch), (voice, velocity) in self.held.items():
                if voice == track.name:
                    new._put(new.track(voice), 0, bytes((0x90 | channel, pitch, velocity)))
                    new.notes += 1
        new.held = dict(self.held)
        new.state = dict(self.state)
        return new

    def commit_state(self) -> dict[str, object]:
        """What a recovery needs besides the bytes (JSON-able): each track's size and last
        tick, the notes held and on which track, the end tick so far."""
        index = {t.name: t.index for t in self.tracks[1:]}
        return {"sizes": [t.size for t in self.tracks],
                "ticks": [t.last_tick for t in self.tracks],
                "held": [[index[voice], ch, pitch]
                         for (ch, pitch), (voice, _) in sorted(self.held.items())
                         if voice in index],
                "end_tick": self.end_tick(), "notes": self.notes}


def closing_bytes(last_tick: int, end_tick: int, held: Iterable[tuple[int, int]]) -> bytes:
    """Note-offs for ``held`` (channel, pitch) at ``end_tick``, then end-of-track."""
    out = bytearray()
    now = last_tick
    end_tick = max(end_tick, last_tick)
    for channel, pitch in sorted(held):
        out += varlen(end_tick - now)
        out += note_off(channel, pitch)
        now = end_tick
    out += varlen(end_tick - now)
    out += END_OF_TRACK
    return bytes(out)


TrackSource = tuple[Path | bytes | None, int, bytes]  # (stored bytes, how many, tail)


def assembled_size(tracks: Sequence[TrackSource]) -> int:
    return 14 + sum(8 + size + len(tail) for _, size, tail in tracks)


def assemble(out: BinaryIO, ticks_per_beat: int, tracks: Sequence[TrackSource]) -> None:
    """Write a type-1 MIDI file to ``out``: each track is the first ``size`` bytes of its
    source (a spool file, or bytes) followed by ``tail`` (unstored bytes and the closing),
    copied a chunk at a time."""
    out.write(b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), ticks_per_beat))
    for source, size, tail in tracks:
        length = size + len(tail)
        if length >= 1 << 32:
            raise ValueError(f"a MIDI track holds at most 4 GiB, this one {length} bytes")
        out.write(b"MTrk" + struct.pack(">I", length))
        if isinstance(source, (bytes, bytearray)):
            out.write(source[:size])
        elif source is not None and size:
            with open(source, "rb") as f:
                left = size
                while left:
                    chunk = f.read(min(COPY_CHUNK, left))
                    if not chunk:
                        raise OSError(f"{source} is shorter than its {size} recorded bytes")
                    out.write(chunk)
                    left -= len(chunk)
        out.write(tail)


def encode_midi_file(events: Iterable[Event], *, start_s: float = 0.0,
                     end_s: float | None = None, ticks_per_beat: int = TICKS_PER_BEAT,
                     default_bpm: float = DEFAULT_BPM) -> bytes:
    """A whole type-1 MIDI file for ``events`` (sorted by time here, stably), tick 0 at
    ``start_s``, ending at ``end_s`` (engine clock) or at the last event. For offline
    render, where the events are in memory anyway."""
    enc = MidiEncoder(start_s, ticks_per_beat=ticks_per_beat, tempo_bpm=default_bpm)
    for ev in sorted(events, key=lambda e: e.t):
        enc.add(ev)
    enc.settle()
    end_tick = enc.end_tick(end_s)
    tracks: list[TrackSource] = [(bytes(t.data), len(t.data), enc.closing(t, end_tick))
                                 for t in enc.tracks]
    buf = io.BytesIO()
    assemble(buf, ticks_per_beat, tracks)
    return buf.getvalue()


# -- reading a track back (recovery) ----------------------------------------------------------

@dataclass
class TrackScan:
    """A track's bytes up to the last whole, valid event: how many, its last tick, the notes
    it leaves sounding, how many note-ons."""

    size: int = 0
    last_tick: int = 0
    held: set[tuple[int, int]] = field(default_factory=set)
    notes: int = 0


def scan_track(f: BinaryIO, limit: int) -> TrackScan:
    """Read at most ``limit`` bytes of MTrk events from ``f`` (a chunk at a time) and stop at
    the first event that is cut short or not one sonify writes (a crash can leave a torn
    event, or zeros, at the end)."""
    res = TrackScan()
    buf = b""  # the bytes from file offset res.size on
    remaining = limit
    while True:
        chunk = f.read(min(COPY_CHUNK, remaining)) if remaining > 0 else b""
        remaining -= len(chunk)
        buf += chunk
        consumed = _scan(buf, res)
        if consumed < 0:
            return res  # not ours: stop here
        buf = buf[consumed:]
        if not chunk:
            return res


def _scan(buf: bytes, res: TrackScan) -> int:
    """Parse whole events from ``buf`` into ``res``; how many bytes they took, or -1 after
    an event sonify would never write."""
    n = len(buf)
    i = 0
    tick = res.last_tick
    start = res.size
    while i < n:
        j = i
        delta = 0
        while True:  # delta time: at most 4 bytes
            if j >= n:
                return i
            b = buf[j]
            j += 1
            delta = (delta << 7) | (b & 0x7F)
            if not b & 0x80:
                break
            if j - i >= 4:
                return -1
        if j >= n:
            return i
        status = buf[j]
        j += 1
        if status == 0xFF:
            if j >= n:
                return i
            kind = buf[j]
            j += 1
            length = 0
            while True:
                if j >= n:
                    return i
                b = buf[j]
                j += 1
                length = (length << 7) | (b & 0x7F)
                if not b & 0x80:
                    break
            j += length
            if j > n:
                return i
            if kind == 0x2F:
                return -1  # end of track: nothing after it counts
        elif 0x80 <= status < 0xF0:
            kind = status & 0xF0
            size = 1 if kind in (0xC0, 0xD0) else 2
            if j + size > n:
                return i
            if buf[j] & 0x80 or (size == 2 and buf[j + 1] & 0x80):
                return -1  # a status byte where data should be: torn
            key = (status & 0x0F, buf[j])
            if kind == 0x90 and buf[j + 1] > 0:
                res.held.add(key)
                res.notes += 1
            elif kind == 0x80 or kind == 0x90:
                res.held.discard(key)
            j += size
        else:
            return -1  # running status, sysex, zeros: sonify writes none of these
        tick += delta
        i = j
        res.size = start + i
        res.last_tick = tick
    return i
