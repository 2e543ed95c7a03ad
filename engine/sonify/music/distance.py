"""How far apart two pieces lie: ``distance(a, b)`` over their figures, 0 (alike) .. 1.

Six components, each scaled to 0..1 and weighed equally (the mean is the distance):

- **key**: the main keys' tonics round the circle of fifths, 0..6 steps, / 6;
- **mode**: the main modes' brightness (lydian 6, major 5, mixolydian 4, dorian 3, minor 2,
  phrygian 1, locrian 0; pentatonic scales as their parent), difference / 6;
- **tempo**: |log2(mean tempo a / mean tempo b)|, capped at 1 (twice as fast is as far as it goes);
- **register**: the melodies' mean pitches (else all pitched notes'), difference / 24, capped;
- **density**: notes per second of every voice either piece has, |log2((a + 0.1) / (b + 0.1))|
  / 3 capped at 1, averaged over the voices (a voice only one piece has counts as silent in
  the other);
- **motif**: 0.5 * the rhythms' Jaccard distance (onset sets, eighth-beat grid) + 0.5 * the
  contours' distance (mean |difference| of successive scale-step intervals over the longer
  motif, the missing ones as 0, / 4, capped), the smaller of the motif and its inversion; 1
  when only one piece has a motif, 0 when neither has.

``components`` gives the six for a table; ``distance`` their mean.
"""

from __future__ import annotations

import math

from sonify.music.figures import GRID, Figures, Motif

MODE_BRIGHTNESS = {"lydian": 6.0, "major": 5.0, "major_pentatonic": 5.0, "mixolydian": 4.0,
                   "dorian": 3.0, "melodic_minor": 2.5, "harmonic_minor": 2.0, "minor": 2.0,
                   "minor_pentatonic": 2.0, "blues": 2.0, "phrygian": 1.0, "locrian": 0.0}
COMPONENTS = ("key", "mode", "tempo", "register", "density", "motif")


def _fifths(a: int, b: int) -> int:
    steps = (7 * (b - a)) % 12  # how many fifths up from a to b
    return min(steps, 12 - steps)


def _motif_distance(a: Motif | None, b: Motif | None) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else 1.0
    ra = {round(o * GRID) for o in a.onsets}
    rb = {round(o * GRID) for o in b.onsets}
    rhythm = 1.0 - len(ra & rb) / max(1, len(ra | rb))
    ia = [y - x for x, y in zip(a.degrees, a.degrees[1:], strict=False)]
    ib = [y - x for x, y in zip(b.degrees, b.degrees[1:], strict=False)]
    n = max(len(ia), len(ib))
    if n == 0:
        contour = 0.0
    else:
        ia += [0] * (n - len(ia))
        ib += [0] * (n - len(ib))
        straight = sum(abs(x - y) for x, y in zip(ia, ib, strict=True)) / n
        inverted = sum(abs(x + y) for x, y in zip(ia, ib, strict=True)) / n
        contour = min(1.0, min(straight, inverted) / 4)
    return 0.5 * rhythm + 0.5 * contour


def components(a: Figures, b: Figures) -> dict[str, float]:
    """The six components (see the module docstring), each 0..1."""
    key = _fifths(a.main_key[0], b.main_key[0]) / 6
    mode = abs(MODE_BRIGHTNESS.get(a.main_key[1], 3.0)
               - MODE_BRIGHTNESS.get(b.main_key[1], 3.0)) / 6
    tempo = min(1.0, abs(math.log2(max(a.tempo_mean, 1e-3) / max(b.tempo_mean, 1e-3))))
    if a.mean_pitch is None or b.mean_pitch is None:
        register = 0.0 if a.mean_pitch is None and b.mean_pitch is None else 1.0
    else:
        register = min(1.0, abs(a.mean_pitch - b.mean_pitch) / 24)
    voices = sorted(set(a.density) | set(b.density))
    density = (sum(min(1.0, abs(math.log2((a.density.get(v, 0.0) + 0.1)
                                          / (b.density.get(v, 0.0) + 0.1))) / 3)
                   for v in voices) / len(voices)) if voices else 0.0
    return {"key": key, "mode": mode, "tempo": tempo, "register": register,
            "density": density, "motif": _motif_distance(a.motif, b.motif)}


def distance(a: Figures, b: Figures) -> float:
    """How far apart the pieces lie, 0..1: the mean of ``components``."""
    parts = components(a, b)
    return sum(parts.values()) / len(parts)
