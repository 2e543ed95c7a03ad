"""The capture side of a live run: the thread that reads the source and analyses each frame.

``Capture`` owns the source, the analyzer and the capture thread. Each analysed frame is
published into ``Latest`` (the newest Features, plus the onsets seen since the music thread last
took them), which is the only thing the two threads share. A camera that is missing at start
(``wait_for_camera``) is retried with backoff; a camera that is lost or hangs mid-run yields
``None`` heartbeats, so the loop keeps turning and beating the watchdog while the source recovers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from sonify.capture import Frame, Source, SourceError
from sonify.features.analyzer import Analyzer, Features
from sonify.performance.vision import onsets_of

logger = logging.getLogger(__name__)


class Latest:
    """The newest Features and the onsets since the last take, shared by two threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.features: Features | None = None
        self._onsets: set[str] = set()
        self.frames = 0
        self.frame_times: deque[float] = deque(maxlen=120)
        self.analysis_ms: deque[float] = deque(maxlen=120)

    def publish(self, feats: Features) -> None:
        with self._lock:
            self.features = feats
            self._onsets.update(onsets_of(feats))
            self.frames += 1
            self.frame_times.append(time.perf_counter())
            self.analysis_ms.append(feats.analysis_ms)

    def take(self) -> tuple[Features | None, list[str]]:
        with self._lock:
            onsets = sorted(self._onsets)
            self._onsets.clear()
            return self.features, onsets

    def fps(self) -> float:
        with self._lock:
            times = list(self.frame_times)
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def last_frame_age_s(self) -> float | None:
        """Seconds since the newest frame was published (None before the first)."""
        times = list(self.frame_times)
        return time.perf_counter() - times[-1] if times else None


class Capture:
    """Reads ``source`` on its own thread and publishes each analysed frame into ``latest``.

    ``beat`` is called with ``time.perf_counter()`` while the loop turns (the watchdog);
    ``on_frame(image, features)`` after each analysed frame (metrics, the preview);
    ``vision(frame, features)`` adds the people, flow and zone features the scene reads. ``error``
    holds what stopped the loop, if anything: the music thread decides what to do with it.
    """

    def __init__(self, source: Source, analyzer: Analyzer, stop: threading.Event, *,
                 beat: Callable[[float], None],
                 on_frame: Callable[[np.ndarray, Features], None],
                 retry_initial_s: float = 1.0, retry_max_s: float = 30.0,
                 strict: bool = False,
                 vision: Callable[[Frame, Features], Features] | None = None) -> None:
        self.source = source
        self.analyzer = analyzer
        self.vision = vision  # people, flow and zones the scene reads (``VisionStage``)
        self.latest = Latest()
        self.opened = False
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self._stop = stop
        self._beat = beat
        self._on_frame = on_frame
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._strict = strict

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def lost(self) -> bool:
        """A live source that is not delivering (not there yet, lost or hung)."""
        return self.source.live and (not self.opened or self.source.state != "ok")

    def open(self) -> None:
        """Open the source now (SourceError when it cannot be)."""
        self.source.open()
        self.opened = True

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="sonify-capture", daemon=True)
        self.thread.start()

    def join(self, timeout_s: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout=timeout_s)

    def analyze(self, frame: Frame) -> Features:
        """Analyse one frame and publish its features (the capture thread, or a virtual run)."""
        feats = self.analyzer.analyze(frame)
        if self.vision is not None:
            feats = self.vision(frame, feats)
        self.latest.publish(feats)
        self._on_frame(frame.image, feats)
        return feats

    def _loop(self) -> None:
        try:
            if not self.opened:
                self._open_when_there()
            # None every 0.2 s without a frame: the loop keeps turning (and beating) while a
            # camera is lost or hung; source.state says which
            for frame in self.source.frames(heartbeat_s=0.2):
                self._beat(time.perf_counter())
                if self._stop.is_set():
                    break
                if frame is not None:
                    self.analyze(frame)
        except Exception as exc:  # the music thread decides what to do with it
            self.error = exc
            logger.error("capture stopped: %s", exc)
            if self._strict:
                raise
        finally:
            logger.info("capture loop ended after %d frames", self.latest.frames)

    def _open_when_there(self) -> None:
        """A camera missing at start (``wait_for_camera``): retry with backoff, beating the
        watchdog, until it opens or the run stops."""
        wait = self._retry_initial_s
        while not self._stop.is_set():
            try:
                self.open()
            except SourceError as exc:
                self._beat(time.perf_counter())
                logger.debug("camera still missing: %s", exc)
                deadline = time.perf_counter() + wait
                while not self._stop.is_set() and time.perf_counter() < deadline:
                    self._beat(time.perf_counter())
                    self._stop.wait(0.2)
                wait = min(wait * 2, self._retry_max_s)
                continue
            logger.warning("camera %s is there now: playing it", self.source.name)
            return
