"""The Python API: play a scene from a script, with callbacks, or from features you compute.

For people who script music in Python (the isobar / scamp audience), three doors, all on the
one performance core that ``sonify run`` and ``sonify render`` use:

- ``sonify.render(input, ["piece.mid", "piece.wav"], scene="gallery", duration_s=30)``: a photo,
  a folder, a video or ``demo`` into files; returns the ``RenderResult`` (notes, markers, events).
- ``sonify.Engine(scene, source=...)``: a scene playing a source, with ``on_features(features)``
  called for each analysed frame and ``on_events(events)`` for what each block sends. ``play(s)``
  runs ``s`` seconds on a virtual clock as fast as the machine goes (tests, sketches, offline
  work); ``run(s)`` plays in real time to the outputs (``sonify.outputs``: MIDI, OSC, a MIDI
  file), until ``s`` seconds pass or ``stop()``.
- ``Engine.feed(brightness=0.8, warmth=0.9, ...)``: features from Python instead of a camera (a
  sensor, another program, a model). Scalars not fed take the middle of their range; arrays are
  empty (no stars, a flat grid); ``mood=`` sets the label. The engine then plays what was fed
  last, exactly as it would play a camera's features.

Example (run by ``tests/test_api.py`` as the README shows it)::

    import sonify

    engine = sonify.Engine("gallery", seed=1)
    engine.feed(brightness=0.8, saturation=0.7, warmth=0.9, valence=0.8, arousal=0.5)
    events = engine.play(8.0)
    notes = [e for e in events if isinstance(e, sonify.NoteOn)]
    print(len(notes), "notes; first pitches", [n.pitch for n in notes[:8]])

Commands (``sonify.commands``: ``SetParam``, ``SetTempo``, ``Mute``...) go in with
``Engine.command`` (any thread) or, for ``play``, as a ``script`` of ``(seconds, command)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from sonify.capture.base import Frame, Source
from sonify.commands import Command
from sonify.config import Config
from sonify.events import Event
from sonify.features.analyzer import Features
from sonify.features.mood import label as mood_label
from sonify.features.registry import ARRAYS, SCALARS
from sonify.live.report import Status
from sonify.live.runtime import Runtime
from sonify.outputs.base import Output
from sonify.performance.loop import Script
from sonify.timing.clock import ManualTime

__all__ = ["CallbackOutput", "Engine", "FeatureFeed", "features_from"]

_SCALAR_NAMES = frozenset(f.name for f in SCALARS)


def features_from(values: Mapping[str, float], *, mood: str | None = None, t: float = 0.0,
                  index: int = 0, arrays: Mapping[str, np.ndarray] | None = None) -> Features:
    """A ``Features`` from Python values (``sonify features --list`` names them). A scalar not
    given takes the middle of its range; an array not given is zeros of its shape; the mood
    label, when not given, is the one valence and arousal point to. Unknown names raise
    KeyError naming the known ones."""
    unknown = sorted(set(values) - _SCALAR_NAMES)
    if unknown:
        raise KeyError(f"unknown feature {', '.join(map(repr, unknown))} (known: "
                       f"{', '.join(sorted(_SCALAR_NAMES))})")
    scalars: dict[str, float] = {}
    for spec in SCALARS:
        lo, hi = spec.span
        scalars[spec.name] = float(values.get(spec.name, (lo + hi) / 2 if not
                                              spec.name.endswith("_onset") else 0.0))
    given = dict(arrays or {})
    arr = {spec.name: np.asarray(given[spec.name], dtype=np.float32) if spec.name in given
           else np.zeros(spec.shape, dtype=np.float32) for spec in ARRAYS}
    label = mood if mood is not None else mood_label(scalars["valence"], scalars["arousal"])
    return Features(index=index, t=t, values=scalars, raw=dict(scalars), arrays=arr,
                    mood=label)


class FeatureFeed:
    """Features set from Python (any thread), handed to the engine as if analysed from frames:
    it has the analyzer's ``analyze(frame)``. Onsets fed are sent once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._mood: str | None = None
        self._once: set[str] = set()

    def set(self, values: Mapping[str, float], *, mood: str | None = None,
            arrays: Mapping[str, np.ndarray] | None = None) -> None:
        features_from(values, mood=mood, arrays=arrays)  # check names now, in the caller
        with self._lock:
            for name, value in values.items():
                if name.endswith("_onset"):
                    if value:
                        self._once.add(name)
                else:
                    self._values[name] = float(value)
            if arrays:
                self._arrays.update(arrays)
            if mood is not None:
                self._mood = mood

    def analyze(self, frame: Frame) -> Features:
        with self._lock:
            values = dict(self._values)
            values.update({name: 1.0 for name in self._once})
            self._once.clear()
            return features_from(values, mood=self._mood, t=frame.t, index=frame.index,
                                 arrays=self._arrays)


class _Ticks(Source):
    """Empty frames at ``fps`` for a fed engine: on its own timeline (virtual) or paced by the
    wall clock (live)."""

    name = "python feed"
    live = False

    def __init__(self, fps: float, realtime: bool) -> None:
        self.fps = fps
        self._realtime = realtime
        self._closed = threading.Event()
        self._image = np.zeros((2, 2, 3), dtype=np.uint8)

    def open(self) -> None:
        self._closed.clear()

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        start = time.perf_counter()
        while not self._closed.is_set():
            if self._realtime:
                due = start + i / self.fps
                if self._closed.wait(max(0.0, due - time.perf_counter())):
                    return
                yield Frame(i, time.perf_counter(), self._image)
            else:
                yield Frame(i, i / self.fps, self._image)
            i += 1


class CallbackOutput(Output):
    """An output that hands every event it is sent to ``fn`` (on the dispatch thread, at the
    event's time; keep ``fn`` quick)."""

    name = "python callback"

    def __init__(self, fn: Callable[[Event], None]) -> None:
        super().__init__()
        self._fn = fn

    def _send(self, event: Event) -> None:
        self._fn(event)

    def _panic(self) -> None:
        pass

    def _close(self) -> None:
        pass


class Engine:
    """A scene playing a source (or fed features) on the performance core; see the module
    docstring. ``source`` is what ``sonify run --input`` takes (``demo``, a camera index or
    device, a file, a folder); ``outputs`` are ``sonify.outputs`` objects; ``config`` a
    ``sonify.config.Config`` for everything else (its scene, seed and source are set from the
    arguments). No control server, web page or MIDI port opens unless the config asks."""

    def __init__(self, scene: str = "gallery", *, source: str = "demo",
                 outputs: Sequence[Output] = (), seed: int = 0, config: Config | None = None,
                 on_features: Callable[[Features], None] | None = None,
                 on_events: Callable[[list[Event]], None] | None = None) -> None:
        if config is None:
            config = Config()
            config.midi.enabled = False
            config.control.port = 0
            config.http.port = 0
        config.scene.name = scene
        config.scene.seed = seed
        config.source.input = source
        self.config = config
        self.outputs = list(outputs)
        self.on_features = on_features
        self.on_events = on_events
        self._feed: FeatureFeed | None = None
        self._runtime: Runtime | None = None
        self._pending: list[Command] = []

    # -- input --------------------------------------------------------------------------------

    def feed(self, values: Mapping[str, float] | None = None, *, mood: str | None = None,
             arrays: Mapping[str, np.ndarray] | None = None, **named: float) -> None:
        """Play these features instead of the source's (any thread, before or while playing)."""
        if self._feed is None:
            if self._runtime is not None:
                raise RuntimeError("feed() the first features before play() or run()")
            self._feed = FeatureFeed()
        self._feed.set({**(values or {}), **named}, mood=mood, arrays=arrays)

    def command(self, cmd: Command) -> None:
        """A command (``sonify.commands``), applied at the next block; any thread."""
        if self._runtime is None:
            self._pending.append(cmd)
        else:
            self._runtime.command(cmd)

    def stop(self) -> None:
        """End ``run`` (any thread); returns at once."""
        if self._runtime is not None:
            self._runtime.stop()

    # -- playing --------------------------------------------------------------------------------

    def play(self, seconds: float, *, script: Script = ()) -> list[Event]:
        """Play ``seconds`` on a virtual clock, as fast as the machine goes; returns every
        event the outputs were sent, in order. ``script``: ``(seconds, command)`` pairs."""
        got: list[Event] = []
        rt = self._make(ManualTime(0.0), got.append, realtime=False)
        rt.run_virtual(seconds, script=[(0.0, c) for c in self._pending] + list(script))
        return got

    def run(self, seconds: float | None = None) -> Status:
        """Play in real time until ``seconds`` pass or ``stop()``; returns the final status."""
        rt = self._make(None, None, realtime=True)
        for cmd in self._pending:
            rt.command(cmd)
        return rt.run(seconds)

    def _make(self, clock: ManualTime | None, collect: Callable[[Event], None] | None, *,
              realtime: bool) -> Runtime:
        outputs = list(self.outputs)
        if collect is not None:
            outputs.append(CallbackOutput(collect))
        source: Source | None = None
        if self._feed is not None:
            source = _Ticks(self.config.source.fps or 30.0, realtime=realtime)
        elif clock is not None:
            from sonify.capture import open_source

            source = open_source(self.config.source.input, fps=self.config.source.fps,
                                 realtime=False, seed=self.config.source.seed)
        rt = Runtime(self.config, outputs, source=source, time_source=clock)
        if self._feed is not None:
            rt.capture.analyzer = self._feed  # type: ignore[assignment]
        if self.on_features is not None:
            rt.feature_listeners.append(self.on_features)
        if self.on_events is not None:
            rt.event_listeners.append(self.on_events)
        self._runtime = rt
        return rt
