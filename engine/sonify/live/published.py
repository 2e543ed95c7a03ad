"""What the music thread publishes for the performance page, beside ``Performance.snapshot()``.

``page_state(performance)`` reads the core on the music thread (in ``Runtime._publish``) and
returns plain values: the parameters' ranges (``param_ranges``, for sliders), the master level,
whether MIDI learn is there (``learn``), where the music is (``beat``, ``bar``,
``beats_per_bar``), the bar a pending scene comes in at (``next_scene_bar``) and the last
change (``last_change``: scene, the bar it landed on, why). Bars count from 1 in the playing
scene's meter.

``RecentNotes`` is the piano roll's ring: the music thread hands it each block's events (after
the transform: a muted voice's notes are not there) and publishes ``snapshot(now)``. A note is
``[t_s, duration_s, pitch, velocity, voice]`` with ``t_s`` on the engine clock (the state's
``clock_s`` says where "now" is; notes are scheduled up to a lookahead ahead, so the newest
start a little after it). Kept: the notes that end within ``keep_s``, at most ``max_notes``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any

from sonify.events import Event, Note
from sonify.performance.core import Performance

KEEP_S = 10.0  # what the piano roll shows (8 s), with a margin
MAX_NOTES = 256  # a dense scene plays a few dozen notes a second at most



def bar_of(beat: float, beats_per_bar: int) -> int:
    """The bar (counted from 1) a beat falls in; a bar line belongs to the bar it opens, and so
    does a beat a hair before it (a switch lands on the line give or take float rounding)."""
    return math.floor(beat / beats_per_bar + 1e-3) + 1


def page_state(perf: Performance) -> dict[str, Any]:
    """The page's part of the published state (see the module docstring); music thread."""
    bpb = perf.scene.harmony.beats_per_bar
    driver = perf.driver
    beat = driver.tempo.beat_at(driver.controls_to) if driver is not None else 0.0
    pending = perf.pending_beat
    last = perf.scene_changes[-1] if perf.scene_changes else None
    return {"param_ranges": {n: list(r) for n, r in perf.params_snapshot.items()},
            "master": perf.master, "learn": "learn" in perf.extra_commands,
            "beat": round(beat, 3), "bar": bar_of(beat, bpb), "beats_per_bar": bpb,
            "next_scene_bar": bar_of(pending, bpb) if pending is not None else None,
            "last_change": {"scene": last[2], "bar": bar_of(last[1], bpb), "why": last[3]}
            if last is not None else None}


class RecentNotes:
    """A bounded ring of the notes played (music thread only; publish its ``snapshot``).

    The music thread publishes ten times a second of engine time, which a virtual run (a soak,
    ``Engine.play``) makes thousands of times a second: rows are rounded once when a note is
    added, and the snapshot is the same list until a note is added or one leaves the ring."""

    def __init__(self, keep_s: float = KEEP_S, max_notes: int = MAX_NOTES) -> None:
        self.keep_s = keep_s
        self._notes: deque[tuple[float, list[float | int | str]]] = deque(maxlen=max_notes)
        self._cache: list[list[float | int | str]] | None = None

    def add(self, events: Iterable[Event]) -> None:
        for ev in events:
            if isinstance(ev, Note):
                row: list[float | int | str] = [round(ev.t, 3), round(ev.duration_s, 3),
                                                ev.pitch, ev.velocity, ev.voice]
                self._notes.append((ev.t + ev.duration_s, row))
                self._cache = None

    def snapshot(self, now: float) -> list[list[float | int | str]]:
        """The notes that end after ``now - keep_s`` (and a short one played before a long one
        that still sounds: harmless), in the order played; the list is shared, do not change
        it."""
        since = now - self.keep_s
        while self._notes and self._notes[0][0] < since:
            self._notes.popleft()
            self._cache = None
        if self._cache is None:
            self._cache = [row for _, row in self._notes]
        return self._cache
