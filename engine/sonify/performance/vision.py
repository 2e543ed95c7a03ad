"""People, faces, flow and zones in the performance: what the analysis must add for the scene.

A scene pays for the vision features only when it reads them (``features/vision.py``).
``VisionDemand`` is what the playing scene and the one about to play read (``wanted``) and
the zones they declare (moved by the config's ``[[analysis.zones]]``); the music thread
updates it each block. ``VisionStage`` runs on whichever thread analyses frames (the capture
thread live, the music thread in a render): it adds what ``demand`` wants to each frame's
features. ``with_neutral`` fills a wanted name the features lack (from before a scene read it,
a held picture, idle) with its value for an empty room, and ``onsets_of`` lists every onset a
frame fired, the people's and the zones' included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from sonify.capture.base import Frame
from sonify.features.analyzer import Features
from sonify.features.registry import VISION_NAMES, ZONE_PREFIX, split_zone
from sonify.features.vision import NEUTRAL, Vision, VisionConfig
from sonify.features.zones import Zone
from sonify.performance.sources import feature_refs
from sonify.scene.schema import Scene, ZoneSpec


def vision_refs(scene: Scene) -> frozenset[str]:
    """The people, faces, flow and zone features a scene reads (``features/vision.py``
    computes them, and only them)."""
    return frozenset(n for n in feature_refs(scene)
                     if n in VISION_NAMES or n.startswith(ZONE_PREFIX))


class VisionDemand:
    """What the analysis must add for the scene playing and the one about to (``wanted``:
    feature names; ``zones``: the scenes' ``[[zones]]``, moved by the config's
    ``[[analysis.zones]]`` of the same name). The music thread ``update``s it each block
    (cheap: found once per scene pair); the capture thread reads the two attributes, each
    replaced whole, never mutated."""

    def __init__(self, config_zones: Iterable[ZoneSpec] = ()) -> None:
        self._config = {z.name: z.zone() for z in config_zones}
        self.wanted: frozenset[str] = frozenset()
        self.zones: tuple[Zone, ...] = tuple(self._config.values())
        self._scenes: tuple[Scene | None, Scene | None] = (None, None)

    def update(self, scene: Scene, pending: Scene | None = None) -> frozenset[str]:
        if self._scenes[0] is not scene or self._scenes[1] is not pending:
            self._scenes = (scene, pending)
            zones: dict[str, Zone] = {}
            wanted = vision_refs(scene)
            for s in (pending, scene):  # the playing scene's zone wins a name both declare
                if s is not None:
                    zones.update((z.name, z.zone()) for z in s.zones)
            if pending is not None:
                wanted |= vision_refs(pending)
            zones.update(self._config)
            self.zones = tuple(zones.values())
            self.wanted = wanted
        return self.wanted


def onsets_of(features: Features) -> list[str]:
    """The onsets that fired on this frame: the picture's (``motion_onset`` ...), the people's
    (``enter_onset``, ``leave_onset``) and those inside zones (``zone:door:enter_onset``)."""
    return [name for name, value in features.raw.items()
            if value and name.endswith(ONSET_SUFFIX)]


ONSET_SUFFIX = "_onset"


class VisionStage:
    """People, faces, flow and zones on top of one stream's picture features: what ``demand``
    asks for now (nothing: the features pass untouched, at no cost). A new set of zones (a
    scene that declares others) makes a new ``Vision``; the same zones keep the room's
    background model and the people being tracked across a scene change."""

    def __init__(self, demand: VisionDemand, config: VisionConfig | None = None) -> None:
        self.demand = demand
        self.config = config
        self.vision: Vision | None = None
        self._zones: tuple[Zone, ...] | None = None

    def __call__(self, frame: Frame, features: Features) -> Features:
        wanted = self.demand.wanted
        if not wanted:
            return features
        zones = self.demand.zones
        if self.vision is None or zones is not self._zones:
            if self.vision is None or zones != self._zones:
                self.vision = Vision(zones, self.config)
            self._zones = zones
        return self.vision.analyze(frame, features, wanted)

    def reset(self) -> None:
        if self.vision is not None:
            self.vision.reset()


def with_neutral(features: Features, wanted: frozenset[str]) -> Features:
    """``features`` with every vision name in ``wanted`` it lacks at its neutral value (nobody
    there): features from before a scene read them, a held picture, idle."""
    missing = [n for n in wanted if n not in features.values]
    if not missing:
        return features
    add = {n: NEUTRAL[(split_zone(n) or (None, n))[1]] for n in missing}
    return replace(features, values={**features.values, **add}, raw={**add, **features.raw})
