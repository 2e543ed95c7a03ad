"""After the kernel: scene cut, onsets, smoothing and mood for one frame, in one ``nogil`` call.

``smoothing.py`` (``OnePole``, ``Onset``) and ``mood.py`` (``valence_arousal``, ``label``) are
the readable specification; this module computes the same numbers (within 1e-9, onsets
identical: tested against them) on preallocated float64 arrays, so the Python part of
``Analyzer.analyze`` is a handful of attribute reads and two dicts built from arrays. That part
holds the GIL; done the Python way (a dozen objects, dict walks, NumPy calls on 12-element
arrays) it cost about 0.5 ms a frame and, beside a busy Python thread, a GIL hand-off at each of
its NumPy calls.

State layout: one row per scalar feature in ``SCALAR_NAMES`` order, plus one last row for the
slow level of the star count that ``stars_onset`` measures rises against; three onsets (motion,
cut, stars); the previous frame's luma and chroma histograms for ``scene_cut``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sonify.features import mood
from sonify.features.registry import MOOD_LABELS, ONSET_NAMES, SCALAR_NAMES, SCALARS
from sonify.util.numbacache import forget_stale_in

jit = njit(nogil=True, cache=True, error_model="numpy")

N = len(SCALAR_NAMES)
IDX = {name: i for i, name in enumerate(SCALAR_NAMES)}
I_STARS_LEVEL = N  # the extra smoothing row
STARS_LEVEL_TAU_S = 2.0
I_MOTION, I_SCENE_CUT, I_STARS = IDX["motion"], IDX["scene_cut"], IDX["stars"]
I_MOTION_ONSET, I_CUT_ONSET, I_STARS_ONSET = (IDX[n] for n in ONSET_NAMES)
I_VALENCE, I_AROUSAL = IDX["valence"], IDX["arousal"]
MOOD_IN = np.array([IDX[n] for n in mood.INPUTS], np.int64)
PROTOTYPES = np.array([mood.PROTOTYPES[k] for k in MOOD_LABELS], np.float64)
MOOD_K = np.array([mood.COLOUR_FULL, mood.YELLOW_CHROMA, mood.EDGE_FULL, mood.TEXTURE_FULL,
                   *mood.VALENCE_SPAN, *mood.AROUSAL_SPAN], np.float64)
TWO_PI = 2.0 * math.pi
assert ONSET_NAMES == ("motion_onset", "cut_onset", "stars_onset")
assert SCALAR_NAMES[-2:] == ("valence", "arousal")


class PostState:
    """Every number the per-frame work after the kernel carries from frame to frame."""

    __slots__ = ("tau", "circular", "value", "has", "t_last", "cos", "sin", "high", "low",
                 "min_interval", "armed", "last", "prev_luma", "prev_hue", "has_prev", "label")

    def __init__(self, smoothing_s: dict[str, float], onsets: tuple[tuple[float, float], ...],
                 min_interval_s: float) -> None:
        self.tau = np.array([smoothing_s.get(s.name, s.tau_s) for s in SCALARS]
                            + [STARS_LEVEL_TAU_S], np.float64)
        if (self.tau < 0).any():
            bad = {s.name: t for s, t in zip(SCALARS, self.tau[:N], strict=True) if t < 0}
            raise ValueError(f"smoothing time constants must be >= 0 s, got {bad}")
        self.circular = np.array([s.circular for s in SCALARS] + [False], np.bool_)
        self.value = np.zeros(N + 1)
        self.has = np.zeros(N + 1, np.bool_)
        self.t_last = np.zeros(N + 1)
        self.cos = np.zeros(N + 1)
        self.sin = np.zeros(N + 1)
        for name, (high, low) in zip(ONSET_NAMES, onsets, strict=True):
            if not low < high:
                raise ValueError(f"{name} needs low < high, got low={low} high={high}")
        self.high = np.array([hi for hi, _ in onsets], np.float64)
        self.low = np.array([lo for _, lo in onsets], np.float64)
        self.min_interval = np.full(3, min_interval_s)
        self.armed = np.ones(3, np.bool_)
        self.last = np.full(3, -np.inf)
        self.prev_luma = np.zeros(0)
        self.prev_hue = np.zeros(0)
        self.has_prev = np.zeros(1, np.bool_)
        self.label = np.zeros(1, np.int64)

    def reset(self) -> None:
        """Forget the previous frame and every smoothed value (the onsets keep their arming)."""
        self.has[:] = False
        self.has_prev[0] = False


@jit
def _smooth(i: int, x: float, t: float, tau: np.ndarray, circular: np.ndarray, value: np.ndarray,
            has: np.ndarray, t_last: np.ndarray, cs: np.ndarray, sn: np.ndarray) -> float:
    """``OnePole.update`` for row ``i``."""
    if not has[i] or tau[i] == 0.0:
        alpha = 1.0
    else:
        alpha = 1.0 - math.exp(-max(0.0, t - t_last[i]) / tau[i])
    t_last[i] = t
    if circular[i]:
        angle = TWO_PI * x
        if alpha >= 1.0:
            cs[i] = 0.0
            sn[i] = 0.0
        cs[i] += alpha * (math.cos(angle) - cs[i])
        sn[i] += alpha * (math.sin(angle) - sn[i])
        if cs[i] == 0.0 and sn[i] == 0.0:
            value[i] = x
        else:
            value[i] = (math.atan2(sn[i], cs[i]) / TWO_PI) % 1.0
    elif alpha >= 1.0 or not has[i]:
        value[i] = x
    else:
        value[i] += alpha * (x - value[i])
    has[i] = True
    return value[i]


@jit
def _onset(k: int, x: float, t: float, high: np.ndarray, low: np.ndarray,
           min_interval: np.ndarray, armed: np.ndarray, last: np.ndarray) -> float:
    """``Onset.update`` for onset ``k``: 1.0 on the frame it fires, else 0.0."""
    if armed[k]:
        if x >= high[k] and t - last[k] >= min_interval[k]:
            armed[k] = False
            last[k] = t
            return 1.0
    elif x <= low[k]:
        armed[k] = True
    return 0.0


@jit
def _stretch(x: float, lo: float, hi: float) -> float:
    u = (x - lo) / (hi - lo)
    if math.isnan(u):
        return 0.0
    return 0.0 if u < 0.0 else 1.0 if u > 1.0 else u


@jit
def _valence_arousal(raw: np.ndarray, hue_hist: np.ndarray, axis: np.ndarray,
                     k: np.ndarray) -> tuple[float, float]:
    """``mood.valence_arousal`` over ``raw`` (rows in ``SCALAR_NAMES`` order)."""
    light, chroma, colorful = raw[MOOD_IN[0]], raw[MOOD_IN[1]], raw[MOOD_IN[2]]
    edges, texture, contrast, motion = (raw[MOOD_IN[3]], raw[MOOD_IN[4]], raw[MOOD_IN[5]],
                                        raw[MOOD_IN[6]])
    colour = min(1.0, 0.5 * (chroma + colorful) / k[0])
    total = 0.0
    lean = 0.0
    for b in range(hue_hist.shape[0]):
        total += hue_hist[b]
        lean += hue_hist[b] * axis[b]
    yellow = 0.0 if total <= 0.0 else lean / total * min(1.0, chroma / k[1])
    detail = 0.5 * (min(1.0, edges / k[2]) + min(1.0, texture / k[3]))
    valence_raw = 0.50 * light + 0.35 * colour + 0.15 * yellow
    arousal_raw = (0.40 * colour + 0.10 * max(0.0, yellow) + 0.10 * (light - 0.5)
                   + 0.25 * detail + 0.10 * contrast + 0.25 * motion)
    return _stretch(valence_raw, k[4], k[5]), _stretch(arousal_raw, k[6], k[7])


@jit
def _post(raw: np.ndarray, values: np.ndarray, luma_hist: np.ndarray, hue_mass: np.ndarray,
          hue_hist: np.ndarray, t: float, still: bool, tau: np.ndarray, circular: np.ndarray,
          value: np.ndarray, has: np.ndarray, t_last: np.ndarray, cs: np.ndarray,
          sn: np.ndarray, high: np.ndarray, low: np.ndarray, min_interval: np.ndarray,
          armed: np.ndarray, last: np.ndarray, prev_luma: np.ndarray, prev_hue: np.ndarray,
          has_prev: np.ndarray, axis: np.ndarray, k: np.ndarray, prototypes: np.ndarray,
          label: np.ndarray) -> None:
    """The analyzer's per-frame work after the kernel; ``raw`` holds the kernel's scalars on
    entry and every raw scalar on return, ``values`` the smoothed ones, ``label[0]`` the mood."""
    if not has_prev[0] or still:
        cut = 0.0  # the first picture, or the eye moving over a still one
    else:
        d_luma = 0.0
        for b in range(luma_hist.shape[0]):
            d_luma += abs(luma_hist[b] - prev_luma[b])
        d_chroma = 0.0
        for b in range(hue_mass.shape[0]):
            d_chroma += abs(hue_mass[b] - prev_hue[b])
        cut = min(1.0, max(0.5 * d_luma, 0.5 * d_chroma))
    prev_luma[:] = luma_hist
    prev_hue[:] = hue_mass
    has_prev[0] = True
    raw[I_SCENE_CUT] = cut
    raw[I_MOTION_ONSET] = _onset(0, raw[I_MOTION], t, high, low, min_interval, armed, last)
    raw[I_CUT_ONSET] = _onset(1, cut, t, high, low, min_interval, armed, last)
    s = I_STARS_LEVEL
    rise = raw[I_STARS] - value[s] if has[s] else 0.0
    raw[I_STARS_ONSET] = _onset(2, rise, t, high, low, min_interval, armed, last)
    _smooth(s, raw[I_STARS], t, tau, circular, value, has, t_last, cs, sn)
    if raw[I_CUT_ONSET] != 0.0:
        # a new picture: let the slow features jump to it instead of gliding from the old
        for i in range(I_VALENCE):
            has[i] = False
    for i in range(I_VALENCE):
        values[i] = _smooth(i, raw[i], t, tau, circular, value, has, t_last, cs, sn)
    valence, arousal = _valence_arousal(raw, hue_hist, axis, k)
    raw[I_VALENCE] = valence
    raw[I_AROUSAL] = arousal
    values[I_VALENCE] = _smooth(I_VALENCE, valence, t, tau, circular, value, has, t_last, cs, sn)
    values[I_AROUSAL] = _smooth(I_AROUSAL, arousal, t, tau, circular, value, has, t_last, cs, sn)
    best, best_d = 0, np.inf
    for j in range(prototypes.shape[0]):
        d = ((prototypes[j, 0] - values[I_VALENCE]) ** 2
             + (prototypes[j, 1] - values[I_AROUSAL]) ** 2)
        if d < best_d:
            best, best_d = j, d
    label[0] = best


_AXIS = np.ascontiguousarray(mood._YELLOW_AXIS, np.float64)


def post(state: PostState, raw: np.ndarray, values: np.ndarray, luma_hist: np.ndarray,
         hue_mass: np.ndarray, hue_hist: np.ndarray, t: float, still: bool) -> str:
    """Complete ``raw`` and fill ``values`` (float64, ``SCALAR_NAMES`` order) for one frame;
    returns the mood label."""
    s = state
    if s.prev_luma.shape != luma_hist.shape or s.prev_hue.shape != hue_mass.shape:
        s.prev_luma = np.zeros(luma_hist.shape)
        s.prev_hue = np.zeros(hue_mass.shape)
        s.has_prev[0] = False
    _post(raw, values, luma_hist, hue_mass, hue_hist, t, still, s.tau, s.circular, s.value,
          s.has, s.t_last, s.cos, s.sin, s.high, s.low, s.min_interval, s.armed, s.last,
          s.prev_luma, s.prev_hue, s.has_prev, _AXIS, MOOD_K, PROTOTYPES, s.label)
    return MOOD_LABELS[s.label[0]]


def warmup() -> None:
    """Compile (or load from numba's cache) the kernel now."""
    from sonify.features import constants as C

    state = PostState({}, ((0.25, 0.1), (0.4, 0.15), (2.0, 0.5)), 0.1)
    raw, values = np.zeros(N), np.zeros(N)
    for t in (0.0, 0.1):
        post(state, raw, values, np.zeros(C.LUMA_HIST_BINS), np.zeros(C.HUE_BINS),
             np.zeros(C.HUE_BINS), t, False)


forget_stale_in(globals())  # numba's cache misses edits to the modules these kernels use
