"""File sources: one still image, an image sequence (folder or glob) and a video file."""

from __future__ import annotations

import glob
import logging
import math
import os
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Protocol

import cv2
import numpy as np
from natsort import natsorted, ns

from sonify.capture.base import SourceError
from sonify.capture.convert import (
    IMAGE_EXTENSIONS,
    ImageTooLargeError,
    is_image_path,
    read_image,
    to_bgr8,
)
from sonify.capture.pacing import PacedSource

logger = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""Frame rate of still images and sequences, and of videos whose file states none."""

DEFAULT_CROSSFADE_S = 1.0
"""How long a held image (``SequenceSource(hold_s=...)``) dissolves into the next."""

_RELEASE_WAIT_S = 1.0  # how long close() waits for a read in progress on another thread


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the sources use (so tests can pass a fake)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[str | int], Capture]


def default_capture(target: str | int) -> Capture:
    """``cv2.VideoCapture(target)``: the real capture behind cameras and videos."""
    return cv2.VideoCapture(target)


def extensions_text() -> str:
    """The image extensions, for error messages: '.png, .jpg, ...'."""
    return ", ".join(IMAGE_EXTENSIONS)


class ImageSource(PacedSource):
    """One still picture repeated as frames at ``fps``, endlessly until closed or ``max_frames``.

    Each frame gets its own copy, so a consumer may keep or draw on it. A picture over
    ``convert.MAX_IMAGE_PIXELS`` is read reduced (JPEG) or refused at open with an
    ImageTooLargeError (a SourceError) that says its size, before any decoding.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float = DEFAULT_FPS,
        realtime: bool = False,
        max_frames: int | None = None,
    ) -> None:
        super().__init__(fps=fps, realtime=realtime, max_frames=max_frames)
        self.path = os.fspath(path)
        self.name = self.path
        self._image: np.ndarray | None = None

    def _open(self) -> None:
        if not os.path.isfile(self.path):
            raise SourceError(f"no such image file: {self.path!r}")
        image = read_image(self.path)
        if image is None:
            raise SourceError(
                f"cannot read image {self.path!r}: the file is empty, truncated or not a format "
                f"OpenCV decodes ({extensions_text()}); check the file or re-save it as PNG"
            )
        self._image = image
        logger.info("still image %s: %dx%d at %s fps", self.path, image.shape[1],
                    image.shape[0], self.fps)

    def _release(self) -> None:
        self._image = None

    def _images(self) -> Generator[np.ndarray]:
        image = self._image
        while image is not None:
            yield image.copy()


def list_images(folder_or_glob: str) -> list[str]:
    """Image files in a folder (not recursive, hidden files left out) or matching a glob,
    in natural order (img2 before img10); raises SourceError when there are none."""
    if os.path.isdir(folder_or_glob):
        where = f"folder {folder_or_glob!r}"
        # Hidden files are left out: "._img.png" is macOS metadata, not a picture.
        candidates = [
            os.path.join(folder_or_glob, entry)
            for entry in os.listdir(folder_or_glob)
            if not entry.startswith(".")
        ]
    else:
        where = f"pattern {folder_or_glob!r}"
        candidates = glob.glob(os.path.expanduser(folder_or_glob), recursive=True)
    paths = [path for path in candidates if is_image_path(path) and os.path.isfile(path)]
    if not paths:
        raise SourceError(
            f"no images in {where}: looked for files ending in {extensions_text()} (any case); "
            f"point at a folder or pattern that holds such files"
        )
    return list(natsorted(paths, alg=ns.PATH | ns.IGNORECASE))


class SequenceSource(PacedSource):
    """The images of a folder or glob in natural order, at ``fps``, once or looping.

    By default each image is one frame (a time-lapse, frames of an animation). With ``hold_s``
    it is a slideshow: each image is held for ``hold_s`` seconds (``round(hold_s * fps)``
    frames, at least one) and dissolves into the next over its last ``crossfade_s`` (at most
    half the hold), so the features glide from one picture to the next instead of jumping.
    A held slideshow's frames are ``still``: nothing in them moves, so motion reads 0 and the
    dissolve is no scene cut. The last image of a sequence that does not loop holds without a
    dissolve; a looping one dissolves back into the first.

    A file that cannot be read (unreadable, empty, truncated, not an image, too large: see
    ``convert.MAX_IMAGE_PIXELS``) is skipped with one warning naming it and left out of later
    loops; the sequence goes on. If a whole pass
    delivers nothing, iteration raises SourceError rather than loop forever on nothing.
    """

    def __init__(
        self,
        folder_or_glob: str | os.PathLike[str],
        *,
        fps: float = DEFAULT_FPS,
        loop: bool = False,
        realtime: bool = False,
        max_frames: int | None = None,
        hold_s: float | None = None,
        crossfade_s: float = DEFAULT_CROSSFADE_S,
    ) -> None:
        super().__init__(fps=fps, realtime=realtime, max_frames=max_frames)
        if hold_s is not None and not (math.isfinite(hold_s) and hold_s > 0):
            raise SourceError(f"the hold time per image must be a positive number of seconds, "
                              f"got {hold_s!r}")
        if not crossfade_s >= 0:
            raise SourceError(f"crossfade_s must be >= 0 seconds, got {crossfade_s!r}")
        self.spec = os.fspath(folder_or_glob)
        self.name = self.spec
        self.loop = loop
        self.hold_s = hold_s
        self.crossfade_s = crossfade_s
        self.still = hold_s is not None
        self.paths: list[str] = []
        self._skipped: set[str] = set()

    @property
    def frames_per_image(self) -> int:
        """Frames each image lasts: 1, or ``hold_s`` at ``fps`` (at least 1)."""
        return 1 if self.hold_s is None else max(1, round(self.hold_s * self.fps))

    def _open(self) -> None:
        self.paths = list_images(self.spec)
        self._skipped = set()
        pace = (f"each held {self.hold_s:g} s" if self.hold_s is not None
                else f"at {self.fps:g} fps")
        logger.info("image sequence %s: %d files %s%s", self.spec, len(self.paths), pace,
                    ", looping" if self.loop else "")

    def _release(self) -> None:
        pass  # files are opened and closed one by one as they are read

    def _images(self) -> Generator[np.ndarray]:
        if self.hold_s is None:
            return self._pictures()
        return held(self._pictures(), self.frames_per_image,
                    min(round(self.crossfade_s * self.fps), self.frames_per_image // 2))

    def _pictures(self) -> Generator[np.ndarray]:
        """Each readable image once per pass, in order; passes repeat when looping."""
        paths = list(self.paths)
        while True:
            delivered = 0
            for path in paths:
                if self._stop.is_set():
                    return
                if path in self._skipped:
                    continue
                try:
                    image = read_image(path)
                except ImageTooLargeError as exc:
                    self._skipped.add(path)
                    logger.warning("skipping %s; the sequence goes on without it", exc)
                    continue
                if image is None:
                    self._skipped.add(path)
                    logger.warning(
                        "skipping %r in %s: not a readable image (empty, truncated or not "
                        "decodable); the sequence goes on without it", path, self.spec,
                    )
                    continue
                delivered += 1
                yield image
            if delivered == 0:
                raise SourceError(
                    f"none of the {len(paths)} images in {self.spec!r} could be read (all "
                    f"empty, truncated or not decodable); check the files or pick another source"
                )
            if not self.loop:
                return


def held(pictures: Iterator[np.ndarray], frames: int,
         fade_frames: int) -> Generator[np.ndarray]:
    """Each picture as ``frames`` frames, the last ``fade_frames`` of them dissolving into the
    next picture (resized to this one's size for the dissolve). A new array per frame, so a
    consumer may keep or draw on it."""
    current = next(pictures, None)
    while current is not None:
        following = next(pictures, None)
        fade = fade_frames if following is not None else 0
        for _ in range(frames - fade):
            yield current.copy()
        if fade:
            assert following is not None
            h, w = current.shape[:2]
            target = following if following.shape == current.shape else cv2.resize(
                following, (w, h), interpolation=cv2.INTER_AREA)
            for k in range(1, fade + 1):
                alpha = k / (fade + 1)
                yield cv2.addWeighted(current, 1.0 - alpha, target, alpha, 0.0)
        current = following


class VideoSource(PacedSource):
    """A video file decoded by OpenCV (FFmpeg), at the file's frame rate unless ``fps`` is set.

    No frame is dropped: in real time a slow decode makes frames late, never missing.
    Looping reopens the file, which is exact for every container (seeking is not).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float | None = None,
        loop: bool = False,
        realtime: bool = False,
        max_frames: int | None = None,
        capture_factory: CaptureFactory = default_capture,
    ) -> None:
        # The file's own rate is known only once opened; DEFAULT_FPS stands in until then.
        super().__init__(fps=fps or DEFAULT_FPS, realtime=realtime, max_frames=max_frames)
        self.path = os.fspath(path)
        self.name = self.path
        self.loop = loop
        self._requested_fps = fps
        self._capture_factory = capture_factory
        self._cap: Capture | None = None
        self._cap_is_fresh = False
        self._lock = threading.Lock()

    def _open(self) -> None:
        if not os.path.isfile(self.path):
            raise SourceError(f"no such video file: {self.path!r}")
        cap = self._reopen()
        ok, raw = cap.read()
        if not ok or to_bgr8(raw) is None:
            self._release()
            raise SourceError(
                f"opened video {self.path!r} but could not decode a single frame; the file may "
                f"be damaged or use a codec this OpenCV build lacks: try re-encoding it, e.g. "
                f"'ffmpeg -i in out.mp4'"
            )
        file_fps = cap.get(cv2.CAP_PROP_FPS)
        if self._requested_fps is not None:
            self.fps = float(self._requested_fps)
        elif math.isfinite(file_fps) and 0 < file_fps <= 1000:
            self.fps = float(file_fps)
        else:
            logger.warning("video %s states no usable frame rate (%r): playing at %s fps",
                           self.path, file_fps, DEFAULT_FPS)
            self.fps = DEFAULT_FPS
        logger.info("video %s: %dx%d, %s frames, played at %s fps%s", self.path,
                    int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                    int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), self.fps,
                    ", looping" if self.loop else "")
        self._reopen()  # back to the first frame

    def _reopen(self) -> Capture:
        with self._lock:
            if self._cap is not None:
                self._cap.release()
            cap = self._capture_factory(self.path)
            if not cap.isOpened():
                cap.release()
                self._cap = None
                raise SourceError(
                    f"OpenCV cannot open {self.path!r} as a video: it is not a video, it is "
                    f"damaged, or its format is one this OpenCV build lacks; images must end in "
                    f"{extensions_text()}"
                )
            self._cap = cap
            self._cap_is_fresh = True
            return cap

    def _release(self) -> None:
        # A read may be running on the iterating thread: releasing under it could crash
        # OpenCV, so wait for it; if it hangs, the iterator releases when it notices the stop.
        if not self._lock.acquire(timeout=_RELEASE_WAIT_S):
            return
        try:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
        finally:
            self._lock.release()

    def _read(self) -> tuple[bool, np.ndarray | None]:
        with self._lock:
            if self._cap is None or self._stop.is_set():
                return False, None
            self._cap_is_fresh = False
            return self._cap.read()

    def _images(self) -> Generator[np.ndarray]:
        warned_bad_frame = False
        while True:
            if not self._cap_is_fresh:
                self._reopen()  # a second iteration or a new loop starts from the first frame
            delivered = 0
            while True:
                ok, raw = self._read()
                if not ok:
                    break  # end of file (OpenCV does not tell it apart from a decode error)
                image = to_bgr8(raw)
                if image is None:
                    if not warned_bad_frame:
                        logger.warning("skipping undecodable frames in video %s", self.path)
                        warned_bad_frame = True
                    continue
                delivered += 1
                yield image
            if self._stop.is_set():
                self._release()
                return
            if delivered == 0:
                raise SourceError(
                    f"video {self.path!r} delivered no frame in a whole pass; the file may be "
                    f"damaged: try re-encoding it, e.g. 'ffmpeg -i in out.mp4'"
                )
            if not self.loop:
                return
