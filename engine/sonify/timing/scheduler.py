"""The scheduler: a time-ordered queue, dispatch of each event at its time, the note-off ledger
and panic.

Events arrive from any thread through ``schedule()`` (a deque, then a heap on the dispatch
thread, as supriya's threaded clock does) and wake the dispatcher early when they are due
sooner than what it waits for. The dispatcher sleeps until the next event (no spinning: a
spinning thread starves the analysis of its core and the GIL); with a ``ManualTime`` the same
logic runs synchronously through virtual time (``run_until``).

The ledger: a ``Note`` becomes a ``NoteOn`` and a ``NoteOff`` with the same id, both queued
when the note is scheduled, so every note-on has its note-off from the start. Per output, the
ledger remembers which note holds each (channel, pitch): a retrigger of a held pitch sends its
note-off first; a note-off whose note was already ended (by a retrigger or a panic) is skipped.
``panic()`` sends a note-off for every held note, then CC 64 = 0, CC 123 and CC 120 on every
channel. ``stop()`` drops what is pending and panics: after any stop, every note-on sent has had
its note-off.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sonify.events import Event, Note, NoteOff, NoteOn
from sonify.outputs.base import Output
from sonify.timing.clock import RealTime, TimeSource
from sonify.timing.rt import tune_current_thread

logger = logging.getLogger(__name__)

_PRIO_OFF = 0  # at equal times note-offs go first, so a repeated note ends before it restarts
_PRIO_OTHER = 1
LATENESS_WINDOW = 4096  # dispatches kept for the lateness percentiles
LOOP_BEAT_S = 0.5  # the dispatch loop wakes at least this often


@dataclass(frozen=True, slots=True)
class LatenessStats:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class Scheduler:
    """Dispatches Events to outputs at their times; owns the note-off ledger.

    ``time`` is the clock (``RealTime`` live, ``ManualTime`` in tests and offline render).
    ``strict`` makes an output error raise (tests); live, outputs never raise anyway.
    """

    def __init__(self, outputs: Sequence[Output], time: TimeSource | None = None) -> None:
        self.outputs = list(outputs)
        self.time = time or RealTime()
        self._incoming: deque[Event] = deque()
        self._heap: list[tuple[float, int, int, int, Event]] = []
        self._seq = itertools.count()
        self._note_ids = itertools.count(1)
        self._held: list[dict[tuple[int, int], int]] = [{} for _ in self.outputs]
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.RLock()  # guards heap and ledger between dispatch and panic
        self._thread: threading.Thread | None = None
        self._lateness = np.zeros(LATENESS_WINDOW)
        self._late_at = np.zeros(LATENESS_WINDOW)  # when each of those was sent
        self._late_n = 0
        self.notes_sent = 0  # notes played: each counted once, however many outputs get it
        probe = NoteOn(0.0, 0, 60, 1)
        # the output whose note-ons are counted (the first that takes notes)
        self._counting = next((i for i, o in enumerate(self.outputs) if o.wants(probe)), -1)
        self.events_sent = 0
        self.last_dispatch_s = 0.0
        self.loop_beat_s = 0.0
        self.thread_tuning = ""
        for out in self.outputs:
            out.on_reconnect = self._output_reconnected

    # -- scheduling (any thread) --------------------------------------------------------------

    def schedule(self, events: Iterable[Event]) -> None:
        """Queue events (thread-safe); wakes the dispatcher."""
        added = False
        for ev in events:
            self._incoming.append(ev)
            added = True
        if added:
            self._wake.set()

    def _admit(self) -> None:
        """Move incoming events into the heap, one entry per output that wants them."""
        while self._incoming:
            ev = self._incoming.popleft()
            if isinstance(ev, Note):
                note_id = next(self._note_ids)
                on = NoteOn(ev.t, ev.channel, ev.pitch, ev.velocity, ev.voice, note_id,
                            ev.duration_s)
                off = NoteOff(ev.t + ev.duration_s, ev.channel, ev.pitch, ev.voice, note_id)
                self._push(on, _PRIO_OTHER)
                self._push(off, _PRIO_OFF)
            else:
                self._push(ev, _PRIO_OFF if isinstance(ev, NoteOff) else _PRIO_OTHER)

    def _push(self, ev: Event, prio: int) -> None:
        for i, out in enumerate(self.outputs):
            if out.wants(ev):
                heapq.heappush(self._heap, (ev.t + out.latency_s, prio, next(self._seq), i, ev))

    # -- dispatch -----------------------------------------------------------------------------

    def dispatch_due(self) -> int:
        """Send every event whose time has come; returns how many were sent."""
        sent = 0
        with self._lock:
            self._admit()
            heap = self._heap
            now = self.time.now()
            while heap and heap[0][0] <= now:
                due, _, _, i, ev = heapq.heappop(heap)
                self._dispatch(i, ev)
                sent_at = self.time.now()
                self._record_lateness(sent_at - due, sent_at)
                sent += 1
                now = sent_at
        if sent:
            self.last_dispatch_s = now
        return sent

    def _dispatch(self, i: int, ev: Event) -> None:
        out = self.outputs[i]
        held = self._held[i]
        if isinstance(ev, NoteOn):
            key = (ev.channel, ev.pitch)
            if key in held:  # retrigger: end the sounding note first
                out.send(NoteOff(ev.t, ev.channel, ev.pitch, ev.voice, held[key]))
            held[key] = ev.note_id
            out.send(ev)
            if i == self._counting:
                self.notes_sent += 1
        elif isinstance(ev, NoteOff):
            key = (ev.channel, ev.pitch)
            if held.get(key) != ev.note_id:
                return  # this note was already ended (retrigger or panic)
            del held[key]
            out.send(ev)
        else:
            out.send(ev)
        self.events_sent += 1

    def send_now(self, events: Iterable[Event]) -> None:
        """Dispatch ``events`` at once on the calling thread, to every output that wants them
        (no queue, no output latency): the last words of a run (MIDI clock STOP), sent before
        ``stop()`` drops whatever is pending. Notes are not accepted (they need the queue)."""
        with self._lock:
            for ev in events:
                if isinstance(ev, Note):
                    raise TypeError("send_now takes no Note: schedule() it")
                for i, out in enumerate(self.outputs):
                    if out.wants(ev):
                        self._dispatch(i, ev)

    def _record_lateness(self, late_s: float, sent_at: float) -> None:
        i = self._late_n % LATENESS_WINDOW
        self._lateness[i] = late_s
        self._late_at[i] = sent_at
        self._late_n += 1

    def lateness(self) -> LatenessStats:
        """Dispatch lateness (send time - scheduled time) over the last dispatches."""
        n = min(self._late_n, LATENESS_WINDOW)
        if n == 0:
            return LatenessStats(0, 0.0, 0.0, 0.0)
        window = self._lateness[:n] * 1e3
        p50, p99 = np.percentile(window, [50, 99])
        return LatenessStats(self._late_n, float(p50), float(p99), float(window.max()))

    def recent_lateness(self, since_s: float) -> LatenessStats:
        """Dispatch lateness of what was sent at or after ``since_s`` (engine clock), among the
        last ``LATENESS_WINDOW`` dispatches: the health check's "over the last few seconds"."""
        n = min(self._late_n, LATENESS_WINDOW)
        if n == 0:
            return LatenessStats(0, 0.0, 0.0, 0.0)
        recent = self._lateness[:n][self._late_at[:n] >= since_s] * 1e3
        if recent.size == 0:
            return LatenessStats(0, 0.0, 0.0, 0.0)
        p50, p99 = np.percentile(recent, [50, 99])
        return LatenessStats(int(recent.size), float(p50), float(p99), float(recent.max()))

    @property
    def running(self) -> bool:
        """True while the dispatch thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def lateness_ring(self) -> tuple[np.ndarray, int]:
        """The lateness ring buffer (seconds; entry ``i % len`` is the i-th dispatch) and how
        many dispatches were ever recorded: for metrics that read only what is new."""
        return self._lateness, self._late_n

    def overdue_s(self, now: float) -> float:
        """How long the oldest waiting event is past its time (0 when none is), without the
        lock: health asks this of a dispatcher that may be stuck holding it."""
        heap, incoming = self._heap, self._incoming
        try:
            times = [heap[0][0]] if heap else []
            if incoming:
                times.append(incoming[0].t)
        except IndexError:  # emptied under our feet: nothing is waiting
            return 0.0
        return max(0.0, now - min(times)) if times else 0.0

    def waiting(self) -> int:
        """About how many events wait (no lock: for status and health)."""
        return len(self._heap) + len(self._incoming)

    def next_due(self) -> float | None:
        with self._lock:
            self._admit()
            return self._heap[0][0] if self._heap else None

    def pending(self) -> int:
        with self._lock:
            self._admit()
            return len(self._heap)

    def held_notes(self) -> list[tuple[int, int]]:
        """(channel, pitch) of every note sounding on any output."""
        with self._lock:
            return sorted({key for held in self._held for key in held})

    # -- virtual time -------------------------------------------------------------------------

    def run_until(self, t_end: float) -> None:
        """With a ManualTime: dispatch everything due up to ``t_end``, advancing the clock to
        each event's time, then to ``t_end``."""
        set_time = getattr(self.time, "set", None)
        if set_time is None:
            raise TypeError("run_until needs a ManualTime; a real clock dispatches by itself")
        while True:
            nxt = self.next_due()
            if nxt is None or nxt > t_end:
                break
            if nxt > self.time.now():
                set_time(nxt)
            self.dispatch_due()
        if t_end > self.time.now():
            set_time(t_end)

    # -- real time ----------------------------------------------------------------------------

    def start(self, realtime_priority: bool = False, name: str = "sonify-dispatch") -> None:
        """Dispatch on a thread of its own until ``stop()``; ``realtime_priority`` asks for
        SCHED_FIFO for that thread where permitted (see ``rt.py``)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(realtime_priority,), name=name,
                                        daemon=True)
        self._thread.start()

    def _loop(self, realtime_priority: bool = False) -> None:
        self.thread_tuning = tune_current_thread(realtime_priority)
        logger.debug("dispatch thread: %s", self.thread_tuning)
        while not self._stop.is_set():
            self._wake.clear()
            self.dispatch_due()
            self.loop_beat_s = self.time.now()  # the watchdog's sign of life, even when idle
            nxt = self.next_due()
            if self._stop.is_set():
                break
            if nxt is None:
                self._wake.wait(LOOP_BEAT_S)
            else:  # wake at least every LOOP_BEAT_S: a long silence is not a hang
                self.time.wait_until(min(nxt, self.loop_beat_s + LOOP_BEAT_S), self._wake)

    def stop(self, panic: bool = True) -> None:
        """Stop dispatching, drop what is pending, and (by default) panic."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                logger.error("dispatch thread did not stop within 5 s")
            self._thread = None
        self.clear()
        if panic:
            self.panic()

    def clear(self) -> None:
        """Drop every pending event (held notes keep sounding until a panic or their retrigger)."""
        with self._lock:
            self._incoming.clear()
            self._heap.clear()

    def cut(self, at_s: float, voices: Collection[str] | None = None) -> int:
        """End the music at ``at_s`` (a quantised scene change): every pending event from
        ``at_s`` on is dropped, except note-offs, which move to ``at_s``, so each note sounding
        then ends there with its own explicit note-off. ``voices``: only the events of these
        voices (a section's cut: triggers ring on). Returns how many events were dropped."""
        with self._lock:
            self._admit()
            kept: list[tuple[float, int, int, int, Event]] = []
            dropped = 0
            for due, prio, seq, i, ev in self._heap:
                if ev.t < at_s or (voices is not None
                                   and getattr(ev, "voice", None) not in voices):
                    if isinstance(ev, NoteOn) and ev.t + ev.duration_s > at_s >= ev.t and (
                            voices is None or ev.voice in voices):
                        ev = dataclasses.replace(ev, duration_s=at_s - ev.t)  # ends at the cut
                    kept.append((due, prio, seq, i, ev))
                elif isinstance(ev, NoteOff):
                    moved = dataclasses.replace(ev, t=at_s)
                    kept.append((at_s + self.outputs[i].latency_s, prio, seq, i, moved))
                else:
                    dropped += 1
            heapq.heapify(kept)
            self._heap = kept
        self._wake.set()
        return dropped

    def panic(self, outputs: Sequence[Output] | None = None) -> None:
        """Note-off for every held note, then CC 64 = 0, CC 123, CC 120 on every channel."""
        now = self.time.now()
        with self._lock:
            for i, out in enumerate(self.outputs):
                if outputs is not None and out not in outputs:
                    continue
                held = self._held[i]
                for (channel, pitch), note_id in sorted(held.items()):
                    out.send(NoteOff(now, channel, pitch, "", note_id))
                held.clear()
                out.panic()
        logger.debug("panic sent to %d output(s)", len(outputs or self.outputs))

    def _output_reconnected(self, out: Output) -> None:
        logger.info("%s reconnected: panic on it", out.name)
        self.panic([out])
