"""A built-in synthesiser: the MIDI events the engine sends, rendered to a stereo WAV preview.

Not a studio synth: a few simple, pleasant instruments in NumPy, so a render can be heard (and
laid under a video) with no synth, no sound card and no MIDI port. ``WavRenderer`` is an Output
that collects MIDI and Tempo events, as ``MidiFileRecorder`` does, and on ``close(end_s=...)``
writes ``path`` atomically: 16-bit PCM, stereo, 44.1 kHz by default. ``render_audio`` is the
same synthesis as a pure function (events in, ``(n, 2)`` float32 out), with no file.

Instruments (one per note, chosen when it starts):

- the channel's last ProgramChange picks a GM family (0-7 piano -> ``piano``; 8-15 chromatic
  percussion -> ``bell``; 16-23 organ; 24-31 guitar -> ``piano``; 32-39 bass; 40-55 strings and
  ensemble -> ``pad``; 56-79 brass, reed, pipe -> ``lead``; 80-87 lead (80 square, the rest
  saw); 88-103 pad and synth effects -> ``pad``; 104-111 ethnic -> ``piano``; 112-119
  percussive -> ``bell``; 120-127 sound effects -> ``pad``);
- with no ProgramChange, the voice name (``drum``/``kick``/``perc`` -> drums, ``bass``,
  ``pad``/``string``/``drone``, ``arp`` (square) / ``lead``/``stab``/``synth`` (saw),
  ``sparkle``/``bell``/``star``/``vibe``/``chime`` -> bell, ``organ``,
  ``melody``/``piano``/``key``/``pluck`` -> piano);
- else GM's default, program 0 (piano). MIDI channel 10 (index 9) is always the drum kit, by GM
  pitch (kick, snare, clap, hats, toms, crash, ride, other percussion as a short noise).

Controls: CC 7 (volume) and CC 11 (expression) scale as GM's 40·log10 curve, CC 10 (pan) places
the note, CC 74 (brightness) sets how many harmonics the table instruments carry, pitch bend
(+-2 semitones) retunes; each is read when a note starts and held for that note (a preview
does not sweep a sounding note). Without CC 10, bass and the kick, snare and clap sit in the
centre, other voices are spread by a stable hash of their name (of their channel if unnamed),
cymbals and toms across the kit. Velocity sets amplitude, and brightness for piano and bell.
CC 120/123 end every note on the channel. Drum notes are one-shots: their note-off is ignored.

Every note has an attack and a release after its note-off, so nothing clicks; a note still
held at the end is simply cut by the end of the audio. The audio lasts exactly the requested
duration (rounded to whole samples): release tails past the end are cut, and the last 50 ms
fade out, so the file can be laid under a video of that length.

Loudness: the mix is scaled so its gated RMS (0.4 s blocks; blocks more than 10 dB below the
mean of the sounding ones are left out, as LUFS gating does, without K-weighting) sits at
``level_dbfs`` (-18 dBFS), unless that would push a peak above ``peak_dbfs`` (-1 dBFS): then
the peak sits at ``peak_dbfs``. No sample ever reaches full scale; a piece with no notes is
silence of the right length.

Determinism: the same events give the same samples, bit for bit: noise comes from generators
seeded by the note, never from global state. Speed: each note is one vectorised NumPy
computation (fixed-point phase into cached wavetables, no per-sample Python), added into the
mix at its offset; a busy minute renders in a fraction of a second.
"""

from __future__ import annotations

import logging
import math
import os
import wave
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sonify.events import (
    MIDI_EVENTS,
    ControlChange,
    Event,
    Note,
    NoteOff,
    NoteOn,
    PitchBend,
    ProgramChange,
    Tempo,
)
from sonify.outputs.base import Output
from sonify.util.atomicio import atomic_write

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44100
LEVEL_DBFS = -18.0  # target gated RMS of the whole piece
PEAK_DBFS = -1.0  # no sample above this
FADE_OUT_S = 0.05  # the end of the file fades to silence over this
DRUM_CHANNEL = 9  # MIDI channel 10
BEND_RANGE_SEMITONES = 2.0

_TABLE_BITS = 16  # wavetables of 65536 samples, read by the top bits of a 32-bit phase
_TABLE_SIZE = 1 << _TABLE_BITS
_PHASE_SHIFT = np.uint32(32 - _TABLE_BITS)
_GATE_BLOCK_S = 0.4
_GATE_RELATIVE_DB = -10.0
_RAMP_MAX = 1 << 22  # 95 s at 44.1 kHz: longer notes are made in pieces of this
_DRUM_VARIANTS = 4  # round-robin noise variants per drum sound, so repeated hits breathe

INSTRUMENTS = ("piano", "bell", "organ", "bass", "pad", "lead", "square", "drums")


class WavWriteError(OSError):
    """The WAV file could not be written (which file, why, what to do)."""


# -- choosing an instrument and a place --------------------------------------------------------

# GM program // 8 -> instrument
_FAMILIES = ("piano", "bell", "organ", "piano", "bass", "pad", "pad", "lead",
             "lead", "lead", "lead", "pad", "pad", "piano", "bell", "pad")
# voice-name keywords, first match wins (so "bass drum" is a drum and "arp pad" a square lead)
_NAME_HINTS = (
    (("drum", "kick", "snare", "hat", "perc"), "drums"),
    (("bass",), "bass"),
    (("arp",), "square"),
    (("pad", "string", "drone", "choir", "ambient", "wash"), "pad"),
    (("sparkle", "bell", "star", "vibe", "chime", "glock", "twinkle", "music box"), "bell"),
    (("organ",), "organ"),
    (("lead", "stab", "synth", "saw"), "lead"),
    (("melody", "piano", "key", "pluck", "guitar"), "piano"),
)


def instrument_for(channel: int, program: int | None, voice: str) -> str:
    """The instrument a note plays: drums on channel 10, else the GM family of the channel's
    program, else a hint in the voice name, else piano (GM's program 0)."""
    if channel == DRUM_CHANNEL:
        return "drums"
    if program is not None:
        if program in (80,):  # GM Lead 1 (square)
            return "square"
        return _FAMILIES[program // 8]
    name = voice.lower()
    for words, instrument in _NAME_HINTS:
        if any(w in name for w in words):
            return instrument
    return "piano"


def default_pan(instrument: str, voice: str, channel: int) -> float:
    """Where a voice sits without CC 10, -1 (left) .. 1 (right): bass in the centre, the rest
    spread by a stable hash of the voice name (of the channel when unnamed)."""
    if instrument == "bass":
        return 0.0
    key = voice if voice else f"channel {channel}"
    h = zlib.crc32(key.encode("utf-8")) % 1001
    return (h / 500.0 - 1.0) * 0.6


def _drum_pan(pitch: int) -> float:
    if pitch in (35, 36, 37, 38, 39, 40):  # kick, snare, clap: centre
        return 0.0
    if pitch in (42, 44, 46):
        return 0.3
    if pitch in (49, 52, 55, 57):
        return -0.4 if pitch != 57 else 0.45
    if pitch in (51, 53, 59):
        return 0.45
    if pitch in _TOMS:
        return -0.45 + 0.9 * _TOMS.index(pitch) / (len(_TOMS) - 1)
    return (zlib.crc32(f"drum {pitch}".encode()) % 1001 / 500.0 - 1.0) * 0.5


def _cc_pan(value: int) -> float:
    return max(-1.0, (value - 64) / (64.0 if value <= 64 else 63.0))


def _pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan law: both sides at -3 dB in the centre."""
    angle = (min(1.0, max(-1.0, pan)) + 1.0) * math.pi / 4.0
    return math.cos(angle), math.sin(angle)


# -- shared tables ------------------------------------------------------------------------------

class _Ramps:
    """0, 1, 2 … as uint32 (phase) and float32 (time in samples), grown on demand; a longer
    array replaces the shorter one, so a reader never sees it change under it."""

    def __init__(self) -> None:
        self.u32 = np.arange(0, dtype=np.uint32)
        self.f32 = np.arange(0, dtype=np.float32)

    def need(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        u32, f32 = self.u32, self.f32
        if len(u32) < n:
            size = max(n, min(2 * len(u32), _RAMP_MAX), 1 << 16)
            u32 = np.arange(size, dtype=np.uint32)
            f32 = u32.astype(np.float32)
            self.u32, self.f32 = u32, f32
        return u32, f32


_RAMPS = _Ramps()


@lru_cache(maxsize=128)
def _table(amplitudes: tuple[float, ...]) -> np.ndarray:
    """One cycle of sum_k a_k sin(2 pi k x), peak-normalised to 1 (float32, read-only); built by
    an inverse FFT, so a rich table costs a millisecond."""
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    for k, a in enumerate(amplitudes, start=1):
        spectrum[k] = -0.5j * a * _TABLE_SIZE
    table = np.fft.irfft(spectrum, n=_TABLE_SIZE)
    peak = float(np.max(np.abs(table))) or 1.0
    out = (table / peak).astype(np.float32)
    out.setflags(write=False)
    return out


_SINE = (1.0,)


def _harmonics(kind: str, freq: float, brightness: float, sample_rate: int) -> tuple[float, ...]:
    """The partial amplitudes of a table instrument, band-limited below 0.45 × the sample rate
    (so no partial folds back) and brighter with CC 74. Quantised, so tables are reused."""
    b = round(brightness * 4) / 4  # 5 steps of CC 74
    limit = max(1, int(0.45 * sample_rate / max(freq, 1.0)))
    if kind == "pad":  # a saw with its top rolled off: warm
        count = min(limit, 3 + round(8 * b))
        return tuple(round(1.0 / k ** (1.6 - 0.5 * b), 4) for k in range(1, count + 1))
    if kind == "lead":  # saw
        count = min(limit, 5 + round(14 * b))
        return tuple(round(1.0 / k, 4) for k in range(1, count + 1))
    if kind == "square":  # odd harmonics only
        count = min(limit, 5 + round(14 * b))
        return tuple(round(1.0 / k, 4) if k % 2 else 0.0 for k in range(1, count + 1))
    if kind == "bass":  # sine, some 2nd, a little 3rd
        amps: tuple[float, ...] = (1.0, 0.25 + 0.3 * b, 0.05 + 0.15 * b)
        return amps[:min(limit, 3)]
    if kind == "organ":  # drawbars 8', 4', 2 2/3', 2', 1'
        amps = (1.0, 0.6, 0.35 * (0.5 + b), 0.3 * (0.5 + b), 0.0, 0.0, 0.0, 0.15 * b)
        return tuple(round(a, 4) for a in amps[:min(limit, 8)])
    raise ValueError(f"no table for {kind!r}")


def _osc(table: np.ndarray, freq: float, n: int, sample_rate: int, phase: int = 0) -> np.ndarray:
    """``n`` samples of ``table`` at ``freq``: a 32-bit fixed-point phase (wraps by itself in
    uint32), its top bits index the table. float32, a new array. A very long note is made in
    pieces, so the shared ramp never grows past ``_RAMP_MAX``."""
    inc = int(round(freq / sample_rate * 4294967296.0)) & 0xFFFFFFFF
    if n > _RAMP_MAX:
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, _RAMP_MAX):
            stop = min(n, start + _RAMP_MAX)
            out[start:stop] = _osc(table, freq, stop - start, sample_rate,
                                   (phase + start * inc) & 0xFFFFFFFF)
        return out
    ramp, _ = _RAMPS.need(n)
    ph = ramp[:n] * np.uint32(inc)
    if phase:
        ph += np.uint32(phase & 0xFFFFFFFF)
    ph >>= _PHASE_SHIFT
    return table[ph]


def _decay(n: int, tau_s: float, sample_rate: int) -> np.ndarray:
    _, ramp = _RAMPS.need(n)
    return np.exp(ramp[:n] * np.float32(-1.0 / (tau_s * sample_rate)))


def _release_curve(n: int) -> np.ndarray:
    """1 -> 0 over ``n`` samples, (1-x)^2: quick at first, landing softly (no click)."""
    x = 1.0 - np.arange(n, dtype=np.float32) / np.float32(max(n, 1))
    return x * x


def _apply_adsr(y: np.ndarray, held_n: int, attack_n: int, decay_n: int, sustain: float,
                release_n: int) -> None:
    """Shape ``y`` in place (its length may be cut short): linear attack to 1, linear decay to
    ``sustain``, hold until ``held_n``, then release from wherever the envelope got to."""
    n = len(y)
    attack_n, decay_n = max(1, attack_n), max(1, decay_n)

    def level(i: int) -> float:
        if i < attack_n:
            return i / attack_n
        if i < attack_n + decay_n:
            return 1.0 + (sustain - 1.0) * (i - attack_n) / decay_n
        return sustain

    a_end = min(attack_n, held_n, n)
    y[:a_end] *= np.arange(a_end, dtype=np.float32) / np.float32(attack_n)
    d_end = min(attack_n + decay_n, held_n, n)
    if d_end > attack_n:
        x = np.arange(d_end - attack_n, dtype=np.float32) / np.float32(decay_n)
        y[attack_n:d_end] *= 1.0 + np.float32(sustain - 1.0) * x
    s_end = min(held_n, n)
    if s_end > attack_n + decay_n and sustain != 1.0:
        y[attack_n + decay_n:s_end] *= np.float32(sustain)
    if n > held_n:
        r = _release_curve(release_n)[:n - held_n]
        y[held_n:] *= np.float32(level(held_n)) * r


def _gate(y: np.ndarray, held_n: int, attack_n: int, release_n: int) -> None:
    """A short attack and a release after the note-off, in place, for decaying instruments."""
    n = len(y)
    a = min(attack_n, n)
    y[:a] *= np.arange(a, dtype=np.float32) / np.float32(max(attack_n, 1))
    if n > held_n:
        y[held_n:] *= _release_curve(release_n)[:n - held_n]


# -- instruments -------------------------------------------------------------------------------
# Each renders one note as mono float32 of at most ``max_n`` samples, at a nominal level of
# about 1 before the mix's gains; ``held_n`` is how long the key is down (samples).

@dataclass(frozen=True)
class _NoteSpec:
    freq: float
    velocity: float  # 0..1
    brightness: float  # 0..1 (CC 74)
    held_n: int
    max_n: int  # samples left until the end of the audio
    seed: int
    sample_rate: int


def _play_pad(s: _NoteSpec) -> np.ndarray:
    sr = s.sample_rate
    release_n = int(1.6 * sr)
    n = min(s.max_n, s.held_n + release_n)
    table = _table(_harmonics("pad", s.freq * 1.005, s.brightness, sr))
    rng = np.random.default_rng(s.seed)
    phases = rng.integers(0, 1 << 32, size=3, dtype=np.uint64)
    # three saws a few cents apart beat slowly against each other: a chorus
    y = _osc(table, s.freq, n, sr, int(phases[0]))
    y += _osc(table, s.freq * 1.0046, n, sr, int(phases[1])) * np.float32(0.8)
    y += _osc(table, s.freq * 0.9954, n, sr, int(phases[2])) * np.float32(0.8)
    y *= np.float32(1 / 2.6)
    _apply_adsr(y, s.held_n, int(0.6 * sr), int(0.8 * sr), 0.8, release_n)
    return y


_PIANO_PARTIALS: tuple[float, ...] = (1.0, 0.5, 0.28, 0.16, 0.09, 0.05)
_BELL_RATIOS: tuple[float, ...] = (1.0, 2.005, 3.012, 4.17)
_BELL_PARTIALS: tuple[float, ...] = (1.0, 0.3, 0.16, 0.1)


def _play_struck(s: _NoteSpec, bell: bool) -> np.ndarray:
    """Piano-like or bell-like: a few sine partials with slight inharmonicity, each decaying
    exponentially (the high ones faster); velocity brightens them."""
    sr = s.sample_rate
    sine = _table(_SINE)
    if bell:
        tau = min(2.5, max(0.5, 1.6 * (523.0 / s.freq) ** 0.3))
        ratios, amps = _BELL_RATIOS, _BELL_PARTIALS
    else:
        tau = min(2.5, max(0.25, 1.0 * (262.0 / s.freq) ** 0.5))
        inharm = 0.0004
        amps = _PIANO_PARTIALS
        ratios = tuple(k * math.sqrt(1.0 + inharm * k * k) for k in range(1, len(amps) + 1))
    release_n = int(0.25 * sr)
    natural_n = int(tau * math.log(1000.0) * sr)  # to -60 dB
    n = min(s.max_n, s.held_n + release_n, natural_n)
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    y = np.zeros(n, dtype=np.float32)
    bright = 0.35 + 0.65 * s.velocity  # a soft touch is darker
    for k, (ratio, amp) in enumerate(zip(ratios, amps, strict=True)):
        f = s.freq * ratio
        if f > 0.45 * sr:
            break
        a = amp * (bright ** k)
        part = _osc(sine, f, n, sr)
        part *= _decay(n, tau / (1.0 + 0.7 * k), sr)
        part *= np.float32(a)
        y += part
    _gate(y, s.held_n, int(0.002 * sr), release_n)
    return y


def _play_table(s: _NoteSpec, kind: str) -> np.ndarray:
    sr = s.sample_rate
    if kind == "bass":
        attack, decay, sustain, release = 0.006, 0.3, 0.75, 0.08
    elif kind == "organ":
        attack, decay, sustain, release = 0.01, 0.05, 0.95, 0.06
    else:  # lead / square
        attack, decay, sustain, release = 0.005, 0.25, 0.6, 0.12
    release_n = int(release * sr)
    n = min(s.max_n, s.held_n + release_n)
    table = _table(_harmonics(kind, s.freq * 1.003, s.brightness, sr))
    y = _osc(table, s.freq, n, sr)
    if kind in ("lead", "square"):  # a second, slightly sharp oscillator: less static
        y += _osc(table, s.freq * 1.003, n, sr, s.seed) * np.float32(0.5)
        y *= np.float32(1 / 1.5)
    _apply_adsr(y, s.held_n, int(attack * sr), int(decay * sr), sustain, release_n)
    return y


# -- drums -------------------------------------------------------------------------------------

_KICKS = (35, 36)
_SNARES = (38, 40)
_TOMS = (41, 43, 45, 47, 48, 50)
_CLOSED_HATS = (42, 44)
_CRASHES = (49, 52, 55, 57)
_RIDES = (51, 53, 59)


def _drum_gain(pitch: int) -> float:
    if pitch in _KICKS:
        return 1.0
    if pitch in _SNARES or pitch == 39:
        return 1.1
    if pitch in _TOMS:
        return 0.6
    if pitch in _CLOSED_HATS or pitch == 46:
        return 0.3
    if pitch in _CRASHES or pitch in _RIDES:
        return 0.3
    return 0.3


@lru_cache(maxsize=512)
def _drum(pitch: int, variant: int, sample_rate: int) -> np.ndarray:
    """One drum hit at full velocity (mono float32, read-only), by GM pitch; cached per
    (pitch, variant): the synthesis runs once per sound, a hit only scales and adds it."""
    sr = sample_rate
    rng = np.random.default_rng([pitch, variant, sr])

    def t(dur_s: float) -> np.ndarray:
        return np.arange(int(dur_s * sr), dtype=np.float64) / sr

    def noise(m: int) -> np.ndarray:
        return rng.standard_normal(m)

    def bright(m: int) -> np.ndarray:  # white noise, differenced twice: hiss above ~5 kHz
        x = noise(m + 2)
        return np.diff(x, n=2) * 0.5

    def swept(f_end: float, f_start: float, sweep_s: float, dur_s: float,
              tau_s: float) -> np.ndarray:
        tt = t(dur_s)
        f = f_end + (f_start - f_end) * np.exp(-tt / sweep_s)
        phase = 2 * np.pi * np.cumsum(f) / sr
        return np.sin(phase) * np.exp(-tt / tau_s)

    if pitch in _KICKS:
        y = swept(48.0 if pitch == 36 else 42.0, 160.0, 0.035, 1.0, 0.22)
        click = min(len(y), int(0.003 * sr))
        y[:click] += noise(click) * np.linspace(0.3, 0.0, click)
    elif pitch in _SNARES or pitch == 37:
        dur = 0.1 if pitch == 37 else 0.45
        tt = t(dur)
        tone = np.sin(2 * np.pi * 185.0 * tt) * np.exp(-tt / 0.05)
        hiss = (bright(len(tt)) * 0.7 + noise(len(tt)) * 0.3) * np.exp(-tt / 0.09)
        y = 0.6 * tone + 0.8 * hiss
    elif pitch == 39:  # clap: a few quick bursts, then a tail
        tt = t(0.55)
        env = np.exp(-tt / 0.11)
        for start in (0.0, 0.011, 0.023):
            env += np.where(tt >= start, np.exp(-(tt - start) / 0.006), 0.0) * 0.8
        y = (bright(len(tt)) * 0.5 + noise(len(tt)) * 0.5) * env * 0.6
    elif pitch in _TOMS:
        f0 = 75.0 * 2 ** (_TOMS.index(pitch) / 4)
        y = swept(f0, f0 * 1.6, 0.05, 1.1, 0.22)
    elif pitch in _CLOSED_HATS or pitch == 46:
        tau = 0.25 if pitch == 46 else (0.03 if pitch == 42 else 0.02)
        tt = t(tau * 5)
        y = bright(len(tt)) * np.exp(-tt / tau)
    elif pitch in _CRASHES:
        tt = t(2.5)
        y = (bright(len(tt)) * 0.8 + noise(len(tt)) * 0.2) * np.exp(-tt / 0.6)
    elif pitch in _RIDES:
        tt = t(1.8)
        ping = sum(np.sin(2 * np.pi * f * tt) for f in (3120.0, 4710.0, 6180.0)) / 3
        y = (bright(len(tt)) * 0.5 + ping * 0.3) * np.exp(-tt / 0.45)
    elif pitch == 56:  # cowbell
        tt = t(0.3)
        y = (np.sign(np.sin(2 * np.pi * 545 * tt)) + np.sign(np.sin(2 * np.pi * 815 * tt)))
        y = y * 0.3 * np.exp(-tt / 0.07)
    else:  # any other percussion: a short, bright tick
        tt = t(0.15)
        y = bright(len(tt)) * np.exp(-tt / 0.035)
    attack = min(len(y), int(0.0005 * sr))
    y[:attack] *= np.linspace(0.0, 1.0, attack, endpoint=False)
    tail = len(y) // 5  # every sound ends at about -40 dB; fade that last bit, no click
    y[len(y) - tail:] *= np.linspace(1.0, 0.0, tail)
    peak = float(np.max(np.abs(y))) or 1.0
    out = (y / peak).astype(np.float32)
    out.setflags(write=False)
    return out


# -- the score ---------------------------------------------------------------------------------

@dataclass
class _Channel:
    program: int | None = None
    volume: int = 100  # CC 7, GM default
    expression: int = 127  # CC 11
    pan: int | None = None  # CC 10, None until sent
    brightness: int = 64  # CC 74
    bend: int = 0


@dataclass
class _ScoreNote:
    on_s: float
    channel: int
    pitch: int
    velocity: int
    voice: str
    note_id: int
    instrument: str
    gain_l: float
    gain_r: float
    freq: float
    brightness: float
    off_s: float | None = None


def _score(events: Iterable[Event], end_s: float) -> list[_ScoreNote]:
    """Notes with what they start with (instrument, gains, pitch), from events in time order
    (stable: at one time, the order they were sent); notes still held end at ``end_s``."""
    channels = [_Channel() for _ in range(16)]
    held: dict[tuple[int, int], list[_ScoreNote]] = {}
    notes: list[_ScoreNote] = []
    flat: list[Event] = []
    for ev in events:
        if isinstance(ev, Note):  # a whole note, as the scene makes it: on and off
            flat.append(NoteOn(ev.t, ev.channel, ev.pitch, ev.velocity, ev.voice))
            flat.append(NoteOff(ev.t + ev.duration_s, ev.channel, ev.pitch, ev.voice))
        else:
            flat.append(ev)
    for ev in sorted(flat, key=lambda e: e.t):
        if not math.isfinite(ev.t):
            continue
        if isinstance(ev, NoteOn):
            ch = channels[ev.channel]
            instrument = instrument_for(ev.channel, ch.program, ev.voice)
            if ch.pan is not None:
                pan = _cc_pan(ch.pan)
            elif instrument == "drums":
                pan = _drum_pan(ev.pitch)
            else:
                pan = default_pan(instrument, ev.voice, ev.channel)
            # GM: 40·log10(value/127) dB for CC 7 and CC 11; velocity a little gentler
            level = ((ch.volume / 127) ** 2 * (ch.expression / 127) ** 2
                     * (ev.velocity / 127) ** 1.5)
            gl, gr = _pan_gains(pan)
            semitones = ev.pitch - 69 + BEND_RANGE_SEMITONES * ch.bend / 8192
            note = _ScoreNote(ev.t, ev.channel, ev.pitch, ev.velocity, ev.voice, ev.note_id,
                          instrument, gl * level, gr * level, 440.0 * 2 ** (semitones / 12),
                          ch.brightness / 127)
            notes.append(note)
            held.setdefault((ev.channel, ev.pitch), []).append(note)
        elif isinstance(ev, NoteOff):
            stack = held.get((ev.channel, ev.pitch))
            if not stack:
                continue
            index = 0
            if ev.note_id:
                index = next((i for i, n in enumerate(stack) if n.note_id == ev.note_id), 0)
            stack.pop(index).off_s = ev.t
        elif isinstance(ev, ControlChange):
            ch = channels[ev.channel]
            if ev.control == 7:
                ch.volume = ev.value
            elif ev.control == 11:
                ch.expression = ev.value
            elif ev.control == 10:
                ch.pan = ev.value
            elif ev.control == 74:
                ch.brightness = ev.value
            elif ev.control == 121:  # reset all controllers (GM keeps volume and pan)
                ch.expression, ch.bend = 127, 0
            elif ev.control in (120, 123):  # all sound off, all notes off
                for (c, _), stack in held.items():
                    if c == ev.channel:
                        for n in stack:
                            n.off_s = ev.t
                        stack.clear()
        elif isinstance(ev, PitchBend):
            channels[ev.channel].bend = ev.value
        elif isinstance(ev, ProgramChange):
            channels[ev.channel].program = ev.program
    for stack in held.values():
        for n in stack:
            n.off_s = end_s
    return notes


# rough balance at equal velocity: bass and melody forward, pads and organ behind
_INSTRUMENT_GAIN = {"piano": 0.5, "bell": 0.4, "organ": 0.3, "bass": 0.6, "pad": 0.3,
                    "lead": 0.45, "square": 0.35, "drums": 1.0}


def _note_samples(note: _ScoreNote, start_s: float, n_total: int,
                  sample_rate: int) -> tuple[int, np.ndarray] | None:
    """(offset in samples, mono samples) of one note, or None when nothing of it is heard."""
    onset = int(round((note.on_s - start_s) * sample_rate))
    if onset >= n_total:
        return None
    off_s = note.off_s if note.off_s is not None else note.on_s
    held_n = max(0, int(round((off_s - note.on_s) * sample_rate)))
    max_n = n_total - onset
    seed = (note.note_id * 1_000_003 + onset * 131 + note.pitch * 17 + note.channel) % (1 << 32)
    if note.instrument == "drums":
        hit = _drum(note.pitch, seed % _DRUM_VARIANTS, sample_rate)
        y = hit[:max_n] * np.float32(_drum_gain(note.pitch))
    else:
        spec = _NoteSpec(note.freq, note.velocity / 127, note.brightness, held_n, max_n, seed,
                         sample_rate)
        if note.instrument == "pad":
            y = _play_pad(spec)
        elif note.instrument in ("piano", "bell"):
            y = _play_struck(spec, bell=note.instrument == "bell")
        else:
            y = _play_table(spec, note.instrument)
        y *= np.float32(_INSTRUMENT_GAIN[note.instrument])
    if onset < 0:  # started before the audio: keep what is heard, faded in so it does not click
        if len(y) <= -onset:
            return None
        y = y[-onset:]
        fade = min(len(y), int(0.005 * sample_rate))
        y[:fade] *= np.arange(fade, dtype=np.float32) / np.float32(max(fade, 1))
        onset = 0
    return onset, y


def _mix(events: Iterable[Event], n_total: int, sample_rate: int,
         start_s: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Left and right (float32) of every note, summed unnormalised; and the number of notes."""
    left = np.zeros(n_total, dtype=np.float32)
    right = np.zeros(n_total, dtype=np.float32)
    notes = _score(events, start_s + n_total / sample_rate)
    for note in notes:
        placed = _note_samples(note, start_s, n_total, sample_rate)
        if placed is None:
            continue
        onset, y = placed
        end = onset + len(y)
        left[onset:end] += y * np.float32(note.gain_l)
        right[onset:end] += y * np.float32(note.gain_r)
    return left, right, len(notes)


def _gated_rms(left: np.ndarray, right: np.ndarray, sample_rate: int) -> float:
    """RMS over the sounding part: 0.4 s blocks, silent ones and those 10 dB below the mean of
    the sounding ones left out (LUFS-style gating, without the K-weighting)."""
    n = len(left)
    if n == 0:
        return 0.0
    block = max(1, int(_GATE_BLOCK_S * sample_rate))
    count = -(-n // block)
    pad = count * block - n
    sq = left * left
    sq += right * right
    if pad:
        sq = np.concatenate([sq, np.zeros(pad, dtype=np.float32)])
    sizes = np.full(count, block, dtype=np.float64)
    sizes[-1] = block - pad
    power = sq.reshape(count, block).sum(axis=1, dtype=np.float64) / (2 * sizes)
    peak_power = float(power.max(initial=0.0))
    if peak_power <= 0.0:
        return 0.0
    sounding = power[power > peak_power * 1e-8]  # -80 dB below the loudest block
    gate = sounding.mean() * 10 ** (_GATE_RELATIVE_DB / 10)
    kept = sounding[sounding >= gate]
    return math.sqrt(float(kept.mean()))


def _master(left: np.ndarray, right: np.ndarray, sample_rate: int, level_dbfs: float,
            peak_dbfs: float) -> float:
    """Fade the end and scale in place to the loudness rule; returns the gain applied."""
    n = len(left)
    fade = min(n, int(round(FADE_OUT_S * sample_rate)))
    if fade:
        ramp = np.linspace(1.0, 0.0, fade + 1, dtype=np.float32)[1:]
        left[n - fade:] *= ramp
        right[n - fade:] *= ramp
    peak = max(float(np.max(np.abs(left), initial=0.0)),
               float(np.max(np.abs(right), initial=0.0)))
    rms = _gated_rms(left, right, sample_rate)
    if not (peak > 1e-9 and rms > 0.0 and math.isfinite(peak)):
        left[:] = 0.0
        right[:] = 0.0
        return 0.0
    gain = min(10 ** (level_dbfs / 20) / rms, 10 ** (peak_dbfs / 20) / peak)
    left *= np.float32(gain)
    right *= np.float32(gain)
    return gain


def _check_levels(level_dbfs: float, peak_dbfs: float) -> None:
    if not peak_dbfs < 0.0:
        raise ValueError(f"peak_dbfs must be below 0 dBFS (full scale), got {peak_dbfs}")
    if not level_dbfs <= peak_dbfs:
        raise ValueError(f"level_dbfs ({level_dbfs}) must not be above peak_dbfs ({peak_dbfs})")


def _render_lr(events: Iterable[Event], duration_s: float, sample_rate: int, start_s: float,
               level_dbfs: float, peak_dbfs: float) -> tuple[np.ndarray, np.ndarray]:
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
    _check_levels(level_dbfs, peak_dbfs)
    n_total = int(round(duration_s * sample_rate))
    left, right, count = _mix(events, n_total, sample_rate, start_s)
    gain = _master(left, right, sample_rate, level_dbfs, peak_dbfs)
    logger.debug("rendered %d notes into %.3f s of audio (gain %.3g)", count,
                 n_total / sample_rate, gain)
    return left, right


def render_audio(events: Iterable[Event], duration_s: float, sample_rate: int = SAMPLE_RATE,
                 *, start_s: float = 0.0, level_dbfs: float = LEVEL_DBFS,
                 peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    """Render ``events`` (NoteOn/NoteOff, whole Notes, ControlChange, PitchBend, ProgramChange;
    anything else is ignored) to ``(round(duration_s × sample_rate), 2)`` float32 stereo.

    ``start_s`` is the event time heard at the first sample. The result is mastered: the end
    fades out, the loudness rule applies, every sample is within ±``peak_dbfs``.
    """
    left, right = _render_lr(events, duration_s, sample_rate, start_s, level_dbfs, peak_dbfs)
    return np.stack([left, right], axis=1)


def _pcm16(left: np.ndarray, right: np.ndarray) -> bytes:
    frames = np.empty((len(left), 2), dtype="<i2")
    np.rint(np.clip(left, -1.0, 1.0) * 32767.0, out=frames[:, 0], casting="unsafe")
    np.rint(np.clip(right, -1.0, 1.0) * 32767.0, out=frames[:, 1], casting="unsafe")
    return frames.tobytes()


def write_wav(path: str | os.PathLike[str], left: np.ndarray, right: np.ndarray,
              sample_rate: int = SAMPLE_RATE) -> Path:
    """Write 16-bit stereo PCM atomically (``atomicio``: a temp file beside ``path``, fsync,
    rename): ``path`` is either the old file or the whole new one, never half written. Inside
    ``atomicio.staged()`` the rename waits for the batch's commit."""
    target = Path(path)

    def write(f: BinaryIO) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.setnframes(len(left))
            chunk = 1 << 16  # convert a piece at a time: no second copy of the whole piece
            for i in range(0, len(left), chunk):
                w.writeframesraw(_pcm16(left[i:i + chunk], right[i:i + chunk]))

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, write)
    except OSError as exc:
        raise WavWriteError(f"cannot write the WAV file {target}: {exc.strerror or exc} "
                            f"(choose a writable directory with free space)") from exc
    return target


class WavRenderer(Output):
    """Collects MIDI and Tempo events and renders them to a WAV at ``close()`` (or ``save()``).

    ``start_s`` is the engine-clock time of the first sample (default: the first event's time;
    pass it, e.g. 0.0 offline, to line the audio up with a video). The audio lasts
    ``end_s - start_s`` for ``close(end_s=...)``/``save(end_s=...)``, else ``duration_s`` if
    given, else until ``tail_s`` after the last event. Tempo is accepted (the MIDI-file
    recorder's sibling) but not needed: event times are already seconds.
    """

    name = "wav"

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE,
                 start_s: float | None = None, duration_s: float | None = None,
                 tail_s: float = 1.5, level_dbfs: float = LEVEL_DBFS,
                 peak_dbfs: float = PEAK_DBFS) -> None:
        super().__init__()
        if sample_rate < 8000:
            raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
        if duration_s is not None and not duration_s >= 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        if not tail_s >= 0:
            raise ValueError(f"tail_s must be >= 0, got {tail_s}")
        _check_levels(level_dbfs, peak_dbfs)
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.start_s = start_s
        self.duration_s = duration_s
        self.tail_s = tail_s
        self.level_dbfs = level_dbfs
        self.peak_dbfs = peak_dbfs
        self.events: list[Event] = []
        self._end_s: float | None = None
        self._written: tuple[int, float] | None = None  # (events, length) of the file on disk
        self.name = f"wav:{self.path.name}"

    def wants(self, event: Event) -> bool:
        return isinstance(event, (*MIDI_EVENTS, Tempo))

    def _send(self, event: Event) -> None:
        if self.start_s is None:
            self.start_s = event.t
        self.events.append(event)

    def close(self, end_s: float | None = None) -> None:
        """Render and write the file (ending at ``end_s``, engine clock, if given), then stop
        collecting. Like every output it does not raise: a failure is logged; call ``save()``
        first to get the error."""
        if end_s is not None:
            self._end_s = end_s
        super().close()

    def _close(self) -> None:
        self._write(self._end_s)

    def save(self, end_s: float | None = None) -> Path:
        """Render and write what was collected so far (atomically); raises ``WavWriteError``
        when the file cannot be written. Collecting goes on; a ``close()`` with nothing new
        does not render again."""
        with self._lock:
            return self._write(end_s)

    def length_s(self, end_s: float | None = None) -> float:
        """How long the audio will be for ``end_s`` (see the class doc)."""
        origin = self.start_s if self.start_s is not None else 0.0
        if end_s is not None:
            return max(0.0, end_s - origin)
        if self.duration_s is not None:
            return self.duration_s
        last = max((e.t for e in self.events), default=origin)
        return max(0.0, last - origin) + self.tail_s

    def render(self, end_s: float | None = None) -> np.ndarray:
        """The audio for what was collected, ``(n, 2)`` float32 (no I/O)."""
        return render_audio(self.events, self.length_s(end_s), self.sample_rate,
                            start_s=self.start_s or 0.0, level_dbfs=self.level_dbfs,
                            peak_dbfs=self.peak_dbfs)

    def _write(self, end_s: float | None) -> Path:
        length_s = self.length_s(end_s)
        if self._written == (len(self.events), length_s) and self.path.exists():
            return self.path
        left, right = _render_lr(self.events, length_s, self.sample_rate,
                                 self.start_s or 0.0, self.level_dbfs, self.peak_dbfs)
        write_wav(self.path, left, right, self.sample_rate)
        self._written = (len(self.events), length_s)
        logger.info("%s: rendered %d events to %.2f s of audio in %s", self.name,
                    len(self.events), len(left) / self.sample_rate, self.path)
        return self.path
