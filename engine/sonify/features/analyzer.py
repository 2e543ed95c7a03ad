"""Frames in, Features out: downscale, the fused kernel, smoothing, onsets and mood.

Three calls that run without the GIL do the work: ``downscale.Downscaler`` (area averages of
pixel blocks, one read of the frame), ``kernels.frame_stats`` and ``post.post`` (scene cut,
onsets, smoothing, mood on preallocated arrays). What is left in Python is a few attribute reads
and two dicts built from arrays, so a busy Python thread beside the analysis (the dispatch or
control thread) loses little of its time, and the analysis few hand-offs of the GIL.

Motion and scene cuts come from what moves in the picture: a frame marked ``still`` (a window
travelling over a still picture, see ``capture/travel.py``) reads motion 0 (centroid 0.5, 0.5)
and scene_cut 0, so their onsets never fire on it. The pan and zoom are known, not seen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sonify.capture.base import Frame
from sonify.features import downscale as ds
from sonify.features import kernels, post
from sonify.features.downscale import downscale
from sonify.features.registry import ARRAY_NAMES, ONSET_NAMES, SCALAR_NAMES
from sonify.util.numbacache import needs_compiling

DEFAULT_WIDTH = 480  # analysis width in pixels; the height keeps the frame's aspect ratio

# Raw features that feed the derived ones below; the kernels compute them.
KERNEL_SCALARS = tuple(n for n in SCALAR_NAMES if n not in
                       ("scene_cut", *ONSET_NAMES, "valence", "arousal"))
assert SCALAR_NAMES[:len(KERNEL_SCALARS)] == KERNEL_SCALARS  # post.py fills the rest in place

__all__ = ["Analyzer", "AnalyzerConfig", "Features", "downscale", "kernels_need_compiling"]


@dataclass(slots=True)
class Features:
    """One frame's analysis: smoothed scalars (``values``), their raw per-frame values
    (``raw``), the small arrays, and the mood label. ``features["warmth"]`` reads a smoothed
    scalar or an array by name."""

    index: int
    t: float
    values: dict[str, float]
    raw: dict[str, float]
    arrays: dict[str, np.ndarray]
    mood: str
    analysis_ms: float = 0.0
    size: tuple[int, int] = (0, 0)  # analysis (width, height)

    def __getitem__(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        return self.arrays[name]

    def to_dict(self, raw: bool = False, arrays: bool = True) -> dict[str, Any]:
        """JSON-ready: index, t, mood, every scalar (smoothed, or raw) and the arrays."""
        src = self.raw if raw else self.values
        out: dict[str, Any] = {"index": self.index, "t": round(self.t, 6), "mood": self.mood}
        out.update({k: round(float(v), 6) for k, v in src.items()})
        if arrays:
            out.update({k: np.round(v, 6).tolist() for k, v in self.arrays.items()})
        return out


@dataclass
class AnalyzerConfig:
    """``width``: analysis width in pixels (0 = full resolution); ``smoothing_s``: per-feature
    time constants overriding the registry's; onset thresholds (high, low) on raw values;
    ``threads``: row bands the kernel analyses in parallel (``kernels.frame_stats``): worth it
    for full-resolution analysis of large frames, not for the default 480-wide live frames."""

    width: int = DEFAULT_WIDTH
    smoothing_s: dict[str, float] = field(default_factory=dict)
    threads: int = 1
    motion_onset: tuple[float, float] = (0.25, 0.10)
    cut_onset: tuple[float, float] = (0.40, 0.15)
    stars_onset: tuple[float, float] = (2.0, 0.5)  # rise of the count over its recent level
    onset_min_interval_s: float = 0.1


_kernels_ready = False  # an Analyzer was made in this process: the kernels are loaded


def kernels_need_compiling() -> bool:
    """Whether the first analysis will compile the kernels (seconds of work): numba's cache
    holds none for this version of ``kernels.py``, ``downscale.py`` or ``post.py`` (the first
    start, after an update, or a cache that cannot be written). False once they are loaded in
    this process, and when numba's cache cannot be inspected (say nothing rather than
    something untrue)."""
    if _kernels_ready:
        return False
    return any(needs_compiling(m) for m in (kernels, ds, post))


class Analyzer:
    """Turns Frames into Features. Not thread-safe: one analyzer per stream of frames."""

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.config = config or AnalyzerConfig()
        unknown = set(self.config.smoothing_s) - set(SCALAR_NAMES)
        if unknown:
            raise ValueError(f"smoothing for unknown features {sorted(unknown)}; "
                             f"known: {', '.join(SCALAR_NAMES)}")
        c = self.config
        self._post = post.PostState(c.smoothing_s, (c.motion_onset, c.cut_onset, c.stars_onset),
                                    c.onset_min_interval_s)
        self._downscale = ds.Downscaler(c.width)
        self._luma: list[np.ndarray] = []
        self._flip = 0
        self._prev: np.ndarray | None = None
        if not isinstance(self.config.threads, int) or self.config.threads < 1:
            raise ValueError(f"analysis threads must be a whole number >= 1, got "
                             f"{self.config.threads!r}")
        kernels.warmup()
        if self.config.threads > 1:
            kernels.warmup_parallel()
        ds.warmup()
        post.warmup()
        global _kernels_ready
        _kernels_ready = True

    def reset(self) -> None:
        """Forget the previous frame (after a source switch or a camera gap)."""
        self._prev = None
        self._post.reset()

    def analyze(self, frame: Frame) -> Features:
        started = time.perf_counter()
        small = self._downscale(frame.image)
        h, w = small.shape[:2]
        if not small.flags.c_contiguous:
            small = np.ascontiguousarray(small)
        if self._prev is not None and self._prev.shape != (h, w):
            self.reset()  # the source changed size: motion against another picture is noise
        if not self._luma or self._luma[0].shape != (h, w):
            self._luma = [np.empty((h, w), np.uint8), np.empty((h, w), np.uint8)]
        out = self._luma[self._flip]
        self._flip ^= 1
        # A still journey's frames differ only by the travelling eye: no motion against them.
        stats, lum = kernels.frame_stats(small, None if frame.still else self._prev, out,
                                         threads=self.config.threads)
        self._prev = lum
        return self._finish(frame, stats, (w, h), started)

    def _finish(self, frame: Frame, stats: dict, size: tuple[int, int],
                started: float) -> Features:
        raw = np.array([stats[name] for name in KERNEL_SCALARS] + [0.0] * _DERIVED, np.float64)
        values = np.empty(len(SCALAR_NAMES))
        label = post.post(self._post, raw, values, stats["luma_hist"], stats["hue_mass"],
                          stats["hue_hist"], frame.t, frame.still)
        arrays = {name: stats[name] for name in ARRAY_NAMES}
        elapsed_ms = (time.perf_counter() - started) * 1e3
        return Features(frame.index, frame.t, dict(zip(SCALAR_NAMES, values.tolist(), strict=True)),
                        dict(zip(SCALAR_NAMES, raw.tolist(), strict=True)), arrays, label,
                        elapsed_ms, size)


_DERIVED = len(SCALAR_NAMES) - len(KERNEL_SCALARS)
