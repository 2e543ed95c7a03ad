"""How much of the GIL the live analysis leaves to the rest of the engine (issue 15).

A pure-Python thread (a counting loop: what the dispatch or a control thread does between
waits) runs alone, then beside the live analysis (``Analyzer.analyze`` on demo frames in a loop
on another thread). Analysis that holds the GIL in its Python parts takes that time from the
counting thread; analysis that releases it often also waits, at each hand-back, for the busy
thread to yield (up to ``sys.getswitchinterval()``, 5 ms). Reported: both counting rates and their
ratio (target >= 0.8), and the analysis rate alone and beside the counting thread, with the GIL
switch interval the live runtime sets (1 ms: ``sonify.live.runtime.GIL_SWITCH_S``).

``live_path_ms(resolution)`` is the plain cost of that analysis: the median ms of
``Analyzer.analyze`` on consecutive demo frames at one resolution, one thread.

The phases are interleaved (alone, beside the analysis, beside a busy process, ...) so that
drift on a shared machine hits them alike; the ratios are what to read, not the absolute rates.
The third phase is the control: the counting thread beside another *process* spinning on a core
(no GIL shared) shows what CPU contention alone costs on this machine: on a loaded machine
``python_ratio`` falls with it, GIL or not (``python_ratio_cpu_only``, informational).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time

import cv2
import numpy as np

from sonify.capture import open_source
from sonify.capture.base import Frame
from sonify.features.analyzer import Analyzer

RESOLUTIONS: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "4k": (3840, 2160),
}


def demo_frames(resolution: str | tuple[int, int], n: int = 6, look: str = "city",
                seed: int = 0) -> list[np.ndarray]:
    """``n`` consecutive demo frames (after the animation gets going) at ``resolution``."""
    width, height = RESOLUTIONS[resolution] if isinstance(resolution, str) else resolution
    with open_source(f"demo:{look}", width=width, height=height, fps=30.0, seed=seed) as src:
        it = iter(src)
        for _ in range(10):
            next(it)
        return [next(it).image for _ in range(n)]


def live_path_ms(resolution: str | tuple[int, int], rounds: int = 30) -> float:
    """Median ms of one ``Analyzer.analyze`` (the default live path) at ``resolution``."""
    cv2.setNumThreads(1)
    frames = demo_frames(resolution)
    analyzer = Analyzer()
    times = []
    for i in range(rounds + len(frames)):
        frame = Frame(i, i / 30.0, frames[i % len(frames)])
        start = time.perf_counter()
        analyzer.analyze(frame)
        if i >= len(frames):  # the first lap warms caches and buffers
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _count_for(seconds: float) -> int:
    """The pure-Python work: count as far as possible in ``seconds``."""
    n = 0
    deadline = time.perf_counter() + seconds
    while True:
        for _ in range(1000):
            n += 1
        if time.perf_counter() >= deadline:
            return n


class _AnalysisLoop(threading.Thread):
    """Analyses frames back to back while ``go`` is set (parked on it otherwise); counts the
    frames it finishes."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__(name="gilbench-analysis", daemon=True)
        self.frames = frames
        self.analyzer = Analyzer()
        self.go = threading.Event()
        self.idle = threading.Event()
        self.stopping = False
        self.count = 0

    def run(self) -> None:
        i = 0
        while not self.stopping:
            if not self.go.is_set():
                self.idle.set()
                self.go.wait()
                self.idle.clear()
                continue
            self.analyzer.analyze(Frame(i, i / 30.0, self.frames[i % len(self.frames)]))
            i += 1
            self.count += 1

    def resume(self) -> None:
        self.count = 0
        self.go.set()

    def park(self) -> int:
        """Stop between two frames; the frames done since ``resume``."""
        self.go.clear()
        self.idle.wait(timeout=10.0)
        return self.count


def run_gil_bench(resolution: str | tuple[int, int] = "1080p", seconds: float = 6.0,
                  rounds: int = 3, switch_s: float | None = None) -> dict:
    """The counting thread alone and beside the live analysis, and the analysis alone and
    beside it, in ``rounds`` interleaved rounds of four phases (``seconds`` in all).
    ``switch_s``: the GIL switch interval meanwhile (default: the live runtime's,
    ``GIL_SWITCH_S``, 1 ms; Python's own default is 5 ms)."""
    from sonify.live.runtime import GIL_SWITCH_S

    switch = GIL_SWITCH_S if switch_s is None else switch_s
    before = sys.getswitchinterval()
    sys.setswitchinterval(switch)
    try:
        result = _run_gil_bench(resolution, seconds, rounds)
    finally:
        sys.setswitchinterval(before)
    result["switch_interval_ms"] = round(switch * 1e3, 3)
    return result


def _run_gil_bench(resolution: str | tuple[int, int], seconds: float, rounds: int) -> dict:
    cv2.setNumThreads(1)
    phase = seconds / (4 * rounds)
    loop = _AnalysisLoop(demo_frames(resolution))
    loop.start()
    loop.park()
    counts: dict[str, list[float]] = {"alone": [], "beside": [], "process": []}
    fps: dict[str, list[float]] = {"alone": [], "beside": []}
    _count_for(0.05)  # warm the counting loop
    try:
        for _ in range(rounds):
            counts["alone"].append(_count_for(phase) / phase)
            start = time.perf_counter()
            loop.resume()
            counts["beside"].append(_count_for(phase) / phase)
            fps["beside"].append(loop.park() / (time.perf_counter() - start))
            start = time.perf_counter()
            loop.resume()
            time.sleep(phase)
            fps["alone"].append(loop.park() / (time.perf_counter() - start))
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(0.05)  # let it start spinning
                counts["process"].append(_count_for(phase) / phase)
            finally:
                spinner.kill()
                spinner.wait()
    finally:
        loop.stopping = True
        loop.go.set()
        loop.join(timeout=10.0)
    py_alone = statistics.median(counts["alone"])
    py_beside = statistics.median(counts["beside"])
    py_process = statistics.median(counts["process"])
    an_alone = statistics.median(fps["alone"])
    an_beside = statistics.median(fps["beside"])
    width, height = RESOLUTIONS[resolution] if isinstance(resolution, str) else resolution
    return {
        "resolution": f"{width}x{height}",
        "python_rate_alone": round(py_alone),
        "python_rate_beside": round(py_beside),
        "python_ratio": round(py_beside / py_alone, 3),
        "python_ratio_cpu_only": round(py_process / py_alone, 3),
        "analysis_fps_alone": round(an_alone, 1),
        "analysis_fps_beside": round(an_beside, 1),
        "analysis_ratio": round(an_beside / an_alone, 3),
        "target_python_ratio": 0.8,
    }
