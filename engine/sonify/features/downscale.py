"""The analysis downscale: area averages of pixel blocks in one read of the frame, without the GIL.

The live path analyses every camera at 480 pixels wide, so at 4K the downscale, not the feature
kernel, is the bulk of the work: OpenCV's INTER_AREA in halving steps read 4K three times over
(6 of 8.1 ms). Here one numba kernel reads each source row once:

- **Integer factor** (1080p and 4K to 480 wide: 4 and 8): the exact box average. The ``s``
  source rows of an output row are summed into a row of 16-bit counters (a plain vectorised
  add over ``3 * width`` bytes, the whole cost), then each ``s``-pixel group of that row is summed
  and divided with rounding half up: ``(sum + s*s/2) // (s*s)``. OpenCV's fast path computes the
  same sums and rounds ties to even (or up, in its SIMD 2x2 path): the two differ by at most one
  level, on exact ties only (tested).
- **Any other factor** (720p: 2.67, 1440p: 5.33): the exact area-weighted average that
  INTER_AREA's general path computes: every source pixel weighs the share of it an output pixel
  covers, horizontally and vertically (separable: rows weighted into a float32 row, then that row
  weighted into output pixels). Float32 sums, rounded to nearest: within one level of OpenCV
  (tested).

Both kernels are ``nogil`` and cached; a ``Downscaler`` keeps the output and scratch buffers and
the weight tables for the last size, so a stream of frames allocates nothing.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit

from sonify.util.numbacache import forget_stale_in

jit = njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)

MAX_BOX = 16  # 16-bit counters hold an s x s block of 255 (s*s*255 + s*s/2 < 65536)


def analysis_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """The (width, height) a ``width`` x ``height`` frame is analysed at: ``target_width`` wide,
    the aspect kept (at least 3 rows); the frame's own size when it is not wider (or 0)."""
    if target_width <= 0 or width <= target_width:
        return width, height
    return target_width, max(3, round(height * target_width / width))


@jit
def _box(src: np.ndarray, dst: np.ndarray, s: int, col: np.ndarray, win: np.ndarray) -> None:
    """Exact s x s box average of ``src`` (H x 3W bytes) into ``dst`` (H/s x 3W/s bytes).

    Per output row: the s source rows are summed into 16-bit column counters (for an even s,
    pixel pairs are summed on the way: the same read, half the counters); the groups of
    ``s / pair`` counters are then summed by shifted whole-row adds (vectorised; a loop over
    each group's few counters is not) and every third group's sum is divided with rounding.
    """
    ho, n_out = dst.shape[0], dst.shape[1]
    pair = 2 if s % 2 == 0 else 1
    m = src.shape[1] // (3 * pair)  # pixels (or pixel pairs) per counter row
    n = 3 * m
    groups = s // pair
    area = s * s
    half = area // 2
    # floor(x / area) == (x * magic) >> 32 for every x <= 255 * area + half (area <= 256)
    magic = np.int64((2 ** 32 + area - 1) // area)
    for oy in range(ho):
        for i in range(n):
            col[i] = 0
        for k in range(s):
            row = src[oy * s + k]
            if pair == 2:
                for x in range(m):
                    col[3 * x] = np.uint16(col[3 * x] + np.uint16(row[6 * x])
                                           + np.uint16(row[6 * x + 3]))
                    col[3 * x + 1] = np.uint16(col[3 * x + 1] + np.uint16(row[6 * x + 1])
                                               + np.uint16(row[6 * x + 4]))
                    col[3 * x + 2] = np.uint16(col[3 * x + 2] + np.uint16(row[6 * x + 2])
                                               + np.uint16(row[6 * x + 5]))
            else:
                for i in range(n):
                    col[i] = np.uint16(col[i] + row[i])
        for i in range(n):
            win[i] = col[i]
        for g in range(1, groups):
            d = 3 * g
            for i in range(n - d):
                win[i] = np.uint16(win[i] + col[i + d])
        out = dst[oy]
        for ox in range(n_out // 3):
            b = 3 * groups * ox
            out[3 * ox] = np.uint8(((np.int64(win[b]) + half) * magic) >> 32)
            out[3 * ox + 1] = np.uint8(((np.int64(win[b + 1]) + half) * magic) >> 32)
            out[3 * ox + 2] = np.uint8(((np.int64(win[b + 2]) + half) * magic) >> 32)


@jit
def _area(src: np.ndarray, dst: np.ndarray, y0: np.ndarray, yw: np.ndarray, x0: np.ndarray,
          xw: np.ndarray, row_acc: np.ndarray) -> None:
    """Area-weighted average: output row ``oy`` sums source rows ``y0[oy] + k`` weighted by
    ``yw[oy, k]``; output column ``ox`` sums source columns ``x0[ox] + k`` weighted by
    ``xw[ox, k]`` (weights already divided by the pixel's area; zero weights pad the tables)."""
    ho, wo = dst.shape[0], dst.shape[1] // 3
    n = row_acc.shape[0]
    ky, kx = yw.shape[1], xw.shape[1]
    for oy in range(ho):
        for i in range(n):
            row_acc[i] = 0.0
        for k in range(ky):
            wgt = yw[oy, k]
            if wgt == 0.0:
                continue
            row = src[y0[oy] + k]
            for i in range(n):
                row_acc[i] += wgt * np.float32(row[i])
        out = dst[oy]
        for ox in range(wo):
            b0, b1, b2 = np.float32(0.0), np.float32(0.0), np.float32(0.0)
            for k in range(kx):
                wgt = xw[ox, k]
                j = 3 * (x0[ox] + k)
                b0 += wgt * row_acc[j]
                b1 += wgt * row_acc[j + 1]
                b2 += wgt * row_acc[j + 2]
            out[3 * ox] = np.uint8(min(255.0, math.floor(b0 + 0.5)))
            out[3 * ox + 1] = np.uint8(min(255.0, math.floor(b1 + 0.5)))
            out[3 * ox + 2] = np.uint8(min(255.0, math.floor(b2 + 0.5)))


def area_weights(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """INTER_AREA's weights along one axis: output ``o`` covers source ``[o*s, (o+1)*s)`` with
    ``s = n_src / n_dst``; each source pixel ``i`` weighs its overlap with that span over ``s``.
    Returns (first source index per output, weights per output padded with zeros)."""
    s = n_src / n_dst
    span = math.ceil(s) + 1
    first = np.zeros(n_dst, np.int64)
    weights = np.zeros((n_dst, span), np.float32)
    span = min(span, n_src)
    weights = weights[:, :span].copy()
    for o in range(n_dst):
        lo, hi = o * s, min(n_src, (o + 1) * s)
        i0 = max(0, min(int(math.floor(lo)), n_src - span))  # the span stays inside the row
        first[o] = i0
        for k in range(span):
            i = i0 + k
            overlap = min(hi, i + 1) - max(lo, i)
            if overlap > 1e-12:
                weights[o, k] = overlap / s
    return first, weights


class Downscaler:
    """Area-average frames down to ``width`` pixels wide (aspect kept), reusing its buffers.

    ``__call__`` returns the frame itself when it is no wider than ``width`` (or width is 0),
    else a C-contiguous uint8 image owned by this object: overwritten by the next call.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self._key: tuple[int, int] | None = None
        self._dst = np.empty((0, 0, 3), np.uint8)
        self._box = 0
        self._col = np.empty(0, np.uint16)
        self._win = np.empty(0, np.uint16)
        self._tables: tuple[np.ndarray, ...] = ()
        self._row = np.empty(0, np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        wo, ho = analysis_size(w, h, self.width)
        if (wo, ho) == (w, h):
            return image
        if ho > h or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            return cv2.resize(image, (wo, ho), interpolation=cv2.INTER_AREA)
        if not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
        if self._key != (w, h):
            self._prepare(w, h, wo, ho)
        src = image.reshape(h, 3 * w)
        dst = self._dst.reshape(ho, 3 * wo)
        if self._box:
            _box(src, dst, self._box, self._col, self._win)
        else:
            y0, yw, x0, xw = self._tables
            _area(src, dst, y0, yw, x0, xw, self._row)
        return self._dst

    def _prepare(self, w: int, h: int, wo: int, ho: int) -> None:
        self._key = (w, h)
        self._dst = np.empty((ho, wo, 3), np.uint8)
        s = w // wo
        if w == s * wo and h == s * ho and s <= MAX_BOX:
            self._box = s
            self._col = np.empty(3 * w, np.uint16)
            self._win = np.empty(3 * w, np.uint16)
        else:
            self._box = 0
            self._tables = (*area_weights(h, ho), *area_weights(w, wo))
            self._row = np.empty(3 * w, np.float32)


def downscale(image: np.ndarray, width: int) -> np.ndarray:
    """Area-average ``image`` down to ``width`` pixels wide (aspect kept) into a new array; the
    image itself when it is no wider. A stream of frames should keep a ``Downscaler``."""
    return Downscaler(width)(image)


def warmup() -> None:
    """Compile (or load from numba's cache) both kernels now."""
    img = np.zeros((12, 12, 3), np.uint8)
    Downscaler(4)(img)  # box, factor 3
    Downscaler(5)(img)  # area, factor 2.4


forget_stale_in(globals())  # numba's cache misses edits to the modules these kernels use
