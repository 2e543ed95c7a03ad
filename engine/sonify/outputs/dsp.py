"""The WAV master's signal kernels: the BS.1770 loudness meter and the limiter's running filters.

``mastering.py`` used pyloudnorm (the meter) and SciPy's ``minimum_filter1d`` and
``uniform_filter1d`` (the limiter). Importing them costs more than rendering a minute of audio:
pyloudnorm imports ``scipy.signal``, which imports ``scipy.stats`` and parses docstrings, about
1.3 s of a 4 s ``sonify render`` process (measured with py-spy). These are the same computations
as small numba loops (``nogil=True, cache=True``; numba is loaded for the analysis anyway):

- ``integrated_loudness``: ITU-R BS.1770-4 as pyloudnorm does it (the same RBJ-cookbook
  K-weighting biquads, 400 ms blocks every 100 ms with pyloudnorm's block bounds, gated at
  -70 LUFS absolute and -10 LU relative). It agrees with pyloudnorm to within float rounding
  (``tests/outputs/test_dsp.py`` holds the two side by side).
- ``running_min``: SciPy's ``minimum_filter1d(x, 2 * half + 1, mode="nearest")``, exactly
  (a monotonic queue: O(n) whatever the window).
- ``running_mean``: SciPy's ``uniform_filter1d(x, 2 * half + 1, mode="nearest")``, with SciPy's
  running-sum recurrence (the two agree to about 1e-13).

Determinism: sequential loops in float64, no threads: the same samples give the same numbers.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sonify.util.numbacache import forget_stale_in

_jit = numba.njit(nogil=True, cache=True)

BLOCK_S = 0.4  # BS.1770 gating block
OVERLAP = 0.75  # blocks start every BLOCK_S * (1 - OVERLAP) = 100 ms
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


def _biquad(kind: str, gain_db: float, q: float, fc: float, rate: float) -> np.ndarray:
    """``[b0, b1, b2, a1, a2]`` (normalised by a0) of an RBJ-cookbook high shelf or high pass,
    as pyloudnorm's ``IIRfilter`` makes them for its K-weighting."""
    a = 10 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * (fc / rate)
    alpha = math.sin(w0) / (2.0 * q)
    cos = math.cos(w0)
    if kind == "high_shelf":
        sq = 2 * math.sqrt(a) * alpha
        b = (a * ((a + 1) + (a - 1) * cos + sq), -2 * a * ((a - 1) + (a + 1) * cos),
             a * ((a + 1) + (a - 1) * cos - sq))
        den = ((a + 1) - (a - 1) * cos + sq, 2 * ((a - 1) - (a + 1) * cos),
               (a + 1) - (a - 1) * cos - sq)
    elif kind == "high_pass":
        b = ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2)
        den = (1 + alpha, -2 * cos, 1 - alpha)
    else:
        raise ValueError(f"no biquad {kind!r}: 'high_shelf' or 'high_pass'")
    return np.array([b[0] / den[0], b[1] / den[0], b[2] / den[0], den[1] / den[0],
                     den[2] / den[0]])


def k_weighting(rate: float) -> np.ndarray:
    """The two K-weighting sections for ``rate`` Hz, shape (2, 5): a +4 dB high shelf at
    1500 Hz, then a high pass at 38 Hz."""
    return np.stack([_biquad("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0, rate),
                     _biquad("high_pass", 0.0, 0.5, 38.0, rate)])


@_jit
def _weighted_power(left: np.ndarray, right: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Per sample, left^2 + right^2 after the cascade ``sos`` (transposed direct form II from
    rest, as ``scipy.signal.lfilter``)."""
    n = left.shape[0]
    out = np.zeros(n)
    for ch in range(2):
        x = left if ch == 0 else right
        z = np.zeros((sos.shape[0], 2))
        for i in range(n):
            v = np.float64(x[i])
            for s in range(sos.shape[0]):
                y = sos[s, 0] * v + z[s, 0]
                z[s, 0] = sos[s, 1] * v + z[s, 1] - sos[s, 3] * y
                z[s, 1] = sos[s, 2] * v - sos[s, 4] * y
                v = y
            out[i] += v * v
    return out


@_jit
def _block_sums(power: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    out = np.empty(lows.shape[0])
    for j in range(lows.shape[0]):
        total = 0.0
        for i in range(lows[j], min(highs[j], power.shape[0])):
            total += power[i]
        out[j] = total
    return out


def integrated_loudness(left: np.ndarray, right: np.ndarray, rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness of a stereo signal in LUFS (``-inf`` for silence or a
    signal under the absolute gate). At least one block long (the caller pads)."""
    n = len(left)
    if n != len(right):
        raise ValueError(f"left and right differ in length: {n} and {len(right)} samples")
    if n < BLOCK_S * rate:
        raise ValueError(f"{n} samples are shorter than one {BLOCK_S:g} s block at {rate} Hz")
    power = _weighted_power(np.ascontiguousarray(left), np.ascontiguousarray(right),
                            k_weighting(float(rate)))
    step = 1.0 - OVERLAP
    count = int(np.round((n / rate - BLOCK_S) / (BLOCK_S * step))) + 1
    j = np.arange(count, dtype=np.float64)
    # pyloudnorm's bounds, the same float expressions truncated the same way
    lows = (BLOCK_S * (j * step) * rate).astype(np.int64)
    highs = (BLOCK_S * (j * step + 1) * rate).astype(np.int64)
    z = _block_sums(power, lows, highs) * (1.0 / (BLOCK_S * rate))
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(z)
    above = block_lufs >= ABSOLUTE_GATE_LUFS
    if not above.any():
        return -math.inf
    relative = -0.691 + 10.0 * math.log10(float(np.mean(z[above]))) + RELATIVE_GATE_LU
    gated = (block_lufs > relative) & above
    if not gated.any():
        return -math.inf
    return -0.691 + 10.0 * math.log10(float(np.mean(z[gated])))


@_jit
def _running_min(x: np.ndarray, half: int) -> np.ndarray:
    n = x.shape[0]
    out = np.empty(n)
    queue = np.empty(n, np.int64)  # indices of increasing values: the window's candidates
    head = 0
    tail = 0
    pushed = 0
    for i in range(n):
        last = min(n - 1, i + half)
        while pushed <= last:
            while tail > head and x[queue[tail - 1]] >= x[pushed]:
                tail -= 1
            queue[tail] = pushed
            tail += 1
            pushed += 1
        while queue[head] < i - half:
            head += 1
        out[i] = x[queue[head]]
    return out


def running_min(x: np.ndarray, half: int) -> np.ndarray:
    """The minimum of ``x`` over ``half`` samples either side (the window clipped at the ends:
    SciPy's ``minimum_filter1d(x, 2 * half + 1, mode="nearest")``), float64."""
    if half < 0:
        raise ValueError(f"half must be >= 0, got {half}")
    return _running_min(np.ascontiguousarray(x, dtype=np.float64), half)


@_jit
def _running_mean(x: np.ndarray, half: int) -> np.ndarray:
    n = x.shape[0]
    size = 2 * half + 1
    out = np.empty(n)
    if n == 0:
        return out
    # the line extended by its edge values (mode "nearest"), read through clamped indices
    total = 0.0
    for k in range(-half, half + 1):
        total += x[min(max(k, 0), n - 1)]
    total /= size
    out[0] = total
    for i in range(1, n):
        total += (x[min(i + half, n - 1)] - x[max(i - half - 1, 0)]) / size
        out[i] = total
    return out


def running_mean(x: np.ndarray, half: int) -> np.ndarray:
    """The mean of ``x`` over ``half`` samples either side, edges extended (SciPy's
    ``uniform_filter1d(x, 2 * half + 1, mode="nearest")``, its recurrence), float64."""
    if half < 0:
        raise ValueError(f"half must be >= 0, got {half}")
    return _running_mean(np.ascontiguousarray(x, dtype=np.float64), half)


@_jit
def _peak_oversampled(x: np.ndarray, phases: np.ndarray) -> float:
    """max |x| and max |correlate(x, phase, "valid")| over the three interpolating phases, each
    sample read once for all three."""
    n = x.shape[0]
    taps = phases.shape[1]
    peak = 0.0
    for i in range(n):
        v = abs(np.float64(x[i]))
        if v > peak:
            peak = v
    for i in range(n - taps + 1):
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        for m in range(taps):
            v = np.float64(x[i + m])
            a0 += v * phases[0, m]
            a1 += v * phases[1, m]
            a2 += v * phases[2, m]
        top = max(abs(a0), abs(a1), abs(a2))
        if top > peak:
            peak = top
    return peak


def peak_oversampled(x: np.ndarray, phases: np.ndarray) -> float:
    """The highest absolute value of ``x`` and of its interpolations (each of the three rows
    of ``phases`` a filter read across ``x`` as ``np.correlate(x, row, "valid")``)."""
    if phases.ndim != 2 or phases.shape[0] != 3:
        raise ValueError(f"phases must be 3 filters (4x oversampling), got shape {phases.shape}")
    if len(x) < phases.shape[1]:
        return float(np.max(np.abs(x), initial=0.0))
    return float(_peak_oversampled(np.ascontiguousarray(x),
                                   np.ascontiguousarray(phases, dtype=np.float64)))


@_jit
def _wavetable(table: np.ndarray, inc: int, phase: int, n: int, shift: int) -> np.ndarray:
    out = np.empty(n, np.float32)
    for i in range(n):  # i * inc < 2**63 for any note shorter than a day at 44.1 kHz
        out[i] = table[((i * inc + phase) & 0xFFFFFFFF) >> shift]
    return out


def wavetable(table: np.ndarray, inc: int, phase: int, n: int, shift: int) -> np.ndarray:
    """``n`` samples of ``table`` read by a 32-bit fixed-point phase that starts at ``phase``
    and steps by ``inc`` (both wrap modulo 2**32), its top bits (``>> shift``) the index:
    NumPy's ``table[((arange(n, uint32) * inc + phase) >> shift)]`` in one pass, no ramp."""
    if not (0 <= inc < 1 << 32 and 0 <= phase < 1 << 32):
        raise ValueError(f"inc and phase must be 32-bit phases, got {inc} and {phase}")
    if len(table) << shift != 1 << 32:
        raise ValueError(f"a table of {len(table)} entries is not read by the top "
                         f"{32 - shift} bits of the phase")
    return _wavetable(table, inc, phase, n, shift)


forget_stale_in(globals())  # numba's cache misses edits to the modules these kernels use
