"""A network video stream (RTSP, HTTP MJPEG, HLS...) through OpenCV's FFmpeg backend, live like
a camera.

A stream fails the way a camera does, and more often: the server restarts, the network drops,
a relay hangs or keeps sending its last picture. ``StreamSource`` is a ``CameraSource`` with
another way in, so it inherits the whole watch: a read that fails, blocks or repeats the same
bytes counts as a loss within ``stall_s`` (``stale_s``), the music plays the idle behaviour
while the stream is reopened with backoff, and it comes back by itself when the server does.
What differs is the opening: FFmpeg by URL, with open and read timeouts (so a server that
accepts and then says nothing gives up in seconds instead of never), no frame size or rate
requested (a stream has its own), no /dev node to resolve, and errors that speak of the server.

A password in the URL (``rtsp://user:secret@host/...``) never reaches a log, an error, the
status line or the health page: the source's ``name`` shows it as ``***``.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit, urlunsplit

import cv2

from sonify.capture.camera import (
    DEFAULT_OPEN_TIMEOUT_S,
    DEFAULT_RETRY_INITIAL_S,
    DEFAULT_RETRY_MAX_S,
    DEFAULT_STALE_S,
    DEFAULT_STALL_S,
    CameraSource,
)
from sonify.capture.files import Capture, CaptureFactory

STREAM_SCHEMES: tuple[str, ...] = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
"""URL schemes taken as a network stream (what FFmpeg opens)."""

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def is_stream_spec(spec: str) -> bool:
    """True for ``rtsp://...``, ``http://...`` and the other ``STREAM_SCHEMES``."""
    match = _SCHEME.match(spec.strip())
    return match is not None and match.group(1).lower() in STREAM_SCHEMES


def redact(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***``, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def stream_capture(url: str | int, timeout_s: float = DEFAULT_OPEN_TIMEOUT_S) -> Capture:
    """``cv2.VideoCapture`` on FFmpeg with open and read timeouts (OpenCV >= 4.6 honours
    them; an older build ignores them and the watch's ``stall_s`` still notices a hang)."""
    ms = int(timeout_s * 1000)
    return cv2.VideoCapture(str(url), cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                       cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])


class StreamSource(CameraSource):
    """Frames from a network stream URL, live: see the module text. The arguments are
    ``CameraSource``'s, less the frame size and rate (a stream has its own)."""

    def __init__(
        self,
        url: str,
        *,
        max_frames: int | None = None,
        capture_factory: CaptureFactory | None = None,
        retry_initial_s: float = DEFAULT_RETRY_INITIAL_S,
        retry_max_s: float = DEFAULT_RETRY_MAX_S,
        stall_s: float = DEFAULT_STALL_S,
        stale_s: float | None = DEFAULT_STALE_S,
        open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
    ) -> None:
        url = url.strip()
        if not is_stream_spec(url):
            raise ValueError(f"not a stream URL: {redact(url)!r} (expected one of "
                             f"{', '.join(s + '://' for s in STREAM_SCHEMES)})")
        factory = capture_factory or functools.partial(stream_capture, timeout_s=open_timeout_s)
        super().__init__(url, max_frames=max_frames, capture_factory=factory,
                         retry_initial_s=retry_initial_s, retry_max_s=retry_max_s,
                         stall_s=stall_s, stale_s=stale_s,
                         open_timeout_s=open_timeout_s, link_dirs=())
        self.name = redact(url)
        self.label = f"stream {self.name}"

    @property
    def device_path(self) -> str:
        return str(self.device)  # no /dev node: the URL itself (never resolved to a link)

    def _cannot_open_message(self, what: str) -> str:
        return (f"{what} {self.label}: the server does not answer, refuses the address or "
                f"sends nothing OpenCV's FFmpeg can decode. Check the URL in a player "
                f"(e.g. `ffplay '{self.name}'`), that the server runs and is reachable from "
                f"here, and the user and password if it needs them.")
