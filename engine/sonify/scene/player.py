"""The scene player: a Scene plus the latest Features -> Events, on the beat grid.

How time works here:

* The runtime calls ``render(features, tempo, t_from, t_to, onsets)`` every few milliseconds for
  a window reaching a little ahead; successive windows tile time, and ``render`` returns exactly
  the events with ``t_from <= t < t_to``, sorted by time.
* Each voice steps along its own grid (step ``k`` at beat ``k * step_beats``, aligned to beat 0,
  off-beats delayed by swing). A step is *decided* (pattern, density, pitch, velocity, all
  sampled from the features passed to that call: sample and hold) in the call whose window
  reaches its earliest possible time; what it plays later than the window (humanise jitter, a
  sparkle's position in the step) waits in a queue and comes out in the call that covers it.
  Every step is decided exactly once, so rendering one long window or many short ones with the
  same features gives the same events.
* Randomness (density, melodic wander, humanise) is a hash of (seed, voice, step, note), never
  a running generator: same seed, same music, however time is sliced.
* Mapping state (smoothing, hysteresis) is per use and timed by the music: a voice's mappings
  are evaluated at its steps' times, a control's at its ticks.
* Harmony is planned in bars, a phrase at a time, by ``sonify.scene.harmony`` (phrases with
  half and authentic cadences, sections A B A', the final tonic of a piece of known length);
  each bar's ``KeyState`` (key, chord, where the bar sits in the form) is sampled when the bar
  is first needed and holds for it. Its markers (key, chord, section, phrase, cadence) are
  emitted at the bars' downbeats, before the notes there. A chords voice without a rhythm
  strikes each chord when it changes and holds it until the next (the final one to the end).

Before the first frame (``features=None``) the scene is silent: no notes, no controls, no
triggers (the runtime has nothing to show yet, and a camera that takes a second to open should
not be greeted by made-up music); ``tempo_bpm(None)`` is the tempo's resting value (the constant, or
the middle of its mapped range). Triggers only fire for the onsets passed in ``onsets`` (the
runtime collects them across frames), never from ``features.raw``, so an onset cannot fire twice.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence

from sonify.events import (
    Event,
    PitchBend,
    ProgramChange,
)
from sonify.features.analyzer import Features
from sonify.limits import TEMPO_RANGE_BPM
from sonify.scene.controls import TRIGGER_RANK, build_controls, trigger_events
from sonify.scene.harmony import Harmony, KeyState, PiecePlan
from sonify.scene.mapping import PARAM_PREFIX, Mapper
from sonify.scene.schema import (
    DrumsVoice,
    Scene,
    TriggerSpec,
)
from sonify.scene.voices import Window, build_voices
from sonify.timing.clock import TempoClock

__all__ = ["KeyState", "ScenePlayer"]



class ScenePlayer:
    """Plays one Scene; deterministic for a ``seed``. Not thread-safe: the music thread owns it.

    ``tempo_bpm(features)`` is the tempo the scene wants now; ``render(...)`` the events of a
    window; ``start_events(t)``/``stop_events(t)`` what to send when the scene starts and stops.
    """

    def __init__(self, scene: Scene, seed: int = 0) -> None:
        self.scene = scene
        self.seed = seed
        self._tempo = Mapper(scene.tempo.bpm)
        self._step_bpm = scene.tempo.step_bpm
        self._harmony = Harmony(scene, seed)
        # markers only where there is harmony to mark: a voice that plays pitches
        self._marks = any(not v.mute and not isinstance(v, DrumsVoice) for v in scene.voices)
        self._voices = build_voices(scene, seed, self._harmony.slot_beats)
        self._controls = build_controls(scene)
        self._triggers: dict[str, list[tuple[int, TriggerSpec]]] = {}
        for i, trig in enumerate(scene.triggers):
            self._triggers.setdefault(trig.on, []).append((TRIGGER_RANK + i, trig))
        self._pending: list[tuple[float, int, int, Event]] = []
        self._seq = 0
        self.params: dict[str, float] = {name: p.start for name, p in scene.params.items()}
        self._param_values = self._normalised_params()

    # -- live parameters ----------------------------------------------------------------------

    def set_param(self, name: str, value: float) -> float:
        """Set a live parameter (clipped to its range); returns the value kept. KeyError names
        the parameters there are."""
        spec = self.scene.params.get(name)
        if spec is None:
            raise KeyError(f"scene {self.scene.name!r} has no parameter {name!r} (it has: "
                           f"{', '.join(self.scene.params) or 'none'})")
        value = min(spec.max, max(spec.min, float(value)))
        self.params[name] = value
        self._param_values = self._normalised_params()
        return value

    def _normalised_params(self) -> dict[str, float]:
        return {f"{PARAM_PREFIX}{name}": spec.normalise(self.params[name])
                for name, spec in self.scene.params.items()}

    def _with_params(self, features: Features | None) -> Features | None:
        """``features`` whose values also hold the live parameters (``param:<name>``, 0..1)."""
        if features is None or not self._param_values:
            return features
        return dataclasses.replace(features, values={**features.values, **self._param_values})

    @property
    def key(self) -> KeyState | None:
        """The most recently planned bar (key, scale, chord, form), None before any."""
        return self._harmony.latest()

    def plan_piece(self, piece: PiecePlan | None) -> None:
        """The piece has a known length (see ``sonify.scene.harmony``): its harmony plans the
        final cadence onto its last bar and holds the tonic to the end."""
        self._harmony.plan_piece(piece)

    def begin_section(self, index: int) -> None:
        """This player starts the piece's section ``index`` (0 A, 1 B, 2 A'...: a video cut)."""
        self._harmony.begin_section(index)

    def tempo_bpm(self, features: Features | None) -> float:
        """The tempo the scene wants now, in steps of the scene's ``step_bpm``."""
        features = self._with_params(features)
        bpm = self._tempo.rest() if features is None else self._tempo(features, features.t)
        if self._step_bpm > 0:
            bpm = round(bpm / self._step_bpm) * self._step_bpm
        return min(TEMPO_RANGE_BPM[1], max(TEMPO_RANGE_BPM[0], bpm))

    def relocate(self) -> None:
        """The beat grid jumped (a transport start, a large phase jump of an external clock):
        every voice starts again at the first step at or after the next window's start, and
        what was decided for later (humanised notes, sparkle runs) is dropped. Without this a
        jump back would leave the voices silent until the grid came back to where they were."""
        for voice in self._voices:
            voice._next = None
        self._pending.clear()
        self._harmony.relocate()

    def start_events(self, t: float) -> list[Event]:
        """Program changes for the voices and trigger notes that ask for one."""
        events: list[Event] = []
        for spec in self.scene.voices:
            if spec.program is not None and spec.channel is not None and not spec.mute:
                events.append(ProgramChange(t, spec.channel - 1, spec.program - 1, spec.name))
        for i, trig in enumerate(self.scene.triggers):
            if trig.note is not None and trig.note.program is not None:
                events.append(ProgramChange(t, trig.note.channel - 1, trig.note.program - 1,
                                            f"trigger {i + 1}"))
        return events

    def stop_events(self, t: float) -> list[Event]:
        """Pitch bends back to centre (notes are the scheduler's panic's job)."""
        return [PitchBend(t, c.channel - 1, 0, c.name) for c in self.scene.controls
                if c.pitch_bend and c.channel is not None]

    def render(self, features: Features | None, tempo: TempoClock, t_from: float, t_to: float,
               onsets: Sequence[str] = (), *, controls: bool = True) -> list[Event]:
        """Every event with ``t_from <= t < t_to``, sorted by time (see the module docstring).

        ``controls=False`` leaves the continuous controls out: the live runtime renders notes
        a lookahead ahead (for precise timing) but controls and triggers with
        ``render_controls`` over a window ending just after now (for low latency).
        """
        features = self._with_params(features)
        out: list[tuple[float, int, int, Event]] = []
        pending = self._pending
        while pending and pending[0][0] < t_to:
            item = heapq.heappop(pending)
            if item[0] < t_from:  # a gap between calls: late rather than lost
                item = (t_from, item[1], item[2], dataclasses.replace(item[3], t=t_from))
            out.append(item)
        if t_to > t_from and features is not None:
            w = Window(features, tempo, t_from, t_to, out, pending, self._seq, self._harmony)
            if self._marks:  # before the notes at the same time (rank -1)
                for marker in self._harmony.markers(features, tempo, t_from, t_to):
                    w.emit(-1, marker)
            for voice in self._voices:
                voice.render(w)
            if controls:
                for control in self._controls:
                    control.render(w)
            self._seq = w.seq
            self._fire_triggers(out, onsets, t_from, tempo)
        if len(out) > 1:
            out.sort(key=lambda item: item[:3])
        return [item[3] for item in out]

    def render_controls(self, features: Features | None, tempo: TempoClock, t_from: float,
                        t_to: float, onsets: Sequence[str] = ()) -> list[Event]:
        """The continuous controls with ``t_from <= t < t_to``, and the triggers of ``onsets``
        at ``t_from``; windows tile as ``render``'s do."""
        features = self._with_params(features)
        out: list[tuple[float, int, int, Event]] = []
        if t_to > t_from and features is not None:
            w = Window(features, tempo, t_from, t_to, out, [], self._seq, self._harmony)
            for control in self._controls:
                control.render(w)
            self._seq = w.seq
            self._fire_triggers(out, onsets, t_from, tempo)
        if len(out) > 1:
            out.sort(key=lambda item: item[:3])
        return [item[3] for item in out]

    def _fire_triggers(self, out: list[tuple[float, int, int, Event]], onsets: Sequence[str],
                       t: float, tempo: TempoClock) -> None:
        for on in dict.fromkeys(onsets):
            for rank, trig in self._triggers.get(on, ()):
                for ev in trigger_events(trig, t, tempo.beat_s):
                    self._seq += 1
                    out.append((t, rank, self._seq, ev))
