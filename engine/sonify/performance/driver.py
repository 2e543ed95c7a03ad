"""Drives a ScenePlayer through time: the one loop body shared by ``sonify run`` (real clock,
threads) and the offline player (virtual clock, one thread).

Notes are rendered over windows that reach ahead of now (so the scheduler can send them on
time); continuous controls and triggers over windows that end just after now (so they answer a
frame within a frame period). The tempo the scene asks for is applied at the start of each
note window and recorded as a Tempo event.

Playing with others (both optional, both off by default):

* ``clock_out``: MIDI clock (24 per beat) for every note window, SONG POSITION 0 and START at
  the driver's start, STOP from ``stop()`` (see ``sonify.timing.midiclock``). Only MIDI ports
  send these events.
* ``sync``: an :class:`~sonify.timing.sync.ExternalTempo` (MIDI clock in, Link). At the start
  ``t`` of each note window, a Timeline from ``sync.timeline(t)`` sets the tempo and re-anchors
  the beat grid so ``tempo.beat_at(t) == timeline.beat`` (recorded as a Tempo event when the
  tempo moved by ``SYNC_TEMPO_STEP_BPM``); None (not locked) leaves the engine on its own
  tempo. The engine's own tempo changes (``fixed_bpm``, the scene's feature-driven tempo) are
  offered with ``sync.propose_tempo``. While the timeline is not playing, no new notes are
  rendered (sounding notes end as planned). Windows always tile time, and each voice plays each
  step of its grid at most once, so a phase jump can delay or drop a step but never repeat one;
  a jump of more than ``RELOCATE_BEATS`` restarts the voices at the new position.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from sonify.events import Event, Note, Tempo
from sonify.features.analyzer import Features
from sonify.scene.player import ScenePlayer
from sonify.timing.clock import TempoClock
from sonify.timing.midiclock import MidiClockOut
from sonify.timing.scheduler import Scheduler
from sonify.timing.sync import ExternalTempo, Timeline
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)
_log = RateLimitedLog(logger, level=logging.ERROR)  # a fault that repeats every block

# An external tempo is re-recorded (a Tempo event) only when it moved this much: a MIDI clock
# estimate wanders by a few tenths of a BPM, and recorders keep times in seconds anyway.
SYNC_TEMPO_STEP_BPM = 0.25
RELOCATE_BEATS = 1.0  # a phase jump larger than this restarts the voices (and MIDI clock out)


class SceneDriver:
    """``tempo_bpm`` fixes the tempo (the scene's own is ignored); ``tempo_scale(t)`` multiplies
    the tempo at ``t`` (a ritardando); ``transform(events)`` reshapes each block's events before
    they are scheduled (the offline render's dynamics arc); ``clock_out`` sends MIDI clock;
    ``sync`` follows an external tempo and phase (see the module docstring)."""

    def __init__(self, player: ScenePlayer, scheduler: Scheduler, start_s: float, *,
                 tempo_bpm: float | None = None,
                 tempo_scale: Callable[[float], float] | None = None,
                 transform: Callable[[list[Event]], list[Event]] | None = None,
                 clock_out: bool = False, sync: ExternalTempo | None = None) -> None:
        self.player = player
        self.scheduler = scheduler
        self.fixed_bpm = tempo_bpm
        self.tempo_scale = tempo_scale
        self.transform = transform
        self.sync = sync
        self.clock_out = MidiClockOut() if clock_out else None
        self.playing = True  # False while an external transport is stopped
        self.synced = False  # True while following ``sync``'s timeline
        self.phase_jumps = 0  # re-anchorings that moved the beat by more than RELOCATE_BEATS
        self.tempo = TempoClock(self._bpm(None, start_s), origin_s=start_s)
        self._own_bpm = self.tempo.bpm
        self._recorded_bpm = self.tempo.bpm
        self.notes_to = start_s
        self.controls_to = start_s
        self._sync_failed = False
        events: list[Event] = [Tempo(start_s, self.tempo.bpm), *player.start_events(start_s)]
        timeline = self._timeline(start_s)
        if timeline is not None:  # start on the shared beat, already
            self.tempo.align(timeline.bpm, timeline.beat, start_s)
            self.synced, self.playing = True, timeline.playing
            self._recorded_bpm = timeline.bpm
            events[0] = Tempo(start_s, timeline.bpm)
        if self.clock_out is not None and self.playing:
            events += self.clock_out.start(self.tempo, start_s)
        scheduler.schedule(events)

    def advance(self, features: Features | None, onsets: Sequence[str], notes_to: float,
                controls_to: float) -> list[Event]:
        """Render and schedule up to the two horizons; returns the events scheduled."""
        events: list[Event] = []
        if notes_to > self.notes_to:
            t = self.notes_to
            events += self._follow(features, t)
            if self.playing:
                events += self.player.render(features, self.tempo, t, notes_to,
                                             controls=False)
                if self.clock_out is not None:
                    events += self.clock_out.ticks(self.tempo, t, notes_to)
            self.notes_to = notes_to
        if controls_to > self.controls_to or onsets:
            end = max(controls_to, self.controls_to)
            controls = self.player.render_controls(features, self.tempo, self.controls_to, end,
                                                   onsets)
            if not self.playing:  # transport stopped: triggers send no notes either
                controls = [e for e in controls if not isinstance(e, Note)]
            events += controls
            self.controls_to = end
        if events and self.transform is not None:
            events = self.transform(events)
        if events:
            self.scheduler.schedule(events)
        return events

    def _follow(self, features: Features | None, t: float) -> list[Event]:
        """At the start ``t`` of a note window: the tempo (own or external), the phase and the
        transport; returns the Tempo and MIDI clock transport events this causes."""
        events: list[Event] = []
        own = self._bpm(features, t)
        if self.sync is not None and abs(own - self._own_bpm) > 1e-9:
            try:
                self.sync.propose_tempo(own, t)
            except Exception:
                _log.log("propose_tempo", "%s: propose_tempo failed", self.sync.name,
                         exc_info=True)
        self._own_bpm = own
        timeline = self._timeline(t)
        if timeline is None:
            if self.synced:
                logger.info("external tempo lost: playing on at our own tempo")
            self.synced = False
            if abs(own - self.tempo.bpm) > 1e-9:
                self.tempo.set_tempo(own, t)
                events.append(Tempo(t, own))
                self._recorded_bpm = own
            if not self.playing:  # nothing to follow any more: play on by ourselves
                events += self._transport(True, t)
            return events
        self.synced = True
        jump = self.tempo.align(timeline.bpm, timeline.beat, t)
        if abs(timeline.bpm - self._recorded_bpm) >= SYNC_TEMPO_STEP_BPM:
            events.append(Tempo(t, timeline.bpm))
            self._recorded_bpm = timeline.bpm
        if timeline.playing != self.playing:
            events += self._transport(timeline.playing, t)
        elif self.playing and abs(jump) > RELOCATE_BEATS:
            self.phase_jumps += 1
            logger.info("external beat jumped by %.2f beats: the voices start again there", jump)
            self.player.relocate()
            if self.clock_out is not None:
                events += self.clock_out.relocate(self.tempo, t)
        return events

    def _transport(self, playing: bool, t: float) -> list[Event]:
        self.playing = playing
        if playing:
            self.player.relocate()  # start on the grid from here, not with steps left over
            return list(self.clock_out.start(self.tempo, t)) if self.clock_out is not None else []
        return list(self.clock_out.stop(t)) if self.clock_out is not None else []

    def _timeline(self, t: float) -> Timeline | None:
        if self.sync is None:
            return None
        try:
            timeline = self.sync.timeline(t)
        except Exception:  # a fault in the sync source does not stop the show
            if not self._sync_failed:
                logger.exception("%s: timeline failed; playing at our own tempo",
                                 self.sync.name)
            self._sync_failed = True
            return None
        self._sync_failed = False
        if timeline is not None and not (1.0 <= timeline.bpm <= 999.0
                                         and math.isfinite(timeline.beat)):
            logger.warning("%s: ignoring an impossible timeline %s", self.sync.name, timeline)
            return None
        return timeline

    def stop(self, t: float) -> list[Event]:
        """The run ends at ``t``: MIDI clock STOP, sent at once (the runtime calls this before
        ``Scheduler.stop()``, which drops what is pending). Returns what was sent."""
        events: list[Event] = list(self.clock_out.stop(t)) if self.clock_out is not None else []
        if events:
            self.scheduler.dispatch_due()  # the clocks due by now first, then the STOP
            self.scheduler.send_now(events)
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
        events: list[Event] = []
        if not self.synced:  # following an external tempo: it keeps deciding
            self.tempo.set_tempo(bpm, max(at_s, self.notes_to))
            events.append(Tempo(max(at_s, self.notes_to), bpm))
            self._recorded_bpm = bpm
        self.notes_to = max(self.notes_to, at_s)
        self.controls_to = max(self.controls_to, at_s)
        self.scheduler.schedule([*events, *player.start_events(at_s)])
