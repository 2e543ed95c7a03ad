"""Mapping by example in a running engine, driven as Wekinator's users drive Wekinator: a
python-osc client sends /wekinator/control/* and /wek/inputs to `sonify run --wekinator`, a
python-osc server hears /wek/outputs; and the same through /sonify/teach/* on the control
port. The examples and the model land beside the scene."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from tests.conftest import free_udp_port, wait_until
from tests.runtime.test_run_peers import finish, start_run

SCENE = """
name = "wektaught"

[params.intensity]
min = 0.0
max = 1.0
value = 0.5

[teach]
inputs = ["wek:1", "wek:2"]
record_hz = 20

[[teach.outputs]]
name = "param:intensity"
lo = 0.0
hi = 1.0
smoothing_s = 0.05

[[teach.outputs]]
name = "tempo"
lo = 60
hi = 140
smoothing_s = 0.05

[[voices]]
name = "lead"
kind = "notes"
channel = 1
rhythm = { steps = "x.x.", step_beats = 0.5 }
pitch = { value = 60, quantise = "scale" }
velocity = { feature = "param:intensity", out = [30, 110] }
"""


class OutputsPeer:
    """A python-osc server on 127.0.0.1 that keeps every /wek/outputs it hears."""

    def __init__(self) -> None:
        self.received: list[tuple[float, ...]] = []
        dispatcher = Dispatcher()
        dispatcher.map("/wek/outputs", lambda _a, *args: self.received.append(tuple(args)))
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_wekinator_messages_record_train_and_run_a_live_engine(tmp_path: Path) -> None:
    scene = tmp_path / "wektaught.toml"
    scene.write_text(SCENE)
    wek_port, control_port = free_udp_port(), free_udp_port()
    peer = OutputsPeer()
    config = tmp_path / "live.toml"
    config.write_text(f"[wekinator]\nport = {wek_port}\nout_port = {peer.port}\n"
                      f"[control]\noscquery_port = 0\n[http]\nport = 0\n")
    log = tmp_path / "run.log"
    proc = start_run("--config", str(config), "--source", "demo", "--scene", str(scene),
                     "--no-midi", "--wekinator", "--control-port", str(control_port),
                     "--duration", "40", log=log, verbose=True)
    wek = SimpleUDPClient("127.0.0.1", wek_port)
    control = SimpleUDPClient("127.0.0.1", control_port)
    try:
        assert wait_until(lambda: "wekinator" in log.read_text().lower(), 30.0), log.read_text()
        time.sleep(1.0)

        def show(inputs: tuple[float, float], outputs: tuple[float, float]) -> None:
            wek.send_message("/wekinator/control/outputs", list(outputs))
            for _ in range(10):  # inputs keep coming, as a controller sends them
                wek.send_message("/wek/inputs", list(inputs))
                time.sleep(0.05)
            wek.send_message("/wekinator/control/startRecording", [])
            for _ in range(16):
                wek.send_message("/wek/inputs", list(inputs))
                time.sleep(0.05)
            wek.send_message("/wekinator/control/stopRecording", [])
            time.sleep(0.2)

        show((0.1, 0.9), (0.2, 70.0))
        show((0.9, 0.1), (0.9, 130.0))
        wek.send_message("/wekinator/control/train", [])
        assert wait_until(lambda: "trained knn" in log.read_text(), 20.0), log.read_text()
        wek.send_message("/wekinator/control/startRunning", [])
        for inputs, want in (((0.1, 0.9), (0.2, 70.0)), ((0.9, 0.1), (0.9, 130.0))):
            def heard(want: tuple[float, float] = want,
                      inputs: tuple[float, float] = inputs) -> bool:
                wek.send_message("/wek/inputs", list(inputs))
                last = peer.received[-1:] or [()]
                return len(last[0]) == 2 and abs(last[0][0] - want[0]) < 0.05 and abs(
                    last[0][1] - want[1]) < 3.0
            assert wait_until(heard, 15.0, 0.05), (peer.received[-3:], log.read_text()[-2000:])
        # the same engine, through sonify's own control port: stop the model, clear
        control.send_message("/sonify/teach/run", [0])
        control.send_message("/sonify/teach/clear", [])
        assert wait_until(lambda: "deleted" in log.read_text(), 10.0), log.read_text()[-2000:]
    finally:
        proc.terminate()
        text = finish(proc, log)
        peer.close()
    assert (tmp_path / "wektaught.model.npz").is_file(), text[-2000:]
    assert (tmp_path / "wektaught.examples.json").is_file()
    assert "Traceback" not in text
