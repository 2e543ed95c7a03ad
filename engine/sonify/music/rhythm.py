"""Rhythm: Euclidean patterns, step patterns, swing, and deterministic humanising.

A *pattern* is a tuple of step levels: 0 rest, 1 hit, 2 accented hit. Randomness here is a
counter-based hash (``unit_random(seed, *keys)``), not a stateful generator: the same seed and
keys give the same number whatever was drawn before, so a scene plays the same notes however the
runtime slices time into render calls.
"""

from __future__ import annotations

from functools import lru_cache

REST, HIT, ACCENT = 0, 1, 2
STEP_CHARS = {".": REST, "-": REST, "_": REST, "x": HIT, "X": ACCENT}
STEP_SEPARATORS = " |"
STEPS_HELP = "x = hit, X = accented hit, . or - = rest ('|' and spaces are ignored)"


class RhythmError(ValueError):
    """A pattern that cannot be read; the message says what is allowed."""


@lru_cache(maxsize=1024)
def euclid(pulses: int, steps: int, rotate: int = 0) -> tuple[int, ...]:
    """Bjorklund's Euclidean rhythm E(pulses, steps): ``pulses`` hits spread as evenly as possible
    over ``steps``, starting on a hit (E(3,8) = x..x..x., E(5,8) = x.xx.xx.; Toussaint 2005).

    ``rotate`` moves the pattern that many steps later (wrapping round). Pulses are clamped to
    0..steps.
    """
    if steps < 1:
        raise RhythmError(f"a Euclidean rhythm needs at least 1 step, got {steps}")
    pulses = max(0, min(steps, pulses))
    if pulses == 0:
        base: list[int] = [REST] * steps
    elif pulses == steps:
        base = [HIT] * steps
    else:
        # Bjorklund: pair the remainder groups onto the front groups until at most one remains
        front: list[list[int]] = [[HIT] for _ in range(pulses)]
        back: list[list[int]] = [[REST] for _ in range(steps - pulses)]
        while len(back) > 1:
            m = min(len(front), len(back))
            paired = [front[i] + back[i] for i in range(m)]
            back = front[m:] if len(front) > m else back[m:]
            front = paired
        base = [s for group in front + back for s in group]
    r = rotate % steps
    return tuple(base[-r:] + base[:-r]) if r else tuple(base)


@lru_cache(maxsize=256)
def parse_steps(pattern: str) -> tuple[int, ...]:
    """``"x..X.x.."`` -> (1, 0, 0, 2, 0, 1, 0, 0); see ``STEPS_HELP``."""
    levels: list[int] = []
    for i, ch in enumerate(pattern):
        if ch in STEP_SEPARATORS:
            continue
        if ch not in STEP_CHARS:
            raise RhythmError(f"unknown step {ch!r} at position {i + 1} in {pattern!r}: "
                              f"use {STEPS_HELP}")
        levels.append(STEP_CHARS[ch])
    if not levels:
        raise RhythmError(f"step pattern {pattern!r} has no steps: use {STEPS_HELP}")
    return tuple(levels)


def format_steps(levels: tuple[int, ...]) -> str:
    """The inverse of ``parse_steps``: (1, 0, 0, 2) -> ``"x..X"``."""
    return "".join({REST: ".", HIT: "x", ACCENT: "X"}[v] for v in levels)


def swing_steps(step_index: int, swing: float) -> float:
    """How many steps late step ``step_index`` plays: off-beat (odd) steps by ``swing``, a
    fraction of a step (0 straight, 1/3 a triplet feel, 0.5 a dotted feel); on-beats not at all."""
    return swing if step_index % 2 else 0.0


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit_random(seed: int, *keys: int) -> float:
    """A number in [0, 1) that depends only on ``seed`` and ``keys`` (counter-based hashing)."""
    h = _mix(seed & _MASK)
    for k in keys:
        h = _mix(h ^ (k & _MASK))
    return (h >> 11) * (1.0 / (1 << 53))


def humanise(seed: int, key: tuple[int, ...], timing_ms: float,
             velocity: int) -> tuple[float, int]:
    """Deterministic jitter for one note: (time offset in seconds, uniform in +-``timing_ms``;
    velocity offset, a whole number uniform in +-``velocity``). Same seed and key, same jitter."""
    dt_s = 0.0
    dv = 0
    if timing_ms > 0:
        dt_s = (2.0 * unit_random(seed, *key, 0x7101) - 1.0) * timing_ms * 1e-3
    if velocity > 0:
        dv = int(unit_random(seed, *key, 0x7E10) * (2 * velocity + 1)) - velocity
    return dt_s, dv
