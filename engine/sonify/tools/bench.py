"""``sonify bench``: the analysis hot path against its baselines, measured in one run.

Per resolution, on the same realistic frames (the demo's looks, consecutive frames so motion
has something to see), interleaved round by round so that drift on a shared machine hits every
contender alike:

- ``engine``: the fused numba kernel at full resolution, one thread;
- ``reference``: the same feature set the plain OpenCV/NumPy way (``reference.py``), one thread;
- ``default``: the analysis as ``sonify run`` configures it (downscale, kernel, smoothing, mood);
- ``floor``: one read pass over the frame, the memory floor.

Absolute times drift on a shared machine; the ratios printed beside them hold.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from sonify.capture import open_source
from sonify.capture.base import Frame
from sonify.features import kernels, reference
from sonify.features.analyzer import Analyzer

RESOLUTIONS: dict[str, tuple[int, int]] = {
    "480p": (854, 480),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "4k": (3840, 2160),
}
LOOKS = ("city", "sunset", "night")


@dataclass
class BenchRow:
    resolution: str
    engine_ms: float
    reference_ms: float
    default_ms: float
    floor_ms: float
    speedup: float  # reference_ms / engine_ms


def _frames(width: int, height: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(previous, current) frame pairs, one per demo look."""
    pairs = []
    for look in LOOKS:
        src = open_source(f"demo:{look}", width=width, height=height, fps=30.0, seed=seed)
        with src:
            it = iter(src)
            for _ in range(15):  # let the animation get going
                next(it)
            prev = next(it).image
            cur = next(it).image
        pairs.append((prev, cur))
    return pairs


def _time_ms(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1e3


def run_analysis_bench(resolutions: list[str], rounds: int = 7, seed: int = 0,
                       progress: Callable[[str], None] | None = None) -> list[BenchRow]:
    cv2.setNumThreads(1)  # one thread for every contender: the comparison is per core
    kernels.warmup()
    rows = []
    for res in resolutions:
        width, height = RESOLUTIONS[res]
        if progress:
            progress(f"{res}: making frames")
        pairs = _frames(width, height, seed)
        lumas = [reference.luma(prev) for prev, _ in pairs]
        luma_out = np.empty((height, width), np.uint8)
        analyzer = Analyzer()
        times: dict[str, list[float]] = {"engine": [], "reference": [], "default": [], "floor": []}
        for r in range(rounds + 1):  # round 0 warms caches and is dropped
            for i, (prev, cur) in enumerate(pairs):
                prev_luma = lumas[i]
                analyzer.analyze(Frame(2 * i, 0.0, prev))  # the analyzer's own previous frame
                sample = {
                    "default": _time_ms(analyzer.analyze, Frame(2 * i + 1, 1 / 30, cur)),
                    "engine": _time_ms(kernels.frame_stats, cur, prev_luma, luma_out),
                    "reference": _time_ms(reference.frame_stats, cur, prev_luma),
                    "floor": _time_ms(kernels.read_floor, cur),
                }
                if r > 0:
                    for k, v in sample.items():
                        times[k].append(v)
            if progress and r > 0:
                progress(f"{res}: round {r}/{rounds}")
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(BenchRow(res, round(med["engine"], 3), round(med["reference"], 3),
                             round(med["default"], 3), round(med["floor"], 3),
                             round(med["reference"] / med["engine"], 2)))
    return rows


def format_table(rows: list[BenchRow]) -> str:
    head = (f"{'resolution':<10} {'engine ms':>10} {'reference ms':>13} {'speedup':>8} "
            f"{'default ms':>11} {'floor ms':>9} {'engine/floor':>13}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.resolution:<10} {r.engine_ms:>10.2f} {r.reference_ms:>13.2f} "
                     f"{r.speedup:>7.2f}x {r.default_ms:>11.2f} {r.floor_ms:>9.3f} "
                     f"{r.engine_ms / max(r.floor_ms, 1e-9):>12.1f}x")
    lines.append("")
    lines.append("engine: fused numba kernels at full resolution, 1 thread; reference: the same "
                 "features the plain OpenCV/NumPy way, 1 thread;")
    lines.append("default: downscale + kernels + smoothing + mood as `sonify run` analyses; "
                 "floor: one read pass over the frame. Medians.")
    return "\n".join(lines)


def rows_json(rows: list[BenchRow]) -> str:
    return "\n".join(json.dumps(asdict(r)) for r in rows)


@dataclass
class RenderBench:
    still_s: float
    still_wall_s: float
    still_speed: float  # seconds of music per second of rendering (target >= 20)
    video_s: float
    video_wall_s: float
    video_speed: float  # target >= 3
    outputs: str


def run_render_bench(still_s: float = 60.0, video_s: float = 10.0,
                     progress: Callable[[str], None] | None = None) -> RenderBench:
    """A still 1080p picture to ``still_s`` of MIDI + WAV, and a 720p video of ``video_s`` to
    MIDI + WAV, each timed against the music's own length (real time), in one run."""
    import tempfile
    from pathlib import Path

    from sonify.render import render

    cv2.setNumThreads(1)
    kernels.warmup()
    with tempfile.TemporaryDirectory(prefix="sonify-bench-") as tmp:
        d = Path(tmp)
        with open_source("demo:sunset", width=1920, height=1080, seed=0) as src:
            it = iter(src)
            for _ in range(30):
                frame = next(it)
        still = d / "still.png"
        cv2.imwrite(str(still), frame.image)
        video = d / "clip.avi"
        if progress:
            progress("making a 720p test video")
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (1280, 720))
        with open_source("demo", width=1280, height=720, seed=0) as src:
            for i, f in enumerate(src):
                if i >= int(video_s * 30):
                    break
                writer.write(f.image)
        writer.release()
        outs = ["mid", "wav"]
        render(str(still), [str(d / "warm.mid")], duration_s=5.0)  # warm caches, imports
        if progress:
            progress("rendering the still picture")
        t0 = time.perf_counter()
        render(str(still), [str(d / f"still.{e}") for e in outs], duration_s=still_s)
        still_wall = time.perf_counter() - t0
        if progress:
            progress("rendering the video")
        t0 = time.perf_counter()
        render(str(video), [str(d / f"video.{e}") for e in outs])
        video_wall = time.perf_counter() - t0
    return RenderBench(still_s, round(still_wall, 3), round(still_s / still_wall, 1),
                       video_s, round(video_wall, 3), round(video_s / video_wall, 1),
                       "+".join(outs))


def format_render(b: RenderBench) -> str:
    return "\n".join([
        "offline render against real time (MIDI + WAV):",
        f"  still 1080p picture -> {b.still_s:.0f} s : {b.still_wall_s:.2f} s  = "
        f"{b.still_speed:.0f}x real time (target >= 20x)",
        f"  720p video, {b.video_s:.0f} s      : {b.video_wall_s:.2f} s  = "
        f"{b.video_speed:.1f}x real time (target >= 3x)",
    ])
