"""Drives a ScenePlayer through time: the one loop body shared by ``sonify run`` (real clock,
threads) and the offline player (virtual clock, one thread).

Notes are rendered over windows that reach ahead of now (so the scheduler can send them on
time); continuous controls and triggers over windows that end just after now (so they answer a
frame within a frame period). The tempo the scene asks for is applied at the start of each
note window and recorded as a Tempo event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from engine.events import Event, Tempo
from engine.features.analyzer import Features
from engine.scene.player import ScenePlayer
from engine.timing.clock import TempoClock
from engine.timing.scheduler import Scheduler

logger = logging.getLogger(__name__)


class SceneDriver:
    """``tempo_bpm`` fixes the tempo (the scene's own is ignored); ``tempo_scale(t)`` multiplies
    the tempo at ``t`` (a ritardando); ``transform(events)`` reshapes each block's events before
    they are scheduled (the offline render's dynamics arc)."""

    def __init__(self, player: ScenePlayer, scheduler: Scheduler, start_s: float, *,
                 tempo_bpm: float | None = None,
                 tempo_scale: Callable[[float], float] | None = None,
                 transform: Callable[[list[Event]], list[Event]] | None = None) -> None:
        self.player = player
        self.scheduler = scheduler
        self.fixed_bpm = tempo_bpm
        self.tempo_scale = tempo_scale
        self.transform = transform
        self.tempo = TempoClock(self._bpm(None, start_s), origin_s=start_s)
        self.notes_to = start_s
        self.controls_to = start_s
        scheduler.schedule([Tempo(start_s, self.tempo.bpm), *player.start_events(start_s)])

    def advance(self, features: Features | None, onsets: Sequence[str], notes_to: float,
                controls_to: float) -> list[Event]:
        """Render and schedule up to the two horizons; returns the events scheduled."""
        events: list[Event] = []
        if notes_to > self.notes_to:
            bpm = self._bpm(features, self.notes_to)
            if abs(bpm - self.tempo.bpm) > 1e-9:
                self.tempo.set_tempo(bpm, self.notes_to)
                events.append(Tempo(self.notes_to, bpm))
            events += self.player.render(features, self.tempo, self.notes_to, notes_to,
                                         controls=False)
            self.notes_to = notes_to
        if controls_to > self.controls_to or onsets:
            end = max(controls_to, self.controls_to)
            events += self.player.render_controls(features, self.tempo, self.controls_to, end,
                                                  onsets)
            self.controls_to = end
        if events and self.transform is not None:
            events = self.transform(events)
        if events:
            self.scheduler.schedule(events)
        return events

    def _bpm(self, features: Features | None, t: float) -> float:
        bpm = self.fixed_bpm if self.fixed_bpm is not None else self.player.tempo_bpm(features)
        if self.tempo_scale is not None:
            bpm *= self.tempo_scale(t)
        return bpm

    def switch(self, player: ScenePlayer, at_s: float) -> None:
        """Play ``player`` from ``at_s`` on (the caller decides about a panic)."""
        self.scheduler.schedule(self.player.stop_events(at_s))
        self.player = player
        bpm = self._bpm(None, at_s)
        self.tempo.set_tempo(bpm, max(at_s, self.notes_to))
        self.notes_to = max(self.notes_to, at_s)
        self.controls_to = max(self.controls_to, at_s)
        self.scheduler.schedule([Tempo(self.notes_to, bpm), *player.start_events(at_s)])
