"""Capture: every way sonify gets pictures, as Sources of Frames.

``open_source(spec)`` turns a text spec into a Source; ``find_cameras()`` lists cameras
without opening them (to choose "first camera, else demo").
"""

from sonify.capture.base import DEFAULT_HEARTBEAT_S, Frame, Source, SourceError, SourceState
from sonify.capture.camera import CameraSource, find_cameras, stable_device_path
from sonify.capture.convert import IMAGE_EXTENSIONS, read_image, to_bgr8
from sonify.capture.demo import DEMO_LOOKS, DemoSource
from sonify.capture.factory import VIDEO_EXTENSIONS, open_source
from sonify.capture.files import ImageSource, SequenceSource, VideoSource
from sonify.capture.stream import StreamSource, is_stream_spec

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEMO_LOOKS",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "CameraSource",
    "DemoSource",
    "Frame",
    "ImageSource",
    "SequenceSource",
    "Source",
    "SourceError",
    "SourceState",
    "StreamSource",
    "VideoSource",
    "find_cameras",
    "is_stream_spec",
    "open_source",
    "read_image",
    "stable_device_path",
    "to_bgr8",
]
