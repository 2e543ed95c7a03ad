"""Analysis ahead of the music: a render's frames read and analysed on worker threads.

A render does three things per frame of its source: read it (for a still picture, the
travelling eye's crop and resize: OpenCV, without the GIL), analyse it (the numba kernels,
without the GIL) and play the music up to it (the performance core, pure Python). They need
not wait for each other: ``AnalysisAhead`` reads the frames on one worker thread and analyses
them, in order, on another, each a few frames ahead (``DEPTH``), while the render's loop plays.
Measured on a whole 60 s render process of a photograph (2 cores, medians of 5 interleaved
runs): 3.93 s analysing in the loop (with the old SciPy master), 2.58 s with one worker thread
that read and analysed (the loop still waited 0.65 s of its 0.75 s for it), 2.47 s with reading
on a thread of its own (``sonify.tools.startbench`` measures the whole process).

The music is unchanged, bit for bit: the analyzer still sees every frame once, in order, on
one thread, and its state depends on nothing else; the loop gets each frame's features when it
asks for them, as if it had computed them itself (``analyze`` checks that the frame is the one
the features belong to). A frame analysed ahead that the loop never asks for (the piece ended
first) is simply dropped. An error on the worker (a video that fails mid-way) is raised in the
loop when it reaches that frame.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sonify.capture.base import Frame
from sonify.features.analyzer import Features

DEPTH = 4  # items each stage holds ready at most
CLOSE_TIMEOUT_S = 5.0
_END = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Stage:
    """``fn`` over ``items`` on a thread of its own, in order, at most ``depth`` results ahead
    of whoever iterates it; an exception is raised to the iterator where its item would have
    been; ``close()`` stops the thread."""

    def __init__(self, items: Iterable[Any], fn: Callable[[Any], Any], depth: int,
                 name: str) -> None:
        self._items = items
        self._fn = fn
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name=name, daemon=True)
        self.thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put(self._fn(item)):
                    return
        except BaseException as exc:  # raised to the iterator, where the item was wanted
            self._put(_Failed(exc))
            return
        self._put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the thread: it finishes the item in hand. One stuck in a read that never
        returns is left behind after ``CLOSE_TIMEOUT_S`` (a daemon: it ends with the process)."""
        self._stop.set()
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while self.thread.is_alive() and time.monotonic() < deadline:
            try:  # a put waiting for room sees the stop within its 50 ms timeout
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass


class AnalysisAhead:
    """``frames`` read on one worker thread and analysed by ``analyze`` on another; iterate
    this for the frames, call ``analyze(frame)`` for each one's features; ``close()`` (or
    ``with``) stops both threads."""

    def __init__(self, frames: Iterable[Frame], analyze: Callable[[Frame], Features],
                 depth: int = DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._read = _Stage(frames, lambda frame: frame, depth, "sonify-render-read")
        self._analysis = _Stage(self._read, lambda frame: (frame, analyze(frame)), depth,
                                "sonify-render-analysis")
        self._ready: deque[Features] = deque()

    def __iter__(self) -> Iterator[Frame]:
        for frame, features in self._analysis:
            self._ready.append(features)
            yield frame

    def analyze(self, frame: Frame) -> Features:
        """The features of ``frame``, the frame the iterator gave last (analysed ahead)."""
        if not self._ready:
            raise RuntimeError(f"frame {frame.index} was not given by this AnalysisAhead")
        features = self._ready.popleft()
        if (features.index, features.t) != (frame.index, frame.t):
            raise RuntimeError(f"frame {frame.index} at {frame.t} s asked for, but frame "
                               f"{features.index} at {features.t} s was analysed next")
        return features

    def close(self) -> None:
        """Stop both threads and wait for them (each finishes the item in hand)."""
        self._analysis.close()
        self._read.close()

    def __enter__(self) -> AnalysisAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
