"""The Frame and Source contracts every capture backend follows."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np


class SourceError(Exception):
    """A source cannot deliver: the message says which device or file, and why.

    The CLI turns it into exit status 2.
    """


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured picture.

    ``index`` counts frames from 0 in delivery order; ``t`` is the capture time in seconds
    (``time.perf_counter()`` for live sources; ``index / fps`` on a source's own timeline when
    it is read faster than real time); ``image`` is H x W x 3 uint8 BGR, C-contiguous.
    """

    index: int
    t: float
    image: np.ndarray


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
