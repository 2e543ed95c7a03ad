"""Record everything sent into a type-1 Standard MIDI File, streamed to disk as it plays.

The file (``smf.py``): track 0 holds the tempo map (``set_tempo`` from Tempo events, 120 BPM
until the first, and 4/4) and the markers (Marker events as FF 06 ``sonify:<kind> <text>``);
then one track per voice, in order of first appearance, named after
the voice (``""`` -> ``"sonify"``). Times come from the events' own ``t`` (engine clock), not
from when they arrived, so a file recorded live and one rendered offline agree; seconds become
ticks through the tempo map as the file itself will be read back, so every event lands within
half a tick of its time. A note-off goes to the track of the note it ends (the scheduler's panic
note-offs carry no voice); a note still held at the end is ended there, so the file never has a
hanging note. The file lasts as long as the run (``close(end_s=...)``).

Streaming (``spool.py``): the dispatch thread only appends each event to a bounded queue. A
writer thread, every ``flush_s`` (1 s), sorts what came, encodes it to MIDI bytes, appends them
to the recording's spool beside the file, fsyncs and commits; ``close()`` assembles the file by
a streaming copy. Memory stays flat however long it runs: what is on disk is not kept. After a
SIGKILL, the watchdog's abort, an OOM kill or a power cut, the spool holds everything up to the
last commit (at most a second or two is lost); the next ``sonify run`` for that path, or
``sonify recover``, makes it the MIDI file.

Files: an existing file is never replaced: when the name is taken, the recording goes to the
first free ``NAME-001.mid``, ``NAME-002.mid``...; strftime fields in the file name
(``recordings/%Y-%m-%d_%H%M%S.mid``) are filled in with the local time the recording started.
``split="hour"``/``"day"`` starts a new file on the hour / at local midnight (each part starts
sounding as the music was: tempo, programs, controllers, held notes). A recording that never
played a note leaves no file and no spool.

Failures (a full, read-only or vanished disk): the show goes on. The recorder says so loudly
(an ERROR in the log, rate-limited; ``problem`` for the health page; ``stats.last_error``),
keeps what waits (bounded: ``max_queued`` events, ``max_backlog_bytes`` of encoded MIDI; beyond
that it drops events, counted in ``stats.dropped``, never the note-off of a note it kept) and
tries again every flush, so the recording goes on when space comes back. A spool folder deleted
under it is written again from the files it still holds open. ``failed`` stays True once
anything was lost or could not be written: ``sonify run`` then exits with status 1.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sonify.events import MIDI_EVENTS, Event, Marker, NoteOff, NoteOn, Tempo
from sonify.outputs.base import Output
from sonify.outputs.smf import (
    DEFAULT_BPM,
    DEFAULT_VOICE_TRACK,
    TEMPO_TRACK_NAME,
    TICKS_PER_BEAT,
    MidiEncoder,
    TempoMap,
    TrackSource,
    encode_midi_file,
)
from sonify.outputs.spool import Spool, expand, finish
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_VOICE_TRACK", "TEMPO_TRACK_NAME", "MidiFileRecorder", "RecordingBacklog",
           "TempoMap", "encode_midi_file", "SPLITS"]

FLUSH_S = 1.0  # how often the writer stores and commits: the most a crash loses, about
MAX_QUEUED = 20_000  # events waiting for the writer (a normal second holds a few hundred)
MAX_BACKLOG_BYTES = 1 << 20  # encoded MIDI waiting for a disk that does not take it (~4 h)
EARLY_SPOOL_BYTES = 64 << 10  # before the first note: spool once this much waits
MAX_TRACK_BYTES = 1 << 30  # a new part before a track nears the format's 4 GiB chunk limit
RETRY_FINISH_S = 30.0  # a finished part that could not be written: try again this often
SPLITS = ("none", "hour", "day")


class RecordingBacklog(Exception):
    """The recorder had to drop an event: the disk is not taking the recording."""


@dataclass
class _Part:
    """One file of a recording: its encoder and, once there is music, its spool."""

    encoder: MidiEncoder
    wall_s: float  # wall-clock time of its tick 0 (names the file)
    split_at: float | None  # engine time it ends at (split), None: at close
    spool: Spool | None = None
    published: Path | None = None  # what a save() wrote: a later write replaces it

    def backlog(self) -> int:
        return sum(len(t.data) for t in self.encoder.tracks)


@dataclass
class _Unfinished:
    part: _Part
    tracks: list[TrackSource]
    next_try: float = 0.0
    error: str | None = None


def next_split(wall_s: float, split: str) -> float | None:
    """The wall-clock time after ``wall_s`` at which a ``split`` recording starts a new file:
    the next full hour, or the next local midnight; None for "none"."""
    if split == "none":
        return None
    local = datetime.fromtimestamp(wall_s)
    if split == "hour":
        nxt = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    else:
        nxt = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
    return nxt.timestamp()  # naive local time: DST-aware through mktime


class MidiFileRecorder(Output):
    """Records MIDI, Tempo and Marker events into ``path`` (see the module doc).

    ``start_s`` is the engine-clock time of tick 0 (default: the first event's time).
    The file ends at ``close(end_s=...)`` (engine clock) if given, else at ``start +
    duration_s`` if given, else at the last event — never before the last event.
    ``files`` lists the recordings written so far (more than one with ``split``).
    """

    name = "midifile"

    def __init__(self, path: str | os.PathLike[str], *, start_s: float | None = None,
                 duration_s: float | None = None, ticks_per_beat: int = TICKS_PER_BEAT,
                 default_bpm: float = DEFAULT_BPM, split: str = "none",
                 flush_s: float = FLUSH_S, max_queued: int = MAX_QUEUED,
                 max_backlog_bytes: int = MAX_BACKLOG_BYTES,
                 wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.path = Path(path)
        if "%" in str(self.path.parent):
            raise ValueError(f"{self.path}: strftime fields (%...) may be in the file name "
                             f"only, not in its folder")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if not flush_s > 0:
            raise ValueError(f"flush_s must be > 0, got {flush_s}")
        self.start_s = start_s
        self.duration_s = duration_s
        self.ticks_per_beat = ticks_per_beat
        self.default_bpm = default_bpm
        self.split = split
        self.flush_s = flush_s
        self.max_queued = max_queued
        self.max_backlog_bytes = max_backlog_bytes
        self.files: list[Path] = []
        self.name = f"midifile:{self.path.name}"
        self._wall_clock = wall_clock
        self._anchor: tuple[float, float] | None = None  # (engine t, wall time) of the first
        self._queue: deque[Event] = deque()
        self._kept_notes: set[tuple[int, int]] = set()  # accepted note-ons not yet ended
        self._io = threading.Lock()  # the writer's state: never taken by the dispatch thread
        self._stop_writer = threading.Event()
        self._writer: threading.Thread | None = None
        self._part: _Part | None = None
        self._unfinished: list[_Unfinished] = []
        self._end_s: float | None = None
        self._error: str | None = None  # the write error now, None when writing works
        self._final_error: str | None = None
        self._failed = False
        self._last_drop = 0.0
        self._dropped_at_error = 0
        self._log = RateLimitedLog(logger, level=logging.ERROR)

    # -- the Output side (the dispatch thread) ----------------------------------------------

    def wants(self, event: Event) -> bool:
        return isinstance(event, (*MIDI_EVENTS, Tempo, Marker))

    def _send(self, event: Event) -> None:
        if self.start_s is None:
            self.start_s = event.t
        if self._anchor is None:
            self._anchor = (event.t, self._wall_clock())
        queue = self._queue
        full = len(queue) >= self.max_queued
        if isinstance(event, NoteOn):
            if full:
                self._backlogged()
            self._kept_notes.add((event.channel, event.pitch))
        elif isinstance(event, NoteOff):
            key = (event.channel, event.pitch)
            if key in self._kept_notes:  # a kept note is always ended (bounded: 16 x 128)
                self._kept_notes.discard(key)
            elif full:
                self._backlogged()
        elif full:
            self._backlogged()
        queue.append(event)
        if self._writer is None:
            self._writer = threading.Thread(target=self._loop, name="sonify-recorder",
                                            daemon=True)
            self._writer.start()

    def _backlogged(self) -> None:
        self._failed = True
        self._last_drop = time.monotonic()
        raise RecordingBacklog(f"the recording is {len(self._queue)} events behind, dropping: "
                               f"{self._error or 'the disk does not keep up'}")

    @property
    def failed(self) -> bool:
        """True once any part of the recording was lost or could not be written."""
        return self._failed or self.stats.dropped > 0

    @property
    def failure(self) -> str | None:
        """What went wrong, in a sentence (None while nothing did)."""
        if not self.failed:
            return None
        why = self._final_error or self._error or self.stats.last_error or "write error"
        if self.stats.dropped:
            return f"{why} ({self.stats.dropped} events lost)"
        if self._final_error is None:
            return f"{why} (for a while: the music was kept until it could be written)"
        return why

    @property
    def problem(self) -> str | None:
        """The write error now; a part it could not finish yet; events lost in the last
        minute; once closed, only a recording it could not finish at all."""
        if self._closed:
            return self._final_error
        if self._error:
            return self._error
        for u in self._unfinished:
            if u.error:
                return u.error
        if self._last_drop and time.monotonic() - self._last_drop < 60.0:
            return f"the recording lost {self.stats.dropped} events: the disk did not keep up"
        return None

    def close_at(self, end_s: float) -> None:
        self.close(end_s=end_s)  # the file lasts as long as the run

    def close(self, end_s: float | None = None) -> None:
        """Finish the file (ending at ``end_s``, engine clock, if given) and stop recording.
        Never raises: a failure is logged, and ``failed``/``problem`` say it."""
        if end_s is not None:
            self._end_s = end_s
        super().close()

    def _close(self) -> None:
        self._stop_writer.set()
        if self._writer is not None:
            self._writer.join()
        with self._io:
            end_t = self._end_t()
            self._drain(final=True)
            part = self._part
            if part is not None:
                self._store(part, end_t)
                self._part = None
                self._finish(part, end_t)
            for u in list(self._unfinished):
                self._retry(u, last=True)

    def flush(self) -> None:
        """Store and commit what waits now (the writer does it every ``flush_s``)."""
        with self._io:
            self._flush()

    def save(self, end_s: float | None = None) -> Path | None:
        """Write the file for what was recorded so far (atomically; a checkpoint: recording
        goes on, and a later write replaces this one). Raises OSError when it cannot be
        written; returns None while there is no note to write."""
        with self._io:
            self._drain(final=True)
            part = self._part
            if part is None or not part.encoder.notes:
                return None
            end_t = end_s if end_s is not None else self._end_t()
            tracks = self._sources(part, end_t)
            path = finish(self._final_name(part), self.ticks_per_beat, tracks,
                          own=part.published)
            part.published = path
            if part.spool is not None:
                part.spool.publish_snapshot(path)
            return path

    # -- the writer ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop_writer.wait(self.flush_s):
            try:
                with self._io:
                    self._flush()
            except Exception as exc:  # a bug must not silently end the recording
                self._failed = True
                self._error = f"the recording stopped working: {exc}"
                self._log.log("bug", "%s: %s", self.name, self._error, exc_info=True)

    def _flush(self) -> None:
        self._drain()
        part = self._part
        if part is not None:
            self._store(part)
            if part is self._part and max(t.size for t in part.encoder.tracks) > MAX_TRACK_BYTES:
                self._split(part.encoder.origin_s + part.encoder.horizon_s)
        now = time.monotonic()
        for u in list(self._unfinished):
            if now >= u.next_try:
                self._retry(u)

    def _drain(self, final: bool = False) -> None:
        """Encode what the dispatch thread queued, in time order; while the disk refuses
        the backlog, leave it queued (the queue's bound then drops what comes)."""
        if not final and self._part is not None and \
                self._part.backlog() >= self.max_backlog_bytes:
            return
        queue = self._queue
        batch = []
        while queue:
            batch.append(queue.popleft())
        batch.sort(key=_event_time)  # stable: keeps send order within a time
        for ev in batch:
            part = self._part
            if part is None:
                origin = self.start_s if self.start_s is not None else ev.t
                part = self._part = self._new_part(origin, None)
            elif part.split_at is not None and ev.t >= part.split_at:
                part = self._split(part.split_at)
            part.encoder.add(ev)

    def _wall(self, t: float) -> float:
        if self._anchor is None:
            return self._wall_clock()
        at, wall = self._anchor
        return wall + (t - at)

    def _new_part(self, origin: float, previous: MidiEncoder | None) -> _Part:
        wall = self._wall(origin)
        if previous is None:
            enc = MidiEncoder(origin, ticks_per_beat=self.ticks_per_beat,
                              tempo_bpm=self.default_bpm)
        else:
            enc = previous.carry_over(origin)
        boundary = next_split(wall, self.split)
        split_at = None if boundary is None else origin + (boundary - wall)
        return _Part(enc, wall, split_at)

    def _split(self, at: float) -> _Part:
        old = self._part
        assert old is not None
        new = self._new_part(at, old.encoder)
        self._part = new
        self._store(old, at)
        self._finish(old, at)
        return new

    def _store(self, part: _Part, end_t: float | None = None) -> None:
        """Append the part's new bytes to its spool, fsync, commit. Errors are reported and
        the bytes kept for the next try."""
        enc = part.encoder
        if part.spool is None and not enc.notes and part.backlog() < EARLY_SPOOL_BYTES:
            return  # no music yet: nothing on disk (a run that fails now leaves nothing)
        rescued = False
        try:
            if part.spool is None:
                part.spool = Spool.create(self.path, wall_s=part.wall_s,
                                          ticks_per_beat=self.ticks_per_beat)
                if part.published is not None:  # a save() came first: that file is ours
                    part.spool.publish_snapshot(part.published)
            elif part.spool.removed():
                rescued = True
                gone = part.spool.directory
                part.spool = part.spool.rescue(self.ticks_per_beat, part.wall_s,
                                               [t.stored for t in enc.tracks])
                self._log.log("removed", "%s: the recording's folder %s was removed while "
                              "recording; its music was written again to %s", self.name, gone,
                              part.spool.directory)
            spool = part.spool
            enc.settle()
            if not (rescued or end_t is not None or spool.commits == 0
                    or any(track.data for track in enc.tracks)):
                self._write_ok()
                return  # nothing new: no fsync, no commit
            for track in enc.tracks:
                while track.data:
                    n = spool.write(track.index, track.data)
                    del track.data[:n]
                    track.stored += n
            state = enc.commit_state()
            if end_t is not None:
                state["end_tick"] = enc.end_tick(end_t)
            spool.commit(state)
        except OSError as exc:
            self._write_failed(exc, part)
            return
        self._write_ok()

    def _write_failed(self, exc: OSError, part: _Part) -> None:
        where = part.spool.directory if part.spool is not None else self.path.parent
        msg = f"cannot write the recording {self._final_name(part)}: {_why(exc)}"
        if self._error is None:
            self._dropped_at_error = self.stats.dropped
        self._error = msg
        self._failed = True
        self.stats.last_error = msg
        self._log.log("write", "%s: %s (in %s); the music plays on, the recording keeps %d "
                      "bytes and %d events waiting and tries again every %g s", self.name, msg,
                      where, part.backlog(), len(self._queue), self.flush_s)

    def _write_ok(self) -> None:
        if self._error is not None:
            logger.warning("%s: the recording is written again (%d events were lost while it "
                           "could not be)", self.name, self.stats.dropped - self._dropped_at_error)
            self._error = None

    def _final_name(self, part: _Part) -> Path:
        if part.published is not None:
            return part.published
        return part.spool.final if part.spool is not None else expand(self.path, part.wall_s)

    def _end_t(self) -> float | None:
        if self._end_s is not None:
            return self._end_s
        if self.duration_s is not None and self.start_s is not None:
            return self.start_s + self.duration_s
        return None

    def _sources(self, part: _Part, end_t: float | None) -> list[TrackSource]:
        """Each track: what its spool holds, then what is still in memory and its closing."""
        enc = part.encoder
        enc.settle()
        end_tick = enc.end_tick(end_t)
        spool = part.spool
        return [(spool.track_path(t.index) if spool is not None and t.stored else None,
                 t.stored, bytes(t.data) + enc.closing(t, end_tick)) for t in enc.tracks]

    def _finish(self, part: _Part, end_t: float | None) -> None:
        """Write the part's file and remove its spool; when that fails, keep it to retry."""
        if not part.encoder.notes:  # no music: no file, and no spool left behind
            if part.spool is not None:
                part.spool.close()
                part.spool.remove()
            return
        u = _Unfinished(part, self._sources(part, end_t))
        if part.spool is not None and part.spool.removed():
            self._store(part, end_t)  # rescue it first: its files are gone from the disk
            u.tracks = self._sources(part, end_t)
        self._unfinished.append(u)
        self._retry(u)

    def _retry(self, u: _Unfinished, last: bool = False) -> None:
        part = u.part
        spool = part.spool
        try:
            path = finish(self._final_name(part), self.ticks_per_beat, u.tracks,
                          spool=spool.directory if spool is not None else None,
                          own=part.published)
        except OSError as exc:
            msg = f"cannot finish the recording {self._final_name(part)}: {_why(exc)}"
            self._failed = True
            self.stats.last_error = msg
            u.next_try = time.monotonic() + RETRY_FINISH_S
            u.error = msg
            if not last:
                self._log.log("finish", "%s: %s; tries again in %g s", self.name, msg,
                              RETRY_FINISH_S)
                return
            self._unfinished.remove(u)
            if spool is not None:
                spool.close()  # the lock goes: `sonify recover` (or the next run) may finish it
                self._final_error = (f"{msg}; what reached the disk stays in {spool.directory}"
                                     f" (`sonify recover {spool.directory.parent}` makes the "
                                     f"file when there is space)")
            else:
                self._final_error = f"{msg}; the recording is lost"
            logger.error("%s: %s", self.name, self._final_error)
            return
        self._unfinished.remove(u)
        if spool is not None:
            spool.close()
            spool.remove()
        self.files.append(path)
        logger.info("%s: wrote %s (%d notes)", self.name, path, part.encoder.notes)


def _event_time(ev: Event) -> float:
    return ev.t


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
