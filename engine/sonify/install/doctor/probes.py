"""Probes that touch drivers or servers (cameras, files, MIDI systems, numba) run in a fresh
Python killed after a time limit, so a wedged V4L2 driver or a hung JACK server is reported,
not waited for; libjack's complaints on stderr stay in that child."""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sonify.resources import PACKAGE_DIR

MIDI_CLIENT = "sonify-doctor"  # the name the MIDI probe opens its ports under
_RESULT_MARK = "sonify-doctor-result: "


def _run_probe(kind: str, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """``_probe_main`` in a fresh Python: its answer, or ``{"error": ..., "timeout": True}``
    when it does not answer within ``timeout_s`` (it is then killed)."""
    env = dict(os.environ)
    root = str(PACKAGE_DIR.parent)  # the folder that holds the sonify package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    code = ("import sys; from sonify.install.doctor.probes import _probe_main; "
            "sys.exit(_probe_main())")
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    except OSError as exc:
        return {"error": f"cannot start a probe process: {exc}"}
    try:
        out, err = proc.communicate(jsonlib.dumps({"kind": kind, **request}), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        # A child stuck in a driver call may not even die: do not wait for it for long.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=2.0)
        return {"error": f"no answer within {timeout_s:g} s", "timeout": True}
    for line in reversed(out.splitlines()):
        if line.startswith(_RESULT_MARK):
            answer: dict[str, Any] = jsonlib.loads(line[len(_RESULT_MARK):])
            return answer
    tail = " / ".join(err.strip().splitlines()[-3:])
    return {"error": f"the probe process failed (exit {proc.returncode}): {tail}"}


def _probe_main() -> int:
    """The child side of ``_run_probe``: a JSON request on stdin, the answer on stdout."""
    request = jsonlib.loads(sys.stdin.read())
    probes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "source": _probe_source, "midi": _probe_midi, "numba": _probe_numba}
    try:
        answer = probes[request.pop("kind")](request)
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(_RESULT_MARK + jsonlib.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


def _probe_source(req: dict[str, Any]) -> dict[str, Any]:
    from sonify.capture import SourceError, open_source

    try:
        source = open_source(req["spec"], width=req["width"], height=req["height"],
                             fps=req["fps"])
        t0 = time.perf_counter()
        source.open()
    except SourceError as exc:
        return {"error": str(exc)}
    open_s = time.perf_counter() - t0
    times: list[float] = []
    shape: tuple[int, ...] = ()
    # A live source is read for a moment to measure its rate; close() from the timer ends the
    # iteration even while a read waits on the driver.
    stopper = threading.Timer(req["sample_s"], source.close) if source.live else None
    try:
        if stopper is not None:
            stopper.start()
        for frame in source:
            times.append(frame.t)
            shape = frame.image.shape
            if not source.live:
                break
    finally:
        if stopper is not None:
            stopper.cancel()
        source.close()
    if not times:
        return {"error": f"{source.name} opened but delivered no frame"}
    answer: dict[str, Any] = {"kind": type(source).__name__, "live": source.live,
                              "fps": float(source.fps), "open_s": open_s,
                              "width": int(shape[1]), "height": int(shape[0]),
                              "frames": len(times)}
    steady = times[1:]  # the first frame was read while opening
    if len(steady) >= 3 and steady[-1] > steady[0]:
        answer["measured_fps"] = (len(steady) - 1) / (steady[-1] - steady[0])
    return answer


def _probe_midi(req: dict[str, Any]) -> dict[str, Any]:
    import rtmidi

    from sonify.outputs.midi import API_IDS, available_apis

    compiled = available_apis()
    systems: dict[str, dict[str, Any]] = {}
    for name in compiled:
        if (name == "alsa" and sys.platform.startswith("linux")
                and not os.path.exists("/dev/snd/seq")):
            # as sonify.outputs.midi does: trying would only print libasound errors
            systems[name] = {"error": "no ALSA sequencer: /dev/snd/seq is missing"}
            continue
        try:
            out = rtmidi.MidiOut(rtapi=API_IDS[name], name=MIDI_CLIENT)
        except rtmidi.RtMidiError as exc:
            systems[name] = {"error": str(exc)}
            continue
        try:
            systems[name] = {"outputs": list(out.get_ports())}
        except rtmidi.RtMidiError as exc:
            systems[name] = {"error": str(exc)}
        finally:
            out.delete()
    answer: dict[str, Any] = {"compiled": compiled, "systems": systems}
    api = req["api"]
    candidates = compiled if api == "auto" else [api] if api in compiled else []
    chosen = next((n for n in candidates if "outputs" in systems.get(n, {})), None)
    if req["virtual"] and chosen is not None:
        try:
            out = rtmidi.MidiOut(rtapi=API_IDS[chosen], name=MIDI_CLIENT)
            try:
                out.open_virtual_port(req["virtual"])
                out.close_port()
            finally:
                out.delete()
            answer["virtual"] = {"ok": True}
        except (rtmidi.RtMidiError, NotImplementedError) as exc:
            answer["virtual"] = {"ok": False, "error": str(exc) or type(exc).__name__}
    return answer


def _probe_numba(req: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        from sonify.features import kernels
    except Exception as exc:  # numba raises here when no cache folder can be found or made
        return {"error": f"{type(exc).__name__}: {exc}"}
    t1 = time.perf_counter()
    kernels.warmup()
    t2 = time.perf_counter()
    import numba

    hits = misses = 0
    paths: set[str] = set()
    for obj in vars(kernels).values():
        stats = getattr(obj, "stats", None)
        if stats is None or not hasattr(obj, "py_func"):
            continue
        hits += sum(stats.cache_hits.values())
        misses += sum(stats.cache_misses.values())
        paths.add(str(stats.cache_path))
    saved = any(any(Path(p).glob("*.nbi")) for p in paths)
    return {"version": numba.__version__, "import_s": t1 - t0, "warmup_s": t2 - t1,
            "hits": hits, "misses": misses, "cache_paths": sorted(paths), "saved": saved}
