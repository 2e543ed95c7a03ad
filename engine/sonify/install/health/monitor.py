"""What health judges by: the recent history of the music thread and of the outputs.

``/health`` must tell the truth: it once said "ok" through six seconds of lateness, a stalled
music thread and MIDI lost to a dead JACK server. The runtime feeds a ``HealthMonitor`` from
the music thread (each block's start, the outputs' counters about once a second); ``problems``
(any thread) turns that, the scheduler's recent lateness and the outputs' own ``problem`` into
sentences, one per thing that is wrong, and health is ok exactly when there are none. The
sentences are what the page, ``/health`` and systemd's STATUS= show.

Judged over the last ``window_s`` seconds (engine clock):

- dispatch lateness p99 above ``max_lateness_ms``, or the oldest event still queued overdue
  by more than that (a dispatcher that stopped sending records no lateness at all);
- the music thread: a block that started more than ``max_block_lag_s`` after its deadline (its
  notes were rendered too late to be on time), or no block for ``music_stall_s``;
- each output: its ``problem`` (a port or server gone, a recording that cannot be written) or
  events it dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sonify.outputs.base import Output
from sonify.timing.scheduler import Scheduler


@dataclass(frozen=True)
class HealthLimits:
    max_lateness_ms: float = 20.0
    window_s: float = 5.0
    max_block_lag_s: float = 0.05
    music_stall_s: float = 2.0


class HealthMonitor:
    """Recent history for health (see the module docstring). Thread-safe."""

    def __init__(self, limits: HealthLimits | None = None) -> None:
        self.limits = limits or HealthLimits()
        self._lock = threading.Lock()
        self._late_blocks: deque[tuple[float, float]] = deque(maxlen=256)  # (at, lag_s)
        self.last_block_s: float | None = None
        self.blocks_late = 0  # in all, since the start
        self._drops: dict[int, deque[tuple[float, int]]] = {}  # id(output) -> (at, dropped)
        self._last_sample = -float("inf")

    # -- fed by the music thread ---------------------------------------------------------------

    def block(self, now: float, lag_s: float) -> None:
        """A music block starts at ``now``, ``lag_s`` after its deadline."""
        with self._lock:
            self.last_block_s = now
            if lag_s > self.limits.max_block_lag_s:
                self.blocks_late += 1
                self._late_blocks.append((now, lag_s))

    def sample_outputs(self, now: float, outputs: Sequence[Output]) -> None:
        """Each output's drop counter now (kept at most once a second: a short history)."""
        with self._lock:
            if now - self._last_sample < 1.0:
                return
            self._last_sample = now
            horizon = now - self.limits.window_s - 1.0
            for out in outputs:
                hist = self._drops.setdefault(id(out), deque())
                hist.append((now, out.stats.dropped))
                while len(hist) > 2 and hist[1][0] <= horizon:
                    hist.popleft()

    # -- read by anyone ------------------------------------------------------------------------

    def recent_drops(self, out: Output, now: float) -> int:
        """Events ``out`` dropped over about the last ``window_s`` (0 before two samples)."""
        with self._lock:
            hist = self._drops.get(id(out))
            if not hist:
                return 0
            since = now - self.limits.window_s
            base = hist[0][1]
            for at, dropped in hist:
                if at <= since:
                    base = dropped
            return max(0, out.stats.dropped - base)

    def problems(self, now: float, scheduler: Scheduler, outputs: Sequence[Output], *,
                 music_running: bool = True) -> list[str]:
        """One sentence per thing that is wrong now; [] when all is well."""
        lim = self.limits
        found: list[str] = []
        since = now - lim.window_s
        lat = scheduler.recent_lateness(since)
        if lat.count and lat.p99_ms > lim.max_lateness_ms:
            found.append(f"notes are late: dispatch lateness p99 {lat.p99_ms:.1f} ms over the "
                         f"last {lim.window_s:g} s (limit {lim.max_lateness_ms:g} ms)")
        overdue = scheduler.overdue_s(now)  # never waits for the dispatcher's lock
        if overdue * 1e3 > lim.max_lateness_ms:
            found.append(f"the dispatcher is behind: an event is {overdue:.2f} s overdue")
        with self._lock:
            late = [lag for at, lag in self._late_blocks if at >= since]
            last = self.last_block_s
        if music_running and last is not None and now - last > lim.music_stall_s:
            found.append(f"the music thread has not run for {now - last:.1f} s")
        if late:
            found.append(f"the music thread missed {len(late)} deadline(s) in the last "
                         f"{lim.window_s:g} s (worst {max(late) * 1e3:.0f} ms late)")
        for out in outputs:
            problem = out.problem
            if problem:
                found.append(f"{out.name}: {problem}")
                continue
            dropped = self.recent_drops(out, now)
            if dropped:
                found.append(f"{out.name}: dropped {dropped} event(s) in the last "
                             f"{lim.window_s:g} s ({out.stats.last_error or 'no reason given'})")
        return found
