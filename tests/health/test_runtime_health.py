"""The health page of a real running engine, over plain HTTP: /health, /metrics, /api/state and
a command, with the demo source and a recording output."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sonify.config import Config
from sonify.live.runtime import Runtime
from sonify.outputs.recording import RecordingOutput
from tests.conftest import wait_until


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running() -> Iterator[tuple[Runtime, str]]:
    port = free_tcp_port()
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 640, 360
    c.scene.name = "energize"
    c.scene.quantize = "beat"
    c.scene.watch = False
    c.control.port = 0
    c.http.port = port
    rt = Runtime(c, [RecordingOutput()])
    runner = threading.Thread(target=rt.run, args=(60.0,), daemon=True)
    runner.start()
    base = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: _get_status(base + "/health") == 200, 30.0, 0.1)
    try:
        yield rt, base
    finally:
        rt.stop()
        runner.join(10.0)


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_health_reports_every_part(running: tuple[Runtime, str]) -> None:
    rt, base = running
    h = get_json(base + "/health")
    assert h["ok"] is True and h["uptime_s"] >= 0
    assert h["source"]["ok"] and h["source"]["frames"] > 0 and h["source"]["name"]
    assert h["scheduler"]["running"] is True
    assert [o["name"] for o in h["outputs"]] == ["recording"]
    assert h["errors"] == []


def test_metrics_count_frames_and_lateness(running: tuple[Runtime, str]) -> None:
    rt, base = running
    assert wait_until(lambda: rt.scheduler.notes_sent > 3 and rt.status.fps > 0, 20.0, 0.2)
    assert wait_until(lambda: _metric(base, "sonify_dispatch_lateness_seconds_count") > 0,
                      10.0, 0.3)
    assert _metric(base, "sonify_frames_total") > 10
    assert _metric(base, "sonify_notes_total") > 0


def _metric(base: str, name: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return -1.0


def test_a_command_posted_to_the_page_changes_the_scene(running: tuple[Runtime, str]) -> None:
    rt, base = running
    request = urllib.request.Request(base + "/api/command", method="POST",
                                     data=json.dumps({"name": "scene", "arg": "calm"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200
    assert wait_until(lambda: get_json(base + "/api/state")["scene"] == "calm", 15.0, 0.2)
    state = get_json(base + "/api/state")
    assert 0.0 <= min(state["features"].values()) <= max(state["features"].values()) <= 1.0
    bad = urllib.request.Request(base + "/api/command", method="POST",
                                 data=json.dumps({"name": "scene", "arg": "nope"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=5)
    assert err.value.code == 400
    assert rt.scene.name == "calm"
