"""OSCQuery found by mDNS: a real zeroconf browser on loopback sees sonify come and go, and a
`sonify run` announced that way pushes a tempo change to the README's WebSocket listener."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

from sonify.control.announce import OSC_TYPE, OSCQUERY_TYPE, announce_addresses, short_host_name
from sonify.control.oscquery import OscQueryServer, SonifyTree
from tests.conftest import free_udp_port
from tests.control.test_oscquery import OSC_PORT, Engine, get_json
from tests.runtime.test_control_peers import free_tcp_port
from tests.runtime.test_run_peers import finish, start_run

README = (Path(__file__).parents[2] / "README.md").read_text()
Change = tuple[ServiceStateChange, str]


class Browser:
    """A zeroconf ServiceBrowser on loopback, as an OSCQuery client would run one."""

    def __init__(self) -> None:
        self.zc = Zeroconf(interfaces=["127.0.0.1"])
        self.changes: queue.Queue[Change] = queue.Queue()
        self.browser = ServiceBrowser(self.zc, OSCQUERY_TYPE, handlers=[self._on_change])

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        self.changes.put((state_change, name))

    def find(self, port: int, timeout_s: float = 15.0) -> str:
        """The name of the announced OSCQuery service on TCP ``port``."""
        seen: list[Change] = []
        while True:
            change = self.changes.get(timeout=timeout_s)
            seen.append(change)
            state, name = change
            if state is ServiceStateChange.Added:
                info = self.zc.get_service_info(OSCQUERY_TYPE, name, timeout=3000)
                if info is not None and info.port == port:
                    return name
            assert len(seen) < 50, seen

    def wait_removed(self, name: str, timeout_s: float = 15.0) -> None:
        while self.changes.get(timeout=timeout_s) != (ServiceStateChange.Removed, name):
            pass

    def close(self) -> None:
        self.browser.cancel()
        self.zc.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def test_a_browser_finds_sonify_on_loopback_and_sees_it_go(browser: Browser) -> None:
    engine = Engine()
    tree = SonifyTree(state=engine.state, scenes=engine.scenes, params=engine.params,
                      voices=engine.voices, osc_port=OSC_PORT)
    srv = OscQueryServer(tree, osc_port=OSC_PORT, port=0, announce=True)
    srv.start()
    try:
        name = browser.find(srv.port)
        assert name.startswith(f"sonify on {short_host_name()}")
        info = browser.zc.get_service_info(OSCQUERY_TYPE, name, timeout=3000)
        assert info is not None and info.parsed_addresses() == ["127.0.0.1"]
        assert srv.announcer is not None and srv.announcer.registered.wait(15)
        assert srv.announcer.names[0] == name
        osc = browser.zc.get_service_info(OSC_TYPE, srv.announcer.names[1], timeout=3000)
        assert osc is not None and osc.port == OSC_PORT  # the OSC control port, over UDP
        assert osc.name.startswith(f"sonify on {short_host_name()}")
        host, port = info.parsed_addresses()[0], info.port  # what a client does next
        assert get_json(srv, "/?HOST_INFO")["OSC_PORT"] == OSC_PORT
        assert (host, port) == ("127.0.0.1", srv.port)
    finally:
        srv.stop()
    browser.wait_removed(name)  # withdrawn at stop (goodbye packets), not left to expire


def test_addresses_follow_the_bind_host() -> None:
    assert announce_addresses("127.0.0.1") == (["127.0.0.1"], False)
    assert announce_addresses("localhost") == (["127.0.0.1"], False)
    assert announce_addresses("192.0.2.10") == (["192.0.2.10"], False)
    addresses, everywhere = announce_addresses("0.0.0.0")
    assert everywhere and "127.0.0.1" in addresses


def readme_listener(port: int) -> str:
    """The README's WebSocket listener, pointed at ``port``."""
    section = README.split("## Live: control, sync, scene changes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    code = next(b for b in blocks if '"COMMAND": "LISTEN"' in b)
    assert "ws://127.0.0.1:9001/" in code
    return code.replace("ws://127.0.0.1:9001/", f"ws://127.0.0.1:{port}/")


def query(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return json.loads(reply.read())


def test_sonify_run_is_found_and_pushes_a_tempo_change(browser: Browser, tmp_path: Path) -> None:
    control, oscquery = free_udp_port(), free_tcp_port()
    assert "sonify run --source demo --oscquery-port 9001" in README
    log = tmp_path / "run.log"
    proc = start_run("--source", "demo", "--scene", "gallery", "--no-midi", "--http-port", "0",
                     "--control-port", str(control), "--oscquery-port", str(oscquery),
                     "--osc", f"127.0.0.1:{free_udp_port()}", "--duration", "120", log=log)
    listener: subprocess.Popen[str] | None = None
    try:
        browser.find(oscquery, timeout_s=60)  # announced once the services are up
        note = query(oscquery, "/sonify/note")  # what goes to the --osc target is described
        assert (note["TYPE"], note["ACCESS"]) == ("siiff", 0), note
        listener = subprocess.Popen([sys.executable, "-c", readme_listener(oscquery)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert listener.stdout is not None
        first = listener.stdout.readline()  # the current tempo, sent on LISTEN
        assert first.startswith("/sonify/tempo "), (first, listener.stderr.read())
        tempo = OscMessageBuilder("/sonify/tempo")
        tempo.add_arg(133.0, "f")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(tempo.build().dgram, ("127.0.0.1", control))
        lines = [first]
        while "/sonify/tempo 133.0\n" not in lines:
            line = listener.stdout.readline()
            assert line, (lines, log.read_text())
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGINT)
        out = finish(proc, log)
        if listener is not None:
            listener.wait(timeout=30)  # the engine's stop closed the WebSocket: the loop ended
    assert listener.returncode == 0, listener.stderr.read()  # type: ignore[union-attr]
    assert "Traceback" not in out
