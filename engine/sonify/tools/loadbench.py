"""``sonify bench --scheduler``: dispatch lateness beside full-rate analysis.

One run, three phases on the same 1080p demo frames:
- ``alone``: the analysis as fast as it goes (fps_alone);
- ``threaded``: the same analysis while the scheduler's own thread dispatches a 1 ms event grid
  (p50/p99 lateness, fps_with_dispatch);
- ``baseline``: the naive way, one thread that analyses a frame, then sleeps (time.sleep) until
  the next event and sends what is due (baseline p50/p99).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from sonify.capture import open_source
from sonify.capture.base import Frame
from sonify.events import ControlChange, Event
from sonify.features.analyzer import Analyzer
from sonify.outputs.base import Output
from sonify.timing.clock import RealTime
from sonify.timing.scheduler import Scheduler


class NullOutput(Output):
    """Transmits nothing: the benchmark measures dispatch, not a port."""

    name = "null"

    def _send(self, event: Event) -> None:
        pass


@dataclass
class SchedulerBench:
    p50_ms: float
    p99_ms: float
    max_ms: float
    baseline_p50_ms: float
    baseline_p99_ms: float
    fps_alone: float
    fps_with_dispatch: float
    fps_ratio: float
    events: int
    realtime_priority: bool
    latency_ms: float  # frame capture -> the first control event answering it (median)
    frame_period_ms: float


def _frames(width: int, height: int, n: int = 8) -> list[np.ndarray]:
    src = open_source("demo:city", width=width, height=height, seed=0)
    with src:
        it = iter(src)
        return [next(it).image for _ in range(n)]


def _analyse_for(analyzer: Analyzer, frames: list[np.ndarray], seconds: float) -> float:
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        analyzer.analyze(Frame(n, time.perf_counter(), frames[n % len(frames)]))
        n += 1
    return n / (time.perf_counter() - start)


def _grid(start: float, seconds: float, step_s: float = 0.001) -> list[Event]:
    return [ControlChange(start + i * step_s, 0, 1, i % 128) for i in range(int(seconds / step_s))]


def run_scheduler_bench(seconds: float = 4.0, resolution: tuple[int, int] = (1920, 1080),
                        realtime_priority: bool = False) -> SchedulerBench:
    frames = _frames(*resolution)
    analyzer = Analyzer()
    _analyse_for(analyzer, frames, 0.5)  # warm up
    fps_alone = _analyse_for(analyzer, frames, seconds)

    out = NullOutput()
    sched = Scheduler([out], RealTime())
    sched.start(realtime_priority=realtime_priority)
    deadline = time.perf_counter() + 2.0
    while not sched.thread_tuning and time.perf_counter() < deadline:
        time.sleep(0.001)
    rt = "SCHED_FIFO" in sched.thread_tuning
    events = _grid(time.perf_counter() + 0.05, seconds)
    sched.schedule(events)
    fps_with = _analyse_for(analyzer, frames, seconds)
    time.sleep(0.1)
    lat = sched.lateness()
    sched.stop(panic=False)

    # the naive baseline: sleep and send in the analysing thread
    base_events = _grid(time.perf_counter() + 0.05, seconds)
    late: list[float] = []
    i = n = 0
    while i < len(base_events):
        analyzer.analyze(Frame(n, time.perf_counter(), frames[n % len(frames)]))
        n += 1
        # send what fell due while analysing, then sleep until the next event and send it
        while i < len(base_events) and base_events[i].t <= time.perf_counter():
            out.send(base_events[i])
            late.append(time.perf_counter() - base_events[i].t)
            i += 1
        if i < len(base_events):
            time.sleep(max(0.0, base_events[i].t - time.perf_counter()))
            out.send(base_events[i])
            late.append(time.perf_counter() - base_events[i].t)
            i += 1
    base = np.array(late) * 1e3
    latency_ms, fps = measure_latency(seconds=min(seconds, 4.0))
    return SchedulerBench(
        p50_ms=round(lat.p50_ms, 4), p99_ms=round(lat.p99_ms, 4), max_ms=round(lat.max_ms, 3),
        baseline_p50_ms=round(float(np.percentile(base, 50)), 4),
        baseline_p99_ms=round(float(np.percentile(base, 99)), 4),
        fps_alone=round(fps_alone, 1), fps_with_dispatch=round(fps_with, 1),
        fps_ratio=round(fps_with / fps_alone, 3), events=lat.count, realtime_priority=rt,
        latency_ms=round(latency_ms, 2), frame_period_ms=round(1000.0 / fps, 2),
    )


def measure_latency(seconds: float = 4.0, fps: float = 30.0) -> tuple[float, float]:
    """Run the live runtime (demo at ``fps``, the vj scene, a recording output) and return the
    median latency from a frame's capture to the first control event that reflects it."""
    from sonify.config import Config
    from sonify.live.runtime import Runtime
    from sonify.outputs.recording import RecordingOutput

    config = Config()
    config.source.input = "demo"
    config.source.fps = fps
    config.scene.name = "vj"
    runtime = Runtime(config, [RecordingOutput()])
    status = runtime.run(seconds)
    return status.latency_ms, fps


def format_scheduler(b: SchedulerBench) -> str:
    return "\n".join([
        "dispatch lateness on a 1 ms grid beside full-rate 1080p analysis:",
        f"  scheduler thread : p50 {b.p50_ms:.3f} ms  p99 {b.p99_ms:.3f} ms  "
        f"max {b.max_ms:.1f} ms  ({b.events} events, realtime priority: "
        f"{'yes' if b.realtime_priority else 'no'})",
        f"  naive baseline   : p50 {b.baseline_p50_ms:.3f} ms  p99 {b.baseline_p99_ms:.3f} ms  "
        f"(time.sleep in the analysing thread)",
        f"  analysis         : {b.fps_alone:.0f} fps alone, {b.fps_with_dispatch:.0f} fps with "
        f"dispatch ({100 * b.fps_ratio:.1f}%)",
        f"  frame -> control : {b.latency_ms:.1f} ms median (live runtime, demo at "
        f"{1000 / b.frame_period_ms:.0f} fps, vj scene; target <= one frame period + 5 ms = "
        f"{b.frame_period_ms + 5:.1f} ms)",
        "  max lateness is informational: this VM stalls threads for tens of ms now and then",
    ])


def scheduler_json(b: SchedulerBench) -> dict:
    return asdict(b)
