"""External tempo and phase: what the engine follows when it plays in time with others.

A source of shared time (MIDI clock in, Ableton Link) implements :class:`ExternalTempo`. The
runtime asks it, once per note window, for the tempo and the beat position at a moment on the
engine clock (``time.perf_counter()`` seconds, the ``TimeSource`` the engine runs on); the
scene driver then re-anchors its :class:`~sonify.timing.clock.TempoClock` there, so notes land
on the external beat rather than on a drifting copy of it. ``None`` means "not locked" (no
clock received yet, Link alone): the engine keeps its own tempo.

Tempo changes made on the engine's side (``/sonify/tempo``, a scene's feature-driven tempo)
are offered with ``propose_tempo``: Link shares them with every peer; a MIDI clock follower
ignores them (the clock master decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Timeline:
    """Tempo in BPM, the beat position at ``t`` (the ``t`` asked for) and the transport."""

    bpm: float
    beat: float
    playing: bool = True


class ExternalTempo(Protocol):
    name: str

    def timeline(self, t: float) -> Timeline | None:
        """Tempo and beat at engine time ``t``; None while not locked to anything."""
        ...

    def propose_tempo(self, bpm: float, t: float) -> None:
        """The engine wants ``bpm`` from ``t`` on (a no-op for sources that only follow)."""
        ...

    def close(self) -> None: ...
