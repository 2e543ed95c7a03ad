"""The voices of a scene on the beat grid: each ``Stepper`` walks its rhythm and decides each
step once (see ``sonify.scene.player`` for how time works): notes, the motif melody
(``sonify.scene.melody``), chords, sparkles, the scan, and drum parts. ``Window`` is one render
call: the inputs, and where events go.
"""

from __future__ import annotations

import heapq
import math

from sonify.events import (
    Event,
    Note,
    OscMessage,
)
from sonify.features.analyzer import Features
from sonify.music import theory
from sonify.music.rhythm import euclid, humanise, parse_steps, swing_steps, unit_random
from sonify.scene.harmony import Harmony, KeyState
from sonify.scene.mapping import Mapper, Mapping
from sonify.scene.melody import Melody
from sonify.scene.schema import (
    ChordsVoice,
    DrumPart,
    DrumsVoice,
    NotesVoice,
    Rhythm,
    ScanVoice,
    Scene,
    SparkleVoice,
    VoiceBase,
)
from sonify.timing.clock import TempoClock

_PART_RANKS = 64  # ranks reserved per voice (one per drum part)
_SALT_DENSITY = 0xD3
_SALT_WALK = 0x3A1C
LATE_DROP_S = 0.1  # a step this late (after a stall or a tempo jump) is skipped, not crammed in


class Window:
    """One render call: the inputs, and where events go (this window, or the queue)."""

    __slots__ = ("features", "tempo", "t_from", "t_to", "out", "pending", "seq", "harmony")

    def __init__(self, features: Features, tempo: TempoClock, t_from: float, t_to: float,
                 out: list[tuple[float, int, int, Event]],
                 pending: list[tuple[float, int, int, Event]], seq: int,
                 harmony: Harmony) -> None:
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


# -- voices ---------------------------------------------------------------------------------------

class Stepper:
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

    def render(self, w: Window) -> None:
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
            if t_step < w.t_from - LATE_DROP_S:
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

    def play(self, w: Window, k: int, beat: float, t_step: float, level: int) -> None:
        raise NotImplementedError

    # helpers for subclasses
    def sounds(self, k: int, j: int, density: float) -> bool:
        return density >= 1.0 or unit_random(self.seed, self.rank, k, j, _SALT_DENSITY) < density

    def send(self, w: Window, k: int, j: int, t: float, pitch: int, velocity: float,
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
    if mode == "root":  # the chord's bass: its root, or the inversion's bass note
        return (key.bass_pc,)
    return None


def _snap(pitch: float, steps_up: int, ladder: tuple[int, ...] | None) -> int:
    """``pitch`` snapped to the ladder (or the semitone), then ``steps_up`` rungs higher."""
    if ladder is None:
        return int(round(pitch)) + steps_up
    return theory.ladder_pitch(ladder, theory.ladder_index(ladder, pitch) + steps_up)


class _NotesVoice(Stepper):
    def __init__(self, spec: NotesVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.quantise = spec.pitch.quantise
        self.spread = Mapper(spec.spread_steps)
        self.low, self.high = spec.register_
        self._walk = 0

    def play(self, w: Window, k: int, beat: float, t_step: float, level: int) -> None:
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


class MelodyVoice(Stepper):
    """A notes voice with ``motif``: ``scene/melody.py`` decides every step."""

    def __init__(self, spec: NotesVoice, beats_per_bar: int, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.melody = Melody(spec, self, beats_per_bar)

    def _level(self, k: int, features: Features, t: float) -> int:
        return 1

    def play(self, w: Window, k: int, beat: float, t_step: float, level: int) -> None:
        self.melody.play(w, k, beat, t_step)


class _ChordsVoice(Stepper):
    HELD_SHARE = 0.98  # a held chord ends just before the next one

    def __init__(self, spec: ChordsVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.low, self.high = spec.register_
        self._previous: tuple[int, ...] | None = None
        # no rhythm and no length: strike each chord as it changes, hold it until the next
        self.held = spec.rhythm is None and spec.length_beats is None
        self._sounding_until = -math.inf  # when the chord last struck stops sounding

    def play(self, w: Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        key = w.key_at(beat)
        end_s = w.harmony.end_s()
        closing = key.final and end_s is not None and end_s > t_step
        bar_beats = w.harmony.bar_beats
        on_bar = abs(beat / bar_beats - round(beat / bar_beats)) < 1e-9
        striking = key.change and on_bar  # the downbeat where the chord changes
        if (self.held or closing) and not striking and t_step < self._sounding_until:
            return  # a held chord, or the final one: struck once, ringing to the end
        # (a chord not sounding, because the music started, was unmuted or came back from idle
        # after its bar began, is struck now and held to the end of the bar)
        if not closing and not self.sounds(k, 0, self.density(f, t_step)):
            return
        notes = theory.voice_chord(key.chord, self.low, self.high, self._previous,
                                   self.pitch(f, t_step))
        self._previous = notes
        velocity = self.velocity(f, t_step) + (self.accent if level == 2 else 0)
        duration_s = self.length(f, t_step) * w.tempo.beat_s
        if closing:  # the final tonic, held to the end of the piece (stabs too: the last rings)
            assert end_s is not None
            duration_s = end_s - t_step
        elif self.held:
            until = (beat + key.chord_bars * bar_beats if striking
                     else (math.floor(beat / bar_beats + 1e-9) + 1) * bar_beats)
            duration_s = self.HELD_SHARE * (w.tempo.time_at(until) - t_step)
        self._sounding_until = t_step + duration_s
        for j, pitch in enumerate(notes):
            self.send(w, k, j, t_step, pitch, velocity, duration_s)


class _SparkleVoice(Stepper):
    STEP_SHARE = 0.9  # a point's x places it within this share of the step

    def __init__(self, spec: SparkleVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.quantise = spec.pitch.quantise
        self.span = spec.span_semitones
        self.max_notes = spec.max_notes
        self.low, self.high = spec.register_

    def play(self, w: Window, k: int, beat: float, t_step: float, level: int) -> None:
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


class _ScanVoice(Stepper):
    def __init__(self, spec: ScanVoice, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.pitch = Mapper(spec.pitch)
        self.quantise = spec.pitch.quantise
        self.threshold = spec.threshold
        self.max_notes = spec.max_notes
        self.low, self.high = spec.register_
        self._closed = False

    def play(self, w: Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        key = w.key_at(beat)
        end_s = w.harmony.end_s()
        if key.final and end_s is not None and end_s > t_step:
            self._close(w, k, key, t_step, end_s)
            return
        grid = f.arrays["grid"]
        rows, cols = grid.shape
        column = grid[:, k % cols].tolist()
        cells = sorted(((lvl, r) for r, lvl in enumerate(column) if lvl >= self.threshold),
                       reverse=True)[: self.max_notes]
        if not cells:
            return
        density = self.density(f, t_step)
        ladder = _ladder(self.quantise, key)
        base = self.pitch(f, t_step)
        velocity = self.velocity(f, t_step) + (self.accent if level == 2 else 0)
        duration_s = self.length(f, t_step) * w.tempo.beat_s
        for lvl, r in sorted(cells, key=lambda c: c[1], reverse=True):  # bottom row first
            if not self.sounds(k, r, density):
                continue
            pitch = theory.fold_into(_snap(base, rows - 1 - r, ladder), self.low, self.high)
            self.send(w, k, r, t_step, pitch, velocity * (0.35 + 0.65 * lvl), duration_s)

    def _close(self, w: Window, k: int, key: KeyState, t_step: float, end_s: float) -> None:
        """The scan's closing gesture on a piece's final chord: the sweep stops and the tonic
        chord's tones, from the bottom of the scan's range, ring to the end (once)."""
        if self._closed:
            return
        self._closed = True
        base = self.pitch(w.features, t_step)
        tones = sorted({theory.fold_into(_snap(base, i, key.chord.ladder), self.low, self.high)
                        for i in range(3)})
        velocity = self.velocity(w.features, t_step) * 0.8
        for j, pitch in enumerate(tones):
            self.send(w, k, j, t_step, pitch, velocity, end_s - t_step)


class _DrumPart(Stepper):
    def __init__(self, part: DrumPart, voice_density: Mapper, voice_velocity: Mapper,
                 **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.sound = part.sound
        self.voice_density = voice_density
        self.voice_velocity = voice_velocity

    def play(self, w: Window, k: int, beat: float, t_step: float, level: int) -> None:
        f = w.features
        density = self.density(f, t_step) * self.voice_density(f, t_step)
        if not self.sounds(k, 0, density):
            return
        velocity = (self.velocity(f, t_step) + (self.accent if level == 2 else 0)) \
            * self.voice_velocity(f, t_step) / 127.0
        self.send(w, k, 0, t_step, self.sound, velocity, self.length(f, t_step) * w.tempo.beat_s)


def _default_rhythm(spec: VoiceBase, bar_beats: float) -> Rhythm:
    if spec.rhythm is not None:
        return spec.rhythm
    kind = getattr(spec, "kind", "")
    if kind == "chords" and spec.length_beats is None:
        # a held chord looks every beat: struck when it changes, or at once when nothing
        # sounds (the music started, or came back, after the bar began)
        return Rhythm(steps="x", step_beats=1.0)
    step_beats = {"notes": 1.0, "chords": bar_beats, "sparkle": 0.5, "scan": 0.5}.get(kind, 0.25)
    return Rhythm(steps="x", step_beats=step_beats)


def _length_mapper(spec: Mapping | None, default_beats: float) -> Mapper:
    if spec is None:
        return Mapper(Mapping.model_validate(default_beats))
    return Mapper(spec)


def build_voices(scene: Scene, seed: int, slot_beats: float) -> list[Stepper]:
    runners: list[Stepper] = []
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
        rhythm = _default_rhythm(spec, float(scene.harmony.beats_per_bar))
        share = 0.98 if isinstance(spec, ChordsVoice) else 0.5 if isinstance(
            spec, SparkleVoice) else 0.9
        kw = dict(rank=rank, rhythm=rhythm, velocity=Mapper(spec.velocity),
                  density=Mapper(spec.density),
                  length=_length_mapper(spec.length_beats, share * rhythm.step_beats), **common)
        if isinstance(spec, NotesVoice) and spec.motif is not None:
            runners.append(MelodyVoice(spec, scene.harmony.beats_per_bar, **kw))
        elif isinstance(spec, NotesVoice):
            runners.append(_NotesVoice(spec, **kw))
        elif isinstance(spec, ChordsVoice):
            runners.append(_ChordsVoice(spec, **kw))
        elif isinstance(spec, SparkleVoice):
            runners.append(_SparkleVoice(spec, **kw))
        elif isinstance(spec, ScanVoice):
            runners.append(_ScanVoice(spec, **kw))
    return runners
