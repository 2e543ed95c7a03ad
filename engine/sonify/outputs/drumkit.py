"""The built-in synthesiser's drum kit: one synthesised hit per GM percussion pitch.

Kick and toms are swept sines, snare and clap noise bursts over a tone, hats, crashes and rides
filtered noise (a ride adds a few metallic partials), the cowbell two square waves, any other
pitch a short bright tick. Each sound is made once per (pitch, variant, sample rate) and cached;
``variant`` picks one of a few noise seeds so repeated hits breathe. Noise comes from generators
seeded by the pitch and variant, never from global state: the same hit is the same samples.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

VARIANTS = 4  # round-robin noise variants per drum sound, so repeated hits breathe

_KICKS = (35, 36)
_SNARES = (38, 40)
TOMS = (41, 43, 45, 47, 48, 50)
_CLOSED_HATS = (42, 44)
_CRASHES = (49, 52, 55, 57)
_RIDES = (51, 53, 59)


def drum_gain(pitch: int) -> float:
    """The kit's balance: a hit's level in the mix, by GM pitch (kick and snare forward)."""
    if pitch in _KICKS:
        return 1.0
    if pitch in _SNARES or pitch == 39:
        return 1.1
    if pitch in TOMS:
        return 0.6
    if pitch in _CLOSED_HATS or pitch == 46:
        return 0.3
    if pitch in _CRASHES or pitch in _RIDES:
        return 0.3
    return 0.3


@lru_cache(maxsize=512)
def drum_hit(pitch: int, variant: int, sample_rate: int) -> np.ndarray:
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
    elif pitch in TOMS:
        f0 = 75.0 * 2 ** (TOMS.index(pitch) / 4)
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
