"""What a live run tells the world about itself: the status line, /health, systemd, metrics.

All of it is read from counters that are safe to read from any thread (the scheduler's
lateness ring, the outputs' stats, the capture's ``Latest``) and from the state the music
thread publishes; nothing here touches the scene player or the performance's live objects.

- ``problems(rt)``: one sentence per thing that is wrong now ([] when all is well);
  ``/health`` is ok exactly when there are none;
- ``health(rt)``: the /health report, each part's state;
- ``update_status(rt)``: the one-line status and the metrics, on the music thread;
- ``SystemdReport``: READY once the pipeline really runs, WATCHDOG while the loops beat,
  STATUS= every ``notify_status_s`` ("unwell: ..." while there are problems).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sonify.features.analyzer import Features
    from sonify.live.runtime import Runtime


STATUS_COLUMNS = 80
"""The terminal width the status line fits by default (a classic terminal)."""


@dataclass
class Status:
    """What the one-line status shows (and later the health page)."""

    fps: float = 0.0
    analysis_ms: float = 0.0
    lateness_p99_ms: float = 0.0
    notes_per_s: float = 0.0
    latency_ms: float = 0.0
    mood: str = "-"
    scene: str = "-"
    tempo_bpm: float = 0.0
    source: str = "-"
    outputs: list[str] = field(default_factory=list)

    def line(self, columns: int | None = STATUS_COLUMNS) -> str:
        """The one-line status for a terminal ``columns`` wide, in at most ``columns - 1``
        characters so that it never wraps (the cursor stays on the line for the next ``\r``):
        the full form where it fits, else a compact one (frame rate and analysis time, dispatch
        lateness p99, notes per second, mood, scene), its scene name cut short if need be.
        ``columns=None``: the full form, whatever its length (a log file)."""
        latency = f"{self.latency_ms:4.1f} ms" if self.latency_ms else "   - ms"
        full = (f"{self.fps:5.1f} fps | analysis {self.analysis_ms:4.1f} ms | "
                f"lateness p99 {self.lateness_p99_ms:5.2f} ms | frame->control {latency} | "
                f"{self.notes_per_s:4.1f} notes/s | mood {self.mood:<9} | scene {self.scene}")
        if columns is None or len(full) < columns:
            return full
        head = (f"{self.fps:4.1f} fps {self.analysis_ms:4.1f} ms | p99 "
                f"{self.lateness_p99_ms:5.2f} ms | {self.notes_per_s:4.1f} notes/s | "
                f"{self.mood} | ")
        room = max(columns - 1 - len(head), 0)
        scene = self.scene if len(self.scene) <= room else self.scene[:max(room - 3, 0)] + "..."
        return (head + scene)[:max(columns - 1, 0)]


def problems(rt: Runtime) -> list[str]:
    """What is wrong now, one sentence each ([] when all is well): the capture (thread dead,
    no frame for 5 s, camera lost), the dispatcher, the music thread, lateness, each output
    (see ``sonify.install.health.monitor``). Any thread."""
    cap = rt.capture
    found: list[str] = []
    age = cap.latest.last_frame_age_s()
    if cap.thread is not None and not cap.alive:
        found.append("the capture thread stopped" + (f": {cap.error}" if cap.error else ""))
    elif cap.lost:
        found.append(f"camera {cap.source.name} is "
                     f"{'not there' if not cap.opened else cap.source.state}"
                     f"{': playing idle' if rt.performance.idle else ''}")
    elif cap.alive and (age is None or age >= 5.0):
        found.append("no frame for 5 s" if age is not None else "no frame yet")
    found += rt.extras.problems()
    music_running = rt.scheduler.running
    if cap.thread is not None and not music_running:
        found.append("the dispatch thread is not running")
    found += rt.monitor.problems(rt.time.now(), rt.scheduler, rt.outputs,
                                 music_running=music_running and not rt.stopping)
    return found


def health(rt: Runtime) -> dict[str, object]:
    """The /health report: each part's state, uptime, the last errors and ``problems``
    (one sentence per thing that is wrong); ``ok`` is True exactly when there are none."""
    now = time.perf_counter()
    cap, latest = rt.capture, rt.capture.latest
    age = latest.last_frame_age_s()
    source = cap.source
    source_ok = (cap.alive and age is not None and age < 5.0
                 and (not source.live or source.state == "ok"))
    sched = rt.scheduler
    lat = sched.lateness()
    dispatch_alive = sched.running
    ams = list(latest.analysis_ms)
    outputs = [{"name": o.name, "connected": o.connected, "sent": o.stats.sent,
                "dropped": o.stats.dropped, "reconnects": o.stats.reconnects,
                "last_error": o.stats.last_error, "problem": o.problem}
               for o in rt.outputs]
    found = problems(rt)
    commands = rt.commands.stats()
    recent = sched.recent_lateness(rt.time.now() - rt.monitor.limits.window_s)
    return {
        "ok": not found, "problems": found,
        "uptime_s": round(time.time() - rt.started_at, 1),
        "scene": rt.status.scene,
        "source": {"name": source.name, "live": source.live, "ok": source_ok,
                   "state": source.state if cap.opened else "waiting",
                   "idle": rt.performance.idle,
                   "losses": getattr(source, "losses", 0),
                   "stable_path": getattr(source, "stable_path", None),
                   "frames": latest.frames, "fps": round(latest.fps(), 2),
                   "last_frame_age_s": None if age is None else round(age, 3),
                   "error": None if cap.error is None else str(cap.error)},
        "analysis": {"ok": source_ok,
                     "analysis_ms": round(float(np.median(ams)), 3) if ams else None},
        "scheduler": {"ok": dispatch_alive, "running": dispatch_alive,
                      "lateness_p50_ms": round(lat.p50_ms, 3),
                      "lateness_p99_ms": round(lat.p99_ms, 3),
                      "lateness_max_ms": round(lat.max_ms, 3),
                      "recent_lateness_p99_ms": round(recent.p99_ms, 3),
                      "pending": sched.waiting(),
                      "last_dispatch_age_s": (round(now - sched.last_dispatch_s, 3)
                                              if sched.last_dispatch_s else None)},
        "outputs": outputs,
        "music": {"last_block_age_s": (None if rt.monitor.last_block_s is None else
                                       round(rt.time.now() - rt.monitor.last_block_s, 3)),
                  "blocks_late": rt.monitor.blocks_late},
        "commands": {"waiting": rt.commands.waiting(),
                     "coalesced": commands.coalesced, "dropped": commands.dropped},
        "watchdog": {"ok": rt.watchdog.healthy(now), "stale": rt.watchdog.stale(now),
                     "systemd": rt.notifier.enabled},
        "hours": None if rt.gate is None else {"open": rt.gate.open,
                                               "gain": round(rt.gate.gain, 3)},
        "errors": rt.recent_errors.snapshot(),
    }


def update_status(rt: Runtime, features: Features | None,
                  notes_window: deque[tuple[float, int]], latencies_ms: deque[float]) -> None:
    """The status line's figures and the metrics, from the music thread."""
    s = rt.status
    latest = rt.capture.latest
    s.scene = rt.performance.scene.name
    s.tempo_bpm = rt.performance.tempo_bpm()
    s.fps = latest.fps()
    ams = list(latest.analysis_ms)
    s.analysis_ms = float(np.median(ams)) if ams else 0.0
    s.lateness_p99_ms = rt.scheduler.lateness().p99_ms
    if len(notes_window) >= 2:
        (t0, n0), (t1, n1) = notes_window[0], notes_window[-1]
        s.notes_per_s = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
    lat = list(latencies_ms)
    s.latency_ms = float(np.median(lat)) if lat else 0.0
    s.mood = features.mood if features is not None else "-"
    m = rt.metrics
    m.observe_lateness_ring(*rt.scheduler.lateness_ring())
    m.notes(rt.scheduler.notes_sent)
    m.fps(s.fps)
    for o in rt.outputs:
        m.output(o.name, connected=o.connected, dropped=o.stats.dropped,
                 reconnects=o.stats.reconnects)
    if rt.control_server is not None:
        m.control_rejections(rt.control_server.stats.rejected)
    m.commands({kind: (k.applied, k.coalesced, k.dropped)
                for kind, k in rt.commands.stats().kinds.items()})
    m.healthy(not problems(rt))
    s.outputs = [f"{o.name}{'' if o.connected else ' (waiting)'}" for o in rt.outputs]


class SystemdReport:
    """systemd's side: READY once the pipeline really runs (a frame analysed and the
    dispatcher looping), WATCHDOG while both loops beat, STATUS every ``notify_status_s``."""

    def __init__(self) -> None:
        self.ready_sent = False
        self._next_status = 0.0

    def tick(self, rt: Runtime, now: float) -> None:
        from sonify.install.notify import status_text

        if rt.scheduler.running and rt.scheduler.loop_beat_s:
            rt.watchdog.beat("dispatch", rt.scheduler.loop_beat_s)
        state = "closed" if rt.gate is not None and not rt.gate.open else "playing"
        interval = rt.config.service.notify_status_s
        telling = rt.notifier.enabled and (not self.ready_sent or (
            interval > 0 and now >= self._next_status))
        found = problems(rt) if telling else []  # only what STATUS= will carry
        if found:
            state = f"unwell: {found[0]}" + (f" (+{len(found) - 1} more)"
                                             if len(found) > 1 else "")
        latest = rt.capture.latest
        if not self.ready_sent and latest.frames > 0 and rt.scheduler.loop_beat_s:
            self.ready_sent = True
            self._next_status = now + interval
            rt.notifier.ready(status_text(scene=rt.status.scene, fps=latest.fps(),
                                          mood=rt.status.mood, state=state))
        # systemd's watchdog runs from READY=1 on: no ping before it. The capture loop beats as
        # a frame arrives, before it is analysed and counted, so on a busy machine both loops
        # could beat a moment before the first frame lets READY=1 out.
        if self.ready_sent and rt.watchdog.poll(now):
            rt.notifier.watchdog()
        if (interval > 0 and self.ready_sent and now >= self._next_status
                and rt.notifier.enabled):  # READY comes first; it carries the first STATUS
            self._next_status = now + interval
            rt.notifier.status(status_text(scene=rt.status.scene, fps=latest.fps(),
                                           mood=rt.status.mood,
                                           notes_per_s=rt.status.notes_per_s, state=state))
