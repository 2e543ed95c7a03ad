"""People, faces, foreground, optical flow and zones: the analysis a scene pays for by reading it.

``Vision.analyze(frame, features, wanted)`` adds to the picture's ``Features`` a value for
every name in ``wanted`` (``vision_names`` of what a scene reads: ``presence``, ``people``,
``person2_x``, ``flow_x``, ``zone:door:presence``, ``zone:left:brightness`` ...) and computes
only the parts those names need: the background model for presence and blobs (and for people
with the default ``blobs`` detector), HOG for people with ``detector = "hog"``, the face
cascade for faces, optical flow for flow, a small ``Analyzer`` per zone for the picture's own
features inside a zone. With nothing wanted it returns ``features`` itself and touches nothing.

Sizes: the frame is downscaled once to ``width`` (320 px: the background model, blobs and zone
pictures), then to ``flow_width`` for flow (160 px) and ``face_width`` for faces; HOG runs on a
``hog_width`` copy (480 px: it needs people >= 128 px tall at the size it runs at) every
``hog_every`` frames, the tracker carrying people between. The costs are in
``tools/visionbench.py``.

Zones: ``zone:<zone>:<feature>`` is the feature inside the zone. Presence and flow are measured
over the zone's mask; people, blobs and faces count when their foot point (a face: its centre)
is inside; positions run 0..1 across the zone's bounding box; enter/leave onsets fire when a
tracked person steps into / out of the zone (``ZONE_MARGIN`` past its edge: someone standing
on the edge does not chatter). The picture's features (brightness, motion ...)
come from an ``Analyzer`` on the zone's bounding crop, so they keep their smoothing, onsets and
mood; ``edge_density`` is scaled by the crop's width, not the frame's.

A frame marked ``still`` (a window travelling over a still picture) has no motion of its own:
foreground and flow read nothing on it; HOG and faces still look (a face in a photo is a face).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np

from sonify.capture.base import Frame
from sonify.features import flow as flowmod
from sonify.features.analyzer import Analyzer, AnalyzerConfig, Features, downscale
from sonify.features.people import Detection, FaceDetector, Foreground, Track, Tracker, hog_people
from sonify.features.registry import (
    MAX_PEOPLE_SLOTS,
    PERSON_SPEED_FULL_SCALE,
    SCALAR_NAMES,
    VISION_NAMES,
    ZONE_PREFIX,
    spec,
    split_zone,
)
from sonify.features.smoothing import OnePole
from sonify.features.zones import Zone

logger = logging.getLogger(__name__)

ZONE_MARGIN = 0.02
"""How far (a share of the frame) past a zone's edge a person's feet go before they count as
in (or out): the hysteresis of a zone's people and enter/leave onsets."""

SLOT_NAMES = frozenset(n for n in VISION_NAMES if n.startswith("person") and n[6:7].isdigit())
PEOPLE_NAMES = frozenset({"people", "person_x", "person_y", "person_near", "person_speed",
                          "enter_onset", "leave_onset"}) | SLOT_NAMES
FOREGROUND_NAMES = frozenset({"presence", "blobs"})
FACE_NAMES = frozenset({"faces", "face_x", "face_y"})
FLOW_NAMES = frozenset(flowmod.NEUTRAL)
_VISION = frozenset(VISION_NAMES)
_PICTURE = frozenset(SCALAR_NAMES)
assert PEOPLE_NAMES | FOREGROUND_NAMES | FACE_NAMES | FLOW_NAMES == _VISION

NEUTRAL: dict[str, float] = {
    name: 0.5 if name == "warmth" or name.endswith(("_x", "_y")) else 0.0
    for name in (*VISION_NAMES, *SCALAR_NAMES)
}
"""Every scalar before any frame, with nobody there: positions centred, the rest 0."""


def vision_names(names: Iterable[str]) -> frozenset[str]:
    """The names among ``names`` (feature names a scene reads) that Vision computes: people,
    faces, blobs and flow features, and every ``zone:<zone>:<feature>`` of a scalar feature."""
    out = set()
    for name in names:
        zoned = split_zone(name)
        if name in _VISION or (zoned and (zoned[1] in _VISION or zoned[1] in SCALAR_NAMES)):
            out.add(name)
    return frozenset(out)


@dataclass
class VisionConfig:
    """Sizes in pixels of width (height keeps the aspect). ``detector``: what finds people
    (``blobs`` background subtraction, ``hog`` OpenCV's people detector every ``hog_every``
    frames, ``both``: blobs every frame and HOG boxes in their place when it runs).
    ``faces`` False reads no faces (neutral values); ``max_people``: slots ``person1_*`` ..
    ``personN_*``; ``min_hits``/``max_missed``: detections before a person counts as there,
    and missed detections (detector runs) before they count as gone."""

    width: int = 320
    detector: Literal["blobs", "hog", "both"] = "blobs"
    hog_width: int = 480
    hog_every: int = 10
    faces: bool = True
    face_width: int = 320
    faces_every: int = 3
    flow: Literal["dis", "farneback"] = "dis"
    flow_width: int = 160
    max_people: int = MAX_PEOPLE_SLOTS
    background: Literal["mog2", "knn"] = "mog2"
    min_blob_area: float = 0.002
    min_hits: int = 3
    max_missed: int = 8

    def __post_init__(self) -> None:
        choices = {"detector": ("blobs", "hog", "both"), "flow": ("dis", "farneback"),
                   "background": ("mog2", "knn")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"vision {key} {getattr(self, key)!r}: choose one of "
                                 f"{', '.join(allowed)}")
        for key in ("width", "hog_width", "face_width", "flow_width"):
            if getattr(self, key) < 32:
                raise ValueError(f"vision {key} must be at least 32 px, got {getattr(self, key)}")
        for key in ("hog_every", "faces_every", "min_hits"):
            if getattr(self, key) < 1:
                raise ValueError(f"vision {key} must be at least 1, got {getattr(self, key)}")
        if not 1 <= self.max_people <= MAX_PEOPLE_SLOTS:
            raise ValueError(f"vision max_people must be 1..{MAX_PEOPLE_SLOTS}, "
                             f"got {self.max_people}")
        if not 0.0 < self.min_blob_area < 1.0:
            raise ValueError(f"vision min_blob_area is a share of the frame (0..1), got "
                             f"{self.min_blob_area}")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a set of wanted names needs: (zone or None, feature names) per region, and which
    parts to run."""

    regions: tuple[tuple[str | None, frozenset[str]], ...]
    foreground: bool
    people: bool
    faces: bool
    flow: bool


@dataclass(slots=True)
class _Parts:
    """One frame's detections and fields, in the analysis sizes."""

    size: tuple[int, int]
    small: np.ndarray
    mask: np.ndarray | None = None
    blobs: tuple[Detection, ...] = ()
    faces: tuple[Detection, ...] = ()
    field: np.ndarray | None = None
    entered: tuple[Track, ...] = ()
    left: tuple[Track, ...] = ()


class Vision:
    """The people, zone and flow analysis of one stream of frames (not thread-safe)."""

    def __init__(self, zones: Sequence[Zone] = (), config: VisionConfig | None = None) -> None:
        self.config = config or VisionConfig()
        self.zones: dict[str, Zone] = {}
        for zone in zones:
            if zone.name in self.zones:
                raise ValueError(f"zone {zone.name!r} is defined twice: give each zone its own "
                                 "name")
            self.zones[zone.name] = zone
        self.part_ms: dict[str, float] = {}
        """The last frame's cost per part (ms): for ``tools/visionbench.py`` and the page."""
        self._plans: dict[frozenset[str], _Plan] = {}
        self._warned: set[str] = set()
        self._foreground: Foreground | None = None
        self._flow: flowmod.Flow | None = None
        self._faces: FaceDetector | None = None
        self._last_faces: tuple[Detection, ...] = ()
        self._tracker = Tracker(self.config.max_people, self.config.min_hits,
                                self.config.max_missed)
        self._zone_analyzers: dict[str, Analyzer] = {}
        self._inside: dict[str, set[int]] = {}
        self._smooth: dict[str, OnePole] = {}
        self._size: tuple[int, int] | None = None
        self._count = 0

    # -- public -------------------------------------------------------------------------------

    @property
    def tracks(self) -> list[Track]:
        """The people being followed now (confirmed tracks), boxes in frame fractions."""
        return self._tracker.confirmed

    def neutral(self, wanted: Iterable[str]) -> dict[str, float]:
        """The values of ``wanted``'s vision names before any frame: nobody there."""
        return {name: NEUTRAL[_base(name)] for name in vision_names(wanted)}

    def reset(self) -> None:
        """Forget the room (after a source switch or a camera gap): the background, the
        previous frame, the people (without leave onsets) and the smoothing."""
        self._foreground = None
        if self._flow is not None:
            self._flow.reset()
        self._tracker.reset()
        self._last_faces = ()
        self._inside.clear()
        for analyzer in self._zone_analyzers.values():
            analyzer.reset()
        for smoother in self._smooth.values():
            smoother.reset()
        self._size = None
        self._count = 0

    def analyze(self, frame: Frame, features: Features, wanted: frozenset[str]) -> Features:
        """``features`` plus a smoothed value (``values``) and a raw one (``raw``) for every
        vision name in ``wanted``; ``features`` itself when there is none."""
        if not wanted:
            return features
        plan = self._plans.get(wanted) or self._plan(wanted)
        if not plan.regions:
            return features
        started = time.perf_counter()
        parts = self._detect(frame, plan)
        raw: dict[str, float] = {}
        values: dict[str, float] = {}
        for zone_name, names in plan.regions:
            if zone_name is not None and zone_name not in self.zones:
                for base in names:  # warned about in _plan; reads nobody there
                    raw[_name(zone_name, base)] = NEUTRAL[base]
                continue
            zone = self.zones[zone_name] if zone_name is not None else None
            self._region(zone, names, parts, raw, values, frame)
        t = frame.t
        for name, value in raw.items():
            if name not in values:
                values[name] = self._smoother(name).update(value, t)
        self._count += 1
        elapsed_ms = (time.perf_counter() - started) * 1e3
        self.part_ms["total"] = elapsed_ms
        return replace(features, values={**features.values, **values},
                       raw={**features.raw, **raw},
                       analysis_ms=features.analysis_ms + elapsed_ms)

    # -- planning -----------------------------------------------------------------------------

    def _plan(self, wanted: frozenset[str]) -> _Plan:
        regions: dict[str | None, set[str]] = {}
        for name in vision_names(wanted):
            zoned = split_zone(name)
            zone, base = zoned if zoned else (None, name)
            if zone is not None and zone not in self.zones and name not in self._warned:
                self._warned.add(name)
                logger.warning("feature %s reads zone %r, which is not defined (zones: %s); "
                               "it reads %s", name, zone, ", ".join(self.zones) or "none",
                               NEUTRAL[base])
            regions.setdefault(zone, set()).add(base)
        live = set().union(*(names for zone, names in regions.items()
                             if zone is None or zone in self.zones))
        people = bool(live & PEOPLE_NAMES)
        plan = _Plan(
            regions=tuple((zone, frozenset(names)) for zone, names in regions.items()),
            foreground=bool(live & FOREGROUND_NAMES)
            or (people and self.config.detector != "hog"),
            people=people,
            faces=bool(live & FACE_NAMES) and self.config.faces,
            flow=bool(live & FLOW_NAMES),
        )
        if len(self._plans) > 64:
            self._plans.clear()
        self._plans[wanted] = plan
        return plan

    # -- the parts ----------------------------------------------------------------------------

    def _detect(self, frame: Frame, plan: _Plan) -> _Parts:
        cfg = self.config
        timings = self.part_ms
        timings.clear()
        t0 = time.perf_counter()
        small = downscale(frame.image, cfg.width)
        h, w = small.shape[:2]
        if self._size != (w, h):
            if self._size is not None:
                self.reset()  # another source or size: the old room means nothing here
            self._size = (w, h)
        parts = _Parts((w, h), small)
        t1 = _lap(timings, "downscale", t0)
        if plan.foreground and not frame.still:
            if self._foreground is None:
                self._foreground = Foreground(cfg.background, cfg.min_blob_area)
            parts.mask, blobs = self._foreground.apply(small)
            parts.blobs = tuple(blobs)
            t1 = _lap(timings, "foreground", t1)
        if plan.people:
            detections: list[Detection] | None = list(parts.blobs)
            if cfg.detector != "blobs" and self._count % cfg.hog_every == 0:
                found = hog_people(downscale(frame.image, cfg.hog_width))
                t1 = _lap(timings, "hog", t1)
                if cfg.detector == "both":
                    found += [b for b in parts.blobs
                              if not any(_covers(d.box, b.centre) for d in found)]
                detections = found
            elif cfg.detector == "hog":
                detections = None  # between HOG runs: the tracker carries the people
            if frame.still and cfg.detector == "blobs":
                detections = []
            if detections is None:
                self._tracker.coast(frame.t)
            else:
                entered, left = self._tracker.update(detections, frame.t)
                parts.entered, parts.left = tuple(entered), tuple(left)
            t1 = _lap(timings, "tracker", t1)
        if plan.faces:
            if self._count % cfg.faces_every == 0:
                if self._faces is None:
                    self._faces = FaceDetector()
                gray = cv2.cvtColor(downscale(frame.image, cfg.face_width), cv2.COLOR_BGR2GRAY)
                self._last_faces = tuple(self._faces.detect(gray))
            parts.faces = self._last_faces
            t1 = _lap(timings, "faces", t1)
        if plan.flow:
            if self._flow is None:
                self._flow = flowmod.Flow(cfg.flow)
            small_gray = cv2.cvtColor(downscale(small, cfg.flow_width), cv2.COLOR_BGR2GRAY)
            if frame.still:
                self._flow.reset()
            else:
                parts.field = self._flow.update(small_gray, frame.t)
            _lap(timings, "flow", t1)
        return parts

    # -- the values of one region -------------------------------------------------------------

    def _region(self, zone: Zone | None, names: frozenset[str], parts: _Parts,
                raw: dict[str, float], values: dict[str, float], frame: Frame) -> None:
        started = time.perf_counter()
        zone_name = zone.name if zone is not None else None
        out: dict[str, float] = {}
        if names & FOREGROUND_NAMES:
            out.update(self._foreground_values(zone, parts))
        if names & PEOPLE_NAMES:
            out.update(self._people_values(zone, parts))
        if names & FACE_NAMES:
            out.update(_face_values(zone, parts.faces))
        if names & FLOW_NAMES:
            mask = None
            if zone is not None and parts.field is not None:
                fh, fw = parts.field.shape[:2]
                mask = zone.mask(fw, fh)
            out.update(flowmod.flow_stats(parts.field, mask))
        for base in names:
            if base in out:
                raw[_name(zone_name, base)] = out[base]
        picture = names & _PICTURE
        if zone is not None and picture:
            self._zone_picture(zone, picture, parts, raw, values, frame)
        if zone is not None:
            self.part_ms[f"zone:{zone.name}"] = (time.perf_counter() - started) * 1e3

    def _foreground_values(self, zone: Zone | None, parts: _Parts) -> dict[str, float]:
        if parts.mask is None:
            return {"presence": 0.0, "blobs": 0.0}
        w, h = parts.size
        if zone is None:
            presence = float(np.count_nonzero(parts.mask)) / (w * h)
            blobs = len(parts.blobs)
        else:
            inside = zone.mask(w, h)
            presence = float(np.count_nonzero(parts.mask[inside])) / max(1, int(inside.sum()))
            blobs = sum(1 for b in parts.blobs if zone.contains(*_clip(*b.foot)))
        return {"presence": presence, "blobs": float(blobs)}

    def _people_values(self, zone: Zone | None, parts: _Parts) -> dict[str, float]:
        tracks = self._tracker.confirmed
        if zone is None:
            people = tracks
            entered, left = bool(parts.entered), bool(parts.left)
        else:
            # hysteresis: in once ZONE_MARGIN inside the edge, out once that far outside it,
            # so someone standing on the edge does not ring in and out
            before = self._inside.get(zone.name, set())
            people = []
            for track in tracks:
                d = zone.distance(*_clip(*track.foot))
                if d > ZONE_MARGIN or (track.id in before and d > -ZONE_MARGIN):
                    people.append(track)
            now = {tr.id for tr in people}
            self._inside[zone.name] = now
            entered, left = bool(now - before), bool(before - now)
        where = zone.relative if zone is not None else _clip
        out = {"people": float(len(people)), "enter_onset": float(entered),
               "leave_onset": float(left), "person_x": 0.5, "person_y": 0.5,
               "person_near": 0.0, "person_speed": 0.0}
        if people:
            nearest = max(people, key=lambda tr: tr.height)
            out["person_x"], out["person_y"] = where(*nearest.centre)
            out["person_near"] = min(1.0, nearest.height)
            out["person_speed"] = _speed(sum(tr.speed for tr in people) / len(people))
        by_slot = {tr.slot: tr for tr in people if tr.slot}
        for k in range(1, MAX_PEOPLE_SLOTS + 1):
            tr = by_slot.get(k)
            x, y = where(*tr.centre) if tr is not None else (0.5, 0.5)
            out[f"person{k}_on"] = float(tr is not None)
            out[f"person{k}_x"], out[f"person{k}_y"] = x, y
            out[f"person{k}_size"] = min(1.0, tr.height) if tr is not None else 0.0
            out[f"person{k}_speed"] = _speed(tr.speed) if tr is not None else 0.0
        return out

    def _zone_picture(self, zone: Zone, names: frozenset[str], parts: _Parts,
                      raw: dict[str, float], values: dict[str, float], frame: Frame) -> None:
        x0, y0, x1, y1 = zone.box(*parts.size)
        crop = parts.small[y0:y1, x0:x1]
        if crop.shape[0] < 3 or crop.shape[1] < 3:
            for base in names:  # smaller than the kernel's 3x3 stencils: nothing to see
                raw[_name(zone.name, base)] = values[_name(zone.name, base)] = NEUTRAL[base]
            return
        analyzer = self._zone_analyzers.get(zone.name)
        if analyzer is None:
            analyzer = self._zone_analyzers[zone.name] = Analyzer(AnalyzerConfig(width=0))
        seen = analyzer.analyze(Frame(frame.index, frame.t, np.ascontiguousarray(crop),
                                      frame.still))
        for base in names:  # already smoothed by the zone's analyzer, as the frame's are
            raw[_name(zone.name, base)] = seen.raw[base]
            values[_name(zone.name, base)] = seen.values[base]

    def _smoother(self, name: str) -> OnePole:
        smoother = self._smooth.get(name)
        if smoother is None:
            feature = spec(name)
            smoother = self._smooth[name] = OnePole(feature.tau_s, feature.circular)
        return smoother


def _face_values(zone: Zone | None, faces: tuple[Detection, ...]) -> dict[str, float]:
    if zone is not None:
        faces = tuple(f for f in faces if zone.contains(*f.centre))
    out = {"faces": float(len(faces)), "face_x": 0.5, "face_y": 0.5}
    if faces:
        largest = max(faces, key=lambda f: f.height)
        where = zone.relative if zone is not None else _clip
        out["face_x"], out["face_y"] = where(*largest.centre)
    return out


def _base(name: str) -> str:
    zoned = split_zone(name)
    return zoned[1] if zoned else name


def _name(zone: str | None, base: str) -> str:
    return base if zone is None else f"{ZONE_PREFIX}{zone}:{base}"


def _clip(x: float, y: float) -> tuple[float, float]:
    return min(1.0, max(0.0, x)), min(1.0, max(0.0, y))


def _speed(fractions_per_s: float) -> float:
    return min(1.0, fractions_per_s / PERSON_SPEED_FULL_SCALE)


def _covers(box: tuple[float, float, float, float], point: tuple[float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _lap(timings: dict[str, float], part: str, since: float) -> float:
    """Record the time since ``since`` as ``part``'s cost (ms); returns now."""
    now = time.perf_counter()
    timings[part] = timings.get(part, 0.0) + (now - since) * 1e3
    return now
