"""Dense optical flow at a reduced size: how fast, and which way, things move.

``Flow`` keeps the previous gray frame and returns the flow field in frame fractions per
second (x in widths, y in heights), so the numbers mean the same at any analysis size and
frame rate. DIS (Kroeger et al. 2016) at its ultrafast preset costs about 0.25 ms at 160x90;
Farneback about 20x that (measured in ``tools/visionbench.py``): DIS is the default.

``flow_stats`` summarises a field, over the frame or a zone's mask: ``flow`` the mean speed
over every pixel (what moves, and how much of the picture moves), and from the pixels that
move at all (above ``MOVING``): ``flow_x``/``flow_y`` the share of their motion going right /
down (0.5 = none or balanced), ``flow_direction`` the angle of their mean motion.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sonify.features.registry import FLOW_FULL_SCALE

MOVING = 0.03
"""A pixel moving slower than this (frame fractions per second) counts as still: DIS's noise
on a still camera is about a third of it."""
MIN_DT_S, MAX_DT_S = 1.0 / 240.0, 0.5
"""Frame intervals are clamped to this: flow over a longer gap is not motion but a jump."""


class Flow:
    """Dense optical flow between consecutive gray frames (``method`` "dis" or
    "farneback")."""

    def __init__(self, method: str = "dis") -> None:
        if method not in ("dis", "farneback"):
            raise ValueError(f"flow method {method!r}: choose 'dis' or 'farneback'")
        self.method = method
        self._dis = (cv2.DISOpticalFlow_create(  # type: ignore[attr-defined]
            cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if method == "dis" else None)
        self._prev: np.ndarray | None = None
        self._t = 0.0

    def reset(self) -> None:
        self._prev = None

    def update(self, gray: np.ndarray, t: float) -> np.ndarray | None:
        """The flow from the previous frame to ``gray`` as an H x W x 2 float32 field in frame
        fractions per second, or None on the first frame (and after a gap over ``MAX_DT_S``,
        or a change of size)."""
        prev, prev_t = self._prev, self._t
        self._prev, self._t = gray, t
        if prev is None or prev.shape != gray.shape or t - prev_t > MAX_DT_S:
            return None
        if self._dis is not None:
            field = self._dis.calc(prev, gray, None)
        else:
            field = cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]
                prev, gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        h, w = gray.shape
        dt = min(MAX_DT_S, max(MIN_DT_S, t - prev_t))
        field[..., 0] *= 1.0 / (w * dt)
        field[..., 1] *= 1.0 / (h * dt)
        return field


def flow_stats(field: np.ndarray | None, mask: np.ndarray | None = None) -> dict[str, float]:
    """``flow``, ``flow_x``, ``flow_y`` and ``flow_direction`` (raw, see the registry) of a
    field over the pixels of ``mask`` (a bool mask of the field's size; None: all)."""
    if field is None:
        return dict(NEUTRAL)
    vectors = field.reshape(-1, 2) if mask is None else field[mask]
    if vectors.size == 0:
        return dict(NEUTRAL)
    speed = np.hypot(vectors[:, 0], vectors[:, 1])
    moving = speed > MOVING
    out = {"flow": min(1.0, float(speed.mean()) / FLOW_FULL_SCALE)}
    total = float(speed[moving].sum())
    if total <= 0.0:
        return out | {"flow_x": 0.5, "flow_y": 0.5, "flow_direction": 0.0}
    sx = float(vectors[moving, 0].sum())
    sy = float(vectors[moving, 1].sum())
    out["flow_x"] = 0.5 + 0.5 * sx / total
    out["flow_y"] = 0.5 + 0.5 * sy / total
    out["flow_direction"] = (math.atan2(sy, sx) / (2.0 * math.pi)) % 1.0
    return out


NEUTRAL: dict[str, float] = {"flow": 0.0, "flow_x": 0.5, "flow_y": 0.5, "flow_direction": 0.0}
