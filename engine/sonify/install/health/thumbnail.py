"""JPEG thumbnails of the latest frame for ``/thumbnail.jpg``, made on demand and cached.

The capture thread only stores a reference to its newest image (no copy, no encoding); the
health server's request thread calls the ``Thumbnailer``, which downscales and encodes at most
once per ``max_age_s`` however many pages poll (OpenCV releases the GIL while it works, so the
dispatch thread is not held up).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np


class Thumbnailer:
    def __init__(self, latest_image: Callable[[], np.ndarray | None], *, width: int = 320,
                 quality: int = 70, max_age_s: float = 0.5) -> None:
        self.latest_image = latest_image
        self.width = width
        self.quality = quality
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self._made_at = -float("inf")

    def __call__(self) -> bytes | None:
        with self._lock:
            now = time.monotonic()
            if now - self._made_at < self.max_age_s:
                return self._jpeg
            image = self.latest_image()
            self._jpeg = None if image is None else self._encode(image)
            self._made_at = now
            return self._jpeg

    def _encode(self, image: np.ndarray) -> bytes:
        h, w = image.shape[:2]
        if w > self.width:
            size = (self.width, max(1, round(h * self.width / w)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError(f"could not encode a {w}x{h} frame as JPEG")
        return data.tobytes()
