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
* Harmony is planned chord by chord (``bars_per_chord`` bars each): the key (root and scale,
  fixed or chosen by features with hysteresis) and the progression (chosen by the mood label,
  switched only when the current one has played through) are sampled when a chord is first
  needed, and hold for that chord.

Before the first frame (``features=None``) the scene is silent: no notes, no controls, no
triggers (the runtime has nothing to show yet, and a camera that takes a second to open should
not be greeted by made-up music); ``tempo_bpm(None)`` is the tempo's resting value (the constant, or
the middle of its mapped range). Triggers only fire for the onsets passed in ``onsets`` (the
runtime collects them across frames), never from ``features.raw``, so an onset cannot fire twice.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sonify.events import (
    ControlChange,
    Event,
    Note,
    OscMessage,
    PitchBend,
    ProgramChange,
)
from sonify.features.analyzer import Features
from sonify.limits import TEMPO_RANGE_BPM
from sonify.music import theory
from sonify.music.rhythm import euclid, humanise, parse_steps, swing_steps, unit_random
from sonify.scene.mapping import PARAM_PREFIX, Chooser, Mapper, Mapping
from sonify.scene.schema import (
    ChordsVoice,
    DrumPart,
    DrumsVoice,
    NotesVoice,
    Rhythm,
    ScanVoice,
    Scene,
    SparkleVoice,
    TriggerSpec,
    VoiceBase,
)
from sonify.timing.clock import TempoClock

_CONTROL_RANK = 1_000_000
_TRIGGER_RANK = 2_000_000
_PART_RANKS = 64  # ranks reserved per voice (one per drum part)
_SALT_DENSITY = 0xD3
_SALT_WALK = 0x3A1C
_LATE_DROP_S = 0.1  # a step this late (after a stall or a tempo jump) is skipped, not crammed in


@dataclass(frozen=True, slots=True)
class KeyState:
    """The harmony for one chord slot: key root (pc), scale, its ladder, and the chord."""

    slot: int
    root: int
    scale: str
    scale_pcs: tuple[int, ...]
    chord: theory.Chord
    progression: str


class _Window:
    """One render call: the inputs, and where events go (this window, or the queue)."""

    __slots__ = ("features", "tempo", "t_from", "t_to", "out", "pending", "seq", "harmony")

    def __init__(self, features: Features, tempo: TempoClock, t_from: float, t_to: float,
                 out: list[tuple[float, int, int, Event]],
                 pending: list[tuple[float, int, int, Event]], seq: int,
                 harmony: _Harmony) -> None:
        self.features = features
        self.tempo = tempo
        self.t_from = t_from
        self.t_to = t_to
        self.out = out
        self.pending = pending
        self.seq = seq
        self.harmony = harmony

    def emit(self, rank: int, event: Event) -> None:
        self.seq += 1
        item = (event.t, rank, self.seq, event)
        if event.t < self.t_to:
            self.out.append(item)
        else:
            heapq.heappush(self.pending, item)

    def key_at(self, beat: float) -> KeyState:
        return self.harmony.at(beat, self.features, self.tempo)


class _Harmony:
    """Chord slots planned in order as they are first needed (see the module docstring)."""

    KEEP_SLOTS = 16

    def __init__(self, scene: Scene) -> None:
        h = scene.harmony
        self.slot_beats = float(h.beats_per_bar * h.bars_per_chord)
        self._progs = {k: tuple(v) for k, v in h.progressions.items()}
        self._default_name = "default" if "default" in self._progs else next(iter(self._progs))
        self._root = Chooser(scene.key.root)
        self._scale = Chooser(scene.key.scale)
        self._plan: dict[int, KeyState] = {}
        self._last: int | None = None
        self._prog_name = self._default_name
        self._prog_start = 0

    def _progression_for(self, mood: str) -> str:
        return mood if mood in self._progs else self._default_name

    def at(self, beat: float, features: Features, tempo: TempoClock) -> KeyState:
        slot = math.floor(beat / self.slot_beats)
        if self._last is None:
            self._last = slot - 1
            self._prog_start = slot
            self._prog_name = self._progression_for(features.mood)
        while self._last < slot:
            self._plan_slot(self._last + 1, features, tempo)
        state = self._plan.get(slot)
        return state if state is not None else self._plan[min(self._plan)]

    def latest(self) -> KeyState | None:
        return None if self._last is None else self._plan.get(self._last)

    def _plan_slot(self, s: int, features: Features, tempo: TempoClock) -> None:
        t = tempo.time_at(s * self.slot_beats)
        root_name = self._root(features, t)
        root = theory.parse_pitch_class(int(root_name) if root_name.isdigit() else root_name)
        scale = self._scale(features, t)
        prog = self._progs[self._prog_name]
        pos = (s - self._prog_start) % len(prog)
        if pos == 0:
            wanted = self._progression_for(features.mood)
            if wanted != self._prog_name:
                self._prog_name, self._prog_start = wanted, s
                prog = self._progs[wanted]
        chord = theory.chord(prog[pos], root, scale)
        self._plan[s] = KeyState(s, root, scale, theory.scale_pcs(root, scale), chord,
                                 self._prog_name)
        self._last = s
        self._plan.pop(s - self.KEEP_SLOTS, None)


# -- voices ---------------------------------------------------------------------------------------

class _Stepper:
    """Walks a rhythm grid and decides each step once (see the module docstring)."""

    def __init__(self, rank: int, name: str, rhythm: Rhythm, *, seed: int, swing: float,
                 humanise_ms: float, humanise_velocity: int, accent: int, channel: int | None,
                 osc: str | None, velocity: Mapper, density: Mapper, length: Mapper) -> None:
        self.rank = rank
        self.name = name
        self.seed = seed
        self.step_beats = rhythm.step_beats
        self.swing = swing
        self.humanise_ms = humanise_ms
        self.humanise_s = humanise_ms * 1e-3
        self.humanise_velocity = humanise_velocity
        self.accent = accent
        self.channel = None if channel is None else channel - 1
        self.osc = osc
        self.velocity = velocity
        self.density = density
        self.length = length
        self._pattern = parse_steps(rhythm.steps) if rhythm.steps is not None else None
        eu = rhythm.euclid
        self._pulses = Mapper(eu.pulses) if eu is not None else None
        self._eu_steps = eu.steps if eu is not None else 1
        self._eu_rotate = eu.rotate if eu is not None else 0
        self._next: int | None = None

    def render(self, w: _Window) -> None:
        tempo = w.tempo
        sb = self.step_beats
        if self._next is None:
            self._next = math.ceil(tempo.beat_at(w.t_from) / sb - 1e-9)
        while True:
            k = self._next
            beat = k * sb
            t_step = tempo.time_at(beat + swing_steps(k, self.swing) * sb)
            if t_step - self.humanise_s >= w.t_to:
                return
            self._next = k + 1
            if t_step < w.t_from - _LATE_DROP_S:
                continue
            level = self._level(k, w.features, t_step)
            if level:
                self.play(w, k, beat, t_step, level)

    def _level(self, k: int, features: Features, t: float) -> int:
        if self._pattern is not None:
            return self._pattern[k % len(self._pattern)]
        assert self._pulses is not None
        pulses = int(round(self._pulses(features, t)))
        return euclid(pulses, self._eu_steps, self._eu_rotate)[k % self._eu_steps]

    def play(self, w: _Window, k: int, beat: float, t_step: float, level: int) -> None:
        raise NotImplementedError

    # helpers for subclasses
    def sounds(self, k: int, j: int, density: float) -> bool:
        return density >= 1.0 or unit_random(self.seed, self.rank, k, j, _SALT_DENSITY) < density

    def send(self, w: _Window, k: int, j: int, t: float, pitch: int, velocity: float,
             duration_s: float) -> None:
        dt, dv = humanise(self.seed, (self.rank, k, j), self.humanise_ms, self.humanise_velocity)
        t = max(w.t_from, t + dt)
        vel = max(1, min(127, int(round(velocity)) + dv))
        pitch = max(0, min(127, pitch))
        duration_s = max(duration_s, 0.005)
        if self.channel is not None:
            w.emit(self.rank, Note(t, self.channel, pitch, vel, duration_s, self.name))
        if self.osc is not None:
            w.emit(self.rank, OscMessage(t, self.osc, (pitch, round(vel / 127, 4),
                                                       round(duration_s, 4)), self.name))


def _ladder(mode: str, key: KeyState) -> tuple[int, ...] | None:
    if mode == "scale":
        return key.scale_pcs
    if mode == "chord":
        return key.chord.ladder
    if mode == "root":
        return (key.chord.root,)
    return None


def _snap(pitch: float, steps_up: int, ladder: tuple[int, ...] | None) -> int:
    """``pitch`` snapped to the ladder (or the semitone), then ``steps_up`` rungs higher."""
    if ladder is None:
        return int(round(pitch)) + steps_up
    return theory.ladder_pitch(ladder, theory.ladder_index(ladder, pitch) + steps_up)


class _NotesVoice(_Stepper):
    def __init__(self, spec: NotesVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.quantise = spec.pitch.quantise
        self.spread = Mapper(spec.spread_steps)
        self.low, self.high = spec.register_
        self._walk = 0

    def play(self, w: _Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        if not self.sounds(k, 0, self.density(f, t_step)):
            return
        key = w.key_at(beat)
        centre = self.pitch(f, t_step)
        spread = max(0, int(round(self.spread(f, t_step))))
        r = unit_random(self.seed, self.rank, k, _SALT_WALK)
        delta = -2 if r < 0.1 else -1 if r < 0.35 else 0 if r < 0.65 else 1 if r < 0.9 else 2
        walk = self._walk + delta
        if abs(walk) > spread:
            walk = max(-spread, min(spread, self._walk - delta))
        self._walk = walk
        pitch = theory.fold_into(_snap(centre, walk, _ladder(self.quantise, key)),
                                 self.low, self.high)
        velocity = self.velocity(f, t_step) + (self.accent if level == 2 else 0)
        self.send(w, k, 0, t_step, pitch, velocity, self.length(f, t_step) * w.tempo.beat_s)


class _ChordsVoice(_Stepper):
    def __init__(self, spec: ChordsVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.low, self.high = spec.register_
        self._previous: tuple[int, ...] | None = None

    def play(self, w: _Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        if not self.sounds(k, 0, self.density(f, t_step)):
            return
        key = w.key_at(beat)
        notes = theory.voice_chord(key.chord, self.low, self.high, self._previous,
                                   self.pitch(f, t_step))
        self._previous = notes
        velocity = self.velocity(f, t_step) + (self.accent if level == 2 else 0)
        duration_s = self.length(f, t_step) * w.tempo.beat_s
        for j, pitch in enumerate(notes):
            self.send(w, k, j, t_step, pitch, velocity, duration_s)


class _SparkleVoice(_Stepper):
    STEP_SHARE = 0.9  # a point's x places it within this share of the step

    def __init__(self, spec: SparkleVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.quantise = spec.pitch.quantise
        self.span = spec.span_semitones
        self.max_notes = spec.max_notes
        self.low, self.high = spec.register_

    def play(self, w: _Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        points = f.arrays["star_points"]
        lit = [row for row in points.tolist() if row[2] > 0.0]
        stars = min(f.values["stars"], float(len(points)))
        n = min(len(lit), math.ceil(self.max_notes * stars / len(points)))
        if n <= 0:
            return
        density = self.density(f, t_step)
        key = w.key_at(beat)
        ladder = _ladder(self.quantise, key)
        base = self.pitch(f, t_step)
        velocity = self.velocity(f, t_step) + (self.accent if level == 2 else 0)
        duration_s = self.length(f, t_step) * w.tempo.beat_s
        step_s = self.step_beats * w.tempo.beat_s
        for j in range(n):
            if not self.sounds(k, j, density):
                continue
            x, y, lvl = lit[(k * n + j) % len(lit)]
            pitch = theory.fold_into(_snap(base + (1.0 - y) * self.span, 0, ladder),
                                     self.low, self.high)
            t = t_step + x * self.STEP_SHARE * step_s
            self.send(w, k, j, t, pitch, velocity * (0.35 + 0.65 * lvl), duration_s)


class _ScanVoice(_Stepper):
    def __init__(self, spec: ScanVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.quantise = spec.pitch.quantise
        self.threshold = spec.threshold
        self.max_notes = spec.max_notes
        self.low, self.high = spec.register_

    def play(self, w: _Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        grid = f.arrays["grid"]
        rows, cols = grid.shape
        column = grid[:, k % cols].tolist()
        cells = sorted(((lvl, r) for r, lvl in enumerate(column) if lvl >= self.threshold),
                       reverse=True)[: self.max_notes]
        if not cells:
            return
        density = self.density(f, t_step)
        key = w.key_at(beat)
        ladder = _ladder(self.quantise, key)
        base = self.pitch(f, t_step)
        velocity = self.velocity(f, t_step) + (self.accent if level == 2 else 0)
        duration_s = self.length(f, t_step) * w.tempo.beat_s
        for lvl, r in sorted(cells, key=lambda c: c[1], reverse=True):  # bottom row first
            if not self.sounds(k, r, density):
                continue
            pitch = theory.fold_into(_snap(base, rows - 1 - r, ladder), self.low, self.high)
            self.send(w, k, r, t_step, pitch, velocity * (0.35 + 0.65 * lvl), duration_s)


class _DrumPart(_Stepper):
    def __init__(self, part: DrumPart, voice_density: Mapper, voice_velocity: Mapper,
                 **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.sound = part.sound
        self.voice_density = voice_density
        self.voice_velocity = voice_velocity

    def play(self, w: _Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        density = self.density(f, t_step) * self.voice_density(f, t_step)
        if not self.sounds(k, 0, density):
            return
        velocity = (self.velocity(f, t_step) + (self.accent if level == 2 else 0)) \
            * self.voice_velocity(f, t_step) / 127.0
        self.send(w, k, 0, t_step, self.sound, velocity, self.length(f, t_step) * w.tempo.beat_s)


def _default_rhythm(spec: VoiceBase, slot_beats: float) -> Rhythm:
    if spec.rhythm is not None:
        return spec.rhythm
    step_beats = {"notes": 1.0, "chords": slot_beats, "sparkle": 0.5, "scan": 0.5}.get(
        getattr(spec, "kind", ""), 0.25)
    return Rhythm(steps="x", step_beats=step_beats)


def _length_mapper(spec: Mapping | None, default_beats: float) -> Mapper:
    if spec is None:
        return Mapper(Mapping.model_validate(default_beats))
    return Mapper(spec)


def _build_voices(scene: Scene, seed: int, slot_beats: float) -> list[_Stepper]:
    runners: list[_Stepper] = []
    for i, spec in enumerate(scene.voices):
        if spec.mute:
            continue
        rank = i * _PART_RANKS
        common = dict(seed=seed, swing=spec.swing, humanise_ms=spec.humanise_ms,
                      humanise_velocity=spec.humanise_velocity, accent=spec.accent,
                      channel=spec.channel, osc=spec.osc, name=spec.name)
        if isinstance(spec, DrumsVoice):
            for j, part in enumerate(spec.parts):
                # each part its own evaluators: mapping state is per use (see mapping.py)
                runners.append(_DrumPart(
                    part, Mapper(spec.density), Mapper(spec.velocity), rank=rank + j,
                    rhythm=part.rhythm,
                    velocity=Mapper(part.velocity), density=Mapper(part.density),
                    length=_length_mapper(spec.length_beats, 0.25), **common))
            continue
        rhythm = _default_rhythm(spec, slot_beats)
        share = 0.98 if isinstance(spec, ChordsVoice) else 0.5 if isinstance(
            spec, SparkleVoice) else 0.9
        kw = dict(rank=rank, rhythm=rhythm, velocity=Mapper(spec.velocity),
                  density=Mapper(spec.density),
                  length=_length_mapper(spec.length_beats, share * rhythm.step_beats), **common)
        if isinstance(spec, NotesVoice):
            runners.append(_NotesVoice(spec, **kw))
        elif isinstance(spec, ChordsVoice):
            runners.append(_ChordsVoice(spec, **kw))
        elif isinstance(spec, SparkleVoice):
            runners.append(_SparkleVoice(spec, **kw))
        elif isinstance(spec, ScanVoice):
            runners.append(_ScanVoice(spec, **kw))
    return runners


# -- controls -------------------------------------------------------------------------------------

class _Control:
    """A value sent at a fixed rate, only when it changes (CC: integer; bend: 14-bit; OSC: float
    rounded to 1e-3)."""

    __slots__ = ("rank", "name", "mapper", "target", "channel", "number", "address",
                 "rate_hz", "_tick", "_last")

    def __init__(self, rank: int, name: str, mapper: Mapper, target: str, *,
                 channel: int | None = None, number: int = 0, address: str = "",
                 rate_hz: float = 20.0) -> None:
        self.rank = rank
        self.name = name
        self.mapper = mapper
        self.target = target  # "cc" | "bend" | "osc" | "mood"
        self.channel = 0 if channel is None else channel - 1
        self.number = number
        self.address = address
        self.rate_hz = rate_hz
        self._tick: int | None = None
        self._last: object = None

    def _first_tick(self, t: float) -> int:
        n = math.ceil(t * self.rate_hz)
        while n / self.rate_hz < t:
            n += 1
        while (n - 1) / self.rate_hz >= t:
            n -= 1
        return n

    def render(self, w: _Window) -> None:
        n = self._tick
        if n is None or n / self.rate_hz < w.t_from - _LATE_DROP_S:
            n = self._first_tick(w.t_from)
        f = w.features
        while (t := n / self.rate_hz) < w.t_to:
            n += 1
            event: Event
            if self.target == "mood":
                if f.mood != self._last:
                    self._last = f.mood
                    w.emit(self.rank, OscMessage(t, self.address, (f.mood,), self.name))
                continue
            v = self.mapper(f, t)
            if self.target == "cc":
                value: int | float = max(0, min(127, int(round(v))))
                event = ControlChange(t, self.channel, self.number, int(value), self.name)
            elif self.target == "bend":
                value = max(-8192, min(8191, int(round(v))))
                event = PitchBend(t, self.channel, int(value), self.name)
            else:
                value = round(v, 3)
                event = OscMessage(t, self.address, (value,), self.name)
            if value != self._last:
                self._last = value
                w.emit(self.rank, event)
        self._tick = n


def _build_controls(scene: Scene) -> list[_Control]:
    controls: list[_Control] = []
    for i, c in enumerate(scene.controls):
        rank = _CONTROL_RANK + i
        if c.cc is not None:
            controls.append(_Control(rank, c.name, Mapper(c, (0.0, 127.0)), "cc",
                                     channel=c.channel, number=c.cc, rate_hz=c.rate_hz))
        elif c.pitch_bend:
            controls.append(_Control(rank, c.name, Mapper(c, (-8192.0, 8191.0)), "bend",
                                     channel=c.channel, rate_hz=c.rate_hz))
        else:
            assert c.osc is not None
            controls.append(_Control(rank, c.name, Mapper(c, (0.0, 1.0)), "osc",
                                     address=c.osc, rate_hz=c.rate_hz))
    s = scene.stream
    if s is not None:
        rank = _CONTROL_RANK + len(controls)
        for i, name in enumerate(s.names()):
            spec = Mapping.model_validate({"feature": name})
            if s.osc_prefix:
                controls.append(_Control(rank, name, Mapper(spec, (0.0, 1.0)), "osc",
                                         address=f"{s.osc_prefix}/{name}", rate_hz=s.rate_hz))
                rank += 1
            if s.cc_channel is not None:
                controls.append(_Control(rank, name, Mapper(spec, (0.0, 127.0)), "cc",
                                         channel=s.cc_channel, number=s.cc_first + i,
                                         rate_hz=s.rate_hz))
                rank += 1
        if s.mood_osc:
            controls.append(_Control(rank, "mood", Mapper(Mapping.model_validate(0)), "mood",
                                     address=s.mood_osc, rate_hz=s.rate_hz))
    return controls


def _trigger_events(trigger: TriggerSpec, t: float, beat_s: float) -> list[Event]:
    name = f"trigger:{trigger.on}"
    events: list[Event] = []
    if trigger.note is not None:
        n = trigger.note
        events.append(Note(t, n.channel - 1, n.pitch, n.velocity, n.length_beats * beat_s, name))
    if trigger.cc is not None:
        events.append(ControlChange(t, trigger.cc.channel - 1, trigger.cc.cc, trigger.cc.value,
                                    name))
    if trigger.osc is not None:
        events.append(OscMessage(t, trigger.osc.address, tuple(trigger.osc.args), name))
    return events


# -- the player -----------------------------------------------------------------------------------

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
        self._harmony = _Harmony(scene)
        self._voices = _build_voices(scene, seed, self._harmony.slot_beats)
        self._controls = _build_controls(scene)
        self._triggers: dict[str, list[tuple[int, TriggerSpec]]] = {}
        for i, trig in enumerate(scene.triggers):
            self._triggers.setdefault(trig.on, []).append((_TRIGGER_RANK + i, trig))
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
        """The most recently planned chord slot (key, scale, chord), None before any."""
        return self._harmony.latest()

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

    def start_events(self, t: float) -> list[Event]:
        """Program changes for the voices that ask for one."""
        events: list[Event] = []
        for spec in self.scene.voices:
            if spec.program is not None and spec.channel is not None and not spec.mute:
                events.append(ProgramChange(t, spec.channel - 1, spec.program - 1, spec.name))
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
            w = _Window(features, tempo, t_from, t_to, out, pending, self._seq, self._harmony)
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
            w = _Window(features, tempo, t_from, t_to, out, [], self._seq, self._harmony)
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
                for ev in _trigger_events(trig, t, tempo.beat_s):
                    self._seq += 1
                    out.append((t, rank, self._seq, ev))
