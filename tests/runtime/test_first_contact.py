"""First contact: what someone sees in their first minutes with ``sonify run``. A word while
the kernels compile, a status line that fits an 80-column terminal, good news at the default
verbosity, port clashes that name the port and the option, a preview window that can be
closed without stopping the show."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sonify.capture import DemoSource
from sonify.cli import main
from sonify.config import Config
from sonify.control.midi_in import CcBinding, MidiControl
from sonify.control.reload import SceneReloader
from sonify.features import analyzer
from sonify.live import preview
from sonify.live.report import Status
from sonify.live.runtime import Runtime
from sonify.live.wiring import start_services
from sonify.outputs.recording import RecordingOutput
from sonify.timing.clock import ManualTime
from sonify.util.notice import NOTICE

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def config() -> Config:
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 160, 90
    c.scene.name = "energize"
    c.control.port = c.http.port = 0
    c.scene.watch = False
    return c


# -- the status line -----------------------------------------------------------------------------

def busy_status(scene: str = "gallery") -> Status:
    return Status(fps=29.97, analysis_ms=12.34, lateness_p99_ms=10.5, notes_per_s=12.3,
                  latency_ms=45.6, mood="energetic", scene=scene, tempo_bpm=120.0)


def test_the_status_line_fits_an_80_column_terminal() -> None:
    status = busy_status()
    assert len(status.line(None)) > 100  # the full form, for a log file
    line = status.line(80)
    assert len(line) <= 79  # one less than the width: the cursor never wraps
    for part in ("30.0 fps", "12.3 ms", "p99 10.50 ms", "12.3 notes/s", "energetic",
                 "gallery"):
        assert part in line, (part, line)
    assert status.line(200) == status.line(None)  # a wide terminal shows it all


def test_a_long_scene_name_is_cut_rather_than_wrapped() -> None:
    name = "/home/artist/scenes/a-very-long-scene-file-name-for-the-opening.toml"
    for columns in (80, 60, 40):
        line = busy_status(name).line(columns)
        assert len(line) <= columns - 1
    assert busy_status(name).line(80).endswith("...")


# -- good news at the default verbosity ----------------------------------------------------------

def test_notices_show_at_the_default_verbosity_without_a_level_word() -> None:
    code = ("import logging; from sonify.cli import _setup_logging; "
            "from sonify.util.notice import NOTICE; _setup_logging(0); "
            "log = logging.getLogger('sonify.test'); "
            "log.info('not shown'); log.log(NOTICE, 'learned CC 74 -> cutoff'); "
            "log.warning('a warning')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stderr.splitlines() == ["sonify: learned CC 74 -> cutoff",
                                        "sonify: WARNING: a warning"]


def test_a_learned_knob_and_a_reloaded_scene_are_notices(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    calls: list[object] = []
    control = MidiControl(calls.append, params=lambda: {"cutoff": (0.0, 1.0)},
                          scenes=lambda: ["calm"])
    scene = tmp_path / "mine.toml"
    scene.write_text((Path(__file__).resolve().parents[2] / "scenes" / "calm.toml").read_text())
    with caplog.at_level(NOTICE):
        control.learn("cutoff")
        control.handle([0xB0, 21, 40])
        SceneReloader(calls.append, lambda: scene).reload(scene)
    notices = [r.getMessage() for r in caplog.records if r.levelno == NOTICE]
    assert any("learning 'cutoff'" in m for m in notices)
    assert any("learned" in m and "cutoff" in m for m in notices)
    assert any("scene reload" in m and "is valid" in m for m in notices)
    assert control.learned_bindings == [CcBinding(1, 21, "cutoff")]


# -- the first start compiles --------------------------------------------------------------------

def test_a_cold_numba_cache_is_noticed(tmp_path: Path) -> None:
    analyzer.Analyzer()  # this process has its kernels (and numba's cache is written)
    assert not analyzer.kernels_need_compiling()
    code = ("from sonify.features.analyzer import kernels_need_compiling; "
            "print(kernels_need_compiling())")
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty")})
    assert cold.stdout.strip() == "True"
    # one Analyzer warms the cache for good: the next start says nothing (the parallel
    # variants, compiled only for threads > 1, do not count)
    warm = "from sonify.features.analyzer import Analyzer; Analyzer()"
    subprocess.run([sys.executable, "-c", warm], capture_output=True, text=True, timeout=300,
                   check=True, env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty")})
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, check=True,
                           env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty")})
    assert again.stdout.strip() == "False"


def test_the_cli_says_it_compiles_on_a_cold_start(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(analyzer, "kernels_need_compiling", lambda: True)
    assert main(["render", "demo", "-o", str(tmp_path / "x.json"), "--duration", "1"]) == 0
    assert "compiling analysis kernels (first start only)" in capsys.readouterr().err


# -- port clashes --------------------------------------------------------------------------------

@pytest.fixture
def taken_ports() -> Iterator[tuple[int, int, int]]:
    """A UDP port and two TCP ports held by 'another program'."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcps = []
    for _ in range(2):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        tcps.append(tcp)
    try:
        yield udp.getsockname()[1], tcps[0].getsockname()[1], tcps[1].getsockname()[1]
    finally:
        for s in (udp, *tcps):
            s.close()


def test_every_port_clash_names_the_port_and_its_option(taken_ports: tuple[int, int, int],
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    control, oscquery, http = taken_ports  # a second sonify would find its ports so
    c = config()
    c.control.port, c.control.oscquery_port, c.http.port = control, oscquery, http
    rt = Runtime(c, [], source=DemoSource("night", width=64, height=36, realtime=False))
    with caplog.at_level(logging.ERROR):
        start_services(rt)
    try:
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        for port, option in ((control, "--control-port"), (oscquery, "--oscquery-port"),
                             (http, "--http-port")):
            assert any(f"port {port} is taken" in e and option in e for e in errors), errors
    finally:
        for service in rt.services:
            service.stop()


# -- the preview window --------------------------------------------------------------------------

def test_closing_the_preview_window_leaves_the_music_playing(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    shown: list[int] = []
    monkeypatch.setattr(preview, "show", lambda canvas: shown.append(1) or False)  # closed
    monkeypatch.setattr(preview, "close", lambda: None)
    out = RecordingOutput()
    rt = Runtime(config(), [out], preview=True, time_source=ManualTime(0.0),
                 source=DemoSource("city", width=160, height=90, realtime=False))
    with caplog.at_level(NOTICE):
        rt.run_virtual(4.0)
    assert shown == [1]  # shown once, closed, and not forced open again
    assert rt.preview is False
    assert out.notes_on and max(e.t for e in out.notes_on) > 3.0  # played on to the end
    assert "preview window closed; the music plays on" in caplog.text
