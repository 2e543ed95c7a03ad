"""The Frame and Source contracts every capture backend follows."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

import numpy as np

from sonify.errors import SourceError

__all__ = ["DEFAULT_HEARTBEAT_S", "Frame", "Source", "SourceError", "SourceState"]

SourceState = Literal["ok", "lost", "reconnecting", "closed"]
"""How a source is doing: "ok" delivers; "lost" has lost its device and waits to retry;
"reconnecting" is trying to reopen it; "closed" is not open. Only live sources leave "ok"."""

DEFAULT_HEARTBEAT_S = 0.2
"""How often ``Source.frames()`` yields None when no frame comes."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured picture.

    ``index`` counts frames from 0 in delivery order; ``t`` is the capture time in seconds
    (``time.perf_counter()`` for live sources; ``index / fps`` on a source's own timeline when
    it is read faster than real time); ``image`` is H x W x 3 uint8 BGR, C-contiguous.

    ``still`` is True when nothing in the picture moves and only a known view of it changes
    from frame to frame (``TravelSource``: a window panning and zooming over a still picture).
    The difference between two such frames is the eye travelling, not motion, so the analysis
    reads no motion, no motion onset and no scene cut on them. Cameras, videos and image
    sequences leave it False and keep their real motion.
    """

    index: int
    t: float
    image: np.ndarray
    still: bool = False


class Source(abc.ABC):
    """An iterator of Frames with ``open()``/``close()``; usable as a context manager.

    ``name`` says what it reads (for logs and errors), ``fps`` is its nominal rate and ``live``
    is True when frames come from the outside world as they happen (a camera).
    """

    name: str = "source"
    fps: float = 30.0
    live: bool = False

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the device or files; raise SourceError with a clear message when impossible."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything; safe to call twice."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yield Frames until the source ends (files) or is closed (live)."""

    @property
    def state(self) -> SourceState:
        """"ok" unless a live source has lost its device (see SourceState); any thread."""
        return "ok"

    @property
    def last_frame_age_s(self) -> float | None:
        """Seconds since a live source last delivered a picture (None: not known)."""
        return None

    def frames(self, heartbeat_s: float = DEFAULT_HEARTBEAT_S) -> Iterator[Frame | None]:
        """Frames as ``iter(self)`` gives them, and None each time ``heartbeat_s`` passes with
        no frame (a live source whose device is lost or hung), so the consuming loop keeps
        turning: it can beat a watchdog, read ``state`` and play idle. Ends as ``iter(self)``.

        Sources that never wait long for a frame (files, demo) yield no None.
        """
        return iter(self)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
