"""The performance targets of issue 15, measured in one ``sonify bench`` run, with pass/fail.

Each target is one figure of the issue's table: its value from this run (ratios of timings
taken in the same run, interleaved, so a shared machine's drift hits both sides), the target
and whether it is met. A figure this run did not measure (a resolution left out, ``--quick``, a
part of the engine that does not exist yet) has ``value`` None, ``passed`` None and a ``note``
saying why, so the JSON keeps one shape:

    {"name": {"figure": str, "value": float | None, "unit": "x" | "ms" | "share",
              "op": ">=" | "<=" | "<", "target": float, "passed": bool | None, "note": str}}

The process-level figures are whole processes, start-up included (``tools/startbench.py``):
``help_vs_python`` (``sonify --help`` against ``python -c pass``, interleaved, medians) and
``render_process_speed`` (a whole ``sonify render`` of a still picture to MIDI + WAV against
the music's length). The pure-Python thread's kept rate comes from ``tools/gilbench.py``
(``run_gil_bench``) when it is there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sonify.tools.bench import BenchRow
from sonify.tools.startbench import help_vs_python, render_process_speed


@dataclass(frozen=True)
class Target:
    figure: str
    value: float | None
    unit: str
    op: str
    target: float
    passed: bool | None
    note: str = ""


def _judge(figure: str, value: float | None, unit: str, op: str, target: float,
           note: str = "") -> Target:
    if value is None:
        return Target(figure, None, unit, op, target, None, note)
    ok = {">=": value >= target, "<=": value <= target, "<": value < target}[op]
    return Target(figure, round(value, 3), unit, op, target, ok, note)


def gil_kept(resolution: str | tuple[int, int] = "1080p",
             seconds: float = 3.0) -> tuple[float | None, str]:
    """The pure-Python thread's rate beside the live analysis over its rate alone, from
    ``sonify.tools.gilbench.run_gil_bench`` (None and why, when it cannot be measured)."""
    try:
        from sonify.tools import gilbench  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None, "not available: sonify.tools.gilbench is not there yet"
    run = getattr(gilbench, "run_gil_bench", None)
    if run is None:
        return None, "not available: sonify.tools.gilbench has no run_gil_bench"
    result: Any = run(resolution, seconds)
    data = result if isinstance(result, dict) else getattr(result, "__dict__", {})
    value = data.get("python_ratio")
    if isinstance(value, int | float):
        analysis = data.get("analysis_ratio")
        kept = f", analysis kept {analysis:.2f} of its rate" if analysis is not None else ""
        return float(value), f"{data.get('resolution', resolution)}{kept}"
    return None, f"not available: run_gil_bench returned no ratio ({sorted(data)})"


def _row(rows: Sequence[BenchRow], resolution: str) -> BenchRow | None:
    return next((r for r in rows if r.resolution == resolution), None)


def collect(rows: Sequence[BenchRow], startup: dict[str, float] | None = None,
            render: dict[str, float] | None = None,
            gil: tuple[float | None, str] | None = None) -> dict[str, Target]:
    """Every target of the issue's table from this run's measurements (None: not measured)."""
    hd, uhd = _row(rows, "1080p"), _row(rows, "4k")
    missing = "not measured: {} not in --resolutions"
    quick = "not measured (--quick)"
    t: dict[str, Target] = {}
    t["engine_vs_peer_1080p"] = _judge(
        "engine vs the tuned OpenCV peer, 1080p, 1 thread (peer ms / engine ms)",
        hd.speedup if hd else None, "x", ">=", 3.0, "" if hd else missing.format("1080p"))
    simd = hd.luma_simd_floor_ratio if hd else None
    t["engine_vs_floor_1080p"] = _judge(
        "engine vs the read floor, 1080p (engine ms / floor ms)",
        hd.floor_ratio if hd else None, "x", "<=", 10.0,
        missing.format("1080p") if hd is None else "" if simd is None else
        f"OpenCV's SIMD primitives for the luma part of the work alone: {simd:.1f}x the floor")
    threads_note = (missing.format("4k") if uhd is None else
                    "" if uhd.threads_speedup is not None else
                    "not available: kernels.frame_stats has no threads setting")
    t["engine_2_threads_vs_1_4k"] = _judge(
        "engine with 2 threads vs 1 thread, 4K (1-thread ms / 2-thread ms)",
        uhd.threads_speedup if uhd else None, "x", ">=", 1.6, threads_note)
    for res, row in (("4k", uhd), ("1080p", hd)):
        t[f"live_path_ms_{res}"] = _judge(
            f"default live path (Analyzer.analyze: downscale, kernel, smoothing, mood), {res}",
            row.default_ms if row else None, "ms", "<", 3.0, "" if row else missing.format(res))
    value, note = gil if gil is not None else (None, quick)
    t["python_thread_kept"] = _judge(
        "a pure-Python thread beside the live analysis keeps (rate beside / rate alone)",
        value, "share", ">=", 0.8, note)
    t["help_vs_python"] = _judge(
        "`sonify --help` wall time vs `python -c pass` (subprocesses, interleaved medians)",
        startup["ratio"] if startup else None, "x", "<=", 3.0,
        f"{startup['help_ms']:.0f} ms vs {startup['python_ms']:.0f} ms" if startup else quick)
    t["render_process_realtime"] = _judge(
        "whole `sonify render` process, still picture to 60 s MIDI + WAV (x real time)",
        render["speed"] if render else None, "x", ">=", 20.0,
        f"{render['wall_s']:.2f} s for {render['music_s']:.0f} s" if render else quick)
    return t


def targets_json(targets: dict[str, Target]) -> dict[str, dict[str, Any]]:
    return {name: asdict(t) for name, t in targets.items()}


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores and the load while they ran."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpus": os.cpu_count() or 1, "load_1m": round(load[0], 2)}


def format_targets(targets: dict[str, Target]) -> str:
    lines = ["targets (issue 15), ratios from this run:"]
    for t in targets.values():
        if t.value is None:
            shown, verdict = "-", "n/a"
        else:
            shown = f"{t.value:.2f}{' ms' if t.unit == 'ms' else 'x' if t.unit == 'x' else ''}"
            verdict = "pass" if t.passed else "FAIL"
        goal = f"{t.op} {t.target:g}{' ms' if t.unit == 'ms' else 'x' if t.unit == 'x' else ''}"
        lines.append(f"  {verdict:<4} {shown:>9}  (target {goal:<8}) {t.figure}"
                     + (f" [{t.note}]" if t.note else ""))
    return "\n".join(lines)


def measure_processes(quick: bool, startup_runs: int = 7, render_s: float = 60.0,
                      gil_s: float = 3.0, progress: Callable[[str], None] | None = None,
                      ) -> tuple[dict[str, float] | None, dict[str, float] | None,
                                 tuple[float | None, str] | None]:
    """The process-level measurements (none with ``quick``)."""
    if quick:
        return None, None, None
    if progress:
        progress("sonify --help vs python -c pass")
    startup = help_vs_python(startup_runs)
    if progress:
        progress("a whole sonify render process")
    render = render_process_speed(render_s)
    if progress:
        progress("a Python thread beside the analysis")
    gil = gil_kept("1080p", gil_s)
    return startup, render, gil
