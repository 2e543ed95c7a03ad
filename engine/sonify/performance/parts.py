"""The small parts the performance core is made of: quantised switch points, the control
crossfade after a scene change, auto mode (mood -> scene), and the feature stream's messages.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from sonify.capture.base import Frame
from sonify.config import AutoConfig
from sonify.events import ControlChange, Event, OscMessage, PitchBend
from sonify.features.analyzer import Analyzer, Features
from sonify.features.registry import fractions
from sonify.scene.stream import ChangesOnly, frame


def quantize_beat(beat: float, quantize: str, beats_per_bar: int, phrase_bars: int) -> float:
    """The first beat at or after ``beat`` on the ``quantize`` grid (now, beat, bar, phrase)."""
    if quantize == "now":
        return beat
    unit = {"beat": 1, "bar": beats_per_bar, "phrase": beats_per_bar * phrase_bars}[quantize]
    return math.ceil(beat / unit - 1e-9) * unit


class ControlFade:
    """After a scene change, each CC and pitch bend the new scene sends glides from the value
    the old scene last sent on that channel and controller to the new scene's value, linearly
    over ``duration_s`` (a crossfade of controls: no jump in a filter or a volume)."""

    def __init__(self, t0: float, duration_s: float,
                 start: dict[tuple[str, int, int], int]) -> None:
        self.t0, self.t1 = t0, t0 + duration_s
        self.start = start

    def apply(self, ev: Event) -> Event:
        if not self.t0 <= ev.t < self.t1:
            return ev
        a = (ev.t - self.t0) / (self.t1 - self.t0)
        if isinstance(ev, ControlChange):
            old = self.start.get(("cc", ev.channel, ev.control))
            if old is not None:
                return replace(ev, value=int(round(old + (ev.value - old) * a)))
        elif isinstance(ev, PitchBend):
            old = self.start.get(("pb", ev.channel, 0))
            if old is not None:
                return replace(ev, value=int(round(old + (ev.value - old) * a)))
        return ev


class AutoScene:
    """Auto mode: the mood label chooses the scene (``[auto] scenes``). A new mood must hold for
    ``hold_s`` (hysteresis: a mood flickering at a border changes nothing) and a scene plays at
    least ``dwell_s`` before the next change."""

    def __init__(self, cfg: AutoConfig) -> None:
        self.cfg = cfg
        self.mood = ""
        self.since = 0.0

    def choose(self, mood: str, now: float, scene: str, scene_since: float) -> str | None:
        """The scene to change to now, or None."""
        if mood != self.mood:
            self.mood, self.since = mood, now
            return None
        target = self.cfg.scenes.get(mood)
        if (target is None or target == scene or now - self.since < self.cfg.hold_s
                or now - scene_since < self.cfg.dwell_s):
            return None
        return target


def feature_fractions(features: Features) -> dict[str, float]:
    """Every scalar feature as 0..1 (its registry scale: ``sonify.features.registry``)."""
    return fractions(features.values)


def feature_messages(features: Features, t: float) -> list[OscMessage]:
    """One tick of the config's feature stream (``[osc] stream_features_hz``), by the
    conventions of ``sonify.scene.stream``: every scalar feature as ``/feature/<name>`` (a float
    0..1, see ``feature_fractions``), the mood as ``/feature/mood`` (its index),
    ``/feature/mood/<label>`` (one-hot) and ``/feature/mood/label`` (its name), the 8x8 grid as
    ``/feature/grid`` (64 floats) and the stars as ``/feature/star_points`` (x, y, level
    triples)."""
    return frame(features, t)


class FeatureStream:
    """The config's feature stream: ``feature_messages`` every tick, or with ``changes_only``
    (``[osc] stream_changes_only``) each address only when its value changes. ``latest`` holds
    the values of the last tick (every scalar 0..1 and the mood label) for OSCQuery."""

    def __init__(self, changes_only: bool = False) -> None:
        self._changes = ChangesOnly() if changes_only else None
        self.latest: dict[str, object] = {}

    def messages(self, features: Features, t: float) -> list[OscMessage]:
        self.latest = {**feature_fractions(features), "mood": features.mood}
        out = feature_messages(features, t)
        return out if self._changes is None else self._changes(out)


def neutral_features() -> Features:
    """What to play on before any picture came: a mid-grey frame's features."""
    grey = np.full((90, 160, 3), 128, np.uint8)
    return Analyzer().analyze(Frame(0, time.perf_counter(), grey))
