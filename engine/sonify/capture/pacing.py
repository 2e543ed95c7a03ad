"""Frame timing shared by the file and demo sources: a virtual timeline or real-time pacing."""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator

import numpy as np

from sonify.capture.base import Frame, Source, SourceError

logger = logging.getLogger(__name__)


class Pacer:
    """Gives each frame its time ``t``; in real-time mode first waits for the frame's deadline.

    Offline (``realtime=False``) frames come as fast as they are asked for and ``t`` is
    ``index / fps`` on a timeline starting at 0, so a render is the same on every machine.

    In real time the deadline of frame ``index`` is ``start + index / fps`` (absolute, so
    rounding in ``sleep`` never accumulates into drift) and ``t`` is the clock at delivery.
    A frame up to one period late is delivered at once and later deadlines stay put, so the
    stream catches up smoothly; a frame later than that (the consumer stalled) moves the
    start forward instead, so a stall is never followed by a burst of frames with no gaps.
    The wait is on ``stop`` so ``close()`` from another thread ends it at once.
    """

    def __init__(
        self,
        fps: float,
        *,
        realtime: bool,
        stop: threading.Event,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self.realtime = realtime
        self._stop = stop
        self._clock = clock
        self._period_s = 1.0 / self.fps
        self._start_s: float | None = None

    def wait(self, index: int) -> float | None:
        """Return frame ``index``'s time, after waiting for its deadline; None if stopped."""
        if self._stop.is_set():
            return None
        if not self.realtime:
            return index / self.fps
        now_s = self._clock()
        if self._start_s is None:
            self._start_s = now_s - index / self.fps
        deadline_s = self._start_s + index / self.fps
        early_s = deadline_s - now_s
        if early_s > 0:
            if self._stop.wait(early_s):
                return None
        elif -early_s > self._period_s:
            logger.debug("frame %d is %.3f s late: re-anchoring the pace", index, -early_s)
            self._start_s -= early_s
        return self._clock()


class PacedSource(Source):
    """A source that plays a timeline (files, demo): shared pacing, frame limit and stopping.

    Subclasses implement ``_open()`` (raise SourceError when impossible), ``_release()``
    (idempotent, may be called from another thread) and ``_images()`` (yield one new image per
    frame, end when the material ends). ``max_frames`` caps delivered frames (None: no cap).
    ``still`` marks every frame ``Frame.still`` (a held slideshow: what changes between its
    frames is a known dissolve, not motion).
    """

    still: bool = False

    def __init__(self, *, fps: float, realtime: bool, max_frames: int | None) -> None:
        if not fps > 0:
            raise SourceError(f"fps must be a positive number of frames per second, got {fps!r}")
        if max_frames is not None and max_frames < 0:
            raise SourceError(f"max_frames must be >= 0 or None, got {max_frames!r}")
        self.fps = float(fps)
        self.realtime = realtime
        self.max_frames = max_frames
        self._stop = threading.Event()
        self._opened = False

    @abc.abstractmethod
    def _open(self) -> None:
        """Acquire files or build layers; raise SourceError when impossible."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Let go of files or devices; safe to call twice and from another thread."""

    @abc.abstractmethod
    def _images(self) -> Generator[np.ndarray]:
        """Yield a new H x W x 3 uint8 BGR image per frame until the material ends."""

    def open(self) -> None:
        if self._opened:
            return
        self._stop.clear()
        self._open()
        self._opened = True

    def close(self) -> None:
        self._stop.set()
        self._release()
        self._opened = False

    def __iter__(self) -> Iterator[Frame]:
        if not self._opened:
            raise RuntimeError(f"{self.name} is not open: use 'with source:' or call open() first")
        pacer = Pacer(self.fps, realtime=self.realtime, stop=self._stop)
        if self.max_frames == 0:
            return
        images = self._images()
        try:
            for index, image in enumerate(images):
                t = pacer.wait(index)
                if t is None:
                    return
                yield Frame(index, t, image, still=self.still)
                if self.max_frames is not None and index + 1 >= self.max_frames:
                    return
        finally:
            images.close()  # let the subclass's generator clean up now, not at GC
