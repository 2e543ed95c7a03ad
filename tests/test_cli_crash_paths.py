"""Input that used to end in a traceback: each is now one clear line and exit status 2 from
`sonify run` and `sonify render` (where it applies), and `sonify doctor` reports the same
problem through the same validation (issue 10). Plus the two that must not stop a run: an OSC
host that does not resolve, and control opened to the network with allow_any.

The CLI runs in-process (``sonify.cli.main``); the doctor's checks are called one by one (the
ones ``sonify doctor`` runs), as a whole report also probes MIDI and numba, which these cases do
not touch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from sonify.cli import main
from sonify.config import Config, load_config
from sonify.install import doctor
from sonify.install.doctor.base import _Context
from tests.capture.huge import write_huge_png

# Keep the runs off the machine's ports: no control server, no health page.
QUIET = ("--no-midi", "--control-port", "0", "--http-port", "0")

SCENE = """\
name = "case"
[[voices]]
name = "lead"
kind = "notes"
channel = 1
"""


@pytest.fixture
def plain(tmp_path: Path) -> str:
    """An empty config: the built-in defaults, whatever configs/default.toml holds today."""
    path = tmp_path / "plain.toml"
    path.write_text("")
    return str(path)


def one_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the CLI, expect exit 2 and exactly one line of error (no traceback); return it."""
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("sonify: error: ")]
    assert code == 2, err
    assert len(errors) == 1, err
    # nothing else that reads as part of the error (an indented continuation, a stack frame)
    assert not any(line.startswith((" ", "\t")) for line in err.splitlines()), err
    return errors[0]


def config_check(path: Path) -> doctor.Check:
    _, check = doctor._check_config(str(path))
    return check


def scene_check(scene: Path) -> doctor.Check:
    ctx = _Context(Config(), "test.toml")
    ctx.config.scene.name = str(scene)
    return doctor._check_scene(ctx)


# -- configs -------------------------------------------------------------------------------------

def deep_config(tmp_path: Path) -> Path:
    path = tmp_path / "deep.toml"
    path.write_text("[source]\ninput = " + "[" * 5000 + "]" * 5000 + "\n")
    return path


def latin1_config(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[scene]\nname = "café"\n'.encode("latin-1"))
    return path


def bad_allow_config(tmp_path: Path) -> Path:
    path = tmp_path / "allow.toml"
    path.write_text('[control]\nhost = "0.0.0.0"\nallow = ["192.168.1.0/24", "the-tablet"]\n')
    return path


def smoothing_config(tmp_path: Path) -> Path:
    path = tmp_path / "smoothing.toml"
    path.write_text("[analysis]\nsmoothing_s = { brightnes = 1.0 }\n")
    return path


def exposed_config(tmp_path: Path) -> Path:
    path = tmp_path / "exposed.toml"
    path.write_text('[control]\nhost = "0.0.0.0"\n')
    return path


CONFIG_CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("deep nesting", deep_config, "arrays or tables are nested too deeply to read"),
    ("not UTF-8", latin1_config, "not UTF-8 text: byte 0xe9 on line 2, column 12"),
    ("bad allow entry", bad_allow_config,
     "invalid setting control.allow: 'the-tablet' is not an IP address or network"),
    ("unknown smoothing key", smoothing_config,
     "invalid setting analysis.smoothing_s: unknown feature(s) 'brightnes' (did you mean "
     "'brightness'?)"),
    ("exposed without allow list", exposed_config,
     "control.host = '0.0.0.0' can be reached from other machines"),
]


@pytest.mark.parametrize(("case", "make", "words"), CONFIG_CASES,
                         ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_config_is_one_line_from_run_and_a_failure_in_doctor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
        make: Callable[[Path], Path], words: str) -> None:
    path = make(tmp_path)
    line = one_error(capsys, "run", "--config", str(path), "--source", "demo",
                     "--duration", "1", *QUIET)
    assert line.startswith(f"sonify: error: {path}: ") and words in line
    check = config_check(path)
    assert check.status == doctor.FAIL and words in check.detail
    assert check.fix


# -- scenes ----------------------------------------------------------------------------------------

def deep_scene(tmp_path: Path) -> Path:
    path = tmp_path / "deep-scene.toml"
    path.write_text(SCENE + "[params.x]\ndescription = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n")
    return path


def infinite_scene(tmp_path: Path) -> Path:
    path = tmp_path / "infinite.toml"
    path.write_text(SCENE + "[params.speed]\nmin = 0\nmax = inf\n")
    return path


SCENE_CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("deep nesting", deep_scene, "arrays or tables are nested too deeply to read"),
    ("infinite param bound", infinite_scene,
     "params.speed.max: input should be a finite number (got inf)"),
]


@pytest.mark.parametrize(("case", "make", "words"), SCENE_CASES, ids=[c[0] for c in SCENE_CASES])
def test_a_bad_scene_is_one_line_from_run_and_render_and_a_failure_in_doctor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], plain: str, case: str,
        make: Callable[[Path], Path], words: str) -> None:
    scene = make(tmp_path)
    expected = f"sonify: error: scene file {scene}: "
    line = one_error(capsys, "run", "--config", plain, "--scene", str(scene), "--source", "demo",
                     "--duration", "1", *QUIET)
    assert line.startswith(expected) and words in line
    line = one_error(capsys, "render", "demo", "--scene", str(scene), "--duration", "1",
                     "-o", str(tmp_path / "out.mid"))
    assert line.startswith(expected) and words in line
    assert not (tmp_path / "out.mid").exists()
    check = scene_check(scene)
    assert check.status == doctor.FAIL and words in check.detail


# -- a picture too large to decode ---------------------------------------------------------------

HUGE_WORDS = "is 20000x20000 pixels (400 megapixels, 16-bit): decoding it would take about 2.4 GB"


def test_a_huge_png_is_one_line_from_run_and_render_and_a_failure_in_doctor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], plain: str) -> None:
    png = write_huge_png(tmp_path / "huge.png")
    line = one_error(capsys, "render", str(png), "-o", str(tmp_path / "out.mid"))
    assert HUGE_WORDS in line and "up to 100 megapixels" in line
    line = one_error(capsys, "run", "--config", plain, "--source", str(png), "--duration", "1",
                     *QUIET)
    assert HUGE_WORDS in line
    ctx = _Context(Config(), "test.toml")
    ctx.config.source.input = str(png)
    [source] = [c for c in doctor._check_source(ctx) if c.name == "source"]
    assert source.status == doctor.FAIL and HUGE_WORDS in source.detail


# -- what must not stop a run ----------------------------------------------------------------------

def test_an_osc_host_that_does_not_resolve_plays_on_and_doctor_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        plain: str) -> None:
    with caplog.at_level(logging.WARNING, logger="sonify"):
        code = main(["run", "--config", plain, "--osc", "no-such-host.invalid:9000",
                     "--duration", "1", "--source", "demo", *QUIET])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    assert any("'no-such-host.invalid' does not resolve" in r.getMessage()
               and "tried again in the background" in r.getMessage()
               and r.levelno == logging.WARNING for r in caplog.records)
    assert "sonify: stopped" in err
    ctx = _Context(Config(), "test.toml")
    ctx.config.osc.targets = ["no-such-host.invalid:9000"]
    [check] = doctor._check_osc(ctx)
    assert check.status == doctor.WARN
    assert "sonify runs anyway" in check.detail and "retries the name" in check.detail


def test_allow_any_runs_with_a_warning_naming_the_address_and_doctor_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sonify.scene.schema import SceneError

    path = tmp_path / "open.toml"
    path.write_text('[control]\nhost = "0.0.0.0"\nallow_any = true\nport = 47123\n'
                    "oscquery_port = 47124\n")

    class StopBeforeBinding:
        """Tests bind loopback only: the run stops where the Runtime would open the ports."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            raise SceneError("stopped by the test before binding 0.0.0.0")

    monkeypatch.setattr("sonify.live.runtime.Runtime", StopBeforeBinding)
    with caplog.at_level(logging.WARNING, logger="sonify"):
        main(["run", "--config", str(path), "--source", "demo", "--no-midi", "--http-port", "0"])
    capsys.readouterr()
    [warning] = [r for r in caplog.records if "allow_any" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    text = warning.getMessage()
    assert "OSC control on UDP 0.0.0.0:47123" in text and "TCP 0.0.0.0:47124" in text
    assert "no password" in text
    config = load_config(path)
    check = doctor._check_exposure(_Context(config, str(path)))
    assert check.status == doctor.WARN and text in check.detail
    assert "OSCQuery" in check.detail and "binds where it does" in check.detail
    assert "[control] allow" in check.fix
