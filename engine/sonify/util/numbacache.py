"""numba's cache in a folder the user can write, so compiled kernels are kept from the first run.

numba keeps a ``cache=True`` function's machine code in ``__pycache__`` beside its module. An
installed wheel's ``site-packages`` is often read-only for the user who runs sonify (a system
install, a systemd service with its own user): numba then falls back to ``~/.cache/numba``, and
where there is no writable home either (a service's ``DynamicUser``, ``HOME=/``) it cannot cache
at all, and every start compiles the kernels again (seconds). ``use_writable_cache()`` runs when
``sonify`` is imported, before numba is: if the package's own folders are writable it does
nothing (a checkout, a user install); otherwise it sets ``NUMBA_CACHE_DIR`` to the first folder
it can write of

1. ``$CACHE_DIRECTORY/numba`` (systemd's ``CacheDirectory=``),
2. ``$XDG_CACHE_HOME/sonify/numba`` or ``~/.cache/sonify/numba``,
3. ``$TMPDIR/sonify-numba-UID`` (or ``/tmp``): kept until the machine is cleaned.

A ``NUMBA_CACHE_DIR`` already set is left alone. Standard library only, and only a few
``stat`` calls: ``sonify --version`` pays nothing noticeable for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL_DIRS = ("features", "outputs")
"""The package's folders with ``cache=True`` numba functions."""


def writable(path: str) -> bool:
    """Whether a file can be made in ``path`` (a folder), or ``path`` made in its parent."""
    if os.path.isdir(path):
        return os.access(path, os.W_OK | os.X_OK)
    parent = os.path.dirname(path)
    return os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)


def _creatable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return writable(path)


def candidates(environ: Mapping[str, str]) -> list[str]:
    """The folders to try, best first (see the module's description)."""
    out = []
    systemd = environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd:
        out.append(os.path.join(systemd, "numba"))
    xdg = environ.get("XDG_CACHE_HOME") or (
        os.path.join(environ["HOME"], ".cache") if environ.get("HOME") else "")
    if xdg:
        out.append(os.path.join(xdg, "sonify", "numba"))
    uid = os.getuid() if hasattr(os, "getuid") else 0
    out.append(os.path.join(environ.get("TMPDIR") or "/tmp", f"sonify-numba-{uid}"))
    return out


def choose_cache_dir(environ: Mapping[str, str], package_dir: str = PACKAGE_DIR,
                     can_write: Callable[[str], bool] = writable,
                     can_create: Callable[[str], bool] = _creatable) -> str | None:
    """The folder numba should cache in, or None to leave numba as it is (the package is
    writable, or ``NUMBA_CACHE_DIR`` is already set, or nothing can be written)."""
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    if all(can_write(os.path.join(package_dir, sub, "__pycache__")) for sub in KERNEL_DIRS):
        return None
    return next((path for path in candidates(environ) if can_create(path)), None)


def use_writable_cache() -> str | None:
    """Set ``NUMBA_CACHE_DIR`` when the package's folders are read-only (see the module's
    description); returns the folder chosen, or None."""
    path = choose_cache_dir(os.environ)
    if path is not None:
        os.environ["NUMBA_CACHE_DIR"] = path
        config = sys.modules.get("numba.core.config")
        if config is not None:  # numba already imported: it read the variable too early
            config.CACHE_DIR = path  # type: ignore[attr-defined]
    return path


def needs_compiling(module: object) -> bool:
    """Whether numba's cache holds nothing for the ``cache=True`` functions of ``module`` (a
    loaded module): the first start, after an update, or with a cache that cannot be written.
    Functions named in the module's ``COMPILED_ON_DEMAND`` (the parallel variants, compiled
    only when asked for) do not count. False when numba's cache cannot be inspected (say
    nothing rather than something untrue)."""
    from numba.core.dispatcher import Dispatcher

    on_demand = getattr(module, "COMPILED_ON_DEMAND", ())
    for name, obj in vars(module).items():
        if isinstance(obj, Dispatcher) and name not in on_demand:
            try:  # the index numba itself checks: absent or stale (source changed) -> {}
                if not obj._cache._cache_file._load_index():  # type: ignore[attr-defined]
                    return True
            except Exception:
                return False
    return False


# -- a cache that knows the files a kernel depends on ---------------------------------------------

STAMP_FILE = "sonify-sources.stamp"
_checked: set[str] = set()


def sources_stamp(package_dir: str = PACKAGE_DIR) -> str:
    """Size and modification time of every module in ``KERNEL_DIRS``: what numba would have
    to check, and does not (see ``forget_stale``)."""
    parts = []
    for sub in KERNEL_DIRS:
        folder = os.path.join(package_dir, sub)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                parts.append(f"{sub}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def forget_stale(*dispatchers: object, stamp: str | None = None) -> list[str]:
    """Delete numba's cached machine code of the kernel folders when any of their modules
    changed since it was written; returns the files deleted.

    numba checks only the file of the function it caches: a kernel that calls a function of
    another module (``kernels`` calls ``kernels_band``) or reads its constants
    (``constants.py``, ``mood.py``) would load stale code after an edit or a ``git pull`` that
    changed only that module. Each kernel module calls this once, before its first call, with
    its dispatchers; the folders they cache in keep a stamp of the sources (``sources_stamp``),
    and a different stamp empties them (the next start compiles, and says so). A folder that
    cannot be written is left alone."""
    deleted: list[str] = []
    for dispatcher in dispatchers:
        cache = getattr(dispatcher, "_cache", None)
        folder = getattr(cache, "_cache_path", None)
        if not isinstance(folder, str) or folder in _checked:
            continue
        if stamp is None:
            stamp = sources_stamp()
        _checked.add(folder)
        marker = os.path.join(folder, STAMP_FILE)
        try:
            with open(marker, encoding="utf-8") as f:
                if f.read() == stamp:
                    continue
        except OSError:
            pass
        try:
            os.makedirs(folder, exist_ok=True)
            for name in os.listdir(folder):
                if name.endswith((".nbi", ".nbc")):
                    os.remove(os.path.join(folder, name))
                    deleted.append(os.path.join(folder, name))
            tmp = f"{marker}.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(stamp)
            os.replace(tmp, marker)
        except OSError:
            continue  # a read-only cache: numba copes (it compiles in memory)
    return deleted


def forget_stale_in(namespace: Mapping[str, object]) -> list[str]:
    """``forget_stale`` for every numba dispatcher in a module's ``globals()``."""
    return forget_stale(*(v for v in namespace.values() if hasattr(v, "_cache")
                          and hasattr(v, "py_func")))
