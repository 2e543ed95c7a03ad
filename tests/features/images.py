"""Pictures the feature tests draw for themselves (BGR uint8)."""

from __future__ import annotations

import cv2
import numpy as np


def solid(bgr: tuple[int, int, int], w: int = 160, h: int = 90) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bgr
    return img


def gradient(w: int = 160, h: int = 90, warm: bool = True) -> np.ndarray:
    """A sky-like vertical gradient: sunset oranges, or night blues."""
    t = np.linspace(0.0, 1.0, h)[:, None]
    if warm:
        top, bottom = np.array([40, 90, 230]), np.array([20, 200, 255])
    else:
        top, bottom = np.array([90, 20, 10]), np.array([230, 140, 40])
    rows = (top + (bottom - top) * t).astype(np.uint8)  # h x 3
    return np.ascontiguousarray(np.repeat(rows[:, None, :], w, axis=1))


def starfield(points: list[tuple[int, int]], w: int = 480, h: int = 270,
              radius: int = 1, sky: int = 15) -> np.ndarray:
    img = np.full((h, w, 3), sky, np.uint8)
    for x, y in points:
        cv2.circle(img, (x, y), radius, (255, 255, 255), -1)
    return img


def scattered_points(n: int, w: int, h: int, spacing: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` points at least ``spacing`` apart and at least ``spacing`` from the border."""
    rng = np.random.default_rng(seed)
    pts: list[tuple[int, int]] = []
    while len(pts) < n:
        x, y = int(rng.integers(spacing, w - spacing)), int(rng.integers(spacing, h - spacing))
        if all(abs(x - px) >= spacing or abs(y - py) >= spacing for px, py in pts):
            pts.append((x, y))
    return pts


def checkerboard(w: int = 480, h: int = 270, cell: int = 30) -> np.ndarray:
    ys, xs = np.indices((h, w))
    board = (((ys // cell) + (xs // cell)) % 2 * 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(board[:, :, None], 3, axis=2))


def noise(w: int = 480, h: int = 270, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def block(x: int, y: int, w: int = 480, h: int = 270, size: int = 40,
          bg: int = 30) -> np.ndarray:
    img = np.full((h, w, 3), bg, np.uint8)
    img[y : y + size, x : x + size] = (200, 220, 240)
    return img
