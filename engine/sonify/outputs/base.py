"""The Output contract: ``send(event)``, ``panic()``, ``close()``; never raises into the caller.

The public methods check, lock and count; subclasses only transmit (``_send``, ``_panic``,
``_close``), as mido's BaseOutput does. A failure to transmit is logged (rate-limited) and
counted as a drop; an output that can lose its peer (a MIDI port, an OSC host) reconnects by
itself and then calls ``on_reconnect`` so the scheduler can end the notes the peer may hold.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sonify.events import Event

logger = logging.getLogger(__name__)

ALL_CHANNELS = range(16)
CC_SUSTAIN = 64
CC_ALL_SOUND_OFF = 120
CC_ALL_NOTES_OFF = 123


@dataclass
class OutputStats:
    sent: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_error: str = ""


class Output(abc.ABC):
    """Base of every output. ``latency_s`` is added to event times by the scheduler, to line
    devices up (a synth with a slow attack can be sent earlier by a negative value)."""

    name: str = "output"
    latency_s: float = 0.0

    def __init__(self) -> None:
        self.stats = OutputStats()
        self.on_reconnect: Callable[[Output], None] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._last_log = 0.0

    @property
    def connected(self) -> bool:
        """True while the peer is there to receive (for status and health)."""
        return not self._closed

    @property
    def problem(self) -> str | None:
        """Why this output is not doing its job right now, in words for the health page (a
        port gone, a server down, a recording that cannot be written), or None when it is
        well. Health turns not-ok while any output has a problem."""
        if self._closed:
            return None  # a closed output is finished, not failing
        return None if self.connected else "disconnected"

    def wants(self, event: Event) -> bool:
        """Whether this output transmits that kind of event at all (others are skipped, not
        counted as drops)."""
        return True

    def send(self, event: Event) -> None:
        if self._closed or not self.wants(event):
            return
        try:
            with self._lock:
                self._send(event)
            self.stats.sent += 1
        except Exception as exc:  # an output never raises into the scheduler
            self._drop(exc)

    def panic(self) -> None:
        """Silence everything the peer may be playing (CC 64 = 0, CC 123, CC 120 on every
        channel for MIDI). The scheduler first sends a note-off for every held note."""
        if self._closed:
            return
        try:
            with self._lock:
                self._panic()
        except Exception as exc:
            self._drop(exc)

    def poll(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Called about once a second from a maintenance thread: notice a lost peer, reconnect
        and call ``on_reconnect``. Default: nothing to watch."""

    def close_at(self, end_s: float) -> None:
        """Close at the end of a run that ended at ``end_s`` (engine seconds). An output whose
        file lasts as long as the run (a MIDI recording, a WAV) ends it there; others just
        close."""
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        try:
            with self._lock:
                self._close()
        except Exception as exc:
            logger.warning("%s: error while closing: %s", self.name, exc)
        finally:
            self._closed = True

    def _drop(self, exc: BaseException) -> None:
        self.stats.dropped += 1
        self.stats.last_error = str(exc)
        now = time.monotonic()
        if now - self._last_log >= 5.0:  # at most one line per 5 s per output
            self._last_log = now
            logger.warning("%s: dropped an event (%d so far): %s", self.name,
                           self.stats.dropped, exc)

    @abc.abstractmethod
    def _send(self, event: Event) -> None: ...

    def _panic(self) -> None:  # noqa: B027
        """Default: nothing beyond the note-offs the scheduler sends."""

    def _close(self) -> None:  # noqa: B027
        """Release the port or socket."""

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
