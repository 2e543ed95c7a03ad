"""Record everything sent into a type-1 Standard MIDI File (mido), written atomically on close.

Layout: track 0 holds the tempo map (``set_tempo`` from Tempo events, 120 BPM until the first,
and 4/4); then one track per voice, in order of first appearance, named after the voice (``""``
-> ``"sonify"``). Times come from the events' own ``t`` (engine clock), not from when they
arrived, so a file recorded live and one rendered offline agree. Seconds become ticks through the
tempo map as the file itself will be read back (tempo quantised to whole microseconds per beat,
tempo changes at whole ticks), so every event lands within half a tick of its time.

A note-off goes to the track of the note it ends (the scheduler's panic note-offs carry no
voice); a note still held at the end is ended there, so the file never has a hanging note.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido

from engine.events import (
    MIDI_EVENTS,
    ControlChange,
    Event,
    MidiSystem,
    NoteOff,
    NoteOn,
    PitchBend,
    ProgramChange,
    Tempo,
)
from engine.outputs.base import Output

logger = logging.getLogger(__name__)

DEFAULT_VOICE_TRACK = "sonify"
TEMPO_TRACK_NAME = "tempo"


@dataclass
class _Segment:
    start_s: float  # where this tempo starts, in the file's own time
    start_tick: int
    ticks_per_s: float


class TempoMap:
    """Seconds since the origin -> ticks, for tempo changes given in seconds since the origin."""

    def __init__(self, changes: list[tuple[float, int]], ticks_per_beat: int) -> None:
        """``changes``: (seconds, microseconds per beat), sorted, the first at 0."""
        self.ticks_per_beat = ticks_per_beat
        self.segments: list[_Segment] = []
        self.tempo_ticks: list[tuple[int, int]] = []  # (tick, tempo_us) as written in the file
        for s, tempo_us in changes:
            rate = ticks_per_beat * 1e6 / tempo_us
            if not self.segments:
                self.segments.append(_Segment(0.0, 0, rate))
            else:
                tick = self.ticks(s)
                prev = self.segments[-1]
                # the change's time as the file will be read: from the rounded tick
                file_s = prev.start_s + (tick - prev.start_tick) / prev.ticks_per_s
                if tick == prev.start_tick:
                    self.segments[-1] = _Segment(prev.start_s, tick, rate)
                    self.tempo_ticks.pop()
                else:
                    self.segments.append(_Segment(file_s, tick, rate))
            self.tempo_ticks.append((self.segments[-1].start_tick, tempo_us))

    def ticks(self, seconds: float) -> int:
        seg = self.segments[0]
        for candidate in self.segments[1:]:
            if candidate.start_s > seconds:
                break
            seg = candidate
        return seg.start_tick + max(0, round((seconds - seg.start_s) * seg.ticks_per_s))


class MidiFileRecorder(Output):
    """Records MIDI and Tempo events and writes ``path`` on ``close()`` (or ``save()``).

    ``start_s`` is the engine-clock time of tick 0 (default: the first event's time).
    The file ends at ``close(end_s=...)``/``save(end_s=...)`` (engine clock) if given, else at
    ``start + duration_s`` if given, else at the last event — never before the last event.
    """

    name = "midifile"

    def __init__(self, path: str | os.PathLike[str], *, start_s: float | None = None,
                 duration_s: float | None = None, ticks_per_beat: int = 480,
                 default_bpm: float = 120.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.start_s = start_s
        self.duration_s = duration_s
        self.ticks_per_beat = ticks_per_beat
        self.default_bpm = default_bpm
        self.events: list[Event] = []
        self._end_s: float | None = None
        self.name = f"midifile:{self.path.name}"

    def wants(self, event: Event) -> bool:
        return isinstance(event, (*MIDI_EVENTS, Tempo))

    def _send(self, event: Event) -> None:
        if self.start_s is None:
            self.start_s = event.t
        self.events.append(event)

    def close(self, end_s: float | None = None) -> None:
        """Write the file (ending at ``end_s``, engine clock, if given) and stop recording."""
        if end_s is not None:
            self._end_s = end_s
        super().close()

    def _close(self) -> None:
        self._write(self._end_s)

    def save(self, end_s: float | None = None) -> Path:
        """Write what was recorded so far (atomically); recording goes on."""
        with self._lock:
            return self._write(end_s)

    # -- building the file ----------------------------------------------------------------

    def build(self, end_s: float | None = None) -> mido.MidiFile:
        """The MIDI file for what was recorded (no I/O)."""
        events = sorted(self.events, key=lambda e: e.t)  # stable: keeps send order per time
        origin = self.start_s if self.start_s is not None else 0.0
        tempo_changes: list[tuple[float, int]] = [(0.0, mido.bpm2tempo(self.default_bpm))]
        for ev in events:
            if isinstance(ev, Tempo):
                s = max(0.0, ev.t - origin)
                tempo_us = mido.bpm2tempo(ev.bpm)
                if tempo_changes[-1][1] != tempo_us:
                    tempo_changes.append((s, tempo_us))
        tmap = TempoMap(tempo_changes, self.ticks_per_beat)

        tracks: dict[str, list[tuple[int, mido.Message]]] = {}
        held: dict[tuple[int, int], str] = {}  # (channel, pitch) -> track of the sounding note
        last_s = 0.0
        for ev in events:
            if isinstance(ev, (Tempo, MidiSystem)):  # the tempo map; clock is not recorded
                continue
            s = max(0.0, ev.t - origin)
            last_s = max(last_s, s)
            voice = ev.voice or DEFAULT_VOICE_TRACK
            if isinstance(ev, NoteOn):
                held[(ev.channel, ev.pitch)] = voice
            elif isinstance(ev, NoteOff):
                voice = held.pop((ev.channel, ev.pitch), voice)
            tracks.setdefault(voice, []).append((tmap.ticks(s), _message(ev)))

        if end_s is not None:
            end = end_s - origin
        elif self.duration_s is not None:
            end = self.duration_s
        else:
            end = last_s
        end_tick = max(tmap.ticks(max(end, last_s)),
                       max((t for t, _ in tmap.tempo_ticks), default=0))
        for (channel, pitch), voice in held.items():  # end what still sounds
            tracks[voice].append((end_tick, mido.Message("note_off", channel=channel,
                                                         note=pitch, velocity=64)))

        mid = mido.MidiFile(type=1, ticks_per_beat=self.ticks_per_beat)
        tempo_track = mido.MidiTrack()
        tempo_track.append(mido.MetaMessage("track_name", name=TEMPO_TRACK_NAME, time=0))
        tempo_track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4,
                                            time=0))
        tempo_items = [(tick, mido.MetaMessage("set_tempo", tempo=us))
                       for tick, us in tmap.tempo_ticks]
        mid.tracks.append(_track(tempo_track, tempo_items, end_tick))
        for voice, items in tracks.items():
            head = mido.MidiTrack()
            head.append(mido.MetaMessage("track_name", name=voice, time=0))
            mid.tracks.append(_track(head, items, end_tick))
        return mid

    def _write(self, end_s: float | None) -> Path:
        mid = self.build(end_s)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                   suffix=".tmp")
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a recording is a normal file
            with os.fdopen(fd, "wb") as f:
                mid.save(file=f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        logger.info("%s: wrote %d events to %s", self.name, len(self.events), self.path)
        return self.path


def _message(ev: Event) -> mido.Message:
    if isinstance(ev, NoteOn):
        return mido.Message("note_on", channel=ev.channel, note=ev.pitch, velocity=ev.velocity)
    if isinstance(ev, NoteOff):
        return mido.Message("note_off", channel=ev.channel, note=ev.pitch, velocity=64)
    if isinstance(ev, ControlChange):
        return mido.Message("control_change", channel=ev.channel, control=ev.control,
                            value=ev.value)
    if isinstance(ev, PitchBend):
        return mido.Message("pitchwheel", channel=ev.channel, pitch=ev.value)
    if isinstance(ev, ProgramChange):
        return mido.Message("program_change", channel=ev.channel, program=ev.program)
    raise TypeError(f"not a MIDI event: {ev!r}")


def _track(track: mido.MidiTrack, items: list[tuple[int, mido.Message | mido.MetaMessage]],
           end_tick: int) -> mido.MidiTrack:
    """Append ``items`` (absolute ticks, already in order) as delta times, then end-of-track
    at ``end_tick`` so every track, and so the file, lasts exactly as long as the run."""
    now = 0
    for tick, msg in sorted(items, key=lambda item: item[0]):  # stable
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track
