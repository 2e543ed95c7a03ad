"""A built-in procedural source: animated scenes that need no camera and no files.

Each look paints its static layers once at ``open()`` and per frame copies them and draws only
what moves, with OpenCV primitives, so 1920x1080 frames cost a few milliseconds. Animation
time is ``index / fps`` even in real time, and all randomness comes from the seed (layouts
from a Generator at open, per-frame events from a Generator seeded by seed and time slot),
so the same seed gives the same picture for the same index on every run.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Generator, Sequence

import cv2
import numpy as np

from sonify.capture.base import SourceError
from sonify.capture.pacing import PacedSource
from sonify.capture.visitors import VisitorRoom

logger = logging.getLogger(__name__)

DEMO_LOOKS: dict[str, str] = {
    "cycle": "sunset, night and city in turn, 20 s each with a hard cut (plain 'demo')",
    "sunset": "warm orange-red sky over dark water, a slowly sinking sun, drifting clouds",
    "night": "dark-blue sky over hills with many small twinkling stars and now and then a meteor",
    "city": "skyline of lit windows, cars in two lanes and a passing train: many straight edges",
    "visitors": "a room with a wall and a floor where 0-3 people walk in from the sides and out "
                "(for the people, zone and flow features)",
}
"""Demo look name -> one-line description; ``demo:NAME`` picks one."""

DEFAULT_LOOK = "cycle"
MIN_SIZE_PX = 16

BGR = tuple[int, int, int]
_Stops = Sequence[tuple[float, BGR]]


class DemoSource(PacedSource):
    """Procedural frames of one look (see ``DEMO_LOOKS``), deterministic for a given seed.

    Endless until closed or ``max_frames``. ``cycle_s`` is how long each look lasts in the
    ``cycle`` look.
    """

    def __init__(
        self,
        look: str = DEFAULT_LOOK,
        *,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        realtime: bool = False,
        max_frames: int | None = None,
        seed: int = 0,
        cycle_s: float = 20.0,
    ) -> None:
        super().__init__(fps=fps, realtime=realtime, max_frames=max_frames)
        if look not in DEMO_LOOKS:
            raise SourceError(
                f"unknown demo look {look!r}: choose one of {', '.join(DEMO_LOOKS)} "
                f"(e.g. 'demo:night')"
            )
        if width < MIN_SIZE_PX or height < MIN_SIZE_PX:
            raise SourceError(
                f"demo frame size {width}x{height} is too small: width and height must be at "
                f"least {MIN_SIZE_PX} px"
            )
        if not cycle_s > 0:
            raise SourceError(f"cycle_s must be > 0 seconds, got {cycle_s!r}")
        self.look = look
        self.width = width
        self.height = height
        self.seed = seed
        self.cycle_s = cycle_s
        self.name = f"demo:{look}"
        self._painter: _Look | None = None

    def _open(self) -> None:
        self._painter = make_look(self.look, self.width, self.height, self.seed, self.cycle_s)
        logger.info("demo %s: %dx%d at %s fps, seed %d", self.look, self.width, self.height,
                    self.fps, self.seed)

    def _release(self) -> None:
        self._painter = None

    def _images(self) -> Generator[np.ndarray]:
        painter = self._painter
        index = 0
        while painter is not None and not self._stop.is_set():
            yield painter.render(index / self.fps)
            index += 1

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` of an open source, without pacing (for tests and benchmarks)."""
        if self._painter is None:
            raise RuntimeError(f"{self.name} is not open: call open() first")
        return self._painter.render(index / self.fps)


def make_look(look: str, width: int, height: int, seed: int, cycle_s: float = 20.0) -> _Look:
    """Build the painter of one look; each look's layout depends only on the seed."""
    if look == "cycle":
        return _Cycle([make_look(name, width, height, seed) for name in _CYCLE_ORDER], cycle_s)
    cls = _LOOK_CLASSES[look]
    # One Generator per look so a look is laid out the same alone and inside the cycle.
    rng = np.random.default_rng([seed, _LOOK_IDS[look]])
    return cls(width, height, rng, seed)


class _Look(abc.ABC):
    """Static layers painted once; ``render(t_s)`` returns a new frame for time ``t_s``."""

    def __init__(self, width: int, height: int, rng: np.random.Generator, seed: int) -> None:
        self.width = width
        self.height = height
        self.rng = rng
        self.seed = seed
        self.scale = min(width, height) / 1080.0  # sizes below are given at 1080p

    def px(self, size_1080: float) -> int:
        """A length given at 1080p, scaled to this frame, never below 1 px."""
        return max(1, round(size_1080 * self.scale))

    @abc.abstractmethod
    def render(self, t_s: float) -> np.ndarray: ...


class _Cycle(_Look):
    """Shows each look for ``cycle_s`` seconds in turn, with a hard cut between them."""

    def __init__(self, looks: list[_Look], cycle_s: float) -> None:
        self.looks = looks
        self.cycle_s = cycle_s

    def render(self, t_s: float) -> np.ndarray:
        return self.looks[int(t_s // self.cycle_s) % len(self.looks)].render(t_s)


class _Sunset(_Look):
    """A sun sinking into the sea and rising again (60 s), the sky dimming with it."""

    period_s = 60.0

    def __init__(self, width: int, height: int, rng: np.random.Generator, seed: int) -> None:
        super().__init__(width, height, rng, seed)
        w, h = width, height
        self.horizon_y = round(0.62 * h)
        self.sun_r = self.px(70)
        self.sun_x = round(0.6 * w)
        sea_h = h - self.horizon_y
        # Two full backgrounds, blended per frame by the sun's height: the blend is the frame
        # copy, so dimming the whole sky costs nothing extra.
        self.bright = np.vstack([
            _gradient(self.horizon_y, w, [(0.0, (110, 45, 120)), (0.55, (50, 95, 235)),
                                          (1.0, (90, 205, 255))]),
            _gradient(sea_h, w, [(0.0, (60, 110, 190)), (0.3, (60, 55, 110)),
                                 (1.0, (40, 25, 45))]),
        ])
        self.dusk = np.vstack([
            _gradient(self.horizon_y, w, [(0.0, (70, 20, 45)), (0.6, (45, 35, 150)),
                                          (1.0, (40, 110, 235))]),
            _gradient(sea_h, w, [(0.0, (40, 60, 140)), (0.3, (40, 30, 70)),
                                 (1.0, (25, 15, 25))]),
        ])
        shore = _ridge(rng, w, base_y=h * 0.93, amplitude=h * 0.05, left_bias=h * 0.12)
        for layer in (self.bright, self.dusk):
            cv2.fillPoly(layer, [_below(shore, w, h)], (18, 12, 22))
        glow_r = self.sun_r * 3
        self.glow = _radial_glow(glow_r, (0, 70, 140))
        self.clouds = [
            (
                float(rng.uniform(0, w)),               # x at t=0
                float(rng.uniform(0.08, 0.45) * h),     # y
                self.px(float(rng.uniform(120, 260))),  # half width
                float(rng.uniform(8, 25) * self.scale),  # drift, px/s
            )
            for _ in range(5)
        ]

    def render(self, t_s: float) -> np.ndarray:
        w = self.width
        elevation = 0.5 + 0.5 * math.cos(2 * math.pi * t_s / self.period_s)  # 1 high, 0 set
        frame = cv2.addWeighted(self.bright, 0.25 + 0.75 * elevation, self.dusk,
                                0.75 - 0.75 * elevation, 0.0)
        sky = frame[: self.horizon_y]  # full rows: a contiguous view that clips at the horizon
        sun_y = round(self.horizon_y + 0.5 * self.sun_r - elevation * 0.5 * self.horizon_y)
        _add_sprite(sky, self.glow, self.sun_x, sun_y)
        cv2.circle(sky, (self.sun_x, sun_y), self.sun_r, (170, 235, 255), -1, cv2.LINE_AA)

        cloud = _scale_colour((60, 45, 95), 0.6 + 0.4 * elevation)
        for x0, y, half_w, drift in self.clouds:
            span = w + 4 * half_w
            x = round((x0 + drift * t_s) % span - 2 * half_w)
            yi = round(y)
            cv2.ellipse(sky, (x, yi), (half_w, max(1, half_w // 6)), 0, 0, 360, cloud, -1)
            cv2.ellipse(sky, (x + half_w // 3, yi - half_w // 8),
                        (half_w // 2, max(1, half_w // 7)), 0, 0, 360, cloud, -1)

        # Glitter of the sun on the water: short lines that breathe, wider near the horizon.
        glitter = _mix_colour((40, 120, 240), (150, 225, 255), elevation)
        gap = self.px(14)
        for k in range(14):
            y = self.horizon_y + gap * (k + 1) - gap // 2
            half = self.sun_r * (1.6 - 0.08 * k) * (0.55 + 0.45 * math.sin(2.1 * t_s + 0.9 * k))
            cv2.line(frame, (round(self.sun_x - half), y), (round(self.sun_x + half), y),
                     glitter, self.px(4))
        return frame


class _Night(_Look):
    """A moonlit sky over hills: well-separated stars that twinkle, and an occasional meteor."""

    meteor_slot_s = 6.0
    meteor_duration_s = 0.8

    def __init__(self, width: int, height: int, rng: np.random.Generator, seed: int) -> None:
        super().__init__(width, height, rng, seed)
        w, h = width, height
        self.background = _gradient(h, w, [(0.0, (40, 12, 4)), (0.6, (80, 38, 14)),
                                           (1.0, (110, 60, 28))])
        far = _ridge(rng, w, base_y=h * 0.78, amplitude=h * 0.05)
        near = _ridge(rng, w, base_y=h * 0.86, amplitude=h * 0.06)
        self.sky_bottom_y = int(min(far[:, 1].min(), near[:, 1].min())) - self.px(20)

        moon = (round(0.8 * w), round(0.2 * h))
        moon_r = self.px(48)
        _add_sprite(self.background, _radial_glow(moon_r * 4, (60, 50, 40)), *moon)
        cv2.circle(self.background, moon, moon_r, (215, 228, 235), -1, cv2.LINE_AA)
        # Faint 1-px dust: texture at full size that vanishes when the analyser downscales.
        for _ in range(int(300 * self.scale**2) + 20):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, max(1, self.sky_bottom_y)))
            level = int(rng.integers(70, 110))
            cv2.circle(self.background, (x, y), 0, (level, level, level), -1)
        cv2.fillPoly(self.background, [_below(far, w, h)], (34, 22, 18))
        cv2.fillPoly(self.background, [_below(near, w, h)], (16, 10, 8))

        # Stars on a jittered grid: one at most per cell, kept off the cell edges, so any two
        # are at least ~40% of a cell apart and stay separate points after a 4x downscale.
        cell = self.px(95)
        stars: list[tuple[int, int, int]] = []
        for gy in range(0, max(1, self.sky_bottom_y - cell // 2), cell):
            for gx in range(0, w, cell):
                if rng.random() > 0.75:
                    continue
                x = gx + int(rng.uniform(0.2, 0.8) * cell)
                y = gy + int(rng.uniform(0.2, 0.8) * cell)
                if x >= w or y >= self.sky_bottom_y:
                    continue
                if math.hypot(x - moon[0], y - moon[1]) < moon_r * 3:
                    continue  # no stars in the moon's glow
                stars.append((x, y, self.px(float(rng.choice([3, 3, 4, 4, 5])))))
        self.stars = stars
        count = len(stars)
        tints = np.array([(255, 235, 215), (255, 255, 255), (210, 240, 255)], dtype=np.float64)
        self.star_colours = tints[rng.integers(0, len(tints), count)]
        self.twinkle_hz = rng.uniform(0.3, 1.3, count)
        self.twinkle_phase = rng.uniform(0, 2 * math.pi, count)

    def render(self, t_s: float) -> np.ndarray:
        frame = self.background.copy()
        # Brightness 0.6..1.0 of each star's colour: always far above the sky around it.
        level = 0.8 + 0.2 * np.sin(2 * math.pi * self.twinkle_hz * t_s + self.twinkle_phase)
        colours = (self.star_colours * level[:, None]).astype(np.int64).tolist()
        for (x, y, r), colour in zip(self.stars, colours, strict=True):
            cv2.circle(frame, (x, y), r, colour, -1, cv2.LINE_AA)
        self._draw_meteor(frame, t_s)
        return frame

    def _draw_meteor(self, frame: np.ndarray, t_s: float) -> None:
        slot = int(t_s // self.meteor_slot_s)
        rng = np.random.default_rng([self.seed, 0x5EED, slot])  # same meteor for same slot
        if rng.random() > 0.6:
            return
        start_s = slot * self.meteor_slot_s + rng.uniform(0, self.meteor_slot_s - 1.0)
        age = (t_s - start_s) / self.meteor_duration_s
        if not 0 <= age <= 1:
            return
        x0 = rng.uniform(0.1, 0.9) * self.width
        y0 = rng.uniform(0.05, 0.3) * self.height
        direction = 1 if rng.random() < 0.5 else -1
        travel = 0.35 * self.width
        head = (x0 + direction * travel * age, y0 + 0.4 * travel * age)
        tail = self.px(160)
        for k, level in enumerate((255, 170, 90)):  # fading tail, brightest at the head
            a = (head[0] - direction * tail * k / 3, head[1] - 0.4 * tail * k / 3)
            b = (head[0] - direction * tail * (k + 1) / 3, head[1] - 0.4 * tail * (k + 1) / 3)
            cv2.line(frame, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])),
                     (level, level, level), self.px(3 - k), cv2.LINE_AA)


class _City(_Look):
    """A street at dusk: lit skyline, windows switching on and off, traffic and a train."""

    train_slot_s = 15.0
    train_crossing_s = 5.0

    def __init__(self, width: int, height: int, rng: np.random.Generator, seed: int) -> None:
        super().__init__(width, height, rng, seed)
        w, h = width, height
        px = self.px
        self.road_y = round(0.8 * h)
        self.background = _gradient(h, w, [(0.0, (70, 30, 20)), (0.8, (120, 70, 90)),
                                           (1.0, (130, 90, 110))])
        bg = self.background
        # Far skyline: dim flat blocks for depth.
        x = -int(rng.integers(0, px(60)))
        while x < w:
            bw = px(float(rng.uniform(50, 130)))
            top = round(self.road_y - rng.uniform(0.3, 0.6) * h)
            cv2.rectangle(bg, (x, top), (x + bw, self.road_y), (75, 60, 58), -1)
            x += bw
        # Near buildings with window grids; some windows switch per frame.
        toggles: list[tuple[int, int, int, int]] = []
        win_w, win_h, gap = px(12), px(16), px(10)
        x = -int(rng.integers(0, px(80)))
        while x < w:
            bw = px(float(rng.uniform(90, 230)))
            top = round(self.road_y - rng.uniform(0.2, 0.62) * h)
            shade = int(rng.integers(38, 70))
            body = (shade + 12, shade + 4, shade)
            cv2.rectangle(bg, (x, top), (x + bw, self.road_y), body, -1)
            cv2.rectangle(bg, (x, top), (x + bw, self.road_y), (20, 20, 20), px(2))
            if rng.random() < 0.4:  # rooftop antenna
                ax = x + bw // 2
                cv2.line(bg, (ax, top), (ax, top - px(60)), (30, 30, 30), px(3))
            for wy in range(top + gap, self.road_y - win_h - gap, win_h + gap):
                for wx in range(x + gap, x + bw - win_w - gap + 1, win_w + gap):
                    lit = rng.random() < 0.45
                    colour = (110, 205, 250) if lit else (35, 35, 40)
                    cv2.rectangle(bg, (wx, wy), (wx + win_w, wy + win_h), colour, -1)
                    if rng.random() < 0.06:
                        toggles.append((wx, wy, wx + win_w, wy + win_h))
            x += bw + int(rng.integers(0, px(25)))
        self.toggles = toggles
        count = len(toggles)
        self.toggle_hz = rng.uniform(0.05, 0.4, count)
        self.toggle_phase = rng.uniform(0, 2 * math.pi, count)
        # Elevated railway and the street.
        self.rail_y = round(0.55 * h)
        cv2.rectangle(bg, (0, self.rail_y), (w, self.rail_y + px(14)), (40, 40, 45), -1)
        for pillar_x in range(px(40), w, px(260)):
            cv2.rectangle(bg, (pillar_x, self.rail_y), (pillar_x + px(18), self.road_y),
                          (45, 45, 50), -1)
        cv2.rectangle(bg, (0, self.road_y), (w, h), (48, 48, 50), -1)
        cv2.line(bg, (0, self.road_y), (w, self.road_y), (110, 110, 115), px(5))
        lane_mid = round((self.road_y + h) / 2)
        for dash_x in range(0, w, px(120)):
            cv2.line(bg, (dash_x, lane_mid), (dash_x + px(60), lane_mid), (200, 200, 200), px(4))

        palette = [(40, 40, 200), (200, 90, 30), (220, 220, 220), (30, 180, 230), (60, 60, 60),
                   (40, 140, 60)]
        lanes = ((round(self.road_y + 0.25 * (h - self.road_y)), 1),
                 (round(self.road_y + 0.75 * (h - self.road_y)), -1))
        self.cars: list[tuple[float, int, int, int, float, int, BGR]] = []
        # Cars of a lane share its speed and a slot each of the wrapped road, so they never
        # run into each other.
        cars_per_lane, max_length = 6, px(170)
        self.max_car_px = max_length
        for lane_y, direction in lanes:
            speed = float(rng.uniform(120, 260)) * self.scale
            slot = (w + 2 * max_length) / cars_per_lane
            for k in range(cars_per_lane):
                length = px(float(rng.uniform(110, 170)))
                x0 = k * slot + float(rng.uniform(0, max(1.0, slot - length - px(20))))
                colour = palette[int(rng.integers(0, len(palette)))]
                self.cars.append((x0, lane_y, direction, length, speed, px(44), colour))

    def render(self, t_s: float) -> np.ndarray:
        frame = self.background.copy()
        lit = np.sin(2 * math.pi * self.toggle_hz * t_s + self.toggle_phase) > 0
        for (x0, y0, x1, y1), on in zip(self.toggles, lit.tolist(), strict=True):
            cv2.rectangle(frame, (x0, y0), (x1, y1), (110, 205, 250) if on else (35, 35, 40), -1)
        self._draw_train(frame, t_s)
        for car in self.cars:
            self._draw_car(frame, t_s, *car)
        return frame

    def _draw_train(self, frame: np.ndarray, t_s: float) -> None:
        progress = (t_s % self.train_slot_s) / self.train_crossing_s
        if progress > 1:
            return
        px = self.px
        car_w, car_h, n_cars = px(420), px(90), 4
        length = n_cars * (car_w + px(12))
        x_left = round(-length + progress * (self.width + length))
        bottom = self.rail_y
        for k in range(n_cars):
            x0 = x_left + k * (car_w + px(12))
            if x0 > self.width or x0 + car_w < 0:
                continue
            cv2.rectangle(frame, (x0, bottom - car_h), (x0 + car_w, bottom), (170, 165, 160), -1)
            cv2.rectangle(frame, (x0, bottom - px(22)), (x0 + car_w, bottom - px(12)),
                          (40, 40, 190), -1)
            for wx in range(x0 + px(20), x0 + car_w - px(50), px(64)):
                cv2.rectangle(frame, (wx, bottom - car_h + px(16)),
                              (wx + px(44), bottom - car_h + px(46)), (120, 215, 245), -1)

    def _draw_car(self, frame: np.ndarray, t_s: float, x0: float, lane_y: int, direction: int,
                  length: int, speed: float, car_h: int, colour: BGR) -> None:
        # One wrap length for the whole lane keeps the cars' spacing as they wrap around.
        span = self.width + 2 * self.max_car_px
        x = round((x0 + direction * speed * t_s) % span - self.max_car_px)
        top = lane_y - car_h // 2
        px = self.px
        cv2.rectangle(frame, (x, top), (x + length, top + car_h), colour, -1)
        cv2.rectangle(frame, (x + length // 4, top - car_h // 2),
                      (x + 3 * length // 4, top), _scale_colour(colour, 0.6), -1)
        front, back = (x + length, x) if direction > 0 else (x, x + length)
        cv2.circle(frame, (front, top + car_h // 3), px(8), (200, 250, 255), -1)
        cv2.circle(frame, (back, top + car_h // 3), px(7), (30, 30, 230), -1)
        for wheel_x in (x + length // 5, x + 4 * length // 5):
            cv2.circle(frame, (wheel_x, top + car_h), px(14), (15, 15, 15), -1)


class _Visitors(_Look):
    """People walking through a room (``capture/visitors.py``)."""

    def __init__(self, width: int, height: int, rng: np.random.Generator, seed: int) -> None:
        super().__init__(width, height, rng, seed)
        self.room = VisitorRoom(width, height, rng, seed)

    def render(self, t_s: float) -> np.ndarray:
        return self.room.render(t_s)


_LOOK_CLASSES: dict[str, type[_Look]] = {"sunset": _Sunset, "night": _Night, "city": _City,
                                         "visitors": _Visitors}
_LOOK_IDS = {"sunset": 1, "night": 2, "city": 3, "visitors": 4}
_CYCLE_ORDER = ("sunset", "night", "city")


def _gradient(height: int, width: int, stops: _Stops) -> np.ndarray:
    """A top-to-bottom colour gradient through ``stops`` (position 0..1, BGR)."""
    positions = np.array([pos for pos, _ in stops], dtype=np.float64)
    colours = np.array([colour for _, colour in stops], dtype=np.float64)
    rows = np.linspace(0.0, 1.0, max(1, height))
    column = np.stack([np.interp(rows, positions, colours[:, ch]) for ch in range(3)], axis=1)
    column_u8 = np.round(column).astype(np.uint8)[:height]
    return np.ascontiguousarray(np.broadcast_to(column_u8[:, None, :], (height, width, 3)))


def _ridge(rng: np.random.Generator, width: int, *, base_y: float, amplitude: float,
           left_bias: float = 0.0) -> np.ndarray:
    """Points (x, y) of a smooth random skyline of hills across the frame."""
    xs = np.linspace(0, width, 64)
    u = xs / max(1, width)
    ys = np.full_like(xs, base_y) - left_bias * np.clip(0.35 - u, 0, None) / 0.35
    for harmonic in (1, 2, 5, 11):
        phase = rng.uniform(0, 2 * math.pi)
        ys += amplitude / harmonic * np.sin(2 * math.pi * harmonic * u + phase)
    return np.stack([xs, ys], axis=1).round().astype(np.int32)


def _below(ridge: np.ndarray, width: int, height: int) -> np.ndarray:
    """The polygon under a ridge line, down to the frame's bottom edge."""
    corners = np.array([[width, height], [0, height]], dtype=np.int32)
    return np.vstack([ridge, corners])


def _radial_glow(radius: int, colour: BGR) -> np.ndarray:
    """A square sprite of ``colour`` fading from the centre to nothing at ``radius``."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    distance = np.hypot(xx, yy).astype(np.float64) / max(1, radius)
    falloff = np.clip(1.0 - distance, 0.0, 1.0) ** 2
    sprite: np.ndarray = falloff[:, :, None] * np.array(colour, dtype=np.float64)
    return np.round(sprite).astype(np.uint8)


def _add_sprite(image: np.ndarray, sprite: np.ndarray, cx: int, cy: int) -> None:
    """Add ``sprite`` centred at (cx, cy) onto ``image`` in place, saturating, clipped."""
    half = sprite.shape[0] // 2
    x0, y0 = cx - half, cy - half
    ix0, iy0 = max(0, x0), max(0, y0)
    ix1 = min(image.shape[1], x0 + sprite.shape[1])
    iy1 = min(image.shape[0], y0 + sprite.shape[0])
    if ix0 >= ix1 or iy0 >= iy1:
        return
    region = image[iy0:iy1, ix0:ix1]
    region[...] = cv2.add(region, sprite[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0])


def _mix_colour(low: BGR, high: BGR, weight: float) -> BGR:
    """``low`` at weight 0 to ``high`` at weight 1."""
    return (round(low[0] + (high[0] - low[0]) * weight),
            round(low[1] + (high[1] - low[1]) * weight),
            round(low[2] + (high[2] - low[2]) * weight))


def _scale_colour(colour: BGR, factor: float) -> BGR:
    return (round(colour[0] * factor), round(colour[1] * factor), round(colour[2] * factor))
