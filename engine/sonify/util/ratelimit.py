"""A log that speaks at most once per reason every few seconds (the control and health servers
face floods of bad input; each kind of fault is reported, never a line per packet)."""

from __future__ import annotations

import logging
import threading
import time

LOG_INTERVAL_S = 5.0


class RateLimitedLog:
    """At most one line per ``reason`` every ``interval_s`` to ``logger`` at ``level``; the next
    line says how many it held back. Thread-safe."""

    def __init__(self, logger: logging.Logger, interval_s: float = LOG_INTERVAL_S,
                 level: int = logging.WARNING) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.level = level
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, reason: str, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self.interval_s:
                self._held[reason] = self._held.get(reason, 0) + 1
                return
            self._last[reason] = now
            held = self._held.pop(reason, 0)
        if held:
            msg += " (%d more %s since the last such line)"
            args = (*args, held, reason)
        self.logger.log(self.level, msg, *args, exc_info=exc_info)

    warning = log
    error = log


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; ``take`` spends one if there is one. Not
    thread-safe: the caller holds its own lock."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.t = burst, now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
