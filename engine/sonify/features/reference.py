"""The feature set computed the plain OpenCV/NumPy way.

This is the specification the numba kernels in ``kernels.py`` must match (tests compare the
two within stated tolerances) and the baseline ``sonify bench`` times them against. It favours
clarity: one OpenCV or NumPy call per idea, no fusion, no tricks.

``frame_stats(image, prev_luma)`` returns the per-frame raw features (before smoothing, mood and
onsets, which ``analyzer.py`` adds) and the frame's luma for the next call.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sonify.features import constants as C

STAR_RING_KERNEL = np.ones((2 * C.STAR_RING + 1, 2 * C.STAR_RING + 1), np.uint8)
STAR_RING_KERNEL[1:-1, 1:-1] = 0
LAPLACE8 = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32)  # all 8 neighbours


def luma(image: np.ndarray) -> np.ndarray:
    """8-bit BT.601 luma: OpenCV's BGR2GRAY."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _centroid(weight: np.ndarray) -> tuple[float, float]:
    """Weighted centroid in 0..1 of the pixel centres; the middle when the weight is zero."""
    total = float(weight.sum(dtype=np.float64))
    if total <= 0.0:
        return 0.5, 0.5
    h, w = weight.shape
    xs = (np.arange(w) + 0.5) / w
    ys = (np.arange(h) + 0.5) / h
    cx = float(weight.sum(axis=0, dtype=np.float64) @ xs) / total
    cy = float(weight.sum(axis=1, dtype=np.float64) @ ys) / total
    return cx, cy


def _dominant_hue(hue_raw: np.ndarray) -> float:
    """Peak of the circular hue histogram, refined by a parabola through its neighbours."""
    if hue_raw.sum() <= 0:
        return 0.0
    k = int(np.argmax(hue_raw))
    n = len(hue_raw)
    left, mid, right = float(hue_raw[(k - 1) % n]), float(hue_raw[k]), float(hue_raw[(k + 1) % n])
    denom = left - 2.0 * mid + right
    delta = 0.5 * (left - right) / denom if denom < 0 else 0.0
    return ((k + delta) / n) % 1.0


def _geometry(orient_hist: np.ndarray) -> float:
    """How concentrated the orientations are: the larger of the mean resultant lengths of the
    doubled angles (one dominant direction) and of the quadrupled angles (a right-angled grid
    of any rotation, such as a skyline); 0 for orientations spread evenly, 1 for one grid."""
    total = orient_hist.sum()
    if total <= 0:
        return 0.0
    p = orient_hist / total
    theta = np.pi * np.arange(len(p)) / len(p)  # bin centres, 0..180 degrees
    r2 = abs((p * np.exp(2j * theta)).sum())
    r4 = abs((p * np.exp(4j * theta)).sum())
    return float(min(1.0, max(r2, r4)))


def _stars(lum: np.ndarray) -> tuple[int, np.ndarray]:
    """Count bright points and list the brightest (x, y, level) in 0..1, brightest first."""
    h, w = lum.shape
    r = C.STAR_RING
    points = np.zeros((C.MAX_STARS, 3), np.float64)
    if h <= 2 * r or w <= 2 * r:
        return 0, points
    # bright, and at least STAR_MIN_CONTRAST above the whole ring around it
    ring_max = cv2.dilate(lum, STAR_RING_KERNEL)
    dimmed = cv2.subtract(lum, C.STAR_MIN_CONTRAST)  # type: ignore[call-overload]  # saturating
    candidate = (lum >= C.STAR_MIN_LEVEL) & (dimmed >= ring_max)
    candidate[:r] = False
    candidate[h - r :] = False
    candidate[:, :r] = False
    candidate[:, w - r :] = False
    ys, xs = np.nonzero(candidate)  # raster order
    return peaks(lum, ys, xs, points)


def peaks(lum: np.ndarray, ys: np.ndarray, xs: np.ndarray,
          points: np.ndarray) -> tuple[int, np.ndarray]:
    """Of the candidates at (``ys``, ``xs``) in raster order, the local maxima: strictly above
    the neighbours met earlier in raster order, at least the later ones (a flat-topped peak
    counts once, at its first pixel). Their count, and the brightest into ``points`` as
    (x, y, level) in 0..1, brightest first (ties in raster order)."""
    h, w = lum.shape
    levels = lum[ys, xs]
    peak = np.ones(len(ys), bool)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
        peak &= levels > lum[ys + dy, xs + dx]
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        peak &= levels >= lum[ys + dy, xs + dx]
    ys, xs, levels = ys[peak], xs[peak], levels[peak]
    order = np.argsort(-levels.astype(np.int32), kind="stable")[: C.MAX_STARS]
    k = len(order)
    points[:k, 0] = (xs[order] + 0.5) / w
    points[:k, 1] = (ys[order] + 0.5) / h
    points[:k, 2] = levels[order] / 255.0
    return len(xs), points


def _grid(lum: np.ndarray) -> np.ndarray:
    h, w = lum.shape
    grid = np.zeros((C.GRID_ROWS, C.GRID_COLS), np.float64)
    for i in range(C.GRID_ROWS):
        y0, y1 = i * h // C.GRID_ROWS, (i + 1) * h // C.GRID_ROWS
        for j in range(C.GRID_COLS):
            x0, x1 = j * w // C.GRID_COLS, (j + 1) * w // C.GRID_COLS
            cell = lum[y0:y1, x0:x1]
            grid[i, j] = cell.mean() / 255.0 if cell.size else 0.0
    return grid


def frame_stats(image: np.ndarray, prev_luma: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """All per-frame features of ``image`` (H x W x 3 uint8 BGR), the plain way.

    ``prev_luma`` is the previous frame's luma at the same size (or None for the first frame,
    which then has no motion). Returns (features, luma of this frame).
    """
    h, w = image.shape[:2]
    n = h * w
    lum = luma(image)
    out: dict = {}

    mean, std = cv2.meanStdDev(lum)
    out["brightness"] = float(mean[0, 0]) / 255.0
    out["contrast"] = min(1.0, float(std[0, 0]) / 127.5)

    # HSV in floating point: H in degrees [0, 360), S in 0..1, V in 0..255, exact (the 8-bit
    # conversion rounds hue to 2 degrees). Chroma (max - min) = S * V weighs the hue histogram,
    # so dark sensor noise, saturated but nearly black, does not colour it.
    hsv = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_BGR2HSV)
    hue_deg, sat, val = cv2.split(hsv)
    out["saturation"] = cv2.mean(sat)[0]
    chroma = cv2.multiply(sat, val)
    # floor((h + 15) / 30), by truncation (h >= 0); float32(1/30) rounds up, so the products at
    # the bin edges land on or just above the integer: bin 0 is 345..15 degrees
    hue_bin = ((hue_deg + np.float32(15.0)) * np.float32(1.0 / 30.0)).astype(np.uint8)
    hue_bin[hue_bin == C.HUE_BINS] = 0
    hue_raw = np.bincount(hue_bin.ravel(), weights=chroma.ravel(), minlength=C.HUE_BINS)
    hue_raw = np.round(hue_raw)
    out["hue"] = _dominant_hue(hue_raw)
    total_chroma = hue_raw.sum()
    out["hue_hist"] = hue_raw / total_chroma if total_chroma > 0 else np.zeros(C.HUE_BINS)
    out["hue_mass"] = hue_raw / (255.0 * n)
    out["chroma"] = float(total_chroma) / (255.0 * n)

    # Colourfulness: Hasler & Suesstrunk (2003), "Measuring colourfulness in natural images":
    # M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2), rg = R - G,
    # yb = (R + G) / 2 - B.
    b, g, r = cv2.split(image)
    rg = cv2.subtract(r, g, dtype=cv2.CV_16S)
    yb = cv2.subtract(cv2.addWeighted(r, 0.5, g, 0.5, 0.0, dtype=cv2.CV_32F), b, dtype=cv2.CV_32F)
    rg_mean, rg_sd = (float(v[0, 0]) for v in cv2.meanStdDev(rg))
    yb_mean, yb_sd = (float(v[0, 0]) for v in cv2.meanStdDev(yb))
    m = math.hypot(rg_sd, yb_sd) + 0.3 * math.hypot(rg_mean, yb_mean)
    out["colorfulness"] = min(1.0, m / C.COLORFULNESS_FULL_SCALE)
    # Warmth: the balance of red over blue, against a small neutral prior per pixel.
    warm = cv2.subtract(r, b, dtype=cv2.CV_16S)
    warm_sum = cv2.sumElems(warm)[0]
    warm_abs = cv2.norm(warm, cv2.NORM_L1)
    out["warmth"] = 0.5 + 0.5 * warm_sum / (warm_abs + C.WARMTH_PRIOR * n)

    # Edges, orientation and texture on the interior (a 3x3 stencil needs all neighbours).
    gx = cv2.Sobel(lum, cv2.CV_16S, 1, 0)[1:-1, 1:-1]
    gy = cv2.Sobel(lum, cv2.CV_16S, 0, 1)[1:-1, 1:-1]
    mag2 = gx.astype(np.int32) ** 2 + gy.astype(np.int32) ** 2
    edge = mag2 >= C.EDGE_THRESHOLD**2
    interior = max(1, (h - 2) * (w - 2))
    out["edge_density"] = min(1.0, edge.sum() / interior * (w / C.EDGE_REF_WIDTH))
    angle = np.degrees(np.arctan2(gy[edge].astype(np.float64), gx[edge])) % 180.0
    orient_bin = np.floor((angle + 11.25) / 22.5).astype(np.int32) % C.ORIENT_BINS
    weight = np.rint(np.sqrt(mag2[edge].astype(np.float64)))  # whole levels of |gradient|
    orient = np.bincount(orient_bin, weights=weight, minlength=C.ORIENT_BINS)
    total_orient = orient.sum()
    out["orient_hist"] = orient / total_orient if total_orient > 0 else np.zeros(C.ORIENT_BINS)
    out["geometry"] = _geometry(orient)
    lap = cv2.filter2D(lum, cv2.CV_16S, LAPLACE8)[1:-1, 1:-1]
    out["texture"] = min(1.0, cv2.norm(lap, cv2.NORM_L1) / interior / C.TEXTURE_FULL_SCALE)

    # Motion: gated, clipped absolute luma change against the previous frame.
    if prev_luma is None:
        out["motion"], out["motion_x"], out["motion_y"] = 0.0, 0.5, 0.5
    else:
        diff = cv2.absdiff(lum, prev_luma)
        moved = np.minimum(diff, C.MOTION_CLIP)
        moved[diff <= C.MOTION_NOISE_GATE] = 0
        out["motion"] = math.sqrt(cv2.sumElems(moved)[0] / (C.MOTION_CLIP * n))
        out["motion_x"], out["motion_y"] = _centroid(moved)

    out["center_x"], out["center_y"] = _centroid(lum)
    count, points = _stars(lum)
    out["stars"] = float(count)
    out["star_points"] = points
    out["grid"] = _grid(lum)
    hist = cv2.calcHist([lum], [0], None, [C.LUMA_HIST_BINS], [0, 256]).ravel()
    out["luma_hist"] = hist.astype(np.float64) / n
    return out, lum
