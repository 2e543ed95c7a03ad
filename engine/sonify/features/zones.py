"""Named zones of the frame: rectangles or polygons in frame fractions (0..1, x right, y down).

A scene or config names the parts of the room that matter (the door, the left wall, the stage)
and reads any scalar feature inside one as ``zone:<zone>:<feature>`` (see ``vision.py``).
Fractions keep a zone valid at any camera or analysis size; the pixel mask at a given size is
drawn once and cached, since the analysis size does not change between frames.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from sonify.features.registry import SOURCE_NAME

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Zone:
    """A named polygon of the frame. ``name``: letters, digits and _ (not starting with a
    digit); ``points``: at least 3 corners in frame fractions, each coordinate in 0..1."""

    name: str
    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not SOURCE_NAME.match(self.name):
            raise ValueError(f"zone name {self.name!r} must be letters, digits and _, not "
                             "starting with a digit (e.g. 'door', 'left_wall')")
        points = tuple((float(x), float(y)) for x, y in self.points)
        if len(points) < 3:
            raise ValueError(f"zone {self.name!r} needs at least 3 points, got {len(points)}")
        for x, y in points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"zone {self.name!r}: point ({x:g}, {y:g}) is outside the "
                                 "frame; give coordinates as fractions 0..1 (x right, y down)")
        if _area(points) <= 0.0:
            raise ValueError(f"zone {self.name!r} has no area: its points lie on a line")
        object.__setattr__(self, "points", points)

    @classmethod
    def rect(cls, name: str, x0: float, y0: float, x1: float, y1: float) -> Zone:
        """The rectangle from (x0, y0) to (x1, y1), in frame fractions, corners in any order."""
        left, right = sorted((float(x0), float(x1)))
        top, bottom = sorted((float(y0), float(y1)))
        if left == right or top == bottom:
            raise ValueError(f"zone {name!r}: rectangle ({x0:g}, {y0:g})-({x1:g}, {y1:g}) is "
                             "empty; give two opposite corners")
        return cls(name, ((left, top), (right, top), (right, bottom), (left, bottom)))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the bounding box in frame fractions."""
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The bounding box in pixels of a ``width`` x ``height`` frame as (x0, y0, x1, y1),
        end-exclusive slice bounds, at least one pixel each way."""
        return _box(self.points, width, height)

    def mask(self, width: int, height: int) -> np.ndarray:
        """The zone as a ``height`` x ``width`` bool mask (cached per size; read-only)."""
        return _mask(self.points, width, height)

    def contains(self, x: float, y: float) -> bool:
        """Whether the point (x, y), in frame fractions, lies inside the polygon (or on its
        edge)."""
        contour = np.asarray(self.points, np.float32).reshape(-1, 1, 2)
        return cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0

    def distance(self, x: float, y: float) -> float:
        """The signed distance of (x, y) from the polygon's edge, in frame fractions: positive
        inside, negative outside."""
        contour = np.asarray(self.points, np.float32).reshape(-1, 1, 2)
        return float(cv2.pointPolygonTest(contour, (float(x), float(y)), True))

    def relative(self, x: float, y: float) -> Point:
        """(x, y) in frame fractions as fractions of the zone's bounding box, clipped to 0..1:
        a position feature read inside a zone runs 0..1 across the zone."""
        x0, y0, x1, y1 = self.bounds
        return (min(1.0, max(0.0, (x - x0) / (x1 - x0))),
                min(1.0, max(0.0, (y - y0) / (y1 - y0))))


def zones_from_mapping(spec: Mapping[str, Sequence[float] | Sequence[Sequence[float]]]
                       ) -> tuple[Zone, ...]:
    """Zones from config data: ``{"door": [x0, y0, x1, y1]}`` (a rectangle) or
    ``{"stage": [[x, y], [x, y], [x, y], ...]}`` (a polygon), in frame fractions."""
    zones = []
    for name, value in spec.items():
        items = list(value)
        if len(items) == 4 and all(isinstance(v, int | float) for v in items):
            x0, y0, x1, y1 = (float(v) for v in items)  # type: ignore[arg-type]
            zones.append(Zone.rect(name, x0, y0, x1, y1))
        elif all(isinstance(p, Sequence) and len(p) == 2 for p in items):
            zones.append(Zone(name, tuple((float(p[0]), float(p[1]))  # type: ignore[index]
                                          for p in items)))
        else:
            raise ValueError(f"zone {name!r}: give [x0, y0, x1, y1] (a rectangle) or a list of "
                             f"[x, y] points (a polygon), in frame fractions; got {value!r}")
    return tuple(zones)


def _area(points: tuple[Point, ...]) -> float:
    """The polygon's area (shoelace), in squared frame fractions."""
    total = 0.0
    for (xa, ya), (xb, yb) in zip(points, points[1:] + points[:1], strict=True):
        total += xa * yb - xb * ya
    return abs(total) / 2.0


@functools.lru_cache(maxsize=256)
def _box(points: tuple[Point, ...], width: int, height: int) -> tuple[int, int, int, int]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0 = min(width - 1, int(min(xs) * width))
    y0 = min(height - 1, int(min(ys) * height))
    x1 = max(x0 + 1, min(width, round(max(xs) * width)))
    y1 = max(y0 + 1, min(height, round(max(ys) * height)))
    return x0, y0, x1, y1


@functools.lru_cache(maxsize=256)
def _mask(points: tuple[Point, ...], width: int, height: int) -> np.ndarray:
    """Pixels whose centres lie inside the polygon (even-odd rule, exact at pixel centres: a
    zone 0..0.5 covers exactly the left half at any even width); never empty."""
    xs = (np.arange(width) + 0.5) / width
    ys = (np.arange(height) + 0.5) / height
    mask = np.zeros((height, width), bool)
    for (xa, ya), (xb, yb) in zip(points, points[1:] + points[:1], strict=True):
        if ya == yb:
            continue  # a horizontal edge crosses no horizontal ray
        rows = (ys >= min(ya, yb)) & (ys < max(ya, yb))
        if not rows.any():
            continue
        cross_x = xa + (ys[rows] - ya) * (xb - xa) / (yb - ya)  # where the edge meets each row
        mask[rows] ^= xs[None, :] < cross_x[:, None]
    if not mask.any():  # a zone thinner than a pixel at this size: its nearest pixels
        x0, y0, x1, y1 = _box(points, width, height)
        mask[y0:y1, x0:x1] = True
    mask.setflags(write=False)
    return mask
