"""The melody voice: a notes voice with ``motif`` plays phrases built from a motif of the picture.

Instead of ``_NotesVoice``'s random walk, ``Melody`` (driven by the player's ``_MelodyVoice``
on the same step grid, with the same ``Stepper`` machinery, so live and offline play it
alike):

1. derives a *motif* from the frame when it first plays, and again when the harmony's
   ``motif_seed`` changes (a new section B, a cut, a new scene: ``KeyState``); an ``A'`` section
   takes back the motif of the last ``A``. The voice's rhythm pattern and density say how many
   notes the motif has, so the scene keeps its rhythmic feel (``music/motif.py``);
2. lays each phrase out in units of the motif (``music/phrase.py``: motif, sequence, motif,
   head + cadence, with an open ending half-way and a closed one at the end), where the phrase
   and its bars come from the harmony (``phrase_bar``, ``phrase_bars``, ``section``, ``final``)
   or, without them, from the bar number (phrases of ``motif.phrase_bars`` bars from bar 0);
3. places the phrase around the ``pitch`` mapping's value (sampled at the phrase's start and kept
   at least 4 semitones inside the register, so features move the centre but the melody keeps
   headroom), moves each unit by scale steps to fit the chord and register, mirrors it to
   reflect off an edge (never an octave fold), and checks each note against the chord sounding
   when it plays (``phrase.settle``, ``phrase.cadence_pitch``); a note ends at the next chord
   change, and on the piece's final chord the voice holds the tonic.

``pitch.quantise = "chord"`` walks the chord's own ladder (an arpeggio built from the motif);
anything else walks the key's scale, so a pentatonic scene's melody stays pentatonic. The
``density`` mapping thins the motif's unaccented notes (the same ones in every restatement, so
the rhythm still recurs). Everything is a function of (picture, scene, seed): no running
random generator.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sonify.events import Marker
from sonify.music import theory
from sonify.music.motif import Motif, derive_motif, marker_text
from sonify.music.phrase import (
    CLOSE,
    HALF,
    PhraseNote,
    UnitFit,
    UnitPlace,
    cadence_pitch,
    fit_unit,
    phrase_layout,
    settle,
    unit_figure,
)
from sonify.music.rhythm import euclid, unit_random
from sonify.scene.harmony import MIN_PERIOD_BARS, KeyState
from sonify.scene.mapping import Mapper
from sonify.scene.schema import MotifSpec, NotesVoice

if TYPE_CHECKING:  # the voices hold this melody; importing them at run time would be a cycle
    from sonify.scene.voices import Stepper, Window

HEADROOM = 4  # semitones the phrase's centre keeps from the register's edges
_SALT_THIN = 0x7419
_LEGATO = 0.95  # share of a note's written length a legato voice holds it
_CUT_BEATS = 0.05  # a note cut at a chord change ends this much before it


MOTIFS_KEPT = 16  # motifs remembered by seed (a section's return brings its motif back)

class Melody:
    """What a notes voice with ``motif`` plays (see the module docstring): the player's
    ``_MelodyVoice`` (a ``Stepper``, ``v``) walks the step grid, sends the notes and holds the
    voice's mappings; this decides every step."""

    def __init__(self, spec: NotesVoice, voice: Stepper, beats_per_bar: int) -> None:
        assert spec.motif is not None
        self.v = voice
        self.spec: MotifSpec = spec.motif
        self.pitch = Mapper(spec.pitch)
        self.chord_ladder = spec.pitch.quantise == "chord"
        self.low, self.high = spec.register_
        self.beats_per_bar = beats_per_bar
        self.steps_per_bar = max(1, round(beats_per_bar / self.v.step_beats))
        self.motif_steps = self.steps_per_bar * self.spec.bars
        self.motif: Motif | None = None
        self._motifs: dict[int, Motif] = {}
        self._seed_key: int | None = None
        self._density_at = 1.0
        self._unit: tuple[int, int] | None = None  # (phrase's first bar, unit's first bar)
        self._figure: dict[int, PhraseNote] = {}
        self._fit = UnitFit(0, False)
        self._unit_chord: tuple[int, ...] = ()
        self._phrase: int | None = None
        self._centre = 0.5 * (self.low + self.high)
        self._previous: int | None = None
        self._bar: int | None = None
        self._chord_end = 0.0  # beat at which the sounding chord gives way to the next

    # -- the motif ------------------------------------------------------------------------------

    def _pattern_over(self, w: Window, t: float) -> tuple[int, ...]:
        if self.v._pattern is not None:
            return self.v._pattern
        assert self.v._pulses is not None
        pulses = int(round(self.v._pulses(w.features, t)))
        return euclid(pulses, self.v._eu_steps, self.v._eu_rotate)

    def derive(self, w: Window, t: float) -> Motif:
        """The motif of the frame in ``w`` (see ``music/motif.py``)."""
        f = w.features
        pattern = self._pattern_over(w, t)
        hits = sum(1 for i in range(self.motif_steps) if pattern[i % len(pattern)])
        density = min(1.0, max(0.0, self.v.density(f, t)))
        self._density_at = max(density, 1e-6)
        notes = max(self.spec.min_notes, int(round(hits * density)))
        return derive_motif(
            f.arrays["grid"], length=self.motif_steps, steps_per_bar=self.steps_per_bar,
            notes=notes, span=self.spec.span, pattern=pattern, max_leap=self.spec.max_leap,
            tint=(f.values.get("hue", 0.0), f.values.get("brightness", 0.5)))

    def marker_text(self) -> str | None:
        """The ``motif`` marker's text for the current motif (None before the first)."""
        if self.motif is None:
            return None
        return marker_text(self.motif, self.v.step_beats, voice=self.v.name,
                           ladder="chord" if self.chord_ladder else "scale")

    def _ensure_motif(self, w: Window, key: KeyState, t: float) -> None:
        """Derive the motif at the first step, and again when the harmony's ``motif_seed``
        changes (the same seed again, as in A', brings its motif back)."""
        seed = key.motif_seed
        if self.motif is not None and seed == self._seed_key:
            return
        motif = self._motifs.get(seed)
        if motif is None:
            motif = self._motifs[seed] = self.derive(w, t)
            if len(self._motifs) > MOTIFS_KEPT:  # live runs for months: keep the recent ones
                del self._motifs[next(iter(self._motifs))]
        self._seed_key = seed
        if motif != self.motif:
            self.motif = motif
            self._unit = None
            text = self.marker_text()
            assert text is not None
            w.emit(self.v.rank, Marker(t, "motif", text))

    # -- the phrase -----------------------------------------------------------------------------

    def _ladder(self, key: KeyState) -> tuple[int, ...]:
        return key.chord.ladder if self.chord_ladder else key.scale_pcs

    def _place(self, key: KeyState, bar: int) -> tuple[int, UnitPlace]:
        """(the phrase's first bar, the unit holding ``bar``)."""
        bars = max(1, key.phrase_bars or self.spec.phrase_bars)
        place = min(bars - 1, max(0, key.phrase_bar + bar - key.bar))
        layout = phrase_layout(bars, self.spec.bars, bars >= MIN_PERIOD_BARS)
        unit = next(u for u in reversed(layout) if u.start <= place)
        return bar - place, unit

    def _start_unit(self, w: Window, key: KeyState, t: float, phrase: int,
                    unit: UnitPlace) -> None:
        assert self.motif is not None
        if phrase != self._phrase:
            self._phrase = phrase
            lo, hi = self.low + HEADROOM, self.high - HEADROOM
            centre = self.pitch(w.features, t)
            self._centre = min(hi, max(lo, centre)) if lo < hi else 0.5 * (self.low + self.high)
        fig = unit_figure(self.motif, unit, self.steps_per_bar, key.section,
                          rest=self._rest_steps())
        ladder = self._ladder(key)
        chord = key.chord.tones
        self._fit = fit_unit(fig, ladder, theory.ladder_index(ladder, self._centre), chord,
                             self.low, self.high, self._previous,
                             long_steps=self._long_steps(), strong_every=self._strong_steps())
        self._figure = {n.onset: n for n in fig.notes}
        self._unit = (phrase, unit.start)
        self._unit_chord = chord

    def _rest_steps(self) -> int:
        return max(1, round(1.0 / self.v.step_beats))  # a beat's breath

    def _long_steps(self) -> int:
        return max(1, math.ceil(0.4 / self.v.step_beats - 1e-9))  # about half a beat or more

    def _strong_steps(self) -> int:
        return max(1, round(self.beats_per_bar / 2 / self.v.step_beats))

    def play(self, w: Window, k: int, beat: float, t_step: float) -> None:
        key = w.key_at(beat)
        self._ensure_motif(w, key, t_step)
        assert self.motif is not None
        bar = math.floor(beat / self.beats_per_bar + 1e-9)
        if bar != self._bar:
            self._bar = bar
            if key.change or self._chord_end <= bar * self.beats_per_bar:
                self._chord_end = (bar + max(1, key.chord_bars)) * self.beats_per_bar
        if key.final:
            if key.change and abs(beat - bar * self.beats_per_bar) < 1e-6:
                self._play_final(w, k, t_step, key)
            return
        phrase, unit = self._place(key, bar)
        if (phrase, unit.start) != self._unit:
            self._start_unit(w, key, t_step, phrase, unit)
        unit_beat = (phrase + unit.start) * self.beats_per_bar
        note = self._figure.get(int(round((beat - unit_beat) / self.v.step_beats)))
        if note is None or self._thinned(note, w, t_step):
            return
        pitch = self._pitch_of(note, key)
        length = note.duration * self.v.step_beats
        if not note.role:
            written = self.v.length(w.features, t_step)
            legato = written >= 0.9 * self.v.step_beats
            length = length * _LEGATO if legato else min(written, length)
        if beat + length > self._chord_end - _CUT_BEATS:  # no note rings into the next chord
            length = max(0.5 * self.v.step_beats, self._chord_end - _CUT_BEATS - beat)
        velocity = self.v.velocity(w.features, t_step) + (self.v.accent if note.accent else 0)
        self.v.send(w, k, 0, t_step, pitch, velocity, length * w.tempo.beat_s)
        self._previous = pitch

    def _thinned(self, note: PhraseNote, w: Window, t: float) -> bool:
        if note.accent or note.source < 0:
            return False
        density = self.v.density(w.features, t)
        keep = density / self._density_at
        return keep < 1.0 and unit_random(self.v.seed, self.v.rank, note.source,
                                          _SALT_THIN) >= keep

    def _pitch_of(self, note: PhraseNote, key: KeyState) -> int:
        chord = key.chord.tones
        previous = self._previous if self._previous is not None else int(round(self._centre))
        if note.role:
            role = HALF if key.cadence == "half" else CLOSE if key.cadence else note.role
            return cadence_pitch(role, key.root, key.scale_pcs, chord, previous,
                                 self.low, self.high)
        ladder = self._ladder(key)
        idx = theory.ladder_index(ladder, self._centre) + self._fit.degree(note.degree)
        while theory.ladder_pitch(ladder, idx) > self.high:
            idx -= 1  # reflect off the edge, never an octave fold
        while theory.ladder_pitch(ladder, idx) < self.low:
            idx += 1
        pitch = theory.ladder_pitch(ladder, idx)
        if self.chord_ladder:
            return pitch
        long = note.duration >= self._long_steps()
        strong = (note.accent or note.onset % self._strong_steps() == 0) \
            and chord != self._unit_chord
        return settle(pitch, ladder, chord, long=long, strong=strong, low=self.low,
                      high=self.high)

    def _play_final(self, w: Window, k: int, t_step: float, key: KeyState) -> None:
        """The piece's last chord: the tonic (or its third), held to the end of the piece."""
        previous = self._previous if self._previous is not None else int(round(self._centre))
        pitch = cadence_pitch(CLOSE, key.root, key.scale_pcs, key.chord.tones, previous,
                              self.low, self.high)
        end_s = w.harmony.end_s()
        if end_s is not None and end_s > t_step:
            duration_s = end_s - t_step
        else:
            duration_s = max(1, key.chord_bars) * self.beats_per_bar * w.tempo.beat_s
        self.v.send(w, k, 0, t_step, pitch, self.v.velocity(w.features, t_step), duration_s)
        self._previous = pitch
