"""The motif: a short rhythm and contour read off the picture, the seed of every melody.

A *motif* is 1-2 bars of a voice's step grid: where notes start (``onsets``, in steps from the
motif's start), how long each is held (``durations``, in steps, up to the next onset or the
motif's end), which are accented, and a *contour* (``degrees``: scale steps above or below the
first note, which is 0). It is derived from what the analyzer already holds, as pure functions
over NumPy arrays:

1. **The eye's path.** A saliency map on the coarse luma ``grid`` (8 x 8): a cell's local
   contrast (its distance from the mean of its neighbours) plus its distance from the picture's
   mean luma. The path starts on the most salient cell of the left half (as the travelling
   window's tour starts at the left-most region, ``capture/travel.py``) and walks, one cell per
   step of the motif, to the most salient unvisited neighbour (8-neighbourhood; ties go to the
   first in raster order); when every neighbour has been visited it jumps to the most salient
   unvisited cell. This is the order in which an eye that follows contrast would see the picture.
2. **The rhythm from edges along the path.** The luma jump between consecutive cells of the path
   is the edge the eye crosses at that step. The strongest edges become onsets (step 0 always
   starts a note); a smooth stretch with no edge holds the note through it. How many onsets: the
   voice's own rhythm (its pattern's hits over the motif, scaled by its density) sets the count,
   so a scene keeps its rhythmic feel; the pattern's hits also win ties, and beats 1 and 3 are
   favoured slightly so the motif sits in the metre. Onsets on a strong beat (beat 1 or the
   half-bar) and the strongest edge are accented.
3. **The contour from the luma profile.** Brighter cells sound higher: the luma at each onset,
   relative to the first, is scaled to the motif's span (``span`` scale steps from lowest to
   highest note). The profile is standardised by the grid's own spread, so a gray brick wall's
   faint structure still shapes a contour. A picture with no structure at all (a colour field)
   falls back on a smooth curve whose phase is the dominant hue and whose number of turns grows
   with brightness, blended in as the grid's spread falls (``tint``), so two colour fields still
   get different motifs.
4. **Craft.** No leap larger than a fifth (4 scale steps, or the voice's ``max_leap``); after a
   leap of a third or more, the next note steps back the other way (gap-fill, Meyer/Narmour).

The same arrays always give the same motif (no randomness at all); ``marker_text`` writes it as
the ``motif`` marker's text (onset beats and degrees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_LEAP = 4  # scale steps: a fifth in a seven-note scale
GAP_FILL_FROM = 2  # a leap of this many scale steps or more (a third or more) is filled back
FLAT_SPREAD = 0.01  # a grid whose luma spread is below this reads as a colour field (no shape)
_PATTERN_BONUS = 0.35  # a hit of the voice's rhythm pattern, in units of a typical edge
_METRE_BONUS = 0.15  # beat 1 and the half-bar


@dataclass(frozen=True, slots=True)
class Motif:
    """A rhythm and a contour on a step grid of ``length`` steps (see the module docstring)."""

    length: int
    onsets: tuple[int, ...]
    durations: tuple[int, ...]
    degrees: tuple[int, ...]
    accents: tuple[bool, ...]

    def __post_init__(self) -> None:
        n = len(self.onsets)
        if n == 0 or not (len(self.durations) == len(self.degrees) == len(self.accents) == n):
            raise ValueError(f"a motif needs matching onsets, durations, degrees and accents "
                             f"(got {n}, {len(self.durations)}, {len(self.degrees)}, "
                             f"{len(self.accents)})")
        if list(self.onsets) != sorted(set(self.onsets)) or self.onsets[0] < 0 \
                or self.onsets[-1] >= self.length:
            raise ValueError(f"motif onsets {self.onsets} must rise strictly within "
                             f"0..{self.length - 1}")
        if any(d < 1 for d in self.durations):
            raise ValueError(f"motif durations {self.durations} must be at least one step")

    @property
    def notes(self) -> int:
        return len(self.onsets)


def saliency(grid: np.ndarray) -> np.ndarray:
    """Per cell: distance from the mean of its 8 neighbours plus distance from the grid mean."""
    g = np.asarray(grid, dtype=np.float64)
    padded = np.pad(g, 1, mode="edge")
    rows, cols = g.shape
    total = np.zeros_like(g)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                total += padded[1 + di:1 + di + rows, 1 + dj:1 + dj + cols]
    return np.abs(g - total / 8.0) + np.abs(g - g.mean())


def eye_path(grid: np.ndarray, n: int) -> list[tuple[int, int]]:
    """``n`` cells of the grid in the order a contrast-following eye visits them (see 1. in the
    module docstring); cells repeat only when ``n`` exceeds the grid's cell count."""
    sal = saliency(grid)
    rows, cols = sal.shape
    left = sal[:, : max(1, (cols + 1) // 2)]
    start = np.unravel_index(int(np.argmax(left)), left.shape)
    cur = (int(start[0]), int(start[1]))
    path = [cur]
    visited = {cur}
    while len(path) < n:
        if len(visited) == rows * cols:
            visited = set()
        best: tuple[int, int] | None = None
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                i, j = cur[0] + di, cur[1] + dj
                if (di or dj) and 0 <= i < rows and 0 <= j < cols and (i, j) not in visited:
                    if best is None or sal[i, j] > sal[best] or (
                            sal[i, j] == sal[best] and (i, j) < best):
                        best = (i, j)
        if best is None:
            free = [(sal[i, j], -i, -j) for i in range(rows) for j in range(cols)
                    if (i, j) not in visited]
            _, mi, mj = max(free)
            best = (-mi, -mj)
        cur = best
        path.append(cur)
        visited.add(cur)
    return path


def _tint_curve(n: int, tint: tuple[float, float]) -> np.ndarray:
    """A colour field's contour: a smooth curve, phase from the hue, turns from brightness."""
    hue, brightness = tint
    turns = 0.5 + 0.5 * round(3 * min(1.0, max(0.0, brightness)))
    x = np.arange(n) / max(1, n)
    return np.sin(2 * math.pi * (turns * x + hue))


def _onsets(edges: np.ndarray, pattern: tuple[int, ...], count: int,
            steps_per_bar: int) -> list[int]:
    n = len(edges)
    scale = float(np.mean(edges)) if np.any(edges > 0) else 1.0
    score = edges / scale
    half = max(1, steps_per_bar // 2)
    for i in range(n):
        if pattern and pattern[i % len(pattern)]:
            score[i] += _PATTERN_BONUS
        if i % half == 0:
            score[i] += _METRE_BONUS
    score[0] = math.inf  # the motif starts with a note
    order = sorted(range(n), key=lambda i: (-score[i], i))
    return sorted(order[:count])


def _gap_fill(degrees: list[int], max_leap: int = MAX_LEAP) -> list[int]:
    out = [degrees[0]]
    for j in range(1, len(degrees)):
        step = degrees[j] - out[-1]
        step = max(-max_leap, min(max_leap, step))
        if j >= 2:
            prev = out[-1] - out[-2]
            if abs(prev) >= GAP_FILL_FROM and (step == 0 or (step > 0) == (prev > 0)
                                               or abs(step) > 1):
                step = -1 if prev > 0 else 1
        out.append(out[-1] + step)
    base = out[0]
    return [d - base for d in out]


def derive_motif(grid: np.ndarray, *, length: int, steps_per_bar: int, notes: int,
                 span: int = 5, pattern: tuple[int, ...] = (),
                 tint: tuple[float, float] = (0.0, 0.5), max_leap: int = MAX_LEAP) -> Motif:
    """The motif of a picture (see the module docstring).

    ``grid``: the coarse luma grid (rows x cols, 0..1); ``length``: the motif's steps (e.g. 16
    for two bars of eighth notes); ``steps_per_bar`` places the strong beats; ``notes``: how many
    onsets (clipped to 1..length); ``span``: scale steps from the lowest note to the highest;
    ``pattern``: the voice's rhythm levels (0 rest, 1 hit, 2 accent), looping; ``tint``: (hue
    0..1, brightness 0..1) for a picture without structure; ``max_leap``: the largest step
    between two notes, in scale steps.
    """
    if length < 1 or steps_per_bar < 1:
        raise ValueError(f"motif length ({length}) and steps per bar ({steps_per_bar}) must be "
                         "at least 1")
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"the luma grid must be a non-empty 2-D array, got shape {g.shape}")
    path = eye_path(g, length)
    profile = np.array([g[c] for c in path])
    spread = float(g.std())
    weight = min(1.0, spread / FLAT_SPREAD)
    shape = (profile - g.mean()) / max(spread, 1e-9) if weight > 0 else np.zeros(length)
    contour = weight * shape + (1.0 - weight) * _tint_curve(length, tint)
    edges = np.abs(np.diff(shape, prepend=shape[0])) * weight
    count = max(1, min(length, notes))
    onsets = _onsets(edges, pattern, count, steps_per_bar)
    ends = onsets[1:] + [length]
    durations = [e - s for s, e in zip(onsets, ends, strict=True)]
    values = contour[onsets]
    lo, hi = float(values.min()), float(values.max())
    width = hi - lo
    if width < 1e-9:
        raw = [0] * len(onsets)
    else:
        raw = [int(round((v - values[0]) / width * span)) for v in values]
    degrees = _gap_fill(raw, max(1, max_leap))
    half = max(1, steps_per_bar // 2)
    strongest = onsets[int(np.argmax(edges[onsets][1:])) + 1] if len(onsets) > 1 else 0
    accents = [s % half == 0 or s == strongest for s in onsets]
    return Motif(length, tuple(onsets), tuple(durations), tuple(degrees), tuple(accents))


def marker_text(motif: Motif, step_beats: float, *, voice: str = "", ladder: str = "scale") -> str:
    """The ``motif`` marker's text: ``steps=<onset beats> degrees=<scale degrees>``, then
    ``ladder=chord`` when the degrees are rungs of the chord rather than of the scale, and
    ``voice=<name>`` (the melody's track) when given."""
    beats = ",".join(f"{s * step_beats:g}" for s in motif.onsets)
    text = f"steps={beats} degrees={','.join(str(d) for d in motif.degrees)}"
    if ladder != "scale":
        text += f" ladder={ladder}"
    if voice and not any(c.isspace() for c in voice):
        text += f" voice={voice}"
    return text
