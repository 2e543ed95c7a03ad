"""Named sources: the features of extra sources (``[[source.extra]]``), as scenes read them.

A scene maps the main source's features by their plain names (``motion``) and an extra
source's by ``<name>:<feature>`` (``cam1:motion``). Each extra source is read and analysed on
its own (``sonify.live.extras``) and publishes its latest Features here, from its own thread;
once per block ``SourceFeatures.merge`` lays the values the running scene reads from them
beside the main source's (``values["cam1:motion"]``), so the mapping primitives read them like
any other feature and nothing downstream knows there are several sources.

A source the scene names that has no picture yet, or that the config does not have at all,
reads as a plain mid-grey picture (its values are the neutral ones): a scene written for two
cameras still plays with one, and says so once in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import replace

from sonify.features.analyzer import Features
from sonify.features.registry import SCALAR_NAMES, ZONE_PREFIX, split_source
from sonify.performance.parts import neutral_features
from sonify.scene.mapping import PARAM_PREFIX, WEK_PREFIX
from sonify.scene.schema import Scene, feature_names

logger = logging.getLogger(__name__)


feature_refs = feature_names
"""Every feature name a scene reads (``sonify.scene.schema.feature_names``)."""


def source_refs(scene: Scene) -> frozenset[str]:
    """The names of the extra sources a scene's mappings, choices and stream read."""
    found = set()
    for name in feature_refs(scene):
        source, _ = split_source(name)
        if source is not None and not name.startswith(_NOT_SOURCES):
            found.add(source)
    return frozenset(found)


_NOT_SOURCES = (PARAM_PREFIX, WEK_PREFIX, ZONE_PREFIX)


class SourceFeatures:
    """The latest Features of each extra source (``publish`` from any thread), merged into the
    main source's for the scene (``merge``, on the music thread). ``names`` are the sources the
    config has."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = tuple(names)
        self._lock = threading.Lock()
        self._latest: dict[str, Features] = {}
        self._version = 0
        self._neutral: dict[str, float] | None = None
        self._warned: set[str] = set()
        self._cache: tuple[Features, int, frozenset[str], Features] | None = None
        self._scenes: tuple[Scene | None, Scene | None] = (None, None)
        self._wanted: frozenset[str] = frozenset()

    def publish(self, name: str, features: Features) -> None:
        """The newest features of the extra source ``name`` (its capture thread)."""
        with self._lock:
            self._latest[name] = features
            self._version += 1

    def latest(self, name: str) -> Features | None:
        with self._lock:
            return self._latest.get(name)

    def wanted(self, scene: Scene, pending: Scene | None = None) -> frozenset[str]:
        """The sources ``scene`` and the ``pending`` one (about to play) read; found once per
        scene, as the music thread asks every block."""
        if self._scenes[0] is not scene or self._scenes[1] is not pending:
            self._scenes = (scene, pending)
            self._wanted = source_refs(scene) | (source_refs(pending) if pending is not None
                                                 else frozenset())
        return self._wanted

    def merge(self, features: Features | None, wanted: frozenset[str], *,
              hold: bool = False) -> Features | None:
        """``features`` with ``<source>:<feature>`` values for every source in ``wanted`` (the
        scene's), each from that source's latest features or neutral ones; ``features`` itself
        when the scene reads no other source. Made again only when something changed.
        ``hold`` (frozen) keeps the values ``features`` already has and adds only missing ones."""
        if features is None or not wanted:
            return features
        if hold and all(f"{name}:{SCALAR_NAMES[0]}" in features.values for name in wanted):
            return features
        with self._lock:
            version = self._version
            latest = {name: self._latest.get(name) for name in wanted}
        cached = self._cache
        if (cached is not None and cached[0] is features and cached[1] == version
                and cached[2] == wanted):
            return cached[3]
        values = dict(features.values)
        for name in sorted(wanted):
            if hold and f"{name}:{SCALAR_NAMES[0]}" in values:
                continue
            extra = latest[name]
            if extra is None and name not in self.names and name not in self._warned:
                self._warned.add(name)
                logger.warning("the scene reads the source %r, but the config has no "
                               "[[source.extra]] named so (%s): it reads as a plain grey "
                               "picture", name,
                               f"it has {', '.join(self.names)}" if self.names else "it has none")
            source_values = extra.values if extra is not None else self._neutral_values()
            for feature in SCALAR_NAMES:
                values[f"{name}:{feature}"] = source_values[feature]
        merged = replace(features, values=values)
        self._cache = (features, version, wanted, merged)
        return merged

    def _neutral_values(self) -> dict[str, float]:
        if self._neutral is None:
            self._neutral = dict(neutral_features().values)
        return self._neutral

