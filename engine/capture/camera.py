"""A live camera through OpenCV that rides out unplugging and read failures by itself."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np

from engine.capture.base import Frame, Source, SourceError
from engine.capture.convert import to_bgr8
from engine.capture.files import Capture, CaptureFactory, default_capture

logger = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""Assumed rate when the driver reports none."""

_RELEASE_WAIT_S = 1.0  # how long close() waits for a read in progress on another thread
_SYSFS_V4L = "/sys/class/video4linux"


def find_cameras(max_index: int = 8) -> list[str]:
    """The /dev/videoN capture nodes present for N < ``max_index``, without opening any.

    A UVC webcam makes two nodes, the picture and a metadata stream; the kernel numbers the
    node within its device in sysfs (``index``), and only node 0 delivers pictures, so other
    nodes are left out when sysfs says so.
    """
    found = []
    for n in range(max_index):
        path = f"/dev/video{n}"
        if not os.path.exists(path):
            continue
        try:
            with open(os.path.join(_SYSFS_V4L, f"video{n}", "index")) as node_index:
                if node_index.read().strip() not in ("", "0"):
                    continue
        except OSError:
            pass  # no sysfs entry (container, other OS): keep the node
        found.append(path)
    return found


class CameraSource(Source):
    """Frames from a camera (``camera:N`` index or a device path), ``t`` taken at read.

    When reads fail or the device disappears it releases the device and tries to reopen it
    with exponential backoff (``retry_initial_s`` doubling up to ``retry_max_s``), logging the
    loss once and the return once, and goes on by itself; iteration ends only on ``close()``
    (from any thread) or after ``max_frames``.
    """

    live = True

    def __init__(
        self,
        device: int | str,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        max_frames: int | None = None,
        capture_factory: CaptureFactory = default_capture,
        retry_initial_s: float = 0.25,
        retry_max_s: float = 5.0,
    ) -> None:
        self.device = device
        self.name = f"camera:{device}" if isinstance(device, int) else device
        # How logs and errors name it: "camera:0", or "camera /dev/v4l/by-id/...".
        self.label = self.name if isinstance(device, int) else f"camera {device}"
        self.width = width
        self.height = height
        self.requested_fps = fps
        self.fps = fps or DEFAULT_FPS
        self.max_frames = max_frames
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._capture_factory = capture_factory
        self._cap: Capture | None = None
        self._first: tuple[float, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._opened = False

    @property
    def device_path(self) -> str:
        """The /dev node behind the camera (Linux naming for an index)."""
        return f"/dev/video{self.device}" if isinstance(self.device, int) else self.device

    def open(self) -> None:
        if self._opened:
            return
        self._stop.clear()
        cap = self._connect()
        if cap is None:
            raise SourceError(self._cannot_open_message("cannot open"))
        image, t = self._read_from(cap)
        if image is None:
            cap.release()
            raise SourceError(self._cannot_open_message("opened but got no picture from"))
        self._cap = cap
        self._first = (t, image)
        self._opened = True
        self.fps = self._reported_fps(cap)
        logger.info("%s: %dx%d at %s fps", self.label, image.shape[1], image.shape[0],
                    self.fps)
        got = (image.shape[1], image.shape[0])
        if (self.width or got[0], self.height or got[1]) != got:  # drivers round to a mode
            logger.info("%s gives %dx%d instead of the requested %sx%s", self.label,
                        image.shape[1], image.shape[0], self.width, self.height)

    def close(self) -> None:
        self._stop.set()
        self._opened = False
        self._first = None
        # A read may be blocking on the iterating thread; releasing under it could crash
        # OpenCV, so wait for it briefly, else the iterator releases when it sees the stop.
        if self._lock.acquire(timeout=_RELEASE_WAIT_S):
            try:
                self._drop_capture()
            finally:
                self._lock.release()

    def __iter__(self) -> Iterator[Frame]:
        if not self._opened:
            raise RuntimeError(f"{self.label} is not open: use 'with source:' or call open() first")
        index = 0
        while self.max_frames is None or index < self.max_frames:
            got = self._next_image()
            if got is None:
                return
            t, image = got
            yield Frame(index, t, image)
            index += 1

    def _next_image(self) -> tuple[float, np.ndarray] | None:
        """The next picture and its read time, reconnecting as long as it takes; None on stop."""
        if self._first is not None:
            first, self._first = self._first, None
            return first
        why = "is not connected"
        with self._lock:
            if self._stop.is_set():
                self._drop_capture()
                return None
            cap = self._cap
            if cap is not None:
                image, t = self._read_from(cap)
                if image is not None:
                    return t, image
                why = "stopped delivering frames" if cap.isOpened() else "disappeared"
                self._drop_capture()
        return self._reconnect(why)

    def _reconnect(self, why: str) -> tuple[float, np.ndarray] | None:
        lost_at_s = time.perf_counter()
        logger.warning(
            "%s %s: lost; retrying every %s-%s s until it is back (check the cable)",
            self.label, why, self.retry_initial_s, self.retry_max_s,
        )
        delay_s = self.retry_initial_s
        while not self._stop.wait(delay_s):
            with self._lock:
                if self._stop.is_set():
                    return None
                cap = self._connect()
                if cap is not None:
                    image, t = self._read_from(cap)
                    if image is not None:
                        self._cap = cap
                        logger.info("%s back after %.1f s", self.label,
                                    time.perf_counter() - lost_at_s)
                        return t, image
                    cap.release()
            logger.debug("%s still away; next try in %s s", self.label, delay_s)
            delay_s = min(delay_s * 2, self.retry_max_s)
        return None

    def _connect(self) -> Capture | None:
        """A freshly opened capture with the requested format, or None."""
        try:
            cap = self._capture_factory(self.device)
        except (cv2.error, OSError) as exc:
            logger.debug("opening %s failed: %s", self.label, exc)
            return None
        if not cap.isOpened():
            cap.release()
            return None
        # Ask for the format before the first read: drivers fix it when streaming starts.
        if self.width is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height is not None:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.requested_fps is not None:
            cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
        return cap

    @staticmethod
    def _read_from(cap: Capture) -> tuple[np.ndarray | None, float]:
        try:
            ok, raw = cap.read()
        except cv2.error:
            ok, raw = False, None
        t = time.perf_counter()
        return (to_bgr8(raw) if ok else None), t

    def _drop_capture(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _reported_fps(self, cap: Capture) -> float:
        reported = cap.get(cv2.CAP_PROP_FPS)
        if 0 < reported <= 1000:
            return float(reported)
        return float(self.requested_fps or DEFAULT_FPS)

    def _cannot_open_message(self, what: str) -> str:
        cameras = find_cameras(max_index=64)
        found = ", ".join(cameras) if cameras else "none"
        path = self.device_path
        if not os.path.exists(path):
            state = f"{path} does not exist"
        elif not os.access(path, os.R_OK | os.W_OK):
            state = f"no permission for {path}: add your user to the 'video' group"
        else:
            state = f"{path} exists but may be busy in another program or not a capture node"
        return (
            f"{what} {self.label} ({state}). Cameras found: {found}. "
            f"Try another camera:N or /dev/videoN from that list, close other programs using "
            f"the camera, or use the demo source ('demo')."
        )
