"""``sonify doctor``: can this machine run the show as configured? Each check says ok, warn or
fail and, when not ok, what to do (a command to run or a setting to change).

Checks: the config file; the configured scene and every scene found; the source and each
camera (opened briefly: what it delivers); MIDI (the systems built in, their ports, the
configured port or a virtual port); each OSC target; numba (the kernels compile, the cache is
writable); real-time priority; free space for recordings; the control ports; what the config
exposes to other machines.

The config is checked by ``sonify.config.load_config``, the very validation ``sonify run``
applies (allow lists, smoothing keys, tokens, exposure, encoding, nesting), so a config that
``run`` would refuse fails here too.

Exit status 0 when nothing fails (warnings do not stop a run), else 1. Nothing may hang: probes
that touch drivers or servers (cameras, files, MIDI systems, numba) run in a child Python
killed after a time limit, so a wedged V4L2 driver or a hung JACK server is reported, not
waited for; libjack's complaints on stderr stay in that child. Name lookups run on a thread
with a time limit.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import json as jsonlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from sonify.config import (
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    exposure_warnings,
    load_config,
    parse_host_port,
)
from sonify.resources import PACKAGE_DIR
from sonify.util.net import is_loopback

OK, WARN, FAIL = "ok", "warn", "fail"
_RANK = {OK: 0, WARN: 1, FAIL: 2}
SYMBOLS = {OK: "✓", WARN: "!", FAIL: "✗"}
ASCII_SYMBOLS = {OK: "ok", WARN: "!!", FAIL: "XX"}

# Time limits of the probes, in seconds. A camera opens in about a second (V4L2 negotiates the
# format); numba compiles the kernels in a few seconds cold, much longer on a small ARM box.
SOURCE_TIMEOUT_S = 12.0
SOURCE_SAMPLE_S = 1.0  # how long a live camera is read to measure its frame rate
MIDI_TIMEOUT_S = 10.0
NUMBA_TIMEOUT_S = 180.0
RESOLVE_TIMEOUT_S = 3.0
OWNER_SCAN_S = 1.0

REPORT_WIDTH = 100  # explanations and fixes are wrapped to this many columns

DISK_WARN_BYTES = 1 << 30  # 1 GiB
DISK_FAIL_BYTES = 100 << 20  # 100 MiB

MIDI_CLIENT = "sonify-doctor"
DISPATCH_PRIORITY = 20  # as sonify.timing.rt asks for the dispatch thread

# Where the local control servers are configured: (section, key) candidates tried in order with
# getattr, since these settings are younger than this module; the default applies when none is
# there. A port of 0 means the server is off.
CONTROL_PORTS: tuple[tuple[str, str, tuple[tuple[str, str], ...], int, tuple[tuple[str, str], ...]],
                     ...] = (
    # name, protocol, port keys, default port, host keys
    ("control port", "udp", (("control", "port"), ("control", "osc_port")), 9000,
     (("control", "host"),)),
    ("http port", "tcp", (("http", "port"), ("health", "port"), ("control", "http_port")), 8765,
     (("http", "host"), ("health", "host"))),
    ("oscquery port", "tcp", (("control", "oscquery_port"),), 0, (("control", "host"),)),
)
DEFAULT_CONTROL_HOST = "127.0.0.1"


@dataclass
class Check:
    """One finding: ``status`` ok / warn / fail; ``detail`` what was seen (first line a
    summary); ``fix`` what to do, empty when ok."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class _Context:
    config: Config
    where: str  # how fixes name the config file


# -- the command ------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sonify doctor``."""
    parser.add_argument("--config", metavar="FILE",
                        help="the config to check (default: configs/default.toml)")
    parser.add_argument("--json", action="store_true",
                        help="a JSON list of {name, status, detail, fix}")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sonify doctor`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "doctor", help="check this machine and a config, and say how to fix what is wrong",
        description="Check the config, scenes, cameras, MIDI, OSC targets, numba, real-time "
        "priority, disk space and control ports; exit 1 when something would stop a run.",
    )
    add_arguments(p)


def main(args: argparse.Namespace) -> int:
    return run_doctor(args.config, json=args.json)


def run_doctor(config_path: str | None, *, out: IO[str] | None = None,
               json: bool = False) -> int:
    """Run every check on ``config_path`` (None: the default config), print them to ``out``
    (default stdout) as text or, with ``json``, a JSON list; 0 when none fails, else 1."""
    stream = sys.stdout if out is None else out
    checks = run_checks(config_path)
    if json:
        stream.write(jsonlib.dumps([asdict(c) for c in checks], indent=2) + "\n")
    else:
        stream.write(format_report(checks, config_path, _symbols_for(stream)))
    stream.flush()
    return 1 if any(c.status == FAIL for c in checks) else 0


def run_checks(config_path: str | None) -> list[Check]:
    """Every check, in report order."""
    ctx, config_check = _check_config(config_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        # The slow probes (child processes) run side by side while the quick ones run here.
        source_f = pool.submit(_check_source, ctx)
        midi_f = pool.submit(_check_midi, ctx)
        numba_f = pool.submit(_check_numba)
        osc_f = pool.submit(_check_osc, ctx)
        checks = [config_check, _check_scene(ctx), _check_all_scenes(ctx)]
        quick = [_check_realtime(ctx)]
        ports = _check_control_ports(ctx)
        source_checks = _result(source_f, "source")
        midi_check, midi_falls_back = _result_pair(midi_f, "midi")
        checks += [*source_checks, midi_check, *_result(osc_f, "osc"),
                   *_result(numba_f, "numba"), *quick,
                   _check_recording(ctx, midi_falls_back), *ports, _check_exposure(ctx)]
    return checks


def _result(future: Future[list[Check]], name: str) -> list[Check]:
    try:
        return future.result()
    except Exception as exc:  # a bug in a check must not hide the others
        return [Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                      "report this as a bug in `sonify doctor`")]


def _result_pair(future: Future[tuple[Check, bool]], name: str) -> tuple[Check, bool]:
    try:
        return future.result()
    except Exception as exc:
        return Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "report this as a bug in `sonify doctor`"), False


# -- output -----------------------------------------------------------------------------------

def _symbols_for(stream: IO[str]) -> dict[str, str]:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "".join(SYMBOLS.values()).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return ASCII_SYMBOLS
    return SYMBOLS


def format_report(checks: list[Check], config_path: str | None,
                  symbols: dict[str, str] = SYMBOLS) -> str:
    """One line per check (symbol, name, summary), then the rest of the detail and the fix,
    indented; a closing verdict."""
    width = max((len(c.name) for c in checks), default=0)
    indent = " " * 6
    label = config_path or (str(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else
                            "built-in defaults")
    lines = [f"sonify doctor: {label}"]
    for c in checks:
        first, *rest = c.detail.splitlines() or [""]
        lines += _wrap(first, f"{symbols[c.status]} {c.name:<{width}}  ", indent)
        for line in rest:
            lines += _wrap(line, indent, indent)
        if c.status != OK and c.fix:
            for n, line in enumerate(c.fix.splitlines()):
                lines += _wrap(line, indent + ("fix: " if n == 0 else "     "), indent + "     ")
    warns = sum(c.status == WARN for c in checks)
    fails = sum(c.status == FAIL for c in checks)
    verdict = ("sonify can run with this setup" if not fails else
               "sonify cannot run like this: fix the failures above")
    lines.append(f"{len(checks) - warns - fails} ok, {warns} warning{'s' * (warns != 1)}, "
                 f"{fails} failure{'s' * (fails != 1)}: {verdict}.")
    return "\n".join(lines) + "\n"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, REPORT_WIDTH, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


# -- config and scenes -------------------------------------------------------------------------

def _check_config(config_path: str | None) -> tuple[_Context, Check]:
    if config_path is None and not DEFAULT_CONFIG.exists():
        ctx = _Context(Config(), "a config file (pass it with --config)")
        return ctx, Check("config", OK, "no config file: the built-in defaults apply")
    path = config_path or str(DEFAULT_CONFIG)
    where = path if config_path else f"{path} (or the copy you pass with --config)"
    try:
        config = load_config(path)
    except ConfigError as exc:
        ctx = _Context(Config(), where)
        if "not found" in str(exc) or "cannot read" in str(exc):
            fix = f"check the path given to --config ({path}); configs/default.toml is a start"
        else:
            fix = (f"correct the settings named above in {path}; configs/default.toml lists "
                   "every setting with its default")
        detail = f"{exc}\n(the other checks below use the built-in defaults)"
        return ctx, Check("config", FAIL, detail, fix)
    detail = f"{path} is valid"
    env_port = os.environ.get("SONIFY_MIDI_PORT")
    if env_port:
        detail += f"\nSONIFY_MIDI_PORT={env_port!r} overrides [midi] port"
    return _Context(config, where), Check("config", OK, detail)


def _check_scene(ctx: _Context) -> Check:
    from sonify.scene.schema import SceneError, available_scenes, load_scene, resolve_scene

    name = ctx.config.scene.name
    try:
        path = resolve_scene(name)
    except SceneError as exc:
        names = ", ".join(available_scenes()) or "none"
        return Check("scene", FAIL, str(exc),
                     f"set [scene] name in {ctx.where} to one of: {names} (or a path to a "
                     f".toml scene file)")
    try:
        load_scene(path)
    except SceneError as exc:
        return Check("scene", FAIL, str(exc),
                     f"correct the keys named above in {path} (scenes/README.md documents "
                     f"every key), or set [scene] name in {ctx.where} to another scene")
    return Check("scene", OK, f"{name!r} ({path}) is valid")


def _check_all_scenes(ctx: _Context) -> Check:
    from sonify.scene.schema import SceneError, available_scenes, load_scene, scene_dirs

    scenes = available_scenes()
    where = ", ".join(str(d) for d in scene_dirs())
    bad: list[str] = []
    for _name, path in scenes.items():
        try:
            load_scene(path)
        except SceneError as exc:
            bad.append(str(exc))
    if not scenes:
        return Check("scenes", WARN, f"no scene files found (looked in {where})",
                     "put scene .toml files in one of those folders, or point SONIFY_SCENES "
                     "at a folder of scenes")
    if not bad:
        return Check("scenes", OK, f"all {len(scenes)} scenes are valid: {', '.join(scenes)}")
    detail = f"{len(bad)} of {len(scenes)} scene files cannot be loaded (a switch to one fails):"
    detail += "\n" + "\n".join(bad)
    return Check("scenes", WARN, detail,
                 "correct the keys named above in each file (scenes/README.md documents every "
                 "key), or move the file out of the scene folders (" + where + ")")


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


# -- OSC targets -------------------------------------------------------------------------------

def _check_osc(ctx: _Context) -> list[Check]:
    targets = ctx.config.osc.targets
    if not targets:
        return [Check("osc", OK, "no OSC targets ([osc] targets = [])")]
    return [_check_osc_target(ctx, t) for t in targets]


def _check_osc_target(ctx: _Context, target: str) -> Check:
    name = f"osc {target}"
    host, port = parse_host_port(target)
    try:
        addresses = _resolve(host, port, socket.SOCK_DGRAM)
    except OSError as exc:
        why = exc.strerror or str(exc)
        return Check(name, WARN, f"{host!r} does not resolve now ({why}): sonify runs anyway, "
                     "drops what would go there (counted) and retries the name in the "
                     "background until it resolves",
                     f"fix the name (`getent hosts {host}`; /etc/hosts or DNS), or use an IP "
                     f"address in [osc] targets in {ctx.where}; at boot a name may resolve only "
                     "once the network is up")
    shown = ", ".join(sorted({a for _, a in addresses}))
    if all(ipaddress.ip_address(a.split("%")[0]).is_loopback for _, a in addresses):
        listening = _udp_listening(port)
        if listening is None:
            listening = _bind_free(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", port) \
                is not None
        if listening:
            return Check(name, OK, f"something on this machine receives on UDP port {port}")
        return Check(name, WARN,
                     f"nothing on this machine listens on UDP port {port} now: messages go "
                     "nowhere until the receiver starts (sonify runs anyway)",
                     f"start the receiver on port {port} (SuperCollider's sclang listens on "
                     "57120, `oscdump " + str(port) + "` shows what arrives), or correct the port "
                     f"in [osc] targets in {ctx.where}")
    family, address = addresses[0]
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((address, port))  # UDP connect sends nothing: it only finds a route
    except OSError as exc:
        return Check(name, WARN, f"{host} ({shown}): no route from here ({exc.strerror})",
                     "check the network cable and address (`ip route get " + address + "`)")
    return Check(name, OK, f"{host} resolves to {shown}; UDP cannot prove that anything "
                 f"receives (check on that machine, e.g. `oscdump {port}`)")


def _resolve(host: str, port: int, kind: int) -> list[tuple[int, str]]:
    """(family, address) for ``host``; OSError when it does not resolve in time."""
    result: list[Any] = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=kind))
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=lookup, daemon=True, name="doctor-resolve")
    thread.start()
    thread.join(RESOLVE_TIMEOUT_S)
    if not result:
        raise OSError(errno.ETIMEDOUT, f"no answer within {RESOLVE_TIMEOUT_S:g} s")
    if isinstance(result[0], OSError):
        raise result[0]
    return [(info[0], str(info[4][0])) for info in result[0]]


def _proc_net(proto: str, port: int) -> list[tuple[str, int]] | None:
    """(local address, inode) of the sockets bound to ``port`` (UDP) or listening on it (TCP)
    from /proc/net; None where /proc/net cannot be read."""
    found: list[tuple[str, int]] = []
    readable = False
    for suffix in ("", "6"):
        try:
            lines = Path(f"/proc/net/{proto}{suffix}").read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            addr_hex, _, port_hex = parts[1].rpartition(":")
            if int(port_hex, 16) != port or (proto == "tcp" and parts[3] != "0A"):
                continue
            found.append((_hex_address(addr_hex), int(parts[9])))
    return found if readable else None


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    # /proc/net prints each 32-bit word in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _udp_listening(port: int) -> bool | None:
    """Whether a UDP socket on this machine would get datagrams sent to loopback ``port``."""
    sockets = _proc_net("udp", port)
    if sockets is None:
        return None
    return any(ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_unspecified
               or a.startswith("::ffff:127.") for a, _ in sockets)


def _socket_owner(inodes: Iterable[int]) -> str:
    """``pid N (command)`` of the process holding one of the socket ``inodes`` (readable
    processes only, within OWNER_SCAN_S), else ""."""
    wanted = {f"socket:[{i}]" for i in inodes}
    end = time.monotonic() + OWNER_SCAN_S
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return ""
    for pid in pids:
        if time.monotonic() > end:
            break
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            for fd in fds:
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                        cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                        return f"pid {pid} ({cmd if len(cmd) <= 80 else cmd[:77] + '...'})"
        except OSError:
            continue
    return ""


def _bind_free(family: int, kind: int, host: str, port: int) -> OSError | None:
    """None when ``(host, port)`` can be bound now (nobody holds it), else the error."""
    try:
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:  # as a server does: TIME_WAIT leftovers are fine
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        return exc
    return None


# -- control ports -----------------------------------------------------------------------------

def _setting(config: Config, keys: tuple[tuple[str, str], ...]) -> tuple[Any, str]:
    for section, key in keys:
        value = getattr(getattr(config, section, None), key, None)
        if value is not None:
            return value, f"[{section}] {key}"
    return None, ""


def _check_control_ports(ctx: _Context) -> list[Check]:
    checks = []
    for name, proto, port_keys, default, host_keys in CONTROL_PORTS:
        port, key = _setting(ctx.config, port_keys)
        if port is None:
            if not default:
                continue
            port, key = default, f"[{port_keys[0][0]}] {port_keys[0][1]}"
        host, _ = _setting(ctx.config, host_keys)
        host = str(host or DEFAULT_CONTROL_HOST)
        port = int(port)
        if port == 0:
            checks.append(Check(name, OK, f"off ({key} = 0)"))
            continue
        checks.append(_check_bind(ctx, name, proto, host, port, key))
    return checks


def _check_bind(ctx: _Context, name: str, proto: str, host: str, port: int, key: str) -> Check:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    where = f"{proto.upper()} {host}:{port}"
    try:
        family, address = _resolve(host, port, kind)[0]
    except OSError as exc:
        return Check(name, FAIL, f"{where}: the host does not resolve ({exc.strerror or exc})",
                     f"set the host for {key} in {ctx.where} to 127.0.0.1 or an address of "
                     "this machine")
    error = _bind_free(family, kind, address, port)
    if error is None:
        return Check(name, OK, f"{where} is free")
    if error.errno == errno.EADDRINUSE:
        sockets = _proc_net(proto, port) or []
        owner = _socket_owner(i for _, i in sockets)
        held = owner or "another program (a sonify already running, perhaps)"
        return Check(name, FAIL, f"{where} is in use, held by {held}",
                     f"stop that program (`ss -{proto[0]}lpn 'sport = :{port}'` names it; "
                     f"`systemctl stop sonify` for the service), or set {key} in {ctx.where} to "
                     "a free port (0 turns it off)")
    if error.errno == errno.EACCES:
        return Check(name, FAIL, f"{where}: permission denied (ports below 1024 need root)",
                     f"set {key} in {ctx.where} to a port of 1024 or more")
    return Check(name, FAIL, f"{where} cannot be bound: {error.strerror or error}",
                 f"set the host for {key} in {ctx.where} to 127.0.0.1 or an address of this "
                 "machine (`ip -brief address`)")


# -- exposure ----------------------------------------------------------------------------------

def _check_exposure(ctx: _Context) -> Check:
    """What other machines can reach: the control server and OSCQuery (which binds where the
    control server binds) and the health page."""
    c, h = ctx.config.control, ctx.config.http
    lines: list[str] = []
    if not c.port:
        lines.append("OSC control is off ([control] port = 0), and OSCQuery with it")
    else:
        query = (f"; OSCQuery (the read-only description of the controls) binds where it does, "
                 f"TCP {c.host}:{c.oscquery_port}" if c.oscquery_port else "; OSCQuery is off")
        if not c.exposed:
            lines.append(f"OSC control on UDP {c.host}:{c.port}: this machine only{query}")
        elif c.allow:
            lines.append(f"OSC control on UDP {c.host}:{c.port} is reachable from other "
                         f"machines; only senders in [control] allow are obeyed "
                         f"({', '.join(c.allow)}){query}")
        else:
            lines.append(f"OSC control on UDP {c.host}:{c.port} is reachable from other "
                         f"machines and obeys any of them (allow_any = true){query}")
    if not h.port:
        lines.append("the health page is off ([http] port = 0)")
    elif is_loopback(h.host):
        lines.append(f"the health page on TCP {h.host}:{h.port}: this machine only")
    else:
        lines.append(f"the health page on TCP {h.host}:{h.port} is reachable from other "
                     "machines, for requests that carry [http] token")
    warnings = exposure_warnings(ctx.config)
    if warnings:
        return Check("exposure", WARN, "\n".join([*warnings, *lines]),
                     f"in {ctx.where} list the machines that may control the show in [control] "
                     "allow (addresses or networks, e.g. [\"192.168.1.0/24\"]) and remove "
                     "allow_any, or set [control] host = \"127.0.0.1\"")
    return Check("exposure", OK, "\n".join(lines))


# -- numba -------------------------------------------------------------------------------------

def _check_numba() -> list[Check]:
    name = "numba"
    cache_env = os.environ.get("NUMBA_CACHE_DIR", "")
    set_dir = ("set NUMBA_CACHE_DIR to a writable folder: `export NUMBA_CACHE_DIR=$HOME/.cache/"
               "sonify-numba`, or Environment=NUMBA_CACHE_DIR=/var/cache/sonify (with "
               "CacheDirectory=sonify) in the systemd unit")
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return [Check(name, WARN, "NUMBA_DISABLE_JIT is set: the kernels run as plain Python, "
                      "far too slow for live analysis", "unset NUMBA_DISABLE_JIT")]
    answer = _run_probe("numba", {}, NUMBA_TIMEOUT_S)
    if "error" in answer:
        if answer.get("timeout"):
            detail = f"the kernels did not compile within {NUMBA_TIMEOUT_S:g} s"
            fix = ("run `sonify bench --rounds 1` once to see the compile through, and check "
                   "the machine is not overloaded (`top`)")
        else:
            detail = f"the kernels do not compile: {answer['error']}"
            fix = (set_dir if "cach" in answer["error"].lower() else
                   "reinstall the dependencies (`.venv/bin/pip install -e .`) so numba and "
                   "llvmlite match")
        return [Check(name, FAIL, detail, fix)]
    seconds = answer["import_s"] + answer["warmup_s"]
    paths: list[str] = answer["cache_paths"]
    unwritable = [p for p in paths if not _dir_writable(Path(p))]
    origin = (f"loaded from the cache in {seconds:.2f} s" if not answer["misses"] else
              f"compiled in {seconds:.2f} s")
    detail = (f"numba {answer['version']}: the kernels {origin}; cache: "
              f"{', '.join(paths) or 'none'}"
              + (f" (NUMBA_CACHE_DIR={cache_env})" if cache_env else ""))
    if cache_env and not any(Path(p).is_relative_to(Path(cache_env).absolute())
                             for p in paths):
        return [Check(name, WARN, detail + f"\nNUMBA_CACHE_DIR={cache_env} cannot be used (not "
                      "a folder that can be made and written), so numba caches elsewhere",
                      f"create it writable for the user that runs sonify (`mkdir -p "
                      f"{cache_env}`), or point NUMBA_CACHE_DIR at a writable folder")]
    if unwritable or (answer["misses"] and not answer["saved"]):
        return [Check(name, WARN, detail + "\nthe cache cannot be written: every start compiles "
                      f"again ({seconds:.1f} s before the first frame is analysed)", set_dir)]
    return [Check(name, OK, detail)]


def _dir_writable(folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (created as needed): tried for real where the
    folder exists, else judged by the nearest existing parent."""
    if folder.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".sonify-doctor-"):
                return True
        except OSError:
            return False
    parent = _existing_parent(folder)
    return parent is not None and os.access(parent, os.W_OK | os.X_OK)


def _existing_parent(path: Path) -> Path | None:
    for p in (path, *path.parents):
        if p.is_dir():
            return p
    return None


# -- real-time priority ------------------------------------------------------------------------

def _try_fifo(priority: int) -> str:
    """"" when this process may put a thread on SCHED_FIFO ``priority`` (tried on a short-lived
    thread, put back at once), else why not."""
    outcome: list[str] = []

    def attempt() -> None:
        try:
            # pid 0 is the calling thread on Linux: the rest of the process is untouched
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except (AttributeError, OSError) as exc:
            outcome.append(getattr(exc, "strerror", None) or str(exc))
            return
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        outcome.append("")

    thread = threading.Thread(target=attempt, daemon=True, name="doctor-rt")
    thread.start()
    thread.join(2.0)
    return outcome[0] if outcome else "no answer"


def _check_realtime(ctx: _Context) -> Check:
    name = "realtime"
    if not ctx.config.music.realtime_priority:
        return Check(name, OK, "off in the config ([music] realtime_priority = false)")
    if not hasattr(os, "sched_setscheduler"):
        return Check(name, WARN, f"no SCHED_FIFO on this platform ({sys.platform}): the "
                     "dispatch thread runs at normal priority",
                     "nothing to do here; keep the machine otherwise idle")
    try:
        soft = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    except (AttributeError, ValueError, OSError):
        soft = -1
    limit = ("unlimited" if soft == resource.RLIM_INFINITY else str(soft)) if soft >= 0 \
        else "unknown"
    user = _user_name()
    why = _try_fifo(DISPATCH_PRIORITY)
    if not why:
        how = "as root, whose rtprio limit does not apply" if os.geteuid() == 0 else \
            f"RLIMIT_RTPRIO {limit}"
        return Check(name, OK, f"SCHED_FIFO {DISPATCH_PRIORITY} permitted for {user} ({how})\n"
                     "a service running as another user may not have it: run `sonify doctor` "
                     "as that user to check")
    return Check(
        name, WARN,
        f"SCHED_FIFO {DISPATCH_PRIORITY} not permitted for {user} ({why}; RLIMIT_RTPRIO "
        f"{limit}): the dispatch thread runs at normal priority, with later notes under load",
        f"in the systemd unit add LimitRTPRIO={DISPATCH_PRIORITY} under [Service] "
        "(`sudo systemctl edit sonify`); for a login user put `@audio - rtprio 95` in "
        "/etc/security/limits.d/95-audio.conf and `sudo usermod -aG audio $USER`, then log in "
        "again; or set [music] realtime_priority = false")


def _user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return "this user"


# -- recordings --------------------------------------------------------------------------------

def _check_recording(ctx: _Context, midi_falls_back: bool) -> Check:
    rec = ctx.config.record
    entries: list[tuple[str, str, bool]] = []  # (key, path, used by a run)
    if rec.midi_file:
        entries.append(("[record] midi_file", rec.midi_file, True))
    if rec.fallback_midi_file:
        entries.append(("[record] fallback_midi_file", rec.fallback_midi_file,
                        midi_falls_back and not rec.midi_file))
    if not entries:
        return Check("recording", OK, "no recording configured")
    status, lines, fixes = OK, [], []
    for key, text, used in entries:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path  # as the run resolves it: from its working directory
        folder = path.parent
        parent = _existing_parent(folder)
        role = "used" if used else "used only if MIDI cannot open"
        if parent is None:
            lines.append(f"{key} = {text!r} ({role}): no existing folder on the way")
            status = _worse(status, FAIL if used else WARN)
            continue
        free = shutil.disk_usage(parent).free
        line = f"{key} -> {path} ({role}): {_gb(free)} free"
        bad = FAIL if used else WARN
        if not _dir_writable(folder):
            line += f"; {folder} is not writable"
            status = _worse(status, bad)
            fixes.append(f"make {_existing_parent(folder) or folder} writable for the user "
                         f"that runs sonify (`sudo chown {_user_name()} ...`), or set {key} in "
                         f"{ctx.where} to a path in a writable folder")
        if free < DISK_FAIL_BYTES:
            status = _worse(status, bad)
        elif free < DISK_WARN_BYTES:
            status = _worse(status, WARN)
        if free < DISK_WARN_BYTES:
            line += f" (below {_gb(DISK_WARN_BYTES)})"
            fixes.append(f"free space on that disk (`df -h {parent}`; remove old recordings), "
                         f"or set {key} in {ctx.where} to a path on a larger disk")
        lines.append(line)
    if any(not Path(t).expanduser().is_absolute() for _, t, _ in entries):
        lines.append("relative paths are taken from the working directory of the run "
                     "(WorkingDirectory= under systemd)")
    return Check("recording", status, "\n".join(lines), "; ".join(dict.fromkeys(fixes)))


def _gb(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def _worse(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


# -- probes in a child process -----------------------------------------------------------------

_RESULT_MARK = "sonify-doctor-result: "


def _run_probe(kind: str, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """``_probe_main`` in a fresh Python: its answer, or ``{"error": ..., "timeout": True}``
    when it does not answer within ``timeout_s`` (it is then killed)."""
    env = dict(os.environ)
    root = str(PACKAGE_DIR.parent)  # the folder that holds the sonify package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    code = "import sys; from sonify.install.doctor import _probe_main; sys.exit(_probe_main())"
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
