"""``sonify bench``: the analysis hot path against its baselines, measured in one run.

Per resolution, on the same realistic frames (the demo's looks, consecutive frames so motion
has something to see), interleaved round by round so that drift on a shared machine hits every
contender alike:

- ``engine``: the fused numba kernel at full resolution, one thread (and two, ``engine_2t``,
  when the kernel has a thread setting);
- ``peer``: the same feature set as a skilled OpenCV user writes it for speed
  (``features/tuned.py``), one thread: the peer the speedup is measured against;
- ``reference``: the same feature set the plain, readable OpenCV/NumPy way (``reference.py``,
  the specification), one thread, kept for continuity;
- ``default``: the analysis as ``sonify run`` configures it (downscale, kernel, smoothing, mood);
- ``floor``: one read pass over the frame, the memory floor;
- ``luma_simd``: only the luma part of the work (grey, mean and deviation, Sobel, Laplacian,
  luma histogram, frame difference) as OpenCV's hand-written SIMD primitives
  (``tuned.LumaPrimitives``): no features, a yardstick for the floor ratio. A subset of the
  work in vectorised code written by hand already costs this many floors.

Absolute times drift on a shared machine; the ratios printed beside them hold.
"""

from __future__ import annotations

import functools
import inspect
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from sonify.capture import open_source
from sonify.capture.base import Frame
from sonify.features import kernels, reference, tuned
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
    engine_2t_ms: float | None  # None: the kernel has no thread setting
    peer_ms: float
    reference_ms: float
    default_ms: float
    floor_ms: float
    speedup: float  # peer_ms / engine_ms
    reference_speedup: float  # reference_ms / engine_ms
    floor_ratio: float  # engine_ms / floor_ms
    threads_speedup: float | None  # engine_ms / engine_2t_ms
    luma_simd_ms: float | None = None  # OpenCV's SIMD primitives for the luma part alone
    luma_simd_floor_ratio: float | None = None  # luma_simd_ms / floor_ms


def kernel_has_threads() -> bool:
    return "threads" in inspect.signature(kernels.frame_stats).parameters


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
                       progress: Callable[[str], None] | None = None,
                       sizes: Mapping[str, tuple[int, int]] = RESOLUTIONS) -> list[BenchRow]:
    """Medians per resolution (``sizes`` maps a name to width, height), every contender timed
    on the same frame pairs, interleaved round by round; round 0 warms caches and is dropped."""
    cv2.setNumThreads(1)  # one thread for every contender: the comparison is per core
    kernels.warmup()
    threads = kernel_has_threads()
    if threads:  # compile (or load) the banded kernel before any timing
        tiny = np.zeros((32, 32, 3), np.uint8)
        kernels.frame_stats(tiny, None, threads=2)
    rows = []
    for res in resolutions:
        width, height = sizes[res]
        if progress:
            progress(f"{res}: making frames")
        pairs = _frames(width, height, seed)
        lumas = [reference.luma(prev) for prev, _ in pairs]
        luma_out = np.empty((height, width), np.uint8)
        analyzer = Analyzer()
        peer = tuned.TunedPeer()
        contenders: dict[str, Callable[[np.ndarray, np.ndarray], object]] = {
            "engine": functools.partial(kernels.frame_stats, luma_out=luma_out),
            "peer": peer.frame_stats,
            "reference": reference.frame_stats,
            "floor": lambda cur, pl: kernels.read_floor(cur),
            "luma_simd": tuned.LumaPrimitives(),
        }
        if threads:
            contenders["engine_2t"] = functools.partial(kernels.frame_stats, luma_out=luma_out,
                                                        threads=2)
        times: dict[str, list[float]] = {k: [] for k in ("default", *contenders)}
        for r in range(rounds + 1):
            for i, (prev, cur) in enumerate(pairs):
                prev_luma = lumas[i]
                analyzer.analyze(Frame(2 * i, 0.0, prev))  # the analyzer's own previous frame
                sample = {"default": _time_ms(analyzer.analyze, Frame(2 * i + 1, 1 / 30, cur))}
                for name, fn in contenders.items():
                    sample[name] = _time_ms(fn, cur, prev_luma)
                if r > 0:
                    for k, v in sample.items():
                        times[k].append(v)
            if progress and r > 0:
                progress(f"{res}: round {r}/{rounds}")
        med = {k: statistics.median(v) for k, v in times.items()}
        two = med.get("engine_2t")
        rows.append(BenchRow(
            res, round(med["engine"], 3), None if two is None else round(two, 3),
            round(med["peer"], 3), round(med["reference"], 3), round(med["default"], 3),
            round(med["floor"], 4), round(med["peer"] / med["engine"], 2),
            round(med["reference"] / med["engine"], 2),
            round(med["engine"] / max(med["floor"], 1e-9), 1),
            None if two is None else round(med["engine"] / two, 2),
            round(med["luma_simd"], 3), round(med["luma_simd"] / max(med["floor"], 1e-9), 1)))
    return rows


def format_table(rows: list[BenchRow]) -> str:
    head = (f"{'resolution':<10} {'engine ms':>9} {'2 thr ms':>8} {'peer ms':>8} "
            f"{'vs peer':>8} {'ref ms':>8} {'vs ref':>7} {'default ms':>10} {'floor ms':>8} "
            f"{'eng/floor':>9} {'luma simd/floor':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        two = "-" if r.engine_2t_ms is None else f"{r.engine_2t_ms:.2f}"
        lines.append(f"{r.resolution:<10} {r.engine_ms:>9.2f} {two:>8} {r.peer_ms:>8.2f} "
                     f"{r.speedup:>7.2f}x {r.reference_ms:>8.1f} {r.reference_speedup:>6.1f}x "
                     f"{r.default_ms:>10.2f} {r.floor_ms:>8.3f} {r.floor_ratio:>8.1f}x "
                     f"{_ratio(r.luma_simd_floor_ratio):>15}")
    lines.append("")
    lines.append("engine: fused numba kernels at full resolution, 1 thread (2 thr: two row "
                 "bands); peer: the same features as tuned OpenCV (features/tuned.py), 1 thread;")
    lines.append("ref: the readable OpenCV/NumPy specification (reference.py); default: "
                 "downscale + kernels + smoothing + mood as `sonify run` analyses;")
    lines.append("floor: one read pass over the frame; luma simd: only the luma part of the "
                 "work (grey, Sobel, Laplacian, histogram, difference)")
    lines.append("as OpenCV's hand-written SIMD primitives, no features: a yardstick for "
                 "eng/floor. Medians of interleaved rounds.")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def rows_json(rows: list[BenchRow]) -> list[dict]:
    return [asdict(r) for r in rows]


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
