"""The last warnings and errors the engine logged, for ``/health``'s ``errors`` list.

Attach once (``RecentErrors.install()`` on the ``engine`` logger); ``snapshot()`` is cheap and
thread-safe. Only the newest ``capacity`` records are kept, so a storm of errors costs nothing
but a deque rotation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any


class RecentErrors(logging.Handler):
    def __init__(self, capacity: int = 20, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._records_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        entry = {"t": round(record.created, 3), "level": record.levelname,
                 "where": record.name, "message": message[:500]}
        with self._records_lock:
            self._records.append(entry)

    def snapshot(self, since_s: float | None = None) -> list[dict[str, Any]]:
        """Newest last; ``since_s`` keeps only records from the last so many seconds."""
        with self._records_lock:
            records = list(self._records)
        if since_s is not None:
            cutoff = time.time() - since_s
            records = [r for r in records if r["t"] >= cutoff]
        return records

    @classmethod
    def install(cls, logger_name: str = "sonify", capacity: int = 20) -> RecentErrors:
        handler = cls(capacity)
        logging.getLogger(logger_name).addHandler(handler)
        return handler
