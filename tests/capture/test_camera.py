"""The camera source, against a scripted fake device: opening, losing and finding it again."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest

from sonify.capture import CameraSource, Frame, SourceError, find_cameras


class FakeDevice:
    """A camera that works for ``good_reads`` frames, then fails ``failing_reads`` reads while
    still open, then is unplugged for ``gone_opens`` attempts to open it, then works again.

    Each picture's level is its read number, so a test can see frames are fresh. A good read
    takes ``period_s``, as a real camera's read waits for its next frame.
    """

    def __init__(self, good_reads: int = 5, failing_reads: int = 4, gone_opens: int = 3,
                 *, never_back: bool = False, period_s: float = 0.005) -> None:
        self.state = "ok"
        self.good_reads = good_reads
        self.failing_reads = failing_reads
        self.gone_opens = gone_opens
        self.never_back = never_back
        self.period_s = period_s
        self.reads = 0
        self.failed = 0
        self.refused = 0
        self.opens = 0
        self.settings: dict[int, float] = {}

    def open(self, target: int | str) -> FakeCapture:
        self.opens += 1
        if self.state == "gone":
            self.refused += 1
            if self.refused >= self.gone_opens and not self.never_back:
                self.state = "back"
            return FakeCapture(self, opened=False)
        return FakeCapture(self, opened=True)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.state == "fail":
            self.failed += 1
            if self.failed >= self.failing_reads:
                self.state = "gone"
            return False, None
        time.sleep(self.period_s)
        self.reads += 1
        if self.state == "ok" and self.reads >= self.good_reads:
            self.state = "fail"
        return True, np.full((24, 32, 3), self.reads % 256, np.uint8)


class FakeCapture:
    def __init__(self, device: FakeDevice, *, opened: bool) -> None:
        self.device = device
        self.opened = opened

    def isOpened(self) -> bool:
        return self.opened and self.device.state != "gone"

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not self.opened:
            return False, None
        return self.device.read()

    def get(self, prop: int) -> float:
        return 15.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop: int, value: float) -> bool:
        self.device.settings[prop] = value
        return True

    def release(self) -> None:
        self.opened = False


def fast_camera(device: FakeDevice, **kwargs: object) -> CameraSource:
    return CameraSource(1, capture_factory=device.open, retry_initial_s=0.001,
                        retry_max_s=0.004, **kwargs)  # type: ignore[arg-type]


def test_camera_delivers_frames_with_capture_times() -> None:
    device = FakeDevice(good_reads=100)
    before = time.perf_counter()
    with fast_camera(device, width=640, height=480, fps=60.0, max_frames=4) as camera:
        frames = list(camera)
        assert camera.fps == 15.0  # what the driver reports, not what was asked
    assert [frame.index for frame in frames] == [0, 1, 2, 3]
    levels = [int(frame.image[0, 0, 0]) for frame in frames]
    assert levels == sorted(set(levels))  # fresh pictures only; a live camera may skip some
    times = [frame.t for frame in frames]
    assert before <= times[0] and times == sorted(times) and times[-1] <= time.perf_counter()
    assert device.settings == {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480,
                               cv2.CAP_PROP_FPS: 60.0}


def test_unplugged_camera_recovers_and_logs_each_change_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = FakeDevice(good_reads=5, failing_reads=4, gone_opens=3)
    caplog.set_level(logging.DEBUG, logger="sonify.capture")
    with fast_camera(device, max_frames=10) as camera:
        frames = list(camera)

    assert len(frames) == 10
    assert [frame.index for frame in frames] == list(range(10))
    levels = [int(frame.image[0, 0, 0]) for frame in frames]
    assert levels == sorted(set(levels)) and levels[-1] > 5  # fresh pictures from after it
    assert device.failed == 4 and device.refused == 3  # it really went through both troubles
    lost = [r for r in caplog.records if r.levelno == logging.WARNING]
    back = [r for r in caplog.records if r.levelno == logging.INFO and "back" in r.getMessage()]
    assert len(lost) == 1 and "camera:1" in lost[0].getMessage()
    assert "lost" in lost[0].getMessage() and "retrying" in lost[0].getMessage()
    assert len(back) == 1 and "camera:1 back after" in back[0].getMessage()


def test_close_from_another_thread_stops_the_retrying_promptly() -> None:
    device = FakeDevice(good_reads=2, failing_reads=1, never_back=True)
    camera = CameraSource(0, capture_factory=device.open, retry_initial_s=1.0, retry_max_s=30.0)
    camera.open()
    delivered: list[Frame] = []
    reader = threading.Thread(target=lambda: delivered.extend(camera))
    reader.start()
    time.sleep(0.2)  # the reader is now waiting a whole second before its first retry
    closed_at = time.perf_counter()
    camera.close()
    reader.join(timeout=3.0)
    assert not reader.is_alive()
    assert time.perf_counter() - closed_at < 0.5
    assert 1 <= len(delivered) <= 2  # the latest picture is kept, so one may be skipped


def test_camera_that_never_opens_names_the_device() -> None:
    device = FakeDevice()
    device.state = "gone"
    device.never_back = True
    with pytest.raises(SourceError) as error:
        CameraSource(7, capture_factory=device.open).open()
    message = str(error.value)
    assert "camera:7" in message and "/dev/video7" in message
    assert "Cameras found" in message and "demo" in message


def test_camera_that_opens_but_gives_no_picture_names_the_device() -> None:
    device = FakeDevice(good_reads=0, failing_reads=100)
    device.state = "fail"
    with pytest.raises(SourceError, match="/dev/video9"):
        CameraSource("/dev/video9", capture_factory=device.open).open()


def test_unopened_camera_refuses_to_iterate() -> None:
    with pytest.raises(RuntimeError, match="open"):
        next(iter(CameraSource(0, capture_factory=FakeDevice().open)))


def test_find_cameras_lists_device_nodes() -> None:
    cameras = find_cameras()
    assert all(path.startswith("/dev/video") for path in cameras)
    assert find_cameras(max_index=0) == []
