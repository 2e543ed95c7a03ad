"""Checks of this machine: numba (the kernels compile, the cache is writable), real-time priority
and free space for recordings."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from sonify.install.doctor.base import _RANK, FAIL, OK, WARN, Check, _Context
from sonify.install.doctor.probes import _run_probe

# numba compiles the kernels in a few seconds cold, much longer on a small ARM box
NUMBA_TIMEOUT_S = 180.0

DISK_WARN_BYTES = 1 << 30  # 1 GiB
DISK_FAIL_BYTES = 100 << 20  # 100 MiB

DISPATCH_PRIORITY = 20  # as sonify.timing.rt asks for the dispatch thread


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
