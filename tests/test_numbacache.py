"""numba's cache from the first run on, even from a read-only install: when the package's
folders cannot be written, ``import sonify`` points ``NUMBA_CACHE_DIR`` at a writable folder
(systemd's cache directory, the user's cache, else /tmp), so the first run compiles the kernels
into it and the next run loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sonify.util import numbacache
from sonify.util.numbacache import KERNEL_DIRS, PACKAGE_DIR, choose_cache_dir


def _never(path: str) -> bool:
    return False


def _always(path: str) -> bool:
    return True


def test_a_writable_package_keeps_numbas_own_cache() -> None:
    assert choose_cache_dir({"HOME": "/home/u"}, can_write=_always, can_create=_always) is None


def test_a_cache_dir_already_set_is_left_alone() -> None:
    env = {"NUMBA_CACHE_DIR": "/somewhere", "HOME": "/home/u"}
    assert choose_cache_dir(env, can_write=_never, can_create=_always) is None


def test_a_read_only_package_caches_in_the_users_cache() -> None:
    assert choose_cache_dir({"HOME": "/home/u"}, can_write=_never, can_create=_always) == \
        "/home/u/.cache/sonify/numba"
    env = {"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"}
    assert choose_cache_dir(env, can_write=_never, can_create=_always) == "/xdg/sonify/numba"


def test_a_service_caches_in_systemds_cache_directory_first() -> None:
    env = {"HOME": "/", "CACHE_DIRECTORY": "/var/cache/sonify:/var/cache/other"}
    assert choose_cache_dir(env, can_write=_never, can_create=_always) == \
        "/var/cache/sonify/numba"


def test_with_no_writable_home_the_temporary_folder_is_used() -> None:
    env = {"HOME": "/", "TMPDIR": "/scratch"}
    tried: list[str] = []

    def only_tmp(path: str) -> bool:
        tried.append(path)
        return path.startswith("/scratch")

    chosen = choose_cache_dir(env, can_write=_never, can_create=only_tmp)
    assert chosen == f"/scratch/sonify-numba-{os.getuid()}"
    assert tried == ["/.cache/sonify/numba", chosen]


def test_nothing_writable_leaves_numba_to_itself() -> None:
    assert choose_cache_dir({"HOME": "/"}, can_write=_never, can_create=_never) is None


def test_every_folder_with_cached_kernels_is_checked() -> None:
    checked: list[str] = []

    def record(path: str) -> bool:
        checked.append(path)
        return True

    choose_cache_dir({}, can_write=record)
    assert checked == [os.path.join(PACKAGE_DIR, sub, "__pycache__") for sub in KERNEL_DIRS]
    for sub in KERNEL_DIRS:  # and those folders do hold numba kernels
        sources = (Path(PACKAGE_DIR) / sub).glob("*.py")
        assert any("cache=True" in p.read_text() for p in sources), sub


def test_writable_reads_the_folder_or_its_parent(tmp_path: Path) -> None:
    assert numbacache.writable(str(tmp_path))
    assert numbacache.writable(str(tmp_path / "__pycache__"))  # not there yet: made in parent
    assert not numbacache.writable(str(tmp_path / "missing" / "__pycache__"))


# A read-only install, simulated: root may write anywhere, so the probe denies writing under
# the package (as os.access does for a user over a system site-packages) before sonify loads.
_READ_ONLY_RUN = """
import json, os, sys
package = {package!r}
real_access = os.access
os.access = lambda p, mode, **kw: (False if str(p).startswith(package) and mode & os.W_OK
                                   else real_access(p, mode, **kw))
import sonify
import numpy as np
from sonify.outputs import dsp
dsp.running_min(np.arange(5.0), 1)  # a cache=True kernel: compiled, or loaded from the cache
from numba.core.config import CACHE_DIR
print(json.dumps({{"env": os.environ.get("NUMBA_CACHE_DIR"), "config": CACHE_DIR}}))
"""


def _run_read_only(home: Path) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "CACHE_DIRECTORY")}
    env.update(HOME=str(home), NUMBA_DEBUG_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", _READ_ONLY_RUN.format(package=PACKAGE_DIR)],
                          capture_output=True, text=True, env=env, timeout=300, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


def test_a_read_only_install_compiles_once_then_loads_from_the_users_cache(
        tmp_path: Path) -> None:
    first, log = _run_read_only(tmp_path)
    cache = str(tmp_path / ".cache" / "sonify" / "numba")
    assert first == {"env": cache, "config": cache}
    assert any("data saved" in line for line in _kernel_lines(log)), log
    assert list(Path(cache).rglob("dsp._running_min-*.nbi")), f"nothing cached in {cache}"
    second, log = _run_read_only(tmp_path)
    assert second == first
    lines = _kernel_lines(log)
    assert any("data loaded" in line for line in lines), log
    assert not any("data saved" in line for line in lines), log


def _kernel_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "dsp._running_min" in line]


def test_needs_compiling_reads_numbas_index_of_a_module(tmp_path: Path) -> None:
    """A module whose kernels were never compiled needs compiling; once run, it does not."""
    source = tmp_path / "tiny_kernels.py"
    source.write_text("import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n"
                      "    return 2 * x\n")
    code = ("import sys, json; sys.path.insert(0, {folder!r}); import tiny_kernels as k; "
            "from sonify.util.numbacache import needs_compiling; before = needs_compiling(k); "
            "k.twice(2); print(json.dumps([before, needs_compiling(k)]))")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code.format(folder=str(tmp_path))],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    assert json.loads(out.stdout) == [True, False]
    plain = type(sys)("no_kernels")
    assert numbacache.needs_compiling(plain) is False


def test_render_says_when_the_wav_masters_kernels_compile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from sonify.cli import main
    from sonify.features import analyzer

    monkeypatch.setattr(analyzer, "kernels_need_compiling", lambda: False)
    monkeypatch.setattr(numbacache, "needs_compiling", lambda module: True)
    assert main(["render", "demo", "-o", str(tmp_path / "x.json"), "--duration", "1"]) == 0
    assert "compiling" not in capsys.readouterr().err  # no WAV, no master
    assert main(["render", "demo", "-o", str(tmp_path / "x.wav"), "--duration", "1"]) == 0
    assert "compiling the WAV master's kernels (first start only)" in capsys.readouterr().err


class _Cache:
    def __init__(self, path: str) -> None:
        self._cache_path = path


class _Dispatcher:
    def __init__(self, path: str) -> None:
        self._cache = _Cache(path)
        self.py_func = None


def test_cached_kernels_are_forgotten_when_a_module_they_use_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """numba checks only the file of the function it caches: a kernel calling another module
    would load stale code after that module changed. The sources' stamp catches it."""
    from sonify.util import numbacache

    folder = tmp_path / "cache"
    folder.mkdir()
    for name in ("k._frame_stats-1.py311.nbi", "k._frame_stats-1.py311.1.nbc", "k.pyc"):
        (folder / name).write_text("x")
    monkeypatch.setattr(numbacache, "_checked", set())
    deleted = numbacache.forget_stale(_Dispatcher(str(folder)), stamp="sources v1")
    assert sorted(Path(p).name for p in deleted) == ["k._frame_stats-1.py311.1.nbc",
                                                      "k._frame_stats-1.py311.nbi"]
    assert (folder / "k.pyc").exists()  # only numba's files
    (folder / "k._frame_stats-1.py311.nbi").write_text("compiled again")
    monkeypatch.setattr(numbacache, "_checked", set())  # the next start, same sources: kept
    assert numbacache.forget_stale(_Dispatcher(str(folder)), stamp="sources v1") == []
    monkeypatch.setattr(numbacache, "_checked", set())  # a module changed: forgotten
    assert len(numbacache.forget_stale(_Dispatcher(str(folder)), stamp="sources v2")) == 1


def test_the_stamp_follows_every_kernel_module_and_the_kernels_keep_it() -> None:
    from sonify.features import kernels
    from sonify.util import numbacache

    stamp = numbacache.sources_stamp()
    assert "features/kernels_band.py:" in stamp and "features/constants.py:" in stamp
    assert "outputs/dsp.py:" in stamp
    marker = Path(kernels._frame_stats._cache._cache_path) / numbacache.STAMP_FILE
    assert marker.read_text() == stamp
