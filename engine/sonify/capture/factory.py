"""``open_source``: one text spec (from the command line or a config) to the right Source."""

from __future__ import annotations

import logging
import os

from sonify.capture.base import Source, SourceError
from sonify.capture.camera import (
    DEFAULT_RETRY_INITIAL_S,
    DEFAULT_RETRY_MAX_S,
    DEFAULT_STALE_S,
    DEFAULT_STALL_S,
    CameraSource,
)
from sonify.capture.convert import is_image_path
from sonify.capture.demo import DEFAULT_LOOK, DEMO_LOOKS, DemoSource
from sonify.capture.files import DEFAULT_FPS, ImageSource, SequenceSource, VideoSource
from sonify.capture.stream import StreamSource, is_stream_spec

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv",
)
"""File endings taken for video; any other non-image file is also tried as a video."""

DEMO_WIDTH_PX = 1280
DEMO_HEIGHT_PX = 720

_GLOB_CHARS = "*?["
_EXPECTED = (
    "expected an image, a folder or glob of images, a video, camera:N, a /dev/video* device, "
    f"a stream URL (rtsp://, http://...) or demo[:{'|'.join(DEMO_LOOKS)}]"
)


def open_source(
    spec: str,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    loop: bool = False,
    realtime: bool = False,
    seed: int = 0,
    max_frames: int | None = None,
    stall_s: float = DEFAULT_STALL_S,
    stale_s: float | None = DEFAULT_STALE_S,
    retry_initial_s: float = DEFAULT_RETRY_INITIAL_S,
    retry_max_s: float = DEFAULT_RETRY_MAX_S,
    hold_s: float | None = None,
) -> Source:
    """The Source a spec names, not yet opened (use ``with source:`` or ``open()``).

    ``camera:N`` / ``/dev/video*`` -> camera; ``demo`` / ``demo:LOOK`` -> demo; an image
    file -> still image; a folder or a glob (``*?[``) -> image sequence; any other file ->
    video. ``width``/``height`` are requested from a camera and are the demo's frame size
    (one alone keeps 16:9); files keep their own size. ``fps`` None means the source's own
    rate (the camera's, the video file's, else 30). ``loop`` repeats sequences and videos;
    ``realtime`` paces files and demo at ``fps`` instead of as fast as they are read;
    ``seed`` picks the demo's layout; ``max_frames`` ends any source after that many frames.
    A camera counts as lost after ``stall_s`` with no frame or ``stale_s`` of the very same
    picture (None or 0: never) and retries every ``retry_initial_s`` doubling to
    ``retry_max_s`` (see ``sonify.capture.camera``); streams follow them too, other sources
    ignore them. ``hold_s`` makes a folder or glob a slideshow (each image held that long,
    dissolving into the next: ``SequenceSource``); with any other spec it is an error.

    Raises SourceError when the spec names nothing that exists; problems with what it names
    (unreadable file, no camera) are raised by ``open()``.
    """
    text = spec.strip()
    lower = text.lower()
    if hold_s is not None and not is_sequence_spec(text):
        raise SourceError(f"a hold time per image is for a folder or glob of images; "
                          f"{text!r} is not one (drop --hold / hold_s for it)")
    if is_stream_spec(text):
        return StreamSource(text, max_frames=max_frames, stall_s=stall_s, stale_s=stale_s,
                            retry_initial_s=retry_initial_s, retry_max_s=retry_max_s)
    if lower == "demo" or lower.startswith("demo:"):
        look = lower.partition(":")[2] or DEFAULT_LOOK
        width_px, height_px = _demo_size(width, height)
        return DemoSource(look, width=width_px, height=height_px, fps=fps or DEFAULT_FPS,
                          realtime=realtime, max_frames=max_frames, seed=seed)
    if lower == "camera" or lower.startswith("camera:") or text.startswith("/dev/"):
        return CameraSource(_camera_device(text), width=width, height=height, fps=fps,
                            max_frames=max_frames, stall_s=stall_s, stale_s=stale_s,
                            retry_initial_s=retry_initial_s, retry_max_s=retry_max_s)

    path = os.path.expanduser(text)
    if os.path.isdir(path):
        return SequenceSource(path, fps=fps or DEFAULT_FPS, loop=loop, realtime=realtime,
                              max_frames=max_frames, hold_s=hold_s)
    if os.path.isfile(path):
        if is_image_path(path):
            return ImageSource(path, fps=fps or DEFAULT_FPS, realtime=realtime,
                               max_frames=max_frames)
        if not path.lower().endswith(VIDEO_EXTENSIONS):
            logger.debug("%s is neither a known image nor video type: trying it as a video", path)
        return VideoSource(path, fps=fps, loop=loop, realtime=realtime, max_frames=max_frames)
    if any(char in text for char in _GLOB_CHARS):
        return SequenceSource(path, fps=fps or DEFAULT_FPS, loop=loop, realtime=realtime,
                              max_frames=max_frames, hold_s=hold_s)
    if not text:
        raise SourceError(f"empty source spec ({_EXPECTED})")
    raise SourceError(f"no such file or folder: {text!r} ({_EXPECTED})")


def is_sequence_spec(text: str) -> bool:
    """A folder, or a glob that names no existing file: what ``open_source`` plays as an
    image sequence."""
    path = os.path.expanduser(text)
    return os.path.isdir(path) or (not os.path.isfile(path) and not is_stream_spec(text)
                                   and any(char in text for char in _GLOB_CHARS))


def _camera_device(text: str) -> int | str:
    if text.startswith("/dev/"):
        return text
    arg = text.partition(":")[2].strip() or "0"
    if arg.isdigit():
        return int(arg)
    if arg.startswith("/dev/"):
        return arg
    raise SourceError(
        f"bad camera spec {text!r}: write camera:N with N a number (camera:0 is the first "
        f"camera) or a device path such as /dev/video0"
    )


def _demo_size(width: int | None, height: int | None) -> tuple[int, int]:
    if width is None and height is None:
        return DEMO_WIDTH_PX, DEMO_HEIGHT_PX
    if width is None:
        assert height is not None
        return round(height * 16 / 9), height
    if height is None:
        return width, round(width * 9 / 16)
    return width, height
