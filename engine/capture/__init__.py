"""Capture: every way sonify gets pictures, as Sources of Frames.

``open_source(spec)`` turns a text spec into a Source; ``find_cameras()`` lists cameras
without opening them (to choose "first camera, else demo").
"""

from engine.capture.base import Frame, Source, SourceError
from engine.capture.camera import CameraSource, find_cameras
from engine.capture.convert import IMAGE_EXTENSIONS, read_image, to_bgr8
from engine.capture.demo import DEMO_LOOKS, DemoSource
from engine.capture.factory import VIDEO_EXTENSIONS, open_source
from engine.capture.files import ImageSource, SequenceSource, VideoSource

__all__ = [
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
    "VideoSource",
    "find_cameras",
    "open_source",
    "read_image",
    "to_bgr8",
]
