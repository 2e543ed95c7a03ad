"""``sonify run --preview``: the frame with the live features drawn over it, in a window."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import cv2
import numpy as np

from sonify.features.analyzer import Features
from sonify.features.registry import fraction
from sonify.features.zones import Zone

logger = logging.getLogger(__name__)

WINDOW = "sonify"
SHOWN = ("brightness", "warmth", "saturation", "edge_density", "geometry", "texture", "motion",
         "stars", "valence", "arousal")


class PreviewUnavailable(Exception):
    """No display to open a window on."""


def check_display() -> None:
    """Raise PreviewUnavailable with a clear message when no window can be opened."""
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise PreviewUnavailable("--preview needs a display (DISPLAY or WAYLAND_DISPLAY is not "
                                 "set); run without --preview, or on a desktop session")


Person = tuple[int, int, tuple[float, float, float, float]]  # id, slot, box in frame fractions
ZONE_COLOUR = (255, 200, 60)
PERSON_COLOUR = (90, 255, 90)


def draw_preview(image: np.ndarray, feats: Features, scene: str, width: int = 960, *,
                 people: Sequence[Person] = (), zones: Sequence[Zone] = ()) -> np.ndarray:
    """A copy of ``image`` scaled to ``width`` with feature bars, stars and motion drawn on,
    and (when the scene reads them) its zones and the people being followed, each with their
    id and the slot whose voice follows them (``person<slot>_*``)."""
    h, w = image.shape[:2]
    scale = width / w
    canvas = cv2.resize(image, (width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ch, cw = canvas.shape[:2]
    overlay = canvas.copy()
    cv2.rectangle(overlay, (0, 0), (300, 28 + 22 * len(SHOWN)), (0, 0, 0), -1)
    canvas = cv2.addWeighted(overlay, 0.55, canvas, 0.45, 0)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, f"{scene}  mood: {feats.mood}", (8, 20), font, 0.55, (255, 255, 255), 1,
                cv2.LINE_AA)
    for i, name in enumerate(SHOWN):
        y = 42 + 22 * i
        frac = fraction(name, feats.values[name])
        cv2.putText(canvas, f"{name}", (8, y), font, 0.45, (220, 220, 220), 1, cv2.LINE_AA)
        cv2.rectangle(canvas, (120, y - 10), (120 + int(170 * frac), y), (80, 200, 255), -1)
    for x, y, level in feats.arrays["star_points"]:
        if level > 0:
            cv2.circle(canvas, (int(x * cw), int(y * ch)), 8, (0, 255, 255), 1, cv2.LINE_AA)
    if feats.values["motion"] > 0.02:
        centre = (int(feats.values["motion_x"] * cw), int(feats.values["motion_y"] * ch))
        cv2.drawMarker(canvas, centre, (0, 0, 255), cv2.MARKER_CROSS, 24, 2)
    for zone in zones:
        pts = np.array([[round(x * cw), round(y * ch)] for x, y in zone.points], np.int32)
        cv2.polylines(canvas, [pts], True, ZONE_COLOUR, 1, cv2.LINE_8)
        cv2.putText(canvas, zone.name, (int(pts[:, 0].min()) + 4, int(pts[:, 1].min()) + 16),
                    font, 0.5, ZONE_COLOUR, 1, cv2.LINE_AA)
    for pid, slot, (x0, y0, x1, y1) in people:
        p0, p1 = (round(x0 * cw), round(y0 * ch)), (round(x1 * cw), round(y1 * ch))
        cv2.rectangle(canvas, p0, p1, PERSON_COLOUR, 2, cv2.LINE_8)
        label = f"#{pid}" + (f" voice {slot}" if slot else "")
        cv2.putText(canvas, label, (p0[0], max(12, p0[1] - 4)), font, 0.45, PERSON_COLOUR, 1,
                    cv2.LINE_AA)
    return canvas


def show(canvas: np.ndarray) -> bool:
    """Show the canvas; False when the user closed the window (or pressed q / Esc)."""
    cv2.imshow(WINDOW, canvas)
    key = cv2.waitKey(1) & 0xFF
    if key in (ord("q"), 27):
        return False
    return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1


def close() -> None:
    try:
        cv2.destroyWindow(WINDOW)
    except cv2.error:
        pass
