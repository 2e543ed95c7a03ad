"""The demo's ``visitors`` look: a room where people walk in from the sides and out again.

A wall and a floor, and a few walkers, each drawn with OpenCV (head, neck, torso, swinging
arms and legs) at their own depth (nearer is lower and taller), speed and timing. Each walker
crosses the room, pauses off-screen and crosses again, in a direction drawn per crossing from
the seed, so 0-3 people are in the room at a time and the people features (``vision.py``)
have someone to count, follow and greet, without a camera. The figures have the proportions
OpenCV's HOG people detector expects, so it finds them too.

Kept apart from ``demo.py`` (which registers it) only for size; it imports nothing from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

BGR = tuple[int, int, int]

SKIN: tuple[BGR, ...] = ((140, 170, 210), (90, 120, 170), (60, 85, 120), (170, 195, 230))
CLOTHES: tuple[tuple[BGR, BGR], ...] = (  # (top, trousers)
    ((60, 60, 170), (90, 50, 40)),
    ((150, 110, 40), (50, 50, 50)),
    ((60, 150, 60), (120, 100, 80)),
    ((40, 170, 220), (70, 40, 30)),
    ((170, 170, 170), (30, 30, 90)),
)


def draw_figure(image: np.ndarray, cx: float, foot_y: float, height: float, *,
                top: BGR = (60, 60, 170), trousers: BGR = (90, 50, 40),
                skin: BGR = SKIN[0], phase: float = 0.0) -> None:
    """Draw a standing or walking person in place: feet at (``cx``, ``foot_y``), ``height``
    pixels tall, legs and arms swung by ``sin(phase)`` (0: feet together-ish, a stride at
    +-pi/2). Proportions of an adult: head 1/8 of the height, hips at about half of it."""
    h = float(height)
    x = round(cx)
    head_r = max(2, round(h * 0.065))
    head_y = round(foot_y - h + head_r)
    shoulder_y = round(foot_y - h + 2 * head_r + h * 0.02)
    hip_y = round(foot_y - h * 0.47)
    half_w = max(2, round(h * 0.13))
    swing = math.sin(phase)
    arm_w = max(2, round(h * 0.05))
    leg_w = max(2, round(h * 0.075))
    for side in (-1, 1):  # legs first: the torso covers their tops
        foot_x = x + side * round(h * 0.08) + round(swing * side * h * 0.12)
        cv2.line(image, (x + side * round(half_w * 0.45), hip_y), (foot_x, round(foot_y)),
                 trousers, leg_w, cv2.LINE_AA)
    torso = np.array([[x - half_w, shoulder_y], [x + half_w, shoulder_y],
                      [x + round(half_w * 0.8), hip_y], [x - round(half_w * 0.8), hip_y]],
                     np.int32)
    cv2.fillPoly(image, [torso], top, cv2.LINE_AA)
    cv2.line(image, (x, head_y), (x, shoulder_y), skin, max(2, round(h * 0.04)))
    cv2.circle(image, (x, head_y), head_r, skin, -1, cv2.LINE_AA)
    for side in (-1, 1):  # arms swing against the legs
        hand = (x + side * round(half_w * 1.1) - round(swing * side * h * 0.08),
                round(hip_y + h * 0.05))
        cv2.line(image, (x + side * half_w, shoulder_y + arm_w), hand, top, arm_w, cv2.LINE_AA)


@dataclass(frozen=True, slots=True)
class Walker:
    """One visitor's habits: depth 0 (far) .. 1 (near), speed in frame widths per second, the
    length of a cycle (a crossing and a pause off-screen) and where in it time 0 falls."""

    index: int
    depth: float
    speed: float
    period_s: float
    offset_s: float
    top: BGR
    trousers: BGR
    skin: BGR


class VisitorRoom:
    """Paints the room once and the walkers per frame; ``render(t_s)`` is deterministic for
    a seed (each crossing's direction comes from a Generator seeded by seed, walker and
    crossing number)."""

    walkers_count = 3

    def __init__(self, width: int, height: int, rng: np.random.Generator, seed: int) -> None:
        self.width = width
        self.height = height
        self.seed = seed
        w, h = width, height
        self.floor_y = round(0.62 * h)
        room = np.empty((h, w, 3), np.uint8)
        wall = np.linspace(0.0, 1.0, self.floor_y)[:, None] * np.array([-25.0, -20.0, -15.0])
        room[: self.floor_y] = np.round(np.array([175.0, 190.0, 200.0]) + wall)[:, None, :]
        floor = np.linspace(0.0, 1.0, h - self.floor_y)[:, None] * np.array([-40.0, -35.0, -30.0])
        room[self.floor_y :] = np.round(np.array([95.0, 110.0, 125.0]) + floor)[:, None, :]
        line = max(1, round(h / 200))
        cv2.line(room, (0, self.floor_y), (w, self.floor_y), (70, 80, 90), 2 * line)
        # Two pictures on the wall: still things a background model should learn and ignore.
        for fx, colour in ((0.22, (60, 90, 140)), (0.7, (130, 80, 50))):
            x0, y0 = round(fx * w), round(0.14 * h)
            x1, y1 = x0 + round(0.12 * w), y0 + round(0.2 * h)
            cv2.rectangle(room, (x0, y0), (x1, y1), (40, 45, 50), 3 * line)
            cv2.rectangle(room, (x0 + 3 * line, y0 + 3 * line), (x1 - 3 * line, y1 - 3 * line),
                          colour, -1)
        self.room = room
        walkers = []
        first_clothes = int(rng.integers(0, len(CLOTHES)))
        for k in range(self.walkers_count):
            depth = float(rng.uniform(0.0, 1.0))
            speed = float(rng.uniform(0.07, 0.2))
            crossing = self._crossing_s(depth, speed)
            top, trousers = CLOTHES[(first_clothes + k) % len(CLOTHES)]  # each dressed apart
            walkers.append(Walker(
                index=k, depth=depth, speed=speed,
                period_s=crossing + float(rng.uniform(2.0, 8.0)),
                offset_s=float(rng.uniform(0.0, 6.0)) + 4.0 * k,
                top=top, trousers=trousers, skin=SKIN[int(rng.integers(0, len(SKIN)))]))
        # nearer walkers last, so they are drawn over the far ones
        self.walkers = sorted(walkers, key=lambda wk: wk.depth)

    def figure_height(self, depth: float) -> float:
        return self.height * (0.3 + 0.22 * depth)

    def foot_y(self, depth: float) -> float:
        return self.height * (0.72 + 0.22 * depth)

    def _crossing_s(self, depth: float, speed: float) -> float:
        margin = 0.5 * self.figure_height(depth) / self.width  # in frame widths, each side
        return (1.0 + 2 * margin) / speed

    def positions(self, t_s: float) -> list[tuple[Walker, float, int]]:
        """The walkers in the room at ``t_s``: (walker, centre x in pixels, direction)."""
        out = []
        for wk in self.walkers:
            local = t_s - wk.offset_s
            crossing_no = math.floor(local / wk.period_s)
            along = local - crossing_no * wk.period_s
            crossing_s = self._crossing_s(wk.depth, wk.speed)
            if local < 0 or along > crossing_s:
                continue  # not come in yet, or pausing off-screen
            rng = np.random.default_rng([self.seed, 0x77A1, wk.index, crossing_no])
            direction = 1 if rng.random() < 0.5 else -1
            margin = 0.5 * self.figure_height(wk.depth)
            travelled = along * wk.speed * self.width
            x = -margin + travelled if direction > 0 else self.width + margin - travelled
            out.append((wk, x, direction))
        return out

    def render(self, t_s: float) -> np.ndarray:
        frame = self.room.copy()
        for wk, x, _direction in self.positions(t_s):
            height = self.figure_height(wk.depth)
            stride = 0.55 * height  # one swing per stride, as far as the legs reach
            phase = math.pi * abs(x) / stride
            draw_figure(frame, x, self.foot_y(wk.depth), height, top=wk.top,
                        trousers=wk.trousers, skin=wk.skin, phase=phase)
        return frame
