"""Several sources at once: the extra sources of a live run (``[[source.extra]]``).

Each extra source is read and analysed on its own capture thread (``sonify.live.capture``, as
the main source is), with its own analyzer, and publishes its features under its name into
the performance's ``SourceFeatures``; scenes read them as ``<name>:<feature>``
(``cam1:motion``). The main source alone drives the clock of the music, the mood, the
onsets, the preview and the page; an extra source only adds values a scene can map.

An extra camera or stream that is lost holds its last features while it is reopened (the
camera watch); one that cannot be opened at start stops the run with an error naming it, as
the main source does. In a virtual run (``Runtime.run_virtual``) the extra sources are read on
the music thread instead: each frame whose time has come is analysed before the main frame of
the same time, so the whole run stays deterministic.

An extra source whose input is ``osc:PORT`` (``osc:HOST:PORT``, ``osc://HOST:PORT``) is not a
picture: its features arrive over OSC from another sonify box, TouchDesigner or a sensor
(``sonify.control.feature_in.OscFeatureInput``), which publishes them on its own thread. A
virtual run skips such sources (they live on the wall clock), says so in the log, and scenes
read them as neutral values there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from sonify.capture import Frame, Source, SourceError, open_source
from sonify.config import Config
from sonify.control.feature_in import OscFeatureInput, parse_osc_input
from sonify.control.udp import ListenError
from sonify.features.analyzer import Analyzer, AnalyzerConfig, Features
from sonify.live.capture import Capture
from sonify.performance.sources import SourceFeatures

logger = logging.getLogger(__name__)


@dataclass
class _Extra:
    name: str
    source: Source
    capture: Capture
    frames: Iterator[Frame] | None = None  # virtual runs: the source's own timeline
    pending: Frame | None = None


class ExtraSources:
    """The extra sources of ``config`` (none: every method does nothing). ``realtime`` paces
    files and the demo as live (False for a virtual run); ``beat`` is the watchdog's."""

    def __init__(self, config: Config, features: SourceFeatures, stop: threading.Event, *,
                 realtime: bool, beat: Callable[[float], None], strict: bool = False) -> None:
        self.features = features
        self.extras: list[_Extra] = []
        self.osc: list[OscFeatureInput] = []
        sc = config.source
        for x in sc.extra:
            try:
                where = parse_osc_input(x.input)
            except ValueError as exc:
                raise SourceError(f"[[source.extra]] {x.name}: {exc}") from None
            if where is not None:
                if realtime:
                    self.osc.append(OscFeatureInput(x.name, *where, features.publish))
                else:
                    logger.info("extra source %s (OSC %s:%d) skipped in a virtual run: its "
                                "features read as a plain grey picture", x.name, *where)
                continue
            try:
                source = open_source(
                    x.input, width=x.width or sc.width, height=x.height or sc.height,
                    fps=x.fps or sc.fps, loop=sc.loop, realtime=realtime, seed=sc.seed,
                    stall_s=sc.stall_s, stale_s=sc.stale_s or None,
                    retry_initial_s=sc.retry_initial_s, retry_max_s=sc.retry_max_s,
                    hold_s=x.hold_s or None)
            except SourceError as exc:
                raise SourceError(f"[[source.extra]] {x.name}: {exc}") from None
            analyzer = Analyzer(AnalyzerConfig(
                width=config.analysis.width, threads=config.analysis.threads,
                smoothing_s=dict(config.analysis.smoothing_s)))
            capture = Capture(source, analyzer, stop, beat=beat,
                              on_frame=self._publisher(x.name),
                              retry_initial_s=sc.retry_initial_s,
                              retry_max_s=sc.retry_max_s, strict=strict)
            self.extras.append(_Extra(x.name, source, capture))

    def _publisher(self, name: str) -> Callable[[np.ndarray, Features], None]:
        def publish(image: np.ndarray, features: Features) -> None:
            self.features.publish(name, features)
        return publish

    @property
    def names(self) -> list[str]:
        return [x.name for x in self.extras] + [o.name for o in self.osc]

    def open(self) -> None:
        """Open every extra source; SourceError names the one that cannot be opened."""
        for x in self.extras:
            try:
                x.capture.open()
            except SourceError as exc:
                self.close()
                raise SourceError(f"extra source {x.name} ({x.source.name}): {exc}") from None
            logger.info("extra source %s: %s", x.name, x.source.name)
        for o in self.osc:
            try:
                o.open()
            except (ListenError, OSError) as exc:  # the port is taken, the host is not there
                self.close()
                raise SourceError(f"extra source {o.name} ({o.where}): {exc}") from None

    def start(self) -> None:
        """A capture thread per extra source (live runs)."""
        for x in self.extras:
            x.capture.start()
        for o in self.osc:
            o.start()

    def close(self, join_s: float = 0.0) -> None:
        """Close every extra source, then wait up to ``join_s`` for each capture thread."""
        for x in self.extras:
            x.source.close()
        for o in self.osc:
            o.close()
        for x in self.extras:
            if join_s > 0:
                x.capture.join(join_s)

    def problems(self) -> list[str]:
        """A sentence per extra source whose capture stopped or is lost now."""
        found = []
        for x in self.extras:
            cap = x.capture
            if cap.thread is not None and not cap.alive and cap.error is not None:
                found.append(f"extra source {x.name} stopped: {cap.error}")
            elif cap.lost:
                found.append(f"extra source {x.name} ({x.source.name}) is "
                             f"{'not there' if not cap.opened else x.source.state}")
        return found

    # -- virtual runs ------------------------------------------------------------------------

    def analyze_until(self, t: float, start_s: float) -> None:
        """Analyse each extra source's frames whose time (``start_s`` + the frame's time on
        its own timeline) is at most ``t``, in order (the music thread of a virtual run)."""
        for x in self.extras:
            if x.frames is None:
                x.frames = iter(x.source)
                x.pending = next(x.frames, None)
            while x.pending is not None and start_s + x.pending.t <= t:
                x.capture.analyze(replace(x.pending, t=start_s + x.pending.t))
                x.pending = next(x.frames, None)
