"""The feature set the way a skilled OpenCV user writes it for speed: the benchmark's peer.

``reference.py`` stays the readable specification; this module computes the same features as
fast as OpenCV and NumPy allow on one thread, so that ``sonify bench`` measures the fused numba
kernel against an honest baseline, not against the specification's float temporaries:

- 8-bit HSV (``cv2.COLOR_BGR2HSV``, hue in 2-degree units) instead of float32 HSV; the chroma
  that weighs the hue histogram is ``V - min(B, G, R)`` (exact, as ``S * V`` in floating point);
- the chroma-weighted hue histogram is one 2-D ``cv2.calcHist`` over (hue, chroma) and a small
  matrix product, not a float ``bincount``;
- integer moments with no difference images: channel sums (``cv2.sumElems``) and distances
  between planes (``cv2.norm(a, b, NORM_L2SQR / NORM_L1)``) give colourfulness and warmth;
- ``cv2.spatialGradient`` for the 3x3 Sobel; edge candidates from 8-bit |gx| + |gy|, then the
  exact squared magnitude and the orientation only on those pixels, binned by comparisons
  against tan of the bin edges (no atan2); the Laplacian by ``cv2.filter2D`` into int16;
- row and column sums with ``cv2.reduce`` (centroids, the 8 x 8 grid band by band);
- the bright points' ring maximum from two 1-D dilations (a 7-pixel row and column maximum,
  shifted onto the ring's four sides) instead of one dilation by the ring kernel;
- every full-frame buffer preallocated once per frame size and reused (``TunedPeer``).

Numeric differences from ``reference.frame_stats`` (``tests/features/test_tuned_peer.py``
checks each one):

- saturation: the mean of 8-bit S / 255. OpenCV rounds S = 255 * (max - min) / max to an
  integer in fixed point, so each pixel is off by at most about 0.5 / 255 and the mean, where
  the roundings mostly cancel, by less than 0.001 (measured: 3e-4 at most);
- hue histogram: OpenCV's 8-bit hue is hue_degrees / 2 rounded in 12-bit fixed point. The bin
  edges (15 + 30k degrees) fall on half units, where the rounding splits anyway, so a pixel
  changes bin only when its hue lies exactly on an edge, which 8-bit colours hit often
  ((G - B) = (max - min) / 4 is 15 degrees): the fixed point rounds that half unit down, into
  the bin below, where the reference's float hue puts it in the bin above. On photographs about
  1% of the chroma moves: the hue histogram agrees within 0.05 in L1, the hue masses within
  0.01, the dominant hue within 0.005 where its peak is clear. ``chroma`` is exact (the sum of
  max - min in integers; the reference rounds its float sums per bin);
- everything else (brightness, contrast, colourfulness, warmth, edges, orientation histogram,
  geometry, texture, motion, centroids, bright points, grid, luma histogram, the luma itself)
  is computed from the same integers and agrees to float rounding (1e-7 or better).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sonify.features import constants as C
from sonify.features import reference

# tan of the orientation bin edges (11.25, 33.75, 56.25, 78.75 degrees) in float32: for the
# integer gradients of a 3x3 Sobel on 8-bit luma, |gy| >= tan * |gx| in float32 bins every case
# as float64 atan2 does (the kernel's constants, checked exhaustively in its tests).
_TANS = tuple(np.float32(math.tan(math.radians(a))) for a in (11.25, 33.75, 56.25, 78.75))
_EDGE2 = C.EDGE_THRESHOLD * C.EDGE_THRESHOLD
# 8-bit hue h (0..179, 2-degree units) -> its 30-degree bin: floor((2h + 15) / 30) mod 12,
# as a 12 x 180 membership matrix so that one product sums the 2-D histogram's rows per bin.
_HUE_UNITS = 180
_HUE_BIN_OF = ((2 * np.arange(_HUE_UNITS) + 15) // 30) % C.HUE_BINS
_HUE_MEMBERS = (np.arange(C.HUE_BINS)[:, None] == _HUE_BIN_OF[None, :]).astype(np.float64)
_CHROMA_LEVELS = np.arange(256, dtype=np.float64)
_ROW7 = np.ones((1, 2 * C.STAR_RING + 1), np.uint8)
_COL7 = np.ones((2 * C.STAR_RING + 1, 1), np.uint8)
_NONE = np.zeros(0, np.intp)


class _Buffers:
    """Every full-frame temporary for one frame size, allocated once."""

    def __init__(self, h: int, w: int) -> None:
        self.shape = (h, w)
        self.luma = [np.empty((h, w), np.uint8), np.empty((h, w), np.uint8)]
        self.planes = [np.empty((h, w), np.uint8) for _ in range(3)]
        self.hsv = np.empty((h, w, 3), np.uint8)
        self.high = np.empty((h, w), np.uint8)  # V = max(B, G, R)
        self.low = np.empty((h, w), np.uint8)  # min(B, G, R), then the chroma
        self.gx = np.empty((h, w), np.int16)
        self.gy = np.empty((h, w), np.int16)
        self.lap = np.empty((h, w), np.int16)
        self.ax = np.empty((h - 2, w - 2), np.uint8)
        self.ay = np.empty((h - 2, w - 2), np.uint8)
        self.edge = np.empty((h - 2, w - 2), np.uint8)
        self.diff = np.empty((h, w), np.uint8)
        self.hmax = np.empty((h, w), np.uint8)
        self.vmax = np.empty((h, w), np.uint8)
        self.dimmed = np.empty((h, w), np.uint8)
        r = C.STAR_RING
        self.ring = np.empty((max(0, h - 2 * r), max(0, w - 2 * r)), np.uint8)
        self.cand = np.empty((max(0, h - 2 * r), max(0, w - 2 * r)), np.uint8)
        self.xs = (np.arange(w) + 0.5) / w
        self.ys = (np.arange(h) + 0.5) / h
        self.band_rows = [(i * h // C.GRID_ROWS, (i + 1) * h // C.GRID_ROWS)
                          for i in range(C.GRID_ROWS)]
        self.cell_cols = [(j * w // C.GRID_COLS, (j + 1) * w // C.GRID_COLS)
                          for j in range(C.GRID_COLS)]
        self.turn = 0


class TunedPeer:
    """``frame_stats(image, prev_luma)`` as ``reference.frame_stats``, with buffers reused.

    The returned luma alternates between two buffers, so passing it back as the next frame's
    ``prev_luma`` works; it is overwritten two calls later (copy it to keep it longer).
    """

    def __init__(self) -> None:
        self._buf: _Buffers | None = None

    def _buffers(self, h: int, w: int) -> _Buffers:
        if self._buf is None or self._buf.shape != (h, w):
            self._buf = _Buffers(h, w)
        return self._buf

    def frame_stats(self, image: np.ndarray,
                    prev_luma: np.ndarray | None) -> tuple[dict, np.ndarray]:
        """All per-frame features of ``image`` (H x W x 3 uint8 BGR, at least 3 x 3)."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 uint8 BGR image, got {image.dtype} "
                             f"{image.shape}")
        h, w = image.shape[:2]
        if h < 3 or w < 3:
            raise ValueError(f"image too small for analysis: {w}x{h}")
        if prev_luma is not None and prev_luma.shape != (h, w):
            raise ValueError(f"previous luma {prev_luma.shape} does not match the frame {(h, w)}")
        buf = self._buffers(h, w)
        lum = buf.luma[buf.turn]
        buf.turn ^= 1
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=lum)
        out: dict = {}
        mean, std = cv2.meanStdDev(lum)
        out["brightness"] = float(mean[0, 0]) / 255.0
        out["contrast"] = min(1.0, float(std[0, 0]) / 127.5)
        _colour(image, buf, out)
        _edges(lum, buf, out)
        _motion(lum, prev_luma, buf, out)
        _luma_layout(lum, buf, out)
        count, points = _stars(lum, buf)
        out["stars"] = float(count)
        out["star_points"] = points
        hist = cv2.calcHist([lum], [0], None, [C.LUMA_HIST_BINS], [0, 256]).ravel()
        out["luma_hist"] = hist.astype(np.float64) / (h * w)
        return out, lum


def _colour(image: np.ndarray, buf: _Buffers, out: dict) -> None:
    """Saturation, the hue histogram and its masses, colourfulness, warmth."""
    h, w = buf.shape
    n = h * w
    b, g, r = cv2.split(image, buf.planes)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV, dst=buf.hsv)
    out["saturation"] = cv2.sumElems(hsv)[1] / (255.0 * n)
    # chroma = max - min: V minus the smallest channel, exact in 8 bits
    cv2.min(b, g, dst=buf.low)
    cv2.min(buf.low, r, dst=buf.low)
    cv2.extractChannel(hsv, 2, dst=buf.high)
    chroma = cv2.subtract(buf.high, buf.low, dst=buf.low)
    # one 2-D histogram over (hue, chroma); the weighted sums per hue unit are its rows
    # times the chroma levels, and the 30-degree bins sum their 15 hue units
    joint = cv2.calcHist([hsv, chroma], [0, 3], None, [_HUE_UNITS, 256], [0, 180, 0, 256])
    hue_raw = _HUE_MEMBERS @ (joint.astype(np.float64) @ _CHROMA_LEVELS)
    out["hue"] = reference._dominant_hue(hue_raw)
    total_chroma = float(hue_raw.sum())
    out["hue_hist"] = hue_raw / total_chroma if total_chroma > 0 else np.zeros(C.HUE_BINS)
    out["hue_mass"] = hue_raw / (255.0 * n)
    out["chroma"] = total_chroma / (255.0 * n)
    # Hasler & Suesstrunk from integer moments, with no difference image: the channel sums
    # give the means; cv2.norm of two planes gives sum (x - y)^2 (and sum |x - y|) in one pass.
    # With yb2 = 2 * yb = (R - B) + (G - B), the cross term follows from the three squared
    # distances: sum yb2^2 = 2 |R - B|^2 + 2 |G - B|^2 - |R - G|^2.
    s_b, s_g, s_r, _ = cv2.sumElems(image)
    d_rg = cv2.norm(r, g, cv2.NORM_L2SQR)
    d_rb = cv2.norm(r, b, cv2.NORM_L2SQR)
    d_gb = cv2.norm(g, b, cv2.NORM_L2SQR)
    rg_mean = (s_r - s_g) / n
    yb_mean = 0.5 * (s_r + s_g - 2.0 * s_b) / n
    rg_var = max(0.0, d_rg / n - rg_mean * rg_mean)
    yb_var = max(0.0, 0.25 * (2.0 * d_rb + 2.0 * d_gb - d_rg) / n - yb_mean * yb_mean)
    m = math.sqrt(rg_var + yb_var) + 0.3 * math.hypot(rg_mean, yb_mean)
    out["colorfulness"] = min(1.0, m / C.COLORFULNESS_FULL_SCALE)
    warm_abs = cv2.norm(r, b, cv2.NORM_L1)
    out["warmth"] = 0.5 + 0.5 * (s_r - s_b) / (warm_abs + C.WARMTH_PRIOR * n)


def _edges(lum: np.ndarray, buf: _Buffers, out: dict) -> None:
    """Edge density, the orientation histogram and geometry, texture (interior pixels)."""
    h, w = buf.shape
    interior = max(1, (h - 2) * (w - 2))
    cv2.spatialGradient(lum, buf.gx, buf.gy)
    gx, gy = buf.gx[1:-1, 1:-1], buf.gy[1:-1, 1:-1]
    # Edge candidates from |gx| + |gy| >= T (the L1 norm bounds the Euclidean one from above;
    # 8-bit saturation keeps the test exact), then the exact test gx^2 + gy^2 >= T^2 and the
    # phase only on those: a few per cent of the pixels in a photograph.
    cv2.convertScaleAbs(gx, dst=buf.ax)
    cv2.convertScaleAbs(gy, dst=buf.ay)
    cv2.add(buf.ax, buf.ay, dst=buf.ax)
    # (threshold, not compare with a scalar: OpenCV reads an array of 4 or fewer as a scalar)
    cv2.threshold(buf.ax, C.EDGE_THRESHOLD - 1, 255, cv2.THRESH_BINARY, dst=buf.edge)
    at = cv2.findNonZero(buf.edge) if cv2.countNonZero(buf.edge) else None
    xs, ys = (at[:, 0, 0], at[:, 0, 1]) if at is not None else (_NONE, _NONE)
    cx = gx[ys, xs].astype(np.int32)
    cy = gy[ys, xs].astype(np.int32)
    mag2 = cx * cx + cy * cy
    is_edge = mag2 >= _EDGE2
    ex = cx[is_edge].astype(np.float32)
    ey = cy[is_edge].astype(np.float32)
    out["edge_density"] = min(1.0, len(ex) / interior * (w / C.EDGE_REF_WIDTH))
    ax, ay = np.abs(ex), np.abs(ey)
    k = sum((ay >= t * ax).astype(np.int32) for t in _TANS)
    flip = (ex * ey < 0) & (k > 0) & (k < 4)
    orient_bin = np.where(flip, 8 - k, k) if len(ex) else _NONE
    weight = np.rint(np.sqrt(mag2[is_edge].astype(np.float64)))
    orient = np.bincount(orient_bin, weights=weight, minlength=C.ORIENT_BINS)
    total_orient = orient.sum()
    out["orient_hist"] = orient / total_orient if total_orient > 0 else np.zeros(C.ORIENT_BINS)
    out["geometry"] = reference._geometry(orient)
    cv2.filter2D(lum, cv2.CV_16S, reference.LAPLACE8, dst=buf.lap)
    lap_l1 = cv2.norm(buf.lap[1:-1, 1:-1], cv2.NORM_L1)
    out["texture"] = min(1.0, lap_l1 / interior / C.TEXTURE_FULL_SCALE)


def _motion(lum: np.ndarray, prev: np.ndarray | None, buf: _Buffers, out: dict) -> None:
    """Gated, clipped luma change and its centroid."""
    if prev is None:
        out["motion"], out["motion_x"], out["motion_y"] = 0.0, 0.5, 0.5
        return
    h, w = buf.shape
    moved = cv2.absdiff(lum, prev, dst=buf.diff)
    cv2.threshold(moved, C.MOTION_NOISE_GATE, 0, cv2.THRESH_TOZERO, dst=moved)
    cv2.threshold(moved, C.MOTION_CLIP, 0, cv2.THRESH_TRUNC, dst=moved)
    cols = cv2.reduce(moved, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    total = float(cols.sum(dtype=np.int64))
    out["motion"] = math.sqrt(total / (C.MOTION_CLIP * h * w))
    out["motion_x"], out["motion_y"] = _centroid(moved, cols, total, buf)


def _centroid(weight: np.ndarray, cols: np.ndarray, total: float,
              buf: _Buffers) -> tuple[float, float]:
    if total <= 0:
        return 0.5, 0.5
    rows = cv2.reduce(weight, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    return float(cols @ buf.xs) / total, float(rows @ buf.ys) / total


def _luma_layout(lum: np.ndarray, buf: _Buffers, out: dict) -> None:
    """The luma's centroid and the 8 x 8 grid of cell means, from per-band column sums."""
    h, w = buf.shape
    grid = np.zeros((C.GRID_ROWS, C.GRID_COLS), np.float64)
    cols = np.zeros(w, np.int64)
    for i, (y0, y1) in enumerate(buf.band_rows):
        if y1 <= y0:
            continue
        band = cv2.reduce(lum[y0:y1], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
        np.add(cols, band, out=cols)
        for j, (x0, x1) in enumerate(buf.cell_cols):
            if x1 > x0:
                grid[i, j] = float(band[x0:x1].sum()) / (255.0 * (x1 - x0) * (y1 - y0))
    total = float(cols.sum())
    out["center_x"], out["center_y"] = _centroid(lum, cols, total, buf)
    out["grid"] = grid


def _stars(lum: np.ndarray, buf: _Buffers) -> tuple[int, np.ndarray]:
    """Bright points as ``reference._stars``: the ring maximum from 1-D dilations."""
    h, w = buf.shape
    r = C.STAR_RING
    points = np.zeros((C.MAX_STARS, 3), np.float64)
    if h <= 2 * r or w <= 2 * r:
        return 0, points
    # the ring's four sides: row maxima 3 rows up and down, column maxima 3 columns left/right
    cv2.dilate(lum, _ROW7, dst=buf.hmax)
    cv2.dilate(lum, _COL7, dst=buf.vmax)
    ring = buf.ring
    cv2.max(buf.hmax[: h - 2 * r, r : w - r], buf.hmax[2 * r :, r : w - r], dst=ring)
    cv2.max(ring, buf.vmax[r : h - r, : w - 2 * r], dst=ring)
    cv2.max(ring, buf.vmax[r : h - r, 2 * r :], dst=ring)
    # bright (lum >= 128, i.e. lum - 64 >= 64) and at least STAR_MIN_CONTRAST above the whole
    # ring: lum - 64 >= max(ring, 64). Rare, so the peak test that follows is sparse.
    np.maximum(ring, C.STAR_MIN_LEVEL - C.STAR_MIN_CONTRAST, out=ring)
    cv2.subtract(lum, C.STAR_MIN_CONTRAST, dst=buf.dimmed)  # type: ignore[call-overload]
    cv2.compare(buf.dimmed[r : h - r, r : w - r], ring, cv2.CMP_GE, dst=buf.cand)
    at = cv2.findNonZero(buf.cand) if cv2.countNonZero(buf.cand) else None
    if at is None:
        return 0, points
    xs = at[:, 0, 0] + r  # raster order
    ys = at[:, 0, 1] + r
    return reference.peaks(lum, ys, xs, points)  # sparse: the specification's own test


class LumaPrimitives:
    """Only the luma-derived part of the feature set, as OpenCV's hand-written SIMD primitives
    run once each on one thread: BGR2GRAY, ``meanStdDev``, ``spatialGradient``, the
    8-neighbour Laplacian (``filter2D`` into int16), the 32-bin ``calcHist`` and ``absdiff``
    against the previous luma.

    It computes no features (no colour, no orientation, no edge test, no bright points, no
    centroids): ``sonify bench`` times it beside the read floor to show what a subset of the
    work costs in vectorised code written by hand, the yardstick for the kernel's own floor
    ratio. Call it as ``(image, prev_luma)``, like the other contenders.
    """

    def __init__(self) -> None:
        self._shape: tuple[int, int] | None = None

    def __call__(self, image: np.ndarray, prev_luma: np.ndarray | None) -> None:
        h, w = image.shape[:2]
        if self._shape != (h, w):  # only the buffers these primitives write
            self._shape = (h, w)
            self._lum = np.empty((h, w), np.uint8)
            self._diff = np.empty((h, w), np.uint8)
            self._gx, self._gy, self._lap = (np.empty((h, w), np.int16) for _ in range(3))
        lum = self._lum
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=lum)
        cv2.meanStdDev(lum)
        cv2.spatialGradient(lum, self._gx, self._gy)
        cv2.filter2D(lum, cv2.CV_16S, reference.LAPLACE8, dst=self._lap)
        cv2.calcHist([lum], [0], None, [C.LUMA_HIST_BINS], [0, 256])
        if prev_luma is not None:
            cv2.absdiff(lum, prev_luma, dst=self._diff)


_default = TunedPeer()


def frame_stats(image: np.ndarray, prev_luma: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """Module-level convenience over one shared ``TunedPeer`` (single-threaded use only)."""
    return _default.frame_stats(image, prev_luma)
