"""open_source: one text spec picks the right source, or says clearly why none fits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from sonify.capture import (
    CameraSource,
    DemoSource,
    ImageSource,
    SequenceSource,
    SourceError,
    VideoSource,
    open_source,
)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    assert cv2.imwrite(str(tmp_path / "still.png"), np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "shots").mkdir()
    assert cv2.imwrite(str(tmp_path / "shots" / "a1.jpg"), np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "clip.avi").write_bytes(b"whatever: only the name matters until open()")
    (tmp_path / "clip.weird").write_bytes(b"unknown type")
    return tmp_path


def test_specs_pick_their_source(media: Path) -> None:
    demo, night = open_source("demo"), open_source("demo:night")
    assert isinstance(demo, DemoSource) and demo.look == "cycle"
    assert isinstance(night, DemoSource) and night.look == "night"
    for spec, device in [("camera:2", 2), ("camera", 0), ("/dev/video5", "/dev/video5"),
                         ("/dev/v4l/by-id/usb-cam", "/dev/v4l/by-id/usb-cam")]:
        camera = open_source(spec)
        assert isinstance(camera, CameraSource) and camera.device == device
    assert isinstance(open_source(str(media / "still.png")), ImageSource)
    assert isinstance(open_source(str(media / "shots")), SequenceSource)
    assert isinstance(open_source(str(media / "shots" / "*.jpg")), SequenceSource)
    assert isinstance(open_source(str(media / "nothing_yet_*.png")), SequenceSource)
    assert isinstance(open_source(str(media / "clip.avi")), VideoSource)
    assert isinstance(open_source(str(media / "clip.weird")), VideoSource)


def test_options_reach_the_source(media: Path) -> None:
    demo = open_source("demo:city", width=1920, seed=5, fps=24.0, realtime=True, max_frames=3)
    assert isinstance(demo, DemoSource)
    assert (demo.width, demo.height, demo.seed, demo.fps, demo.realtime) == (1920, 1080, 5, 24.0,
                                                                             True)
    with demo:
        assert len(list(demo)) == 3
    sequence = open_source(str(media / "shots"), loop=True, max_frames=5)
    with sequence:
        assert len(list(sequence)) == 5


def test_missing_path_names_it_and_what_was_expected() -> None:
    with pytest.raises(SourceError) as error:
        open_source("x.png")
    message = str(error.value)
    assert "'x.png'" in message and "no such file or folder" in message
    assert "camera:N" in message and "demo" in message


@pytest.mark.parametrize(("spec", "needle"), [
    ("demo:mars", "sunset"),
    ("camera:front", "camera:N"),
    ("", "expected"),
])
def test_bad_specs_say_what_is_allowed(spec: str, needle: str) -> None:
    with pytest.raises(SourceError, match=needle):
        open_source(spec)
