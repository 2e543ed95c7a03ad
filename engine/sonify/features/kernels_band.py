"""The fused per-frame kernel over one band of rows: every sum the features need, in one read.

``kernels.py`` runs it once over the whole frame (one thread: the live path, small frames) or
over several bands side by side (``prange``: full resolution, offline). A band owns rows
[y0, y1): it converts them, sums them and runs the 3x3 stencils and the bright-point ring test
centred on them. The stencils and the ring need STAR_RING rows above and below (the halo): a
band converts those itself, luma only, into a scratch of its own, so bands never write the
same memory and every sum is an integer that merges exactly.

Why the code looks the way it does (measured: the figures are in ``kernels.py``'s notes):
- pixels are read from the flat row (``row[3 * x + c]``): LLVM turns that into one strided load
  per channel; a copy into three int32 scratch rows first cost a fifth of the kernel;
- per-row accumulators are int32 and every product is cast back with ``np.int32``: numba widens
  int32 arithmetic to int64, which halves the vector lanes; colour arithmetic is float32 on
  small integers (exact below 2**24, and not widened);
- the hue and orientation histograms are reductions inside the main loops: a bin index is a
  base plus a count of comparisons, so a histogram is a set of cumulative masked sums (sector
  totals and "at least j comparisons passed" sums), differenced at the end of the row. No
  scatter, no index array, no pass per bin;
- the colour loop also writes each luma row as float32 (a ring of three rows): the stencils
  read nine float32 values a pixel instead of converting nine bytes;
- the stencils stay float32 (int16 lanes were measured slower: the magnitude and orientation
  need 32 bits anyway); the pixel loops run over whole rows: the same colour loop split into
  256-pixel blocks (``for x in range(c0, min(c0 + 256, w))``) compiled to scalar code;
- the only scatter (the luma histogram) sits in a loop of its own, into four sub-histograms so
  that runs of equal values do not wait on each other's stores.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sonify.features import constants as C
from sonify.util.numbacache import forget_stale_in

# The decorator flags, in one place: no GIL (the scheduler thread runs beside analysis), cached
# machine code (no compile at start-up after the first run), numpy error model (no zero-division
# checks in the loops, which would stop vectorisation).
jit = njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)

# Indices into the int64 accumulator vector a band fills.
A_LUMA, A_LUMA2, A_SAT, A_RG, A_RG2, A_YB, A_YB2, A_WARM, A_AWARM = range(9)
A_EDGES, A_LAP, A_MOTION, A_MOTION_X, A_MOTION_Y, A_LUMA_X, A_LUMA_Y, A_STARS = range(9, 17)
N_ACC = 17
SAT_ONE = 1024  # saturation is summed in fixed point: 1.0 == 1024
HALO = C.STAR_RING  # rows above and below a band that its stencils and ring test read

# tan of the orientation bin edges (11.25, 33.75, 56.25 and 78.75 degrees) in float32: for the
# integer gradients of a 3x3 Sobel on 8-bit luma (|g| <= 1020), |gy| >= tan * |gx| in float32
# bins every one of the 1021**2 cases as float64 atan2 does (checked exhaustively).
T1, T2, T3, T4 = (np.float32(math.tan(math.radians(a))) for a in (11.25, 33.75, 56.25, 78.75))

# Every integer the loops touch is int32 (see the module notes): constants too.
I32 = np.int32
F32 = np.float32
LB, LG, LR = F32(C.LUMA_B), F32(C.LUMA_G), F32(C.LUMA_R)
LUMA_HALF = F32(1 << (C.LUMA_SHIFT - 1))
INV_SCALE = F32(1.0 / (1 << C.LUMA_SHIFT))
MCLIP, MGATE = I32(C.MOTION_CLIP), I32(C.MOTION_NOISE_GATE)
EDGE_T2 = F32(C.EDGE_THRESHOLD * C.EDGE_THRESHOLD)
SMIN, SCON = F32(C.STAR_MIN_LEVEL), I32(C.STAR_MIN_CONTRAST)


@jit
def _luma_row(row: np.ndarray, out: np.ndarray, frow: np.ndarray) -> None:
    """Luma only (a halo row), as uint8 and float32: the same arithmetic as the full row."""
    for x in range(out.shape[0]):
        b = F32(row[3 * x])
        g = F32(row[3 * x + 1])
        r = F32(row[3 * x + 2])
        lv = I32((LB * b + LG * g + LR * r + LUMA_HALF) * INV_SCALE)
        out[x] = lv
        frow[x] = F32(lv)


@jit
def _colour_row(row: np.ndarray, lrow: np.ndarray, frow: np.ndarray, bandsum: np.ndarray,
                sums: np.ndarray, hue_raw: np.ndarray) -> None:
    """Luma into ``lrow`` (uint8), ``frow`` (float32, for the stencils) and ``bandsum``; the
    row's colour sums into ``sums`` (indices A_LUMA to A_AWARM) and its chroma-weighted hue
    histogram into ``hue_raw``."""
    w = lrow.shape[0]
    r_luma = I32(0)
    r_luma2 = I32(0)
    r_sat = I32(0)
    r_rg = I32(0)
    r_rg2 = I32(0)
    r_yb = I32(0)
    r_yb2 = I32(0)
    r_warm = I32(0)
    r_awarm = I32(0)
    # hue: per hexcone sector (red, green, blue) its chroma and the chroma of the pixels at
    # least 1, 2, 3, 4 bin edges into it; bin = sector base + edges passed
    hr0 = hr1 = hr2 = hr3 = hr4 = I32(0)
    hg0 = hg1 = hg2 = hg3 = hg4 = I32(0)
    hb0 = hb1 = hb2 = hb3 = hb4 = I32(0)
    zero = I32(0)
    for x in range(w):
        # float32 arithmetic on small integers is exact (all values stay below 2**24)
        # and, unlike int32 in numba, is not widened to 64 bits
        b = F32(row[3 * x])
        g = F32(row[3 * x + 1])
        r = F32(row[3 * x + 2])
        lv = I32((LB * b + LG * g + LR * r + LUMA_HALF) * INV_SCALE)
        lrow[x] = lv
        frow[x] = F32(lv)
        bandsum[x] = I32(bandsum[x] + lv)
        mx = max(b, max(g, r))
        mn = min(b, min(g, r))
        c = mx - mn
        ci = I32(c)
        # hue bin by comparisons: in each hexcone sector hue = base + 60 * v / c, so the
        # bin edges at +-15 and +-45 degrees from the sector centre are 4v vs +-c, +-3c
        isr = mx == r
        isg = mx == g
        v = (g - b) if isr else ((b - r) if isg else (r - g))
        v4 = F32(4) * v
        c3 = F32(3) * c
        wr = ci if isr else zero
        wg = ci if (isg and not isr) else zero
        wb = I32(ci - wr - wg)
        e1 = v4 >= -c3
        e2 = v4 >= -c
        e3 = v4 >= c
        e4 = v4 >= c3
        hr0 = I32(hr0 + wr)
        hr1 = I32(hr1 + (wr if e1 else zero))
        hr2 = I32(hr2 + (wr if e2 else zero))
        hr3 = I32(hr3 + (wr if e3 else zero))
        hr4 = I32(hr4 + (wr if e4 else zero))
        hg0 = I32(hg0 + wg)
        hg1 = I32(hg1 + (wg if e1 else zero))
        hg2 = I32(hg2 + (wg if e2 else zero))
        hg3 = I32(hg3 + (wg if e3 else zero))
        hg4 = I32(hg4 + (wg if e4 else zero))
        hb0 = I32(hb0 + wb)
        hb1 = I32(hb1 + (wb if e1 else zero))
        hb2 = I32(hb2 + (wb if e2 else zero))
        hb3 = I32(hb3 + (wb if e3 else zero))
        hb4 = I32(hb4 + (wb if e4 else zero))
        sat = c / max(mx, F32(1))
        rg = r - g
        yb = r + g - F32(2) * b  # twice Hasler's yb, halved at the end
        wd = r - b
        r_luma = I32(r_luma + lv)
        r_luma2 = I32(r_luma2 + I32(lv * lv))
        r_sat = I32(r_sat + I32(sat * F32(SAT_ONE) + F32(0.5)))
        r_rg = I32(r_rg + I32(rg))
        r_rg2 = I32(r_rg2 + I32(rg * rg))
        r_yb = I32(r_yb + I32(yb))
        r_yb2 = I32(r_yb2 + I32(yb * yb))
        r_warm = I32(r_warm + I32(wd))
        r_awarm = I32(r_awarm + I32(abs(wd)))
    # sector bases: red 10 (bins 10, 11, 0, 1, 2), green 2 (2..6), blue 6 (6..10)
    hue_raw[10] += hr0 - hr1 + hb4
    hue_raw[11] += hr1 - hr2
    hue_raw[0] += hr2 - hr3
    hue_raw[1] += hr3 - hr4
    hue_raw[2] += hr4 + hg0 - hg1
    hue_raw[3] += hg1 - hg2
    hue_raw[4] += hg2 - hg3
    hue_raw[5] += hg3 - hg4
    hue_raw[6] += hg4 + hb0 - hb1
    hue_raw[7] += hb1 - hb2
    hue_raw[8] += hb2 - hb3
    hue_raw[9] += hb3 - hb4
    sums[A_LUMA] = r_luma
    sums[A_LUMA2] = r_luma2
    sums[A_SAT] = r_sat
    sums[A_RG] = r_rg
    sums[A_RG2] = r_rg2
    sums[A_YB] = r_yb
    sums[A_YB2] = r_yb2
    sums[A_WARM] = r_warm
    sums[A_AWARM] = r_awarm


@jit
def _stencil_row(up: np.ndarray, mid: np.ndarray, dn: np.ndarray, flags: np.ndarray,
                 sums: np.ndarray, orient: np.ndarray) -> int:
    """Sobel, Laplacian and the peak test on the row ``mid`` (float32 luma rows: read as they
    are, not converted from bytes nine times a pixel): edges and |Laplacian| into ``sums``, the
    magnitude-weighted orientation histogram into ``orient``, local-maximum flags into
    ``flags``. Returns the number of peaks."""
    w = mid.shape[0]
    r_edges = I32(0)
    r_lap = I32(0)
    r_peaks = I32(0)
    # orientation: the magnitude of every edge pixel, and of those at least 1..4 bin edges
    # away from horizontal, all pixels (o) and those whose gradient does not flip (n)
    o0 = o1 = o2 = o3 = o4 = I32(0)
    n1 = n2 = n3 = n4 = I32(0)
    zero = I32(0)
    for x in range(1, w - 1):
        ul = up[x - 1]
        uc = up[x]
        ur = up[x + 1]
        ml = mid[x - 1]
        mc = mid[x]
        mr = mid[x + 1]
        dl = dn[x - 1]
        dc = dn[x]
        dr = dn[x + 1]
        gx = (ur + F32(2) * mr + dr) - (ul + F32(2) * ml + dl)
        gy = (dl + F32(2) * dc + dr) - (ul + F32(2) * uc + ur)
        lap = F32(8) * mc - (ul + uc + ur + ml + mr + dl + dc + dr)
        r_lap = I32(r_lap + I32(abs(lap)))
        ax = abs(gx)
        ay = abs(gy)
        # Euclidean magnitude: |gx| + |gy| would favour diagonals by up to sqrt(2) and
        # tilt the orientation histogram of an isotropic picture towards them
        mag2 = gx * gx + gy * gy  # exact in float32: at most 2 * 1020**2
        edge = mag2 >= EDGE_T2
        r_edges = I32(r_edges + I32(edge))
        m = I32(np.sqrt(mag2) + F32(0.5)) if edge else zero
        mn = m if gx * gy >= F32(0) else zero
        k1 = ay >= T1 * ax
        k2 = ay >= T2 * ax
        k3 = ay >= T3 * ax
        k4 = ay >= T4 * ax
        o0 = I32(o0 + m)
        o1 = I32(o1 + (m if k1 else zero))
        o2 = I32(o2 + (m if k2 else zero))
        o3 = I32(o3 + (m if k3 else zero))
        o4 = I32(o4 + (m if k4 else zero))
        n1 = I32(n1 + (mn if k1 else zero))
        n2 = I32(n2 + (mn if k2 else zero))
        n3 = I32(n3 + (mn if k3 else zero))
        n4 = I32(n4 + (mn if k4 else zero))
        # a bright point's peak: strictly above the neighbours met earlier in raster
        # order, at least the later ones (a flat top counts once)
        pk = (
            (mc >= SMIN) & (mc > ul) & (mc > uc) & (mc > ur) & (mc > ml)
            & (mc >= mr) & (mc >= dl) & (mc >= dc) & (mc >= dr)
        )
        flags[x] = pk
        r_peaks = I32(r_peaks + I32(pk))
    flags[0] = 0
    flags[w - 1] = 0
    # k edges passed puts a gradient in bin k, or 8 - k when gx * gy < 0 and 0 < k < 4
    orient[0] += o0 - o1
    orient[4] += o4
    orient[1] += n1 - n2
    orient[2] += n2 - n3
    orient[3] += n3 - n4
    orient[7] += (o1 - n1) - (o2 - n2)
    orient[6] += (o2 - n2) - (o3 - n3)
    orient[5] += (o3 - n3) - (o4 - n4)
    sums[A_EDGES] += r_edges
    sums[A_LAP] += r_lap
    return int(r_peaks)


@jit
def _row(lum: np.ndarray, halo: np.ndarray, y: int, y0: int, y1: int) -> np.ndarray:
    """Luma row ``y``: the band's own rows live in ``lum``, its halo rows in ``halo``."""
    if y < y0:
        return halo[y - y0 + HALO]
    if y >= y1:
        return halo[HALO + y - y1]
    return lum[y]


@jit
def band_stats(
    img: np.ndarray,
    prev: np.ndarray,
    has_prev: bool,
    lum: np.ndarray,
    y0: int,
    y1: int,
    acc: np.ndarray,
    hue_raw: np.ndarray,
    orient: np.ndarray,
    lhist: np.ndarray,
    gridsum: np.ndarray,
    stars: np.ndarray,
) -> int:
    """Rows [y0, y1) of ``img`` (H x 3W uint8, the flat BGR rows): their luma into ``lum`` and
    their sums added into the outputs; the band's brightest points into ``stars`` as raw
    (x, y, level), brightest first, raster order among equals. Returns how many it kept.

    Row y is converted first; the 3x3 stencils then run on row y - 1 and the ring test on row
    y - 1 - STAR_RING, so each luma row is still in cache when they read it.
    """
    h = img.shape[0]
    w = lum.shape[1]
    rr = C.STAR_RING
    halo = np.zeros((2 * HALO, w), np.uint8)
    colsum = np.zeros(w, np.int64)
    bandsum = np.zeros(w, np.int32)
    mcolsum = np.zeros(w, np.int32)
    sums = np.zeros(N_ACC, np.int64)
    # local-maximum flags of the last rows, for the ring test a few rows later
    peak_rows = np.zeros((rr + 2, w), np.uint8)
    peak_count = np.zeros(rr + 2, np.int32)
    hist4 = np.zeros((4, C.LUMA_HIST_BINS), np.int32)
    # float32 copies of the last three luma rows (row y in slot y % 3), for the stencils
    lumf = np.zeros((3, w), np.float32)
    gi = 0  # the grid row that bandsum is collecting
    s_motion = np.int64(0)
    s_motion_y = np.int64(0)
    s_luma_y = np.int64(0)
    n_stars = 0
    kept = 0
    for y in range(max(0, y0 - HALO), y1 + HALO + 1):
        if y < h and (y < y0 or y >= y1):
            if y < y1 + HALO:
                _luma_row(img[y], _row(lum, halo, y, y0, y1), lumf[y % 3])
        elif y < h:
            # close the grid rows that end here (several, empty ones, when h < GRID_ROWS)
            while gi < C.GRID_ROWS - 1 and y >= (gi + 1) * h // C.GRID_ROWS:
                _flush_grid(bandsum, colsum, gridsum[gi])
                gi += 1
            lrow = lum[y]
            _colour_row(img[y], lrow, lumf[y % 3], bandsum, sums, hue_raw)
            for i in range(A_LUMA, A_AWARM + 1):
                acc[i] += sums[i]
            s_luma_y += sums[A_LUMA] * y
            _luma_hist(lrow, hist4)
            if has_prev:
                prow = prev[y]
                r_motion = I32(0)
                for x in range(w):
                    d = abs(I32(I32(lrow[x]) - I32(prow[x])))
                    mv = I32(min(d, MCLIP)) if d > MGATE else I32(0)
                    mcolsum[x] = I32(mcolsum[x] + mv)
                    r_motion = I32(r_motion + mv)
                s_motion += r_motion
                s_motion_y += np.int64(r_motion) * y
        # 3x3 stencils on the row above, now that its lower neighbour exists.
        yc = y - 1
        if y0 <= yc < y1 and 1 <= yc < h - 1:
            flags = peak_rows[yc % (rr + 2)]
            peak_count[yc % (rr + 2)] = _stencil_row(
                lumf[(yc - 1) % 3], lumf[yc % 3], lumf[(yc + 1) % 3], flags, acc, orient)
        # ring test for the peaks found STAR_RING rows earlier: all the rows it reads exist now
        ys = yc - rr
        if y0 <= ys < y1 and rr <= ys < h - rr and peak_count[ys % (rr + 2)] > 0:
            found = _ring_test(lum, halo, ys, y0, y1, peak_rows[ys % (rr + 2)], stars, kept)
            n_stars += found >> 8
            kept = found & 0xFF
    _flush_grid(bandsum, colsum, gridsum[gi])
    s_luma_x = np.int64(0)
    s_motion_x = np.int64(0)
    for x in range(w):
        s_luma_x += colsum[x] * x
        s_motion_x += np.int64(mcolsum[x]) * x
    for kb in range(C.LUMA_HIST_BINS):
        lhist[kb] += hist4[0, kb] + hist4[1, kb] + hist4[2, kb] + hist4[3, kb]
    acc[A_MOTION] += s_motion
    acc[A_MOTION_X] += s_motion_x
    acc[A_MOTION_Y] += s_motion_y
    acc[A_LUMA_X] += s_luma_x
    acc[A_LUMA_Y] += s_luma_y
    acc[A_STARS] += n_stars
    return kept


@jit
def _flush_grid(bandsum: np.ndarray, colsum: np.ndarray, cells: np.ndarray) -> None:
    """Add the collected column sums of one grid row to its cells and to the column totals."""
    w = bandsum.shape[0]
    for j in range(C.GRID_COLS):
        cell = np.int64(0)
        for x in range(j * w // C.GRID_COLS, (j + 1) * w // C.GRID_COLS):
            cell += bandsum[x]
        cells[j] += cell
    for x in range(w):
        colsum[x] += bandsum[x]
        bandsum[x] = 0


@jit
def _luma_hist(lrow: np.ndarray, hist4: np.ndarray) -> None:
    w = lrow.shape[0]
    x = 0
    while x + 4 <= w:
        hist4[0, lrow[x] >> 3] += 1
        hist4[1, lrow[x + 1] >> 3] += 1
        hist4[2, lrow[x + 2] >> 3] += 1
        hist4[3, lrow[x + 3] >> 3] += 1
        x += 4
    while x < w:
        hist4[0, lrow[x] >> 3] += 1
        x += 1


@jit
def _ring_test(lum: np.ndarray, halo: np.ndarray, ys: int, y0: int, y1: int,
               flags: np.ndarray, stars: np.ndarray, kept: int) -> int:
    """The peaks of row ``ys`` that stand STAR_MIN_CONTRAST above their whole ring, into the
    brightest-first list. Returns (stars found << 8) | kept."""
    rr = C.STAR_RING
    if y0 <= ys - rr and ys + rr < y1:
        return _ring_scan(lum, ys, ys, flags, stars, kept)
    # near the band's edge: gather the rows the ring reads (some in the halo) into a window
    window = np.empty((2 * rr + 1, lum.shape[1]), np.uint8)
    for off in range(-rr, rr + 1):
        window[rr + off] = _row(lum, halo, ys + off, y0, y1)
    return _ring_scan(window, rr, ys, flags, stars, kept)


@jit
def _ring_scan(rows: np.ndarray, yc: int, ys: int, flags: np.ndarray, stars: np.ndarray,
               kept: int) -> int:
    """``_ring_test`` on the luma rows ``rows`` around its row ``yc`` (frame row ``ys``)."""
    rr = C.STAR_RING
    w = rows.shape[1]
    found = 0
    for x in range(rr, w - rr):
        if flags[x] == 0:
            continue
        v = rows[yc, x]
        limit = I32(I32(v) - SCON)
        ok = True
        for off in range(-rr, rr + 1):
            if (
                rows[yc - rr, x + off] > limit
                or rows[yc + rr, x + off] > limit
                or rows[yc + off, x - rr] > limit
                or rows[yc + off, x + rr] > limit
            ):
                ok = False
                break
        if not ok:
            continue
        found += 1
        kept = keep_brightest(stars, kept, x, ys, v)
    return (found << 8) | kept


@jit
def keep_brightest(points: np.ndarray, kept: int, x: float, y: float, level: float) -> int:
    """Insert (x, y, level) into the brightest-first list; an equal level keeps raster order."""
    cap = points.shape[0]
    pos = kept
    while pos > 0 and points[pos - 1, 2] < level:
        pos -= 1
    if pos >= cap:
        return kept
    last = min(kept, cap - 1)
    for i in range(last, pos, -1):
        points[i, 0] = points[i - 1, 0]
        points[i, 1] = points[i - 1, 1]
        points[i, 2] = points[i - 1, 2]
    points[pos, 0] = x
    points[pos, 1] = y
    points[pos, 2] = level
    return min(kept + 1, cap)


forget_stale_in(globals())  # numba's cache misses edits to the modules these kernels use
