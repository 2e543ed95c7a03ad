"""A built-in synthesiser: the MIDI events the engine sends, rendered to a stereo WAV preview.

Not a studio synth: a few simple, pleasant instruments in NumPy, so a render can be heard (and
laid under a video) with no synth, no sound card and no MIDI port. ``WavRenderer`` is an Output
that collects MIDI and Tempo events, as ``MidiFileRecorder`` does, and on ``close(end_s=...)``
writes ``path`` atomically: 16-bit PCM, stereo, 44.1 kHz by default. ``render_audio`` is the
same synthesis as a pure function (events in, ``(n, 2)`` float32 out), with no file.

The parts: ``synthscore.py`` turns the events into notes (which instrument each plays, by GM
program, voice name or channel 10; where it sits; what CC 7/10/11/74 and pitch bend do);
``drumkit.py`` makes the drum hits; this module plays the pitched instruments (piano, bell,
organ, bass, pad, saw lead, square lead) and mixes; ``mastering.py`` sets the loudness (each
scene at its own target integrated loudness, ITU-R BS.1770, so a calm piece is quieter than an
energetic one), limits the peaks (true peak <= -1 dBFS) and writes the file.

Every note has an attack and a release after its note-off, so nothing clicks; a note still
held at the end is simply cut by the end of the audio. The audio lasts exactly the requested
duration (rounded to whole samples): release tails past the end are cut, and the last 50 ms
fade out, so the file can be laid under a video of that length. Drum notes are one-shots:
their note-off is ignored.

Determinism: the same events give the same samples, bit for bit: noise comes from generators
seeded by the note, never from global state. Speed: each note is one vectorised computation
(a fixed-point phase into cached wavetables, read in one numba pass; the envelopes in NumPy;
no per-sample Python), added into the mix at its offset; a busy minute renders in a tenth of
a second.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from sonify.events import MIDI_EVENTS, Event, Tempo
from sonify.outputs.base import Output
from sonify.outputs.drumkit import VARIANTS, drum_gain, drum_hit
from sonify.outputs.dsp import wavetable
from sonify.outputs.mastering import (
    FADE_OUT_S,
    LOUDNESS_LUFS,
    PEAK_DBFS,
    WavWriteError,
    check_levels,
    master,
    write_wav,
)
from sonify.outputs.synthscore import (
    BEND_RANGE_SEMITONES,
    DRUM_CHANNEL,
    INSTRUMENTS,
    ScoreNote,
    default_pan,
    instrument_for,
    score,
)

__all__ = ["BEND_RANGE_SEMITONES", "DRUM_CHANNEL", "FADE_OUT_S", "INSTRUMENTS", "LOUDNESS_LUFS",
           "PEAK_DBFS", "SAMPLE_RATE", "WavRenderer", "WavWriteError", "default_pan",
           "instrument_for", "render_audio", "write_wav"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44100
_TABLE_BITS = 16  # wavetables of 65536 samples, read by the top bits of a 32-bit phase
_TABLE_SIZE = 1 << _TABLE_BITS
_RAMP_MAX = 1 << 22  # the shared ramp doubles up to this (95 s at 44.1 kHz), then fits the note


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
    """``n`` samples of ``table`` at ``freq``: a 32-bit fixed-point phase (wrapping modulo
    2**32), its top bits index the table (``dsp.wavetable``, one numba pass). float32, a new
    array."""
    inc = int(round(freq / sample_rate * 4294967296.0)) & 0xFFFFFFFF
    return wavetable(table, inc, phase & 0xFFFFFFFF, n, 32 - _TABLE_BITS)


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


# -- the mix ----------------------------------------------------------------------------------

# rough balance at equal velocity: bass and melody forward, pads and organ behind
_INSTRUMENT_GAIN = {"piano": 0.5, "bell": 0.4, "organ": 0.3, "bass": 0.6, "pad": 0.3,
                    "lead": 0.45, "square": 0.35, "drums": 1.0}


def _note_samples(note: ScoreNote, start_s: float, n_total: int,
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
        hit = drum_hit(note.pitch, seed % VARIANTS, sample_rate)
        y = hit[:max_n] * np.float32(drum_gain(note.pitch))
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
    notes = score(events, start_s + n_total / sample_rate)
    for note in notes:
        placed = _note_samples(note, start_s, n_total, sample_rate)
        if placed is None:
            continue
        onset, y = placed
        end = onset + len(y)
        left[onset:end] += y * np.float32(note.gain_l)
        right[onset:end] += y * np.float32(note.gain_r)
    return left, right, len(notes)


def _render_lr(events: Iterable[Event], duration_s: float, sample_rate: int, start_s: float,
               loudness_lufs: float, peak_dbfs: float) -> tuple[np.ndarray, np.ndarray]:
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
    check_levels(loudness_lufs, peak_dbfs)
    n_total = int(round(duration_s * sample_rate))
    left, right, count = _mix(events, n_total, sample_rate, start_s)
    gain = master(left, right, sample_rate, loudness_lufs, peak_dbfs)
    logger.debug("rendered %d notes into %.3f s of audio (gain %.3g)", count,
                 n_total / sample_rate, gain)
    return left, right


def render_audio(events: Iterable[Event], duration_s: float, sample_rate: int = SAMPLE_RATE,
                 *, start_s: float = 0.0, loudness_lufs: float = LOUDNESS_LUFS,
                 peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    """Render ``events`` (NoteOn/NoteOff, whole Notes, ControlChange, PitchBend, ProgramChange;
    anything else is ignored) to ``(round(duration_s × sample_rate), 2)`` float32 stereo.

    ``start_s`` is the event time heard at the first sample. The result is mastered
    (``mastering.master``): the end fades out, the integrated loudness is ``loudness_lufs``
    (LUFS, ITU-R BS.1770) unless the peaks forbid it, and the true peak is at most
    ``peak_dbfs``.
    """
    left, right = _render_lr(events, duration_s, sample_rate, start_s, loudness_lufs, peak_dbfs)
    return np.stack([left, right], axis=1)


class WavRenderer(Output):
    """Collects MIDI and Tempo events and renders them to a WAV at ``close()`` (or ``save()``).

    ``start_s`` is the engine-clock time of the first sample (default: the first event's time;
    pass it, e.g. 0.0 offline, to line the audio up with a video). The audio lasts
    ``end_s - start_s`` for ``close(end_s=...)``/``save(end_s=...)``, else ``duration_s`` if
    given, else until ``tail_s`` after the last event. Tempo is accepted (the MIDI-file
    recorder's sibling) but not needed: event times are already seconds. ``loudness_lufs`` is
    the piece's integrated loudness (a scene's ``[render] loudness_lufs``), ``peak_dbfs`` its
    true-peak ceiling.
    """

    name = "wav"

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE,
                 start_s: float | None = None, duration_s: float | None = None,
                 tail_s: float = 1.5, loudness_lufs: float = LOUDNESS_LUFS,
                 peak_dbfs: float = PEAK_DBFS) -> None:
        super().__init__()
        if sample_rate < 8000:
            raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
        if duration_s is not None and not duration_s >= 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        if not tail_s >= 0:
            raise ValueError(f"tail_s must be >= 0, got {tail_s}")
        check_levels(loudness_lufs, peak_dbfs)
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.start_s = start_s
        self.duration_s = duration_s
        self.tail_s = tail_s
        self.loudness_lufs = loudness_lufs
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

    def close_at(self, end_s: float) -> None:
        self.close(end_s=end_s)  # the file lasts as long as the run

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
                            start_s=self.start_s or 0.0, loudness_lufs=self.loudness_lufs,
                            peak_dbfs=self.peak_dbfs)

    def _write(self, end_s: float | None) -> Path:
        length_s = self.length_s(end_s)
        if self._written == (len(self.events), length_s) and self.path.exists():
            return self.path
        left, right = _render_lr(self.events, length_s, self.sample_rate,
                                 self.start_s or 0.0, self.loudness_lufs, self.peak_dbfs)
        write_wav(self.path, left, right, self.sample_rate)
        self._written = (len(self.events), length_s)
        logger.info("%s: rendered %d events to %.2f s of audio in %s", self.name,
                    len(self.events), len(left) / self.sample_rate, self.path)
        return self.path
