"""Start-up and whole-process figures: what a user waits for, measured as whole processes.

- ``help_vs_python(rounds)``: ``sonify --help`` and ``sonify --version`` against
  ``python -c pass`` (the interpreter's own start, the floor), each a fresh process, interleaved
  round by round so that load on a shared machine hits all three alike; medians and their
  ratios (issue 15 asks ``--help`` at most 3x the floor).
- ``render_process_speed(seconds)``: a whole ``sonify render`` process, a still picture to
  ``seconds`` of MIDI + WAV (the built-in synth, mastered): imports, numba's cache, analysis,
  music, synthesis and files. One untimed run first (numba's cache, the OS file cache), then
  medians of wall and CPU time; ``realtime_x`` is seconds of music per second of wall time
  (issue 15 asks 20x or more for 60 s).

Both return plain dicts (JSON-ready) for ``sonify bench``; besides their own keys they carry
the ones ``tools/targets.py`` reads (``ratio``, ``runs``; ``speed``, ``music_s``). Standard
library only at import.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sonify.resources import SOURCE_ROOT

PHOTO = SOURCE_ROOT / "tests" / "data" / "photos" / "coffee.jpg"
"""The still picture rendered when none is given (in a checkout); else one is drawn."""


def sonify_command() -> list[str]:
    """How a user starts sonify with this interpreter: the ``sonify`` script installed beside
    it, else ``python -m sonify.cli``."""
    script = Path(sys.executable).with_name("sonify")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "sonify.cli"]


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one process that must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, check=False, timeout=600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def help_vs_python(rounds: int = 15) -> dict:
    """Medians (ms) of ``python -c pass``, ``sonify --help`` and ``sonify --version`` over
    ``rounds`` interleaved rounds, and each one's ratio to the first."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    sonify = sonify_command()
    commands = {"python": [sys.executable, "-c", "pass"], "help": [*sonify, "--help"],
                "version": [*sonify, "--version"]}
    for argv in commands.values():  # untimed: the OS file cache, the .pyc files
        _run(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            times[name].append(_run(argv)[0] * 1e3)
    med = {name: statistics.median(ms) for name, ms in times.items()}
    ratio = round(med["help"] / med["python"], 3)
    return {"rounds": rounds, "runs": rounds, "python_ms": round(med["python"], 2),
            "help_ms": round(med["help"], 2), "version_ms": round(med["version"], 2),
            "help_ratio": ratio, "ratio": ratio,
            "version_ratio": round(med["version"] / med["python"], 3)}


def _drawn_picture(folder: str) -> str:
    """A still picture with something to travel over (colour fields, a gradient, shapes)."""
    import cv2
    import numpy as np

    h, w = 360, 480
    y, x = np.mgrid[0:h, 0:w]
    image = np.dstack([(255 * x / w), (255 * y / h), (128 + 100 * np.sin(x / 23.0))])
    image = image.astype(np.uint8)
    cv2.circle(image, (120, 120), 60, (30, 200, 250), -1)
    cv2.rectangle(image, (300, 200), (420, 330), (200, 40, 90), -1)
    path = os.path.join(folder, "still.png")
    cv2.imwrite(path, image)
    return path


def render_process_speed(seconds: float = 60.0, rounds: int = 3,
                         image: str | None = None) -> dict:
    """A whole ``sonify render IMAGE -o x.mid -o x.wav --duration SECONDS`` process: medians
    of wall and CPU seconds over ``rounds`` runs (after one untimed run), and the real-time
    factors they make."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    folder = tempfile.mkdtemp(prefix="sonify-startbench-")
    try:
        picture = image or (str(PHOTO) if PHOTO.is_file() else _drawn_picture(folder))
        argv = [*sonify_command(), "render", picture, "-o", os.path.join(folder, "x.mid"),
                "-o", os.path.join(folder, "x.wav"), "--duration", f"{seconds:g}"]
        _run(argv)
        runs = [_run(argv) for _ in range(rounds)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    return {"seconds": seconds, "music_s": seconds, "rounds": rounds, "runs": rounds,
            "image": Path(picture).name, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "realtime_x": round(seconds / wall, 2), "speed": round(seconds / wall, 2),
            "cpu_realtime_x": round(seconds / cpu, 2)}
