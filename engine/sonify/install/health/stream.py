"""The page's push stream: the published state as server-sent events, a few times a second.

``GET /api/stream`` answers ``text/event-stream`` and keeps the connection open: every
``interval_s`` it writes the state (``state()``, the plain snapshot the music thread published,
with the counters read now) as one ``data:`` event of JSON, until the browser goes away or the
server stops. The browser's ``EventSource`` reconnects by itself (after ``RETRY_MS``), carries
the page's cookie like any same-origin request, and needs no polling. Server-sent events, not a
WebSocket: commands already go up through ``POST /api/command``, the stream only goes down, and
it is plain HTTP that ``http.server`` serves on its request threads with no extra dependency.

Each stream holds one of the server's request threads, so at most ``max_clients`` are served at
once (the next is told 503 with ``Retry-After``, and its ``EventSource`` tries again). A ``state``
callback that raises is written as an ``event: problem`` with the error and the stream goes on
(the engine may be starting or stopping); a client that hangs up ends its stream at the next
write. ``stop()`` ends every stream within one interval (the server's ``stop()`` calls it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

PUSH_INTERVAL_S = 0.1  # ten pushes a second: scopes and the piano roll move smoothly
MAX_CLIENTS = 16  # phones, tablets and a laptop or two at one show
RETRY_MS = 1000  # how soon a browser reconnects after the stream breaks

StateFn = Callable[[], Mapping[str, Any]]
Dumps = Callable[[Any], bytes]


def sse_event(data: bytes, event: str | None = None) -> bytes:
    """One server-sent event: ``event:`` (when named), then ``data:`` lines, then a blank line.
    JSON from ``json.dumps`` has no newline, but a payload that does is split into lines as the
    format asks (the browser joins them with newlines again)."""
    head = f"event: {event}\n".encode() if event else b""
    lines = data.split(b"\n")
    return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def _plain_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


class StatePush:
    """Writes ``state()`` to each open stream every ``interval_s`` (see the module docstring).
    ``dumps`` turns a state into JSON bytes (the server's, which makes NaN null)."""

    def __init__(self, state: StateFn, *, interval_s: float = PUSH_INTERVAL_S,
                 max_clients: int = MAX_CLIENTS, dumps: Dumps = _plain_dumps,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        if not interval_s > 0:
            raise ValueError(f"the push interval must be > 0 s, got {interval_s}")
        self.state = state
        self.interval_s = interval_s
        self.max_clients = max_clients
        self.dumps = dumps
        self.on_error = on_error
        self._slots = threading.BoundedSemaphore(max_clients)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open = 0
        self.pushed = 0  # events written, all streams together (tests, curiosity)

    @property
    def clients(self) -> int:
        """Streams open now."""
        with self._lock:
            return self._open

    def start(self) -> None:
        self._stopping.clear()

    def stop(self) -> None:
        """End every stream at its next wait (within ``interval_s``)."""
        self._stopping.set()

    def claim(self) -> bool:
        """A slot for one more stream, or False when ``max_clients`` are open."""
        if self._stopping.is_set() or not self._slots.acquire(blocking=False):
            return False
        with self._lock:
            self._open += 1
        return True

    def release(self) -> None:
        with self._lock:
            self._open -= 1
        self._slots.release()

    def serve(self, write: Callable[[bytes], None]) -> None:
        """Push to one client until it hangs up or ``stop()``; call between ``claim()`` and
        ``release()``. ``write`` sends bytes at once (write and flush) and raises when the
        client is gone."""
        try:
            write(f"retry: {RETRY_MS}\n\n".encode())
            while not self._stopping.is_set():
                write(self._event())
                with self._lock:
                    self.pushed += 1
                if self._stopping.wait(self.interval_s):
                    break
        except (ConnectionError, TimeoutError, ValueError) as exc:
            # the browser closed the tab or went to sleep (ValueError: the file was closed)
            logger.debug("state stream ended: %r", exc)

    def _event(self) -> bytes:
        try:
            return sse_event(self.dumps(self.state()))
        except Exception as exc:  # the engine may be starting or stopping: say so, go on
            if self.on_error is not None:
                self.on_error(exc)
            return sse_event(self.dumps({"error": f"{type(exc).__name__}: {exc}"}), "problem")
