"""A still picture as a journey: a slow pan and zoom through its regions, like a viewer's eye.

A still image analysed as it is gives the same features every frame, and the music would be
one repeating bar. ``TravelSource`` instead moves a window over the picture: an *opening* that
starts on the whole picture and closes in on the first region, a *development* that visits the
most salient regions one after another (dwelling on each, gliding between them), and an
*ending* that draws back out to the whole picture. The music follows what the window passes
over. The path is deterministic for a picture, a duration and a seed, and ``keyframes`` /
``window_at`` expose it so the render can draw it.

The travelling eye is not motion: every frame is marked ``still`` (see ``Frame``), so the
analysis reads no motion, motion onset or scene cut from the pan and zoom. On a still picture a
motion-driven tempo stays put and a cut trigger never fires; what the window passes over still
moves the colour, light, edge and texture features.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from sonify.capture.base import Frame, Source

OPENING = 0.15  # share of the duration spent on the opening, and on the ending
ZOOM_IN = 0.45  # the window's size (a fraction of the picture's sides) at a region
GRID = 8  # saliency is judged on a GRID x GRID grid of cells


@dataclass(frozen=True, slots=True)
class Keyframe:
    t: float
    cx: float  # window centre, 0..1 of the picture's width
    cy: float  # 0..1 of its height
    size: float  # window side as a fraction of the picture's sides (1 = whole picture)


def saliency_grid(image: np.ndarray, grid: int = GRID) -> np.ndarray:
    """How much there is to see in each cell: local contrast, edges and colour strength."""
    small = cv2.resize(image, (grid * 16, grid * 16), interpolation=cv2.INTER_AREA)
    luma = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
    edges = np.abs(cv2.Laplacian(luma, cv2.CV_32F))
    chroma = (small.max(axis=2).astype(np.float32) - small.min(axis=2))
    cells = np.zeros((grid, grid), np.float64)
    for i in range(grid):
        for j in range(grid):
            sl = (slice(i * 16, (i + 1) * 16), slice(j * 16, (j + 1) * 16))
            cells[i, j] = luma[sl].std() + 0.5 * edges[sl].mean() + 0.3 * chroma[sl].mean()
    return cells


def plan_path(image: np.ndarray, duration_s: float, seed: int = 0) -> list[Keyframe]:
    """Keyframes of the journey: whole picture, the salient regions in a left-to-right-ish tour
    (one per 8-12 s), whole picture again."""
    rng = np.random.default_rng(seed)
    cells = saliency_grid(image)
    n_regions = int(max(2, min(8, round(duration_s / 10.0))))
    # the best cells, at least two cells apart, a little jitter so the seed matters
    order = np.argsort(-(cells + rng.uniform(0, 1e-3 + 0.05 * cells.std(), cells.shape)),
                       axis=None)
    picks: list[tuple[int, int]] = []
    for flat in order:
        i, j = divmod(int(flat), GRID)
        if all(max(abs(i - a), abs(j - b)) >= 2 for a, b in picks):
            picks.append((i, j))
        if len(picks) == n_regions:
            break
    # a tour: start at the left-most region, then always the nearest unvisited one
    tour = [min(picks, key=lambda p: (p[1], p[0]))]
    rest = [p for p in picks if p != tour[0]]
    while rest:
        last = tour[-1]
        nxt = min(rest, key=lambda p: (p[0] - last[0]) ** 2 + (p[1] - last[1]) ** 2)
        tour.append(nxt)
        rest.remove(nxt)
    half = ZOOM_IN / 2
    centres = [(min(1 - half, max(half, (j + 0.5) / GRID)),
                min(1 - half, max(half, (i + 0.5) / GRID))) for i, j in tour]
    t_open = OPENING * duration_s
    t_end = (1 - OPENING) * duration_s
    keys = [Keyframe(0.0, 0.5, 0.5, 1.0)]
    span = (t_end - t_open) / len(centres)
    for k, (cx, cy) in enumerate(centres):
        arrive = t_open + k * span
        keys.append(Keyframe(arrive, cx, cy, ZOOM_IN))
        keys.append(Keyframe(arrive + 0.4 * span, cx, cy, ZOOM_IN))  # dwell on the region
    keys.append(Keyframe(duration_s, 0.5, 0.5, 1.0))
    return keys


def window_at(keys: list[Keyframe], t: float) -> Keyframe:
    """The window at time ``t``, eased (cosine) between keyframes."""
    if t <= keys[0].t:
        return keys[0]
    for a, b in zip(keys, keys[1:], strict=False):
        if t <= b.t:
            u = 0.0 if b.t <= a.t else (t - a.t) / (b.t - a.t)
            e = 0.5 - 0.5 * math.cos(math.pi * u)
            return Keyframe(t, a.cx + (b.cx - a.cx) * e, a.cy + (b.cy - a.cy) * e,
                            a.size + (b.size - a.size) * e)
    return keys[-1]


def crop(image: np.ndarray, win: Keyframe, width: int) -> np.ndarray:
    """The window's part of the picture, resized to ``width`` (aspect of the picture)."""
    h, w = image.shape[:2]
    cw, ch = max(2, round(win.size * w)), max(2, round(win.size * h))
    x0 = min(max(0, round(win.cx * w - cw / 2)), w - cw)
    y0 = min(max(0, round(win.cy * h - ch / 2)), h - ch)
    part = image[y0 : y0 + ch, x0 : x0 + cw]
    height = max(3, round(width * h / w))
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(part, (width, height), interpolation=interp))


class TravelSource(Source):
    """Frames of a journey over a still picture, on the source's own timeline (t = i / fps)."""

    live = False

    def __init__(self, image: np.ndarray, *, duration_s: float, fps: float = 15.0,
                 width: int = 480, seed: int = 0, name: str = "image") -> None:
        if duration_s <= 0:
            raise ValueError(f"duration must be > 0 s, got {duration_s}")
        # Work on a copy just large enough for the closest zoom: every crop then resizes from
        # at most width / ZOOM_IN pixels (measured: 0.86 s -> about 0.2 s of a 60 s render
        # from a 1080p picture).
        work_w = int(math.ceil(width / ZOOM_IN)) + 2
        if image.shape[1] > work_w:
            work_h = max(3, round(image.shape[0] * work_w / image.shape[1]))
            image = cv2.resize(image, (work_w, work_h), interpolation=cv2.INTER_AREA)
        self.image = image
        self.duration_s = duration_s
        self.fps = fps
        self.width = width
        self.name = f"travel:{name}"
        self.keyframes = plan_path(image, duration_s, seed)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        n = int(math.ceil(self.duration_s * self.fps))
        for i in range(n):
            t = i / self.fps
            yield Frame(i, t, crop(self.image, window_at(self.keyframes, t), self.width),
                        still=True)
