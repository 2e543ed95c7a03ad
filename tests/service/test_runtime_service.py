"""The running engine talks to systemd through a fake NOTIFY_SOCKET (a datagram socket the
test binds and reads): READY once the pipeline runs, WATCHDOG pings while the loops beat and
none once the capture loop hangs, STATUS with the scene, STOPPING at the end."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from sonify.config import Config
from sonify.live.runtime import Runtime
from sonify.outputs.recording import RecordingOutput


def test_ready_watchdog_and_a_hung_capture_loop(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # pings wanted every 0.5 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 320, 180
    c.scene.name = "calm"
    c.scene.watch = False
    c.control.port = c.http.port = 0
    c.service.capture_stall_s = 1.0
    c.service.notify_status_s = 1.0
    rt = Runtime(c, [RecordingOutput()])
    hang = threading.Event()
    real = rt.analyzer.analyze

    def analyze(frame: object) -> object:
        if hang.is_set():
            threading.Event().wait()  # a driver call or a kernel that never returns
        return real(frame)  # type: ignore[arg-type]

    rt.analyzer.analyze = analyze  # type: ignore[method-assign]
    got: list[tuple[float, str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            got.append((time.perf_counter(), data.decode()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t0 = time.perf_counter()
    threading.Timer(3.0, hang.set).start()
    try:
        rt.run(7.0)
    finally:
        stop.set()
        reader.join(2.0)
        sock.close()
    texts = [text for _, text in got]
    assert texts[0].startswith("READY=1"), texts[:3]
    pings = [t - t0 for t, text in got if text == "WATCHDOG=1"]
    assert len([p for p in pings if p < 3.0]) >= 3, pings  # healthy: pinging
    assert not [p for p in pings if p > 3.0 + 1.0 + 0.6], pings  # hung: silent after 1 s
    assert any("scene calm" in text for text in texts if text.startswith("STATUS="))
    assert texts[-1].startswith("STOPPING=1")
