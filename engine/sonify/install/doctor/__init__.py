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
import json as jsonlib
import sys
import textwrap
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import IO

from sonify.config import DEFAULT_CONFIG
from sonify.install.doctor.base import ASCII_SYMBOLS, FAIL, OK, SYMBOLS, WARN, Check
from sonify.install.doctor.devices import _check_midi, _check_source
from sonify.install.doctor.network import _check_control_ports, _check_exposure, _check_osc
from sonify.install.doctor.scenes import _check_all_scenes, _check_config, _check_scene
from sonify.install.doctor.system import _check_numba, _check_realtime, _check_recording

# The checks one by one, for tests and for scripts that want only some (each module holds an
# area: scenes, devices, network, system; probes runs what may hang in a child process).
__all__ = [
    "FAIL", "OK", "WARN", "Check", "add_arguments", "format_report", "run", "run_checks",
    "run_doctor",
    "_check_all_scenes", "_check_config", "_check_control_ports", "_check_exposure",
    "_check_midi", "_check_numba", "_check_osc", "_check_realtime", "_check_recording",
    "_check_scene", "_check_source",
]

REPORT_WIDTH = 100  # explanations and fixes are wrapped to this many columns


# -- the command ------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sonify doctor`` (its help is in ``sonify.cli.doctor``)."""
    parser.add_argument("--config", metavar="FILE",
                        help="the config to check (default: configs/default.toml)")
    parser.add_argument("--json", action="store_true",
                        help="a JSON list of {name, status, detail, fix}")


def run(args: argparse.Namespace) -> int:
    """``sonify doctor``: run every check and report; 0 when none fails, else 1."""
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
