"""Checks of what the show reads and plays through: the source and each camera (opened briefly,
in a child process, to see what it delivers) and MIDI (the systems built in, their ports, the
configured port or a virtual port)."""

from __future__ import annotations

import os
from typing import Any

from sonify.config import Config
from sonify.install.doctor.base import FAIL, OK, WARN, Check, _Context
from sonify.install.doctor.probes import _run_probe

# Time limits of the probes, in seconds. A camera opens in about a second (V4L2 negotiates the
# format).
SOURCE_TIMEOUT_S = 12.0
SOURCE_SAMPLE_S = 1.0  # how long a live camera is read to measure its frame rate
MIDI_TIMEOUT_S = 10.0


# -- source and cameras -----------------------------------------------------------------------

def _source_kind(spec: str) -> str:
    lower = spec.strip().lower()
    if lower == "auto":
        return "auto"
    if lower == "demo" or lower.startswith("demo:"):
        return "demo"
    if lower == "camera" or lower.startswith("camera:") or spec.strip().startswith("/dev/"):
        return "camera"
    return "file"


def _probe_source_in_child(spec: str, config: Config) -> dict[str, Any]:
    s = config.source
    return _run_probe("source", {"spec": spec, "width": s.width, "height": s.height,
                                 "fps": s.fps, "sample_s": SOURCE_SAMPLE_S}, SOURCE_TIMEOUT_S)


def _describe_delivery(answer: dict[str, Any]) -> str:
    size = f"{answer.get('width')}x{answer.get('height')}"
    text = f"delivers {size}"
    if answer.get("live"):
        text += f" at {answer['fps']:g} fps (driver)"
        if "measured_fps" in answer:
            text += f", {answer['measured_fps']:.1f} fps measured"
        text += f"; a frame read ok (opened in {answer['open_s']:.2f} s)"
    else:
        text += f" ({answer.get('kind')}); a frame read ok"
    return text


def _check_source(ctx: _Context) -> list[Check]:
    from sonify.capture import find_cameras

    spec = ctx.config.source.input.strip()
    kind = _source_kind(spec)
    cameras = find_cameras()
    # What the run would open: auto picks the first camera, as sonify.live.runtime does.
    if kind == "auto":
        used = cameras[0] if cameras else ""
    else:
        used = "" if kind == "demo" else spec
    used_device = os.path.realpath(_device_path(used)) if kind in ("auto", "camera") else ""
    # One camera at a time: two UVC cameras streaming at once can exceed a USB hub's bandwidth
    # and fail for that reason alone. The configured camera is opened as the config names it.
    probes: dict[str, dict[str, Any]] = {}
    for cam in cameras:
        same = os.path.realpath(cam) == used_device
        probes[cam] = _probe_source_in_child(used if same else cam, ctx.config)
        if same:
            probes[used] = probes[cam]
    if used and used not in probes:
        probes[used] = _probe_source_in_child(used, ctx.config)

    checks: list[Check] = []
    camera_fix = ("close other programs using the camera (`fuser -v /dev/video*`; a running "
                  "sonify service holds it: `systemctl stop sonify`), add the user to the "
                  "'video' group (`sudo usermod -aG video $USER`, then log in again), or replug "
                  "it")
    found = ", ".join(cameras) or "none"
    set_input = f"set [source] input in {ctx.where}"
    set_demo = f"set [source] input = \"demo\" in {ctx.where}"
    if kind == "demo":
        checks.append(Check("source", OK, f"the built-in demo ({spec}); cameras found: {found}"))
    elif kind == "auto" and not cameras:
        checks.append(Check(
            "source", WARN,
            "input = \"auto\" and no camera found (/dev/video0..7): the built-in demo plays",
            "connect a USB (UVC) camera and check `ls /dev/video*` (`v4l2-ctl --list-devices` "
            f"from v4l-utils names them); or {set_demo} to make the demo the plan"))
    else:
        answer = probes[used]
        what = f"input = \"auto\": the first camera, {used}" if kind == "auto" else \
            f"input = {spec!r}"
        if "error" not in answer:
            checks.append(Check("source", OK, f"{what} {_describe_delivery(answer)}"))
        elif kind == "file":
            checks.append(Check(
                "source", FAIL, f"{what}: {answer['error']}",
                f"{set_input} to an existing image, folder, glob or video (or \"demo\", or "
                "\"auto\" for the first camera)"))
        else:
            options = f"one of the cameras found ({found})" if cameras else "\"demo\""
            fix = camera_fix if _exists(used) else \
                f"connect the camera, or {set_input} to {options}"
            if _exists(used) and cameras:
                fix += f"; or {set_input} to another of {found}"
            checks.append(Check("source", FAIL, f"{what}: {answer['error']}", fix))
    for cam in cameras:
        answer = probes[cam]
        name = f"camera {cam}"
        if "error" in answer:
            is_used = os.path.realpath(cam) == used_device
            status = FAIL if is_used else WARN
            note = "" if is_used else " (not the configured source)"
            checks.append(Check(name, status, f"{answer['error']}{note}", camera_fix))
        else:
            checks.append(Check(name, OK, _describe_delivery(answer)))
    return checks


def _device_path(spec: str) -> str:
    """The /dev node a camera spec names (``camera:N`` is /dev/videoN under V4L2)."""
    if spec.lower().startswith("camera"):
        arg = spec.partition(":")[2].strip() or "0"
        return f"/dev/video{arg}" if arg.isdigit() else arg
    return spec


def _exists(spec: str) -> bool:
    return os.path.exists(_device_path(spec))


# -- MIDI --------------------------------------------------------------------------------------

def _check_midi(ctx: _Context) -> tuple[Check, bool]:
    """The MIDI check and whether a run would fall back to recording a MIDI file instead."""
    m = ctx.config.midi
    if not m.enabled:
        return Check("midi", OK, "MIDI output is off ([midi] enabled = false)"), False
    if not m.port and not m.virtual:
        return Check("midi", WARN,
                     "[midi] enabled but neither port nor virtual is set: no MIDI goes out",
                     f"in {ctx.where} set [midi] port = \"NAME\" (part of a port name, see "
                     "`sonify ports`) or virtual = \"sonify\", or enabled = false"), False
    answer = _run_probe("midi", {"api": m.api, "virtual": "" if m.port else m.virtual},
                        MIDI_TIMEOUT_S)
    falls_back = not m.port
    if "systems" not in answer:
        why = answer.get("error", "no answer")
        detail = f"probing the MIDI systems failed: {why}"
        fix = ("restart the JACK server (a hung jackd blocks every client), then run "
               "`sonify doctor` again")
        return Check("midi", FAIL if m.port else WARN, detail, fix), falls_back
    compiled: list[str] = answer["compiled"]
    systems: dict[str, dict[str, Any]] = answer["systems"]
    lines = [f"MIDI systems built into python-rtmidi: {', '.join(compiled) or 'none'}"]
    for name in compiled:
        info = systems.get(name, {})
        if "error" in info:
            lines.append(f"  {name}: not usable ({info['error']})")
        else:
            ports = info["outputs"]
            listed = ", ".join(repr(p) for p in ports) if ports else "none"
            lines.append(f"  {name}: output ports: {listed}")
    working = [n for n in compiled if "error" not in systems.get(n, {"error": ""})]
    start_fix = _midi_system_fix(compiled)
    if m.api != "auto" and m.api not in compiled:
        lines.insert(0, f"[midi] api = {m.api!r} is not built into python-rtmidi here")
        return Check("midi", FAIL, "\n".join(lines),
                     f"set [midi] api in {ctx.where} to \"auto\" or one of: "
                     f"{', '.join(compiled)}"), falls_back
    candidates = compiled if m.api == "auto" else [m.api]
    chosen = next((n for n in candidates if n in working), None)
    if chosen is None:
        if m.port:
            lines.insert(0, f"no MIDI system works, so port {m.port!r} cannot be reached")
            return Check("midi", FAIL, "\n".join(lines), start_fix), falls_back
        record = ctx.config.record.midi_file or ctx.config.record.fallback_midi_file
        lines.insert(0, f"no MIDI system works: no virtual port {m.virtual!r}; sonify records "
                        f"to {record or 'nothing'} instead")
        return Check("midi", WARN, "\n".join(lines), start_fix), falls_back
    if m.port:
        from sonify.outputs.midi import match_port

        ports = systems[chosen]["outputs"]
        i = match_port(ports, m.port)
        if i is not None:
            lines.insert(0, f"port {m.port!r} -> {ports[i]!r} ({chosen})")
            return Check("midi", OK, "\n".join(lines)), False
        elsewhere = [n for n in working
                     if n != chosen and match_port(systems[n]["outputs"], m.port) is not None]
        waits = (" (sonify would wait for it, silent until it appears)" if m.wait_for_port
                 else " (sonify would exit)")
        lines.insert(0, f"no MIDI output port matches {m.port!r} on {chosen}{waits}")
        env = os.environ.get("SONIFY_MIDI_PORT")
        key = "the SONIFY_MIDI_PORT environment variable" if env else f"[midi] port in {ctx.where}"
        ports_text = ", ".join(repr(p) for p in ports) or "none"
        fix = (f"start the synth first, or set {key} to part of one of these names: "
               f"{ports_text} (`sonify ports` lists them)")
        if elsewhere:
            fix = (f"set [midi] api = \"{elsewhere[0]}\" in {ctx.where}: the port is there; "
                   f"or {fix}")
        return Check("midi", FAIL, "\n".join(lines), fix), False
    virtual = answer.get("virtual", {})
    if virtual.get("ok"):
        lines.insert(0, f"a virtual port {m.virtual!r} can be made ({chosen}): synths connect "
                        "to it")
        return Check("midi", OK, "\n".join(lines)), False
    record = ctx.config.record.midi_file or ctx.config.record.fallback_midi_file
    lines.insert(0, f"cannot make a virtual port {m.virtual!r} on {chosen} "
                    f"({virtual.get('error', 'unknown error')}); sonify records to "
                    f"{record or 'nothing'} instead")
    return Check("midi", WARN, "\n".join(lines),
                 f"set [midi] port in {ctx.where} to an existing port (`sonify ports`), or "
                 f"[midi] api to another system; {start_fix}"), True


def _midi_system_fix(compiled: list[str]) -> str:
    fixes = []
    if "jack" in compiled:
        fixes.append("start a JACK server (`jackd -d alsa &`, or `jackd -d dummy &` without a "
                     "sound card) as the user that runs sonify; a named server needs "
                     "JACK_DEFAULT_SERVER")
    if "alsa" in compiled:
        fixes.append("load the ALSA sequencer (`sudo modprobe snd-seq`, and add snd-seq to "
                     "/etc/modules to keep it)")
    return "; or ".join(fixes) or "install python-rtmidi built with a MIDI system"
