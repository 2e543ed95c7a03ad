"""`sonify run` played like an instrument: oscsend (liblo-tools) and a python-osc client drive
the OSC control server, OSCQuery reports the state, JACK's jack_midi_dump hears the result."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from tests.conftest import JackServer, MidiDump, free_udp_port, require_program, wait_until
from tests.runtime.test_run_peers import SONIFY, finish, notes_balance, panic_seen, start_run


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Controller:
    """A performer's OSC client: sends with oscsend, asks /sonify/status from its own socket."""

    def __init__(self, port: int, oscquery_port: int) -> None:
        self.port = port
        self.oscquery_port = oscquery_port
        self.oscsend = require_program("oscsend", "liblo-tools")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)

    def send(self, address: str, *typed: str) -> None:
        subprocess.run([self.oscsend, "localhost", str(self.port), address, *typed], check=True,
                       timeout=10, capture_output=True)

    def raw(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def status(self) -> dict[str, object] | None:
        self.raw(OscMessageBuilder("/sonify/status").build().dgram)
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return None
        msg = OscMessage(data)
        return dict(zip(["scene", "tempo_bpm", "mood", "fps", "frozen"], msg.params, strict=True))

    def query(self, path: str) -> object:
        url = f"http://127.0.0.1:{self.oscquery_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    def wait_status(self, pred: object, timeout_s: float = 15.0) -> dict[str, object]:
        seen: list[dict[str, object]] = []

        def ok() -> bool:
            st = self.status()
            if st is not None:
                seen.append(st)
            return st is not None and pred(st)  # type: ignore[operator]

        assert wait_until(ok, timeout_s, 0.2), f"status never matched; last {seen[-1:]}"
        return seen[-1]


def test_osc_control_drives_a_running_engine(jack_server: JackServer, midi_dump: MidiDump,
                                              tmp_path: Path) -> None:
    port, oq_port = free_udp_port(), free_tcp_port()
    config = tmp_path / "live.toml"
    config.write_text(f'[scene]\nquantize = "beat"\n[control]\noscquery_port = {oq_port}\n')
    log = tmp_path / "run.log"
    proc = start_run("--config", str(config), "--source", "demo", "--scene", "energize",
                     "--midi-api", "jack", "--midi", midi_dump.port, "--control-port", str(port),
                     env=jack_server.env, log=log)
    ctl = Controller(port, oq_port)
    try:
        assert wait_until(lambda: notes_balance(midi_dump.messages())[0] >= 4, 40.0, 0.2), \
            log.read_text()
        first = ctl.wait_status(lambda st: st["scene"] == "energize")
        assert first["fps"] > 0 and first["frozen"] == 0

        ctl.send("/sonify/scene", "s", "city")
        ctl.wait_status(lambda st: st["scene"] == "city")
        ctl.send("/sonify/tempo", "f", "100")
        ctl.wait_status(lambda st: abs(st["tempo_bpm"] - 100.0) < 0.01)
        ctl.send("/sonify/freeze", "i", "1")
        ctl.wait_status(lambda st: st["frozen"] == 1)
        ctl.send("/sonify/mute/stabs", "i", "1")
        ctl.send("/sonify/param/stabs", "f", "0.2")
        assert wait_until(lambda: ctl.query("/sonify/mute/stabs?VALUE") == {"VALUE": [True]}
                          and abs(ctl.query("/sonify/param/stabs?VALUE")["VALUE"][0] - 0.2)
                          < 1e-6,  # sent as a float32
                          10.0, 0.2), ctl.query("/sonify")

        before = ctl.status()
        # fuzz: malformed packets, unknown addresses, wrong types, out of range values
        rng = random.Random(7)
        junk = [b"", b"\x00" * 3, b"/sonify/tempo\x00\x00\x00,f\x00\x00\x42",
                b"#bundle\x00" + b"\xff" * 12, OscMessageBuilder("/sonify/nope").build().dgram]
        junk += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
                 for _ in range(200)]
        for data in junk:
            ctl.raw(data)
        for address, typed in [("/sonify/tempo", ["f", "9999"]), ("/sonify/tempo", ["s", "x"]),
                               ("/sonify/scene", ["s", "no-such-scene"]),
                               ("/sonify/mute/nobody", ["i", "1"]),
                               ("/sonify/freeze", ["i", "7"])]:
            ctl.send(address, *typed)
        after = ctl.wait_status(lambda st: True)
        assert before is not None
        assert {k: after[k] for k in ("scene", "tempo_bpm", "frozen")} == \
            {k: before[k] for k in ("scene", "tempo_bpm", "frozen")}

        n_before = len(midi_dump.messages())
        ctl.send("/sonify/panic")
        assert wait_until(lambda: panic_seen(midi_dump.messages()[n_before:]), 10.0, 0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
    output = finish(proc, log)
    assert proc.returncode == 0, output
    ons, hanging = notes_balance(midi_dump.messages())
    assert ons > 0 and not hanging, f"note-ons without note-off: {hanging}"


def test_control_port_zero_turns_the_server_off_and_a_port_turns_it_on() -> None:
    port = free_udp_port()
    outputs = []
    for flag in ("0", str(port)):
        done = subprocess.run([*SONIFY, "-v", "run", "--source", "demo", "--no-midi",
                               "--control-port", flag, "--duration", "2"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stderr)
    assert "OSC control listening" not in outputs[0]
    assert f"OSC control listening on 127.0.0.1:{port}" in outputs[1]


def test_a_taken_control_port_is_reported_and_the_show_goes_on() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        done = subprocess.run([*SONIFY, "run", "--source", "demo", "--no-midi",
                               "--control-port", str(port), "--duration", "2"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"port {port} is taken (UDP 127.0.0.1:{port})" in done.stderr
    assert "--control-port" in done.stderr  # the message names the option that moves it
