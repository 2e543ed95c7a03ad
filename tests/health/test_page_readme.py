"""The README's performance page section, run as written against a real running engine."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sonify.config import Config, load_config
from sonify.install.health.server import HealthServer
from sonify.live.runtime import Runtime
from sonify.outputs.recording import RecordingOutput
from tests.conftest import require_program, wait_until

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("### The performance page", 1)[1].split("\n## ", 1)[0]


def block(lang: str) -> str:
    (found,) = re.findall(rf"```{lang}\n(.*?)```", SECTION, re.S)
    return found


@pytest.fixture
def gallery() -> Iterator[tuple[Runtime, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 320, 180
    c.scene.name = "gallery"
    c.scene.watch = False
    c.control.port = 0
    c.http.port = port
    rt = Runtime(c, [RecordingOutput()])
    runner = threading.Thread(target=rt.run, args=(60.0,), daemon=True)
    runner.start()

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        assert wait_until(listening, 30.0)
        yield rt, port
    finally:
        rt.stop()
        runner.join(10.0)


def test_the_readme_commands_set_a_param_and_read_the_stream(
        gallery: tuple[Runtime, int]) -> None:
    require_program("curl", "curl")
    rt, port = gallery
    script = block("sh").replace("8765", str(port))
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    answer, end = json.JSONDecoder().raw_decode(out.stdout)  # curl adds no newline
    stream = out.stdout[end:]
    assert answer == {"ok": True, "name": "param", "arg": {"name": "activity", "value": 0.3}}
    assert wait_until(lambda: rt.performance.player.params["activity"] == 0.3, 10.0)
    assert stream.startswith("retry: 1000\n\ndata: {") and '"scene":"gallery"' in stream


def test_the_readme_phone_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "that.toml"
    path.write_text(block("toml"))
    http = load_config(path).http
    assert http.host == "0.0.0.0" and len(http.token) >= 16
    # the server accepts it (a network address with a token); not started here
    HealthServer(http.host, 0, health=dict, state=dict, command=print, token=http.token)
