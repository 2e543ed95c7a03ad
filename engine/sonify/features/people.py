"""Finding people: foreground blobs, OpenCV's HOG people detector, Haar faces, and a tracker.

Detectors return ``Detection`` boxes in frame fractions (x0, y0, x1, y1; 0..1, x right, y
down), so everything downstream is free of the analysis size. All models are OpenCV's own
(``HOGDescriptor_getDefaultPeopleDetector``, ``cv2.data.haarcascades``): nothing to download.

- ``Foreground``: background subtraction (MOG2 or KNN, no shadow detection: it costs time and
  marks shadows half-foreground), an opening to drop speckle and a closing to join a person's
  parts, then connected components of at least ``min_area`` of the frame. Cheap (about 1 ms at
  320 px wide): the default people detector. A person who stands still for a long time fades
  into the background, as with every background model.
- ``hog_people``: Dalal & Triggs' detector. It finds upright people at least 128 px tall at
  the size it runs at and costs 20-150 ms a frame, so ``Vision`` runs it every Nth frame and
  the tracker carries the people between runs.
- ``FaceDetector``: the frontal-face Haar cascade.
- ``Tracker``: Hungarian matching (``scipy.optimize.linear_sum_assignment``) of detections to
  each track's constant-velocity prediction, gated by distance relative to the person's size.
  A track is confirmed (gets an id and a slot, and counts as entered) after ``min_hits``
  matches, and survives ``max_missed`` frames without one. Two tracks whose predictions both
  fall inside one detection (two people crossing, seen as one merged blob) coast on their
  velocities instead of one of them taking the merged box, which keeps identities through a
  crossing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame fractions


@dataclass(frozen=True, slots=True)
class Detection:
    """A box in frame fractions and the detector's confidence (1 for blobs)."""

    box: Box
    score: float = 1.0

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return 0.5 * (x0 + x1), 0.5 * (y0 + y1)

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom centre: where a standing person touches the floor (zones test this)."""
        x0, _, x1, y1 = self.box
        return 0.5 * (x0 + x1), y1

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def _to_fractions(rects: object, width: int, height: int) -> list[Box]:
    return [(x / width, y / height, (x + w) / width, (y + h) / height)
            for x, y, w, h in np.asarray(rects, np.float64).reshape(-1, 4).tolist()]


LEARNING_RATE = 0.005
"""How fast the background model takes in what stays: about 7 s (200 frames at 30 fps) for a
still thing to fade into the room."""


class Foreground:
    """Background subtraction into a foreground mask and blobs; see the module notes."""

    def __init__(self, method: str = "mog2", min_area: float = 0.002) -> None:
        if method == "mog2":
            self._model: cv2.BackgroundSubtractor = cv2.createBackgroundSubtractorMOG2(
                history=500, varThreshold=16, detectShadows=False)
        elif method == "knn":
            self._model = cv2.createBackgroundSubtractorKNN(history=500, detectShadows=False)
        else:
            raise ValueError(f"background method {method!r}: choose 'mog2' or 'knn'")
        self.min_area = min_area
        self._frames = 0
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, list[Detection]]:
        """The foreground mask (uint8 0/1, the image's size) and the blobs of ``image``. The
        first frame only teaches the model (everything is new to it): nothing is foreground."""
        # A fixed rate from the first frame: OpenCV's default (1 / frames seen, for the first
        # ``history`` frames) learns a visitor who walks in early into the background within
        # frames and leaves a ghost where they stood.
        raw = self._model.apply(image, learningRate=LEARNING_RATE if self._frames else 1.0)
        self._frames += 1
        h, w = raw.shape
        if self._frames == 1:
            return np.zeros((h, w), np.uint8), []
        mask = cv2.morphologyEx(raw, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        count, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        min_px = self.min_area * h * w
        rects = [stats[i, :4] for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_px]
        blobs = [Detection(b) for b in _to_fractions(np.array(rects), w, h)] if rects else []
        np.minimum(mask, 1, out=mask)
        return mask, blobs


@functools.cache
def _hog() -> cv2.HOGDescriptor:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
    return hog


def hog_people(image: np.ndarray, min_score: float = 0.3) -> list[Detection]:
    """Upright people in ``image`` (BGR or gray) with OpenCV's default HOG people detector,
    after its own non-maximum grouping; weak windows below ``min_score`` dropped.

    The detector's window holds a margin around the person (its training crops do): a person
    whose feet or head touch the frame's edge does not fit one. A replicated border of 10% of
    the height above and below (2.5% of the width at the sides) gives them the room."""
    h, w = image.shape[:2]
    top, side = max(8, h // 10), max(8, w // 40)
    padded = cv2.copyMakeBorder(image, top, top, side, side, cv2.BORDER_REPLICATE)
    rects, weights = _hog().detectMultiScale(padded, winStride=(8, 8), padding=(8, 8),
                                             scale=1.05)
    scores = np.asarray(weights, np.float64).reshape(-1).tolist()
    boxes = _to_fractions(np.asarray(rects).reshape(-1, 4) - [side, top, 0, 0], w, h)
    return [Detection(_clip_box(b), s) for b, s in zip(boxes, scores, strict=True)
            if s >= min_score]


def _clip_box(box: Box) -> Box:
    x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in box)
    return x0, y0, x1, y1


class FaceDetector:
    """Frontal faces with OpenCV's bundled Haar cascade, on a gray image."""

    cascade = "haarcascade_frontalface_default.xml"

    def __init__(self, min_size_px: int = 20) -> None:
        path = cv2.data.haarcascades + self.cascade  # type: ignore[attr-defined]
        self._model = cv2.CascadeClassifier(path)
        if self._model.empty():
            raise RuntimeError(f"OpenCV's face cascade {path} did not load: reinstall "
                               "opencv-python (it ships the cascades)")
        self.min_size_px = min_size_px

    def detect(self, gray: np.ndarray) -> list[Detection]:
        h, w = gray.shape[:2]
        rects = self._model.detectMultiScale(gray, scaleFactor=1.15, minNeighbors=5,
                                             minSize=(self.min_size_px, self.min_size_px))
        return [Detection(b) for b in _to_fractions(rects, w, h)]


@dataclass(slots=True)
class Track:
    """One followed person. ``id`` counts from 1 in order of confirmation (0 while tentative);
    ``slot`` is 1..max_slots while they hold one (0: none free, or tentative); ``box`` in frame
    fractions; ``velocity`` of the centre in frame fractions per second; ``age_s`` since first
    seen."""

    id: int
    box: Box
    t: float
    first_t: float
    velocity: tuple[float, float] = (0.0, 0.0)
    slot: int = 0
    hits: int = 1
    missed: int = 0
    coasting: bool = False
    _centre: tuple[float, float] = field(default=(0.5, 0.5), repr=False)

    def __post_init__(self) -> None:
        self._centre = _centre(self.box)

    @property
    def centre(self) -> tuple[float, float]:
        return self._centre

    @property
    def foot(self) -> tuple[float, float]:
        return 0.5 * (self.box[0] + self.box[2]), self.box[3]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def speed(self) -> float:
        """Frame fractions per second."""
        return float(np.hypot(*self.velocity))

    @property
    def age_s(self) -> float:
        return self.t - self.first_t

    @property
    def confirmed(self) -> bool:
        return self.id > 0

    def predicted(self, t: float) -> Box:
        dt = max(0.0, t - self.t)
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x0, y0, x1, y1 = self.box
        return x0 + dx, y0 + dy, x1 + dx, y1 + dy


def _centre(box: Box) -> tuple[float, float]:
    return 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


class Tracker:
    """Keeps identities of detections across frames; see the module notes."""

    def __init__(self, max_slots: int = 4, min_hits: int = 3, max_missed: int = 8,
                 gate: float = 0.8, velocity_smoothing: float = 0.4) -> None:
        self.max_slots = max_slots
        self.min_hits = min_hits
        self.max_missed = max_missed
        self.gate = gate  # the furthest match, in person heights from the prediction
        self.velocity_smoothing = velocity_smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self.tracks = []
        self._next_id = 1

    @property
    def confirmed(self) -> list[Track]:
        return [tr for tr in self.tracks if tr.confirmed]

    def coast(self, t: float) -> None:
        """A frame without detections (the detector did not run): move every track along its
        velocity; nobody counts as missed."""
        for tr in self.tracks:
            self._move(tr, tr.predicted(t), t)

    def update(self, detections: list[Detection], t: float) -> tuple[list[Track], list[Track]]:
        """Match ``detections`` (this frame's, at time ``t``) to the tracks; returns the tracks
        confirmed on this frame (entered) and the confirmed tracks lost on it (left)."""
        predicted = [tr.predicted(t) for tr in self.tracks]
        detections, occluded = self._split_merged(detections, predicted)
        matches, unmatched_tracks, unmatched_dets = self._match(detections, predicted)
        entered: list[Track] = []
        left: list[Track] = []
        for ti, di in matches:
            tr = self.tracks[ti]
            self._follow(tr, detections[di].box, t)
            tr.hits += 1
            tr.missed = 0
            tr.coasting = False
            if not tr.confirmed and tr.hits >= self.min_hits:
                tr.id = self._next_id
                self._next_id += 1
                entered.append(tr)
        survivors = []
        for ti, tr in enumerate(self.tracks):
            if ti in unmatched_tracks:
                self._move(tr, predicted[ti], t)
                tr.coasting = True
                if ti not in occluded:
                    tr.missed += 1
                gone = tr.missed > self.max_missed or not tr.confirmed or _off_frame(tr.box)
                if gone:
                    if tr.confirmed:
                        left.append(tr)
                    continue
            survivors.append(tr)
        for di in unmatched_dets:
            survivors.append(Track(0, detections[di].box, t, t))
        self.tracks = survivors
        self._assign_slots()
        return entered, left

    def _split_merged(self, detections: list[Detection], predicted: list[Box]
                      ) -> tuple[list[Detection], set[int]]:
        """Drop detections that hold the predictions of two or more confirmed tracks (a
        merged blob); those tracks coast through it."""
        kept, occluded = [], set()
        for det in detections:
            inside = [ti for ti, tr in enumerate(self.tracks)
                      if tr.confirmed and _inside(_centre(predicted[ti]), det.box)]
            if len(inside) >= 2:
                occluded.update(inside)
            else:
                kept.append(det)
        return kept, occluded

    def _match(self, detections: list[Detection], predicted: list[Box]
               ) -> tuple[list[tuple[int, int]], set[int], set[int]]:
        n_t, n_d = len(self.tracks), len(detections)
        if n_t == 0 or n_d == 0:
            return [], set(range(n_t)), set(range(n_d))
        cost = np.empty((n_t, n_d))
        for ti, box in enumerate(predicted):
            cx, cy = _centre(box)
            size = box[3] - box[1]
            for di, det in enumerate(detections):
                dx, dy = det.centre
                scale = max(size, det.height, 1e-3)
                cost[ti, di] = np.hypot(dx - cx, dy - cy) / scale
        from scipy.optimize import linear_sum_assignment  # 0.2 s to import: only when used

        rows, cols = linear_sum_assignment(np.where(cost <= self.gate, cost, 1e6))
        matches = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)
                   if cost[r, c] <= self.gate]
        return (matches, set(range(n_t)) - {m[0] for m in matches},
                set(range(n_d)) - {m[1] for m in matches})

    def _follow(self, tr: Track, box: Box, t: float) -> None:
        dt = t - tr.t
        if dt > 0:
            (ox, oy), (nx, ny) = tr.centre, _centre(box)
            a = self.velocity_smoothing
            vx, vy = tr.velocity
            tr.velocity = (vx + a * ((nx - ox) / dt - vx), vy + a * ((ny - oy) / dt - vy))
        self._move(tr, box, t)

    @staticmethod
    def _move(tr: Track, box: Box, t: float) -> None:
        tr.box = box
        tr.t = t
        tr._centre = _centre(box)

    def _assign_slots(self) -> None:
        used = {tr.slot for tr in self.tracks if tr.slot}
        free = [s for s in range(1, self.max_slots + 1) if s not in used]
        for tr in sorted(self.confirmed, key=lambda tr: tr.id):  # the longest-known first
            if not tr.slot and free:
                tr.slot = free.pop(0)


def _off_frame(box: Box) -> bool:
    return box[2] <= 0.0 or box[0] >= 1.0 or box[3] <= 0.0 or box[1] >= 1.0
