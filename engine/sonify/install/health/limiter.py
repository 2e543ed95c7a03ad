"""The health server's lockout: too many wrong tokens from one address lock it out a while.

Counts per client address (the oldest of ``MAX_TRACKED_CLIENTS`` forgotten first, so a flood of
addresses cannot grow it without bound); the server answers a locked-out address 429.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

MAX_FAILURES = 5  # wrong tokens from one client address within FAILURE_WINDOW_S ...
FAILURE_WINDOW_S = 60.0
LOCKOUT_S = 60.0  # ... and it is answered 429 for this long
MAX_TRACKED_CLIENTS = 4096  # addresses remembered for the rate limit (oldest forgotten first)


class FailureLimiter:
    """Counts wrong tokens per client address; ``MAX_FAILURES`` within ``FAILURE_WINDOW_S``
    lock that address out for ``LOCKOUT_S``. ``clock`` is injectable (tests). Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 max_failures: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S,
                 lockout_s: float = LOCKOUT_S) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked_until: OrderedDict[str, float] = OrderedDict()

    def locked_for(self, client: str) -> float:
        """Seconds ``client`` stays locked out (0 when it is not)."""
        with self._lock:
            until = self._locked_until.get(client)
            if until is None:
                return 0.0
            left = until - self.clock()
            if left <= 0:
                del self._locked_until[client]
                return 0.0
            return left

    def failed(self, client: str) -> bool:
        """Record a wrong token from ``client``; True when this one locks it out."""
        now = self.clock()
        with self._lock:
            times = self._failures.pop(client, None) or deque()
            times.append(now)
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) >= self.max_failures:
                self._locked_until[client] = now + self.lockout_s
                self._locked_until.move_to_end(client)
                self._trim(self._locked_until)
                return True
            self._failures[client] = times  # (re)inserted last: the oldest go first
            self._trim(self._failures)
            return False

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    @staticmethod
    def _trim(table: OrderedDict[str, Any]) -> None:
        while len(table) > MAX_TRACKED_CLIENTS:
            table.popitem(last=False)
