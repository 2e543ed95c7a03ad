"""A live camera through OpenCV, watched so that a lost, hung or frozen device is noticed
within two seconds and reopened by itself, without ever blocking the engine.

Size (about 580 lines, over the 500 we aim for): one watched device. The reader thread and the
source that restarts it share one state machine (ok, lost, reconnecting) whose transitions
must be read together.

OpenCV fails in three ways, and each is noticed differently:

- *reads fail* (unplugged, USB error): ``read()`` returns False; when the capture also says it
  is no longer open the loss counts at once, otherwise when no frame came for ``stall_s``;
- *a read blocks forever* (a wedged driver): reads happen on the reader's own thread, so only
  that thread waits; the watcher sees no frame for ``stall_s`` and gives up on it;
- *reads return the same picture forever* (a frozen driver or buffer, a capture card's "no
  signal" pattern): each frame is fingerprinted, and a fingerprint unchanged for ``stale_s``
  counts as a loss.

The fingerprint is a CRC-32 of every 8th pixel of every 8th row, bytes as they are. A real
sensor's noise changes some of those thousands of bytes in every frame even when nothing in
front of it moves, while a frozen driver or a synthetic pattern repeats them exactly, so
"identical bytes" is the test, with no threshold to tune. A uniform picture (every sampled
value within a few levels: a lens cap, lights off, which MJPEG compresses to identical bytes)
is a real scene rather than a frozen driver and never counts as stale. A camera that legitimately
repeats exact bytes (a v4l2loopback still, a capture card showing a still) needs
``stale_s=None``.

On a loss the source logs once, turns ``state`` to "lost", abandons its reader and tries to
reopen with exponential backoff (``retry_initial_s`` doubling to ``retry_max_s``), reporting
"reconnecting" during each try and "ok" again (logged once) on the first fresh picture.
A reader blocked inside the driver cannot be killed and releasing its capture under it could
crash OpenCV, so it is left to itself as a daemon thread that releases the capture if the read
ever returns; at most ``_MAX_STUCK_READERS`` such threads are let pile up before new tries wait.

Reopening goes by a stable name: at ``open()`` a ``camera:N`` or ``/dev/videoN`` is resolved to
its ``/dev/v4l/by-id/`` link (the camera itself, across USB ports), else its
``/dev/v4l/by-path/`` link (the port), because a re-plug may give the camera another number,
and does when an abandoned reader still holds the old node. While that link is absent (the
camera is away) tries use the name given, so a replacement camera at that number is taken.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import Literal

import cv2
import numpy as np

from sonify.capture.base import DEFAULT_HEARTBEAT_S, Frame, Source, SourceError, SourceState
from sonify.capture.convert import to_bgr8
from sonify.capture.files import Capture, CaptureFactory

logger = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""Assumed rate when the driver reports none."""

DEFAULT_STALL_S = 1.0
"""No new frame for this long: the camera is lost (raise it for cameras slower than 2 fps)."""

DEFAULT_STALE_S = 1.5
"""The very same picture for this long: the camera is lost (frozen driver or test pattern)."""

DEFAULT_RETRY_INITIAL_S = 0.25
"""First wait before reopening a lost camera; it doubles after each failed try ..."""

DEFAULT_RETRY_MAX_S = 5.0
"""... up to this, and starts again from the first after the camera is back."""

DEFAULT_OPEN_TIMEOUT_S = 5.0
"""How long opening (and each reopening) may take to give a fresh picture."""

STABLE_LINK_DIRS: tuple[str, ...] = ("/dev/v4l/by-id", "/dev/v4l/by-path")
"""Where udev keeps stable names for video nodes, the preferred first."""

_WATCH_TICK_S = 0.05  # how often the watcher looks: adds at most this to each detection time
_FAILED_READ_PAUSE_S = 0.02  # between failed reads of a capture that still says it is open
_RELEASE_WAIT_S = 0.5  # how long close() waits for a read in progress to end and release
_MAX_STUCK_READERS = 3  # abandoned readers still blocked in the driver before tries pause
_FINGERPRINT_STRIDE = 8  # every 8th pixel of every 8th row
_UNIFORM_LEVELS = 4  # a picture whose samples all lie within this many levels is uniform
_SYSFS_V4L = "/sys/class/video4linux"

_Ended = Literal["cannot_open", "no_picture", "disappeared", "error"]
_ENDED_WHY: dict[_Ended, str] = {
    "cannot_open": "cannot be opened",
    "no_picture": "opened but gave no picture",
    "disappeared": "disappeared",
    "error": "failed inside OpenCV",
}


def camera_capture(target: str | int) -> Capture:
    """``cv2.VideoCapture`` for a camera: a /dev path on Linux goes straight to V4L2 (a path
    would otherwise be offered to the file backends first)."""
    if isinstance(target, str) and target.startswith("/dev/") and sys.platform == "linux":
        return cv2.VideoCapture(target, cv2.CAP_V4L2)
    return cv2.VideoCapture(target)


def stable_device_path(node: str, link_dirs: Sequence[str] = STABLE_LINK_DIRS) -> str | None:
    """The udev link that names the same device as ``node`` (first of ``link_dirs`` that has
    one), or None: when ``node`` is itself a link (already a stable name), does not exist, or
    no link points at it."""
    if os.path.islink(node) or not os.path.exists(node):
        return None
    real = os.path.realpath(node)
    for folder in link_dirs:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue  # no such folder: no udev (container) or no device of that kind
        for name in names:
            link = os.path.join(folder, name)
            if os.path.realpath(link) == real:
                return link
    return None


def fingerprint(image: np.ndarray) -> tuple[int, bool]:
    """A cheap CRC-32 of a subsample of ``image`` and whether that subsample is uniform."""
    sample = np.ascontiguousarray(image[::_FINGERPRINT_STRIDE, ::_FINGERPRINT_STRIDE])
    uniform = int(sample.max()) - int(sample.min()) <= _UNIFORM_LEVELS if sample.size else True
    return zlib.crc32(sample.data), uniform


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


class _Reader:
    """One capture on its own daemon thread: opens it, then reads until it fails by itself or
    is abandoned. Only this thread touches the capture, so releasing it never races a read.

    The watcher reads ``ended``, ``reading_since_s`` and ``failed_reads`` (single writes, no
    lock needed); ``frames``, ``proven``, ``last_frame_s`` and ``last_change_s`` are kept by
    ``CameraSource._deliver`` under the camera's lock.
    """

    def __init__(self, camera: CameraSource, target: int | str, number: int) -> None:
        self.camera = camera
        self.target = target
        self.abandoned = threading.Event()
        self.started_s = time.perf_counter()
        self.ended: _Ended | None = None
        self.reading_since_s: float | None = None
        self.failed_reads = 0
        self.fps: float | None = None
        self.frames = 0
        self.proven = False  # has shown a picture that differs from the last one seen
        self.last_frame_s = self.started_s
        self.last_change_s = self.started_s
        self.thread = threading.Thread(target=self._run, name=f"sonify-camera-read-{number}",
                                       daemon=True)

    def alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        cap: Capture | None = None
        try:
            cap = self.camera._connect(self.target)
            if cap is None:
                self.ended = "cannot_open"
                return
            self.fps = self.camera._reported_fps(cap)
            while not self.abandoned.is_set():
                self.reading_since_s = time.perf_counter()
                image, t = _read_from(cap)
                self.reading_since_s = None
                if self.abandoned.is_set():
                    break
                if image is not None:
                    self.failed_reads = 0
                    self.camera._deliver(self, t, image)
                elif self.frames == 0:
                    self.ended = "no_picture"  # a try that gives nothing fails fast
                    break
                elif not cap.isOpened():
                    self.ended = "disappeared"
                    break
                else:  # one bad frame is no loss; the watcher's stall_s decides
                    self.failed_reads += 1
                    self.abandoned.wait(_FAILED_READ_PAUSE_S)
        except Exception:  # a reader must not die unseen: the watcher acts on ``ended``
            logger.debug("%s: reader failed", self.camera.label, exc_info=True)
            self.ended = "error"
        finally:
            self.reading_since_s = None
            if cap is not None:
                try:
                    cap.release()
                except cv2.error:
                    logger.debug("%s: release failed", self.camera.label, exc_info=True)
            self.camera._wake()


def _read_from(cap: Capture) -> tuple[np.ndarray | None, float]:
    try:
        ok, raw = cap.read()
    except cv2.error:
        ok, raw = False, None
    t = time.perf_counter()
    return (to_bgr8(raw) if ok and raw is not None else None), t


class CameraSource(Source):
    """Frames from a camera (``camera:N`` index or a device path), ``t`` taken at read.

    A reader thread reads the device and keeps only the latest frame; a watcher thread notices
    loss (see the module text) and reopens. ``state`` and ``last_frame_age_s`` tell how it is
    doing; ``frames()`` yields None every ``heartbeat_s`` while no frame comes, and plain
    iteration simply waits. Iteration ends only on ``close()`` (from any thread, returning
    within a second even when the driver hangs) or after ``max_frames``.

    ``open()`` raises SourceError when the camera cannot be opened or gives no picture within
    ``open_timeout_s``; once open, losses are ridden out.
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
        capture_factory: CaptureFactory = camera_capture,
        retry_initial_s: float = DEFAULT_RETRY_INITIAL_S,
        retry_max_s: float = DEFAULT_RETRY_MAX_S,
        stall_s: float = DEFAULT_STALL_S,
        stale_s: float | None = DEFAULT_STALE_S,
        open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
        link_dirs: Sequence[str] = STABLE_LINK_DIRS,
    ) -> None:
        for key, value in (("stall_s", stall_s), ("open_timeout_s", open_timeout_s),
                           ("retry_initial_s", retry_initial_s), ("retry_max_s", retry_max_s)):
            if not value > 0:
                raise SourceError(f"camera {key} must be a positive number of seconds, "
                                  f"got {value!r}")
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
        self.retry_max_s = max(retry_max_s, retry_initial_s)
        self.stall_s = stall_s
        self.stale_s = stale_s if stale_s is not None and stale_s > 0 else None  # 0: off
        self.open_timeout_s = open_timeout_s
        self.link_dirs = tuple(link_dirs)
        self.stable_path: str | None = None
        """The by-id/by-path link resolved at ``open()`` that reopening uses, if any."""
        self.losses = 0
        """How many times the camera was lost since it was made."""
        self._capture_factory = capture_factory
        self._cond = threading.Condition()  # guards everything below; readers notify on it
        self._stop = threading.Event()
        self._opened = False
        self._state: SourceState = "closed"
        self._reader: _Reader | None = None
        self._stuck: list[_Reader] = []
        self._stuck_logged = False
        self._readers_made = 0
        self._watcher: threading.Thread | None = None
        self._seq = 0  # counts published frames; consumers remember the last they took
        self._latest: tuple[float, np.ndarray] | None = None
        self._last_frame_s: float | None = None
        self._digest: int | None = None  # fingerprint of the last frame seen from any reader
        self._lost_at_s = 0.0
        self._retry_at_s = 0.0
        self._delay_s = retry_initial_s

    @property
    def device_path(self) -> str:
        """The /dev node behind the camera (Linux naming for an index)."""
        return f"/dev/video{self.device}" if isinstance(self.device, int) else self.device

    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def last_frame_age_s(self) -> float | None:
        last = self._last_frame_s
        return None if last is None else time.perf_counter() - last

    @property
    def stuck_reads(self) -> int:
        """Abandoned reader threads still blocked inside the driver."""
        with self._cond:
            return sum(1 for reader in self._stuck if reader.alive())

    # -- opening and closing ------------------------------------------------------------------

    def open(self) -> None:
        if self._opened:
            return
        self._stop.clear()
        self.stable_path = stable_device_path(self.device_path, self.link_dirs)
        if self.stable_path is not None:
            logger.info("%s is %s: reopening uses that name, as a re-plug may renumber it",
                        self.label, self.stable_path)
        with self._cond:
            self._digest = None
            reader = self._start_reader(self.device)
            self._cond.wait_for(lambda: reader.proven or reader.ended is not None,
                                timeout=self.open_timeout_s)
            if not reader.proven:
                self._abandon(reader)
        if not reader.proven:
            if reader.ended == "cannot_open":
                what = "cannot open"
            elif reader.ended is None:
                what = f"got no picture within {self.open_timeout_s} s (driver hangs?) from"
            else:
                what = "opened but got no picture from"
            raise SourceError(self._cannot_open_message(what))
        with self._cond:
            latest = self._latest
            self._opened = True
            self._state = "ok"
            self._delay_s = self.retry_initial_s
        self.fps = reader.fps or self.fps
        self._watcher = threading.Thread(target=self._watch, name="sonify-camera-watch",
                                         daemon=True)
        self._watcher.start()
        if latest is not None:
            shape = latest[1].shape
            logger.info("%s: %dx%d at %s fps", self.label, shape[1], shape[0], self.fps)
            got = (shape[1], shape[0])
            if (self.width or got[0], self.height or got[1]) != got:  # drivers round to a mode
                logger.info("%s gives %dx%d instead of the requested %sx%s", self.label,
                            shape[1], shape[0], self.width, self.height)

    def close(self) -> None:
        """Stop watching and reading; returns within about a second even when a read hangs
        (that reader is left behind as a daemon thread and releases its capture if the driver
        ever lets go)."""
        self._stop.set()
        with self._cond:
            reader = self._reader
            if reader is not None:
                self._abandon(reader)
            self._opened = False
            self._state = "closed"
            self._latest = None
            self._cond.notify_all()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=_RELEASE_WAIT_S)
        if reader is not None:  # a normal read ends within a frame: release before returning
            reader.thread.join(timeout=_RELEASE_WAIT_S)

    # -- consuming ----------------------------------------------------------------------------

    def frames(self, heartbeat_s: float = DEFAULT_HEARTBEAT_S) -> Iterator[Frame | None]:
        if not self._opened:
            raise RuntimeError(f"{self.label} is not open: use 'with source:' or call open() first")
        return self._frames(heartbeat_s)

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.frames():
            if frame is not None:
                yield frame

    def _frames(self, heartbeat_s: float) -> Iterator[Frame | None]:
        index = 0
        seen = 0
        while self.max_frames is None or index < self.max_frames:
            latest = self._wait_for_frame(seen, heartbeat_s)
            if self._stop.is_set():
                return
            if latest is None:
                yield None
                continue
            seen, t, image = latest
            yield Frame(index, t, image)
            index += 1

    def _wait_for_frame(self, seen: int,
                        timeout_s: float) -> tuple[int, float, np.ndarray] | None:
        """The latest frame newer than number ``seen``, or None after ``timeout_s`` or stop."""
        with self._cond:
            self._cond.wait_for(lambda: self._stop.is_set() or self._seq != seen,
                                timeout=timeout_s)
            if self._stop.is_set() or self._seq == seen or self._latest is None:
                return None
            return (self._seq, *self._latest)

    # -- reader side --------------------------------------------------------------------------

    def _deliver(self, reader: _Reader, t: float, image: np.ndarray) -> None:
        """A reader's new picture: fingerprint it, publish it once the reader is proven."""
        digest, uniform = fingerprint(image)
        back_after_s = None
        with self._cond:
            if reader is not self._reader or self._stop.is_set():
                return
            reader.frames += 1
            reader.last_frame_s = t
            if uniform or self.stale_s is None or digest != self._digest:
                reader.last_change_s = t
                reader.proven = True
            self._digest = digest
            if not reader.proven:
                return  # a reopened device still showing the frozen picture: not back yet
            self._seq += 1
            self._latest = (t, image)
            self._last_frame_s = t
            if self._opened and self._state != "ok":
                self._state = "ok"
                self._delay_s = self.retry_initial_s
                self._stuck_logged = False
                back_after_s = t - self._lost_at_s
            self._cond.notify_all()
        if back_after_s is not None:
            logger.info("%s back after %.1f s", self.label, back_after_s)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _connect(self, target: int | str) -> Capture | None:
        """A freshly opened capture with the requested format, or None (on a reader thread)."""
        try:
            cap = self._capture_factory(target)
        except (cv2.error, OSError) as exc:
            logger.debug("opening %s (%s) failed: %s", self.label, target, exc)
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

    def _reported_fps(self, cap: Capture) -> float:
        reported = cap.get(cv2.CAP_PROP_FPS)
        if 0 < reported <= 1000:
            return float(reported)
        return float(self.requested_fps or DEFAULT_FPS)

    # -- watcher side -------------------------------------------------------------------------

    def _start_reader(self, target: int | str) -> _Reader:
        """(Lock held.) A new reader for ``target``, made the current one and started."""
        self._readers_made += 1
        reader = _Reader(self, target, self._readers_made)
        self._reader = reader
        reader.thread.start()
        return reader

    def _abandon(self, reader: _Reader) -> None:
        """(Lock held.) Stop listening to ``reader``; it releases its capture by itself."""
        reader.abandoned.set()
        if self._reader is reader:
            self._reader = None
        if reader.alive():
            self._stuck.append(reader)  # pruned once its read returns

    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_TICK_S):
            self._check(time.perf_counter())

    def _check(self, now: float) -> None:
        """One look: give up on a failing reader, or start the next try when it is due."""
        lost_why = None
        with self._cond:
            if self._stop.is_set():
                return
            reader = self._reader
            if reader is not None:
                why = self._trouble(reader, now)
                if why is None:
                    return
                self._abandon(reader)
                if self._state == "ok":
                    self.losses += 1
                    self._lost_at_s = now
                    lost_why = why
                else:
                    logger.debug("%s: try %s failed: %s", self.label, reader.target, why)
                self._state = "lost"
                self._retry_at_s = now + self._delay_s
                self._delay_s = min(self._delay_s * 2, self.retry_max_s)
            elif now >= self._retry_at_s:
                self._stuck = [r for r in self._stuck if r.alive()]
                if len(self._stuck) >= _MAX_STUCK_READERS:
                    self._retry_at_s = now + self._delay_s
                    if not self._stuck_logged:
                        self._stuck_logged = True
                        logger.warning(
                            "%s: %d reads are stuck in the driver; waiting for one to return "
                            "before opening it again (re-plug the camera if this lasts)",
                            self.label, len(self._stuck))
                    return
                target = self._reopen_target()
                logger.debug("%s: trying %s", self.label, target)
                self._start_reader(target)
                self._state = "reconnecting"
        if lost_why is not None:
            logger.warning(
                "%s %s: lost; retrying every %s-%s s until it is back (check the cable)",
                self.label, lost_why, self.retry_initial_s, self.retry_max_s)

    def _trouble(self, reader: _Reader, now: float) -> str | None:
        """(Lock held.) Why ``reader`` has failed, or None while it is fine."""
        if reader.ended is not None:
            return _ENDED_WHY[reader.ended]
        if not reader.proven:
            if now - reader.started_s > self.open_timeout_s:
                return f"gave no fresh picture within {self.open_timeout_s} s of reopening"
            return None
        if now - reader.last_frame_s > self.stall_s:
            reading_since_s = reader.reading_since_s
            if reading_since_s is not None and now - reading_since_s > self.stall_s:
                return f"hangs (a read has been blocked for over {self.stall_s} s)"
            if reader.failed_reads:
                return "stopped delivering frames (reads fail)"
            return f"gave no new frame for {self.stall_s} s"
        if self.stale_s is not None and now - reader.last_change_s > self.stale_s:
            return (f"has shown the very same picture for {self.stale_s} s "
                    f"(frozen driver or test pattern)")
        return None

    def _reopen_target(self) -> int | str:
        """The stable link while it exists, else the name given (see the module text)."""
        if self.stable_path is not None and os.path.exists(self.stable_path):
            return self.stable_path
        return self.device

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
