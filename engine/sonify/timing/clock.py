"""Time sources (real or manual) and the tempo clock that maps beats to seconds.

The engine's clock is ``time.perf_counter()`` (the same clock as ``Frame.t``). Everything that
needs "now" takes a ``TimeSource`` so tests and offline rendering swap in a ``ManualTime`` and
run deterministically, faster than real time. Deadlines are absolute: a loop computes its next
deadline from a fixed origin plus a whole number of periods, never ``sleep(period - elapsed)``,
which drifts.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class TimeSource(Protocol):
    def now(self) -> float:
        """Seconds on the engine clock."""
        ...

    def wait_until(self, deadline: float, wake: threading.Event) -> bool:
        """Block until ``deadline`` or until ``wake`` is set; True if woken early."""
        ...


class RealTime:
    """``time.perf_counter()``; waits sleep on an Event (no spinning: a spinning thread would
    starve the analysis of its core)."""

    def now(self) -> float:
        return time.perf_counter()

    def wait_until(self, deadline: float, wake: threading.Event) -> bool:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return wake.is_set()
        return wake.wait(remaining)


class ScaledTime:
    """Real time run ``factor`` times faster: ``now()`` advances ``factor`` seconds per second
    of ``time.perf_counter()`` and waits are that much shorter. Soak tests play hours of music
    with the real threads (capture, music, dispatch, control servers) in minutes. ``start``:
    the engine time now (default: the real clock's)."""

    def __init__(self, factor: float, start: float | None = None) -> None:
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        self.factor = factor
        self._p0 = time.perf_counter()
        self._t0 = self._p0 if start is None else start

    def now(self) -> float:
        return self._t0 + (time.perf_counter() - self._p0) * self.factor

    def wait_until(self, deadline: float, wake: threading.Event) -> bool:
        remaining = (deadline - self.now()) / self.factor
        if remaining <= 0:
            return wake.is_set()
        return wake.wait(remaining)


class ManualTime:
    """A clock that moves only when told (``advance``/``set``): tests and offline render.

    ``wait_until`` returns at once, having moved the clock to the deadline, so a loop written
    for real time runs through virtual time at full speed.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        with self._lock:
            if t < self._t:
                raise ValueError(f"time cannot go backwards ({self._t} -> {t})")
            self._t = t

    def advance(self, dt: float) -> float:
        self.set(self._t + dt)
        return self._t

    def wait_until(self, deadline: float, wake: threading.Event) -> bool:
        if wake.is_set():
            return True
        if deadline > self._t:
            self.set(deadline)
        return False


class TempoClock:
    """Beats <-> seconds at a tempo that can change; beat 0 at ``origin_s``.

    A tempo change re-anchors at the moment it takes effect, so beats already passed keep
    their times and the beat grid stays continuous.
    """

    def __init__(self, bpm: float = 120.0, origin_s: float = 0.0) -> None:
        self._check(bpm)
        self.bpm = bpm
        self._anchor_s = origin_s
        self._anchor_beat = 0.0

    @staticmethod
    def _check(bpm: float) -> None:
        if not 1.0 <= bpm <= 999.0:
            raise ValueError(f"tempo must be 1..999 BPM, got {bpm}")

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    def beat_at(self, t: float) -> float:
        return self._anchor_beat + (t - self._anchor_s) * self.bpm / 60.0

    def time_at(self, beat: float) -> float:
        return self._anchor_s + (beat - self._anchor_beat) * 60.0 / self.bpm

    def set_tempo(self, bpm: float, at_s: float) -> None:
        """Change the tempo from ``at_s`` on (beats before it keep their times)."""
        self._check(bpm)
        beat = self.beat_at(at_s)
        self._anchor_s, self._anchor_beat, self.bpm = at_s, beat, bpm

    def set_tempo_at_beat(self, bpm: float, beat: float) -> None:
        self.set_tempo(bpm, self.time_at(beat))

    def align(self, bpm: float, beat: float, at_s: float) -> float:
        """Follow an external timeline: ``bpm`` from ``at_s`` on, with ``beat_at(at_s) ==
        beat``. Returns the phase jump in beats (the new beat at ``at_s`` minus the old);
        times before ``at_s`` no longer map back to the beats they had."""
        self._check(bpm)
        jump = beat - self.beat_at(at_s)
        self._anchor_s, self._anchor_beat, self.bpm = at_s, beat, bpm
        return jump
