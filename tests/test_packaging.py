"""The wheel works on its own: built from this checkout, installed into a fresh venv, run from
elsewhere, it finds its scenes and configs and plays (``import sonify``, never ``engine``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import cv2
import mido
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_list_names_every_package_in_the_source() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    source = {".".join(p.parent.relative_to(ROOT / "engine").parts)
              for p in (ROOT / "engine" / "sonify").rglob("__init__.py")}
    assert source - listed == set(), "add these to [tool.setuptools] packages"
    assert {"sonify.scenes", "sonify.configs"} <= listed


def test_a_wheel_installed_into_a_fresh_venv_renders_and_runs(tmp_path: Path) -> None:
    # built from a copy: setuptools leaves build/ and *.egg-info where it builds
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "tests"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", "--wheel-dir", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("sonify_engine-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-index", str(wheel)], capture_output=True, text=True,
                             timeout=300)
    assert install.returncode == 0, install.stderr
    # The dependencies (numpy, OpenCV, numba ...) come from the test venv without being
    # installed again: a .pth adds its site-packages after the fresh venv's own. A .pth file
    # found there is not run, so this checkout's editable install stays out of sight.
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps-from-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SONIFY_SCENES")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import sonify, sys; print(sonify.__file__); "
                            "import importlib.util as u; print(u.find_spec('engine'))"],
                           capture_output=True, text=True, cwd=work, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    module_file, engine_spec = where.stdout.split()
    assert Path(module_file).is_relative_to(venv) and engine_spec == "None"

    picture = work / "warm.png"
    image = np.zeros((240, 320, 3), np.uint8)
    image[:] = (40, 120, 230)
    cv2.circle(image, (160, 120), 60, (200, 220, 255), -1)
    cv2.imwrite(str(picture), image)
    sonify = venv / "bin" / "sonify"
    render = subprocess.run([str(sonify), "render", str(picture), "-o", "piece.mid",
                             "--scene", "gallery", "--duration", "8"],
                            capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert render.returncode == 0, render.stderr
    notes = [m for m in mido.MidiFile(work / "piece.mid") if m.type == "note_on"]
    assert notes

    run = subprocess.run([str(sonify), "run", "--duration", "2", "--source", "demo",
                          "--no-midi", "--record", "run.mid", "--control-port", "0",
                          "--http-port", "0"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "available scenes are none" not in run.stderr
    assert "scene gallery" in run.stderr  # the default config, read from inside the wheel
