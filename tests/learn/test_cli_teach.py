"""`sonify teach` from the command line: what it sends to a running engine (heard by a real
python-osc server on 127.0.0.1), what it does with a scene's files offline, and its errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from sonify.cli import main
from sonify.learn.examples import ExampleSet
from tests.runtime.test_teach_live import SCENE


@pytest.fixture
def engine_port() -> object:
    """A python-osc server on loopback standing in for the engine's control port."""
    heard: list[tuple[str, tuple]] = []
    got = threading.Event()
    dispatcher = Dispatcher()

    def hear(address: str, *args: object) -> None:
        heard.append((address, args))
        got.set()

    dispatcher.map("/sonify/teach/*", hear)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Port:
        port = server.server_address[1]

        def next(self) -> tuple[str, tuple]:
            assert got.wait(5.0), "nothing arrived"
            got.clear()
            return heard.pop(0)

    yield Port()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("argv", "address", "args"), [
    (["record"], "/sonify/teach/record", (1,)),
    (["stop"], "/sonify/teach/record", (0,)),
    (["snapshot"], "/sonify/teach/snapshot", ()),
    (["train"], "/sonify/teach/train", ()),
    (["run"], "/sonify/teach/run", (1,)),
    (["stop-running"], "/sonify/teach/run", (0,)),
    (["clear"], "/sonify/teach/clear", ()),
    (["outputs", "0.5", "120"], "/sonify/teach/outputs", (0.5, 120.0)),
])
def test_actions_reach_the_engine_control_port(engine_port: object, argv: list[str],
                                               address: str, args: tuple,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    port = engine_port.port  # type: ignore[attr-defined]
    assert main(["teach", *argv, "--to", f"127.0.0.1:{port}"]) == 0
    assert engine_port.next() == (address, args)  # type: ignore[attr-defined]
    assert f"sent {address}" in capsys.readouterr().out


def test_usage_errors_name_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["teach"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    # the values are optional: only the action is required
    assert "required: action" in err and "values" not in err.split("error:")[1]
    assert main(["teach", "outputs", "--to", "127.0.0.1:9"]) == 2
    assert "outputs needs the values" in capsys.readouterr().err
    assert main(["teach", "record", "1", "--to", "127.0.0.1:9"]) == 2
    assert "record takes no values" in capsys.readouterr().err
    assert main(["teach", "record", "--offline"]) == 2
    assert "--offline works with train only" in capsys.readouterr().err
    assert main(["teach", "record", "--to", "nowhere"]) == 2
    assert "--to:" in capsys.readouterr().err
    assert main(["teach", "show"]) == 2
    assert "show needs --scene" in capsys.readouterr().err


def test_show_and_offline_train_work_on_the_scene_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = tmp_path / "wektaught.toml"
    scene.write_text(SCENE)
    assert main(["teach", "show", "--scene", str(scene)]) == 0
    shown = capsys.readouterr().out
    assert "0 examples" in shown and "model: none" in shown
    assert "inputs: wek:1, wek:2" in shown and "outputs: param:intensity, tempo" in shown
    assert main(["teach", "train", "--offline", "--scene", str(scene)]) == 2
    assert "no examples yet" in capsys.readouterr().err
    examples = ExampleSet(["wek:1", "wek:2"], ["param:intensity", "tempo"])
    for i in range(10):  # two looks: low inputs play soft and slow, high ones loud and fast
        hi = i % 2
        examples.add([0.1 + 0.8 * hi, 0.2 + 0.6 * hi], [0.1 + 0.8 * hi, 70.0 + 60.0 * hi], i)
    examples.save(tmp_path / "wektaught.examples.json")
    assert main(["teach", "train", "--offline", "--scene", str(scene)]) == 0
    capsys.readouterr()
    assert (tmp_path / "wektaught.model.npz").is_file()
    assert main(["teach", "show", "--scene", str(scene)]) == 0
    shown = capsys.readouterr().out
    assert "10 examples" in shown and "model: knn on 10 examples" in shown


def test_a_scene_without_teach_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teach", "show", "--scene", "gallery"]) == 2
    assert "has no [teach] table" in capsys.readouterr().err
