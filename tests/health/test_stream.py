"""The page's push stream: server-sent events of the published state, over plain HTTP."""

from __future__ import annotations

import http.client
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sonify.install.health.metrics import Metrics
from sonify.install.health.page import ASSETS, PAGE_HTML
from sonify.install.health.server import HealthServer
from sonify.install.health.stream import RETRY_MS, StatePush, sse_event
from tests.health.fakes import FakeEngine

TOKEN = "stream-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def test_an_event_is_data_lines_and_a_blank_line() -> None:
    assert sse_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert sse_event(b"x\ny", "problem") == b"event: problem\ndata: x\ndata: y\n\n"


class Counter:
    """A state that changes at every read."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> dict[str, Any]:
        self.n += 1
        return {"frames": self.n}


def collect(push: StatePush, events: int) -> list[bytes]:
    """What ``serve`` writes until ``events`` events are out (then the push is stopped)."""
    written: list[bytes] = []

    def write(data: bytes) -> None:
        written.append(data)
        if len(written) > events:
            push.stop()

    push.serve(write)
    return written


def test_serve_pushes_the_state_until_stopped() -> None:
    push = StatePush(Counter(), interval_s=0.001)
    written = collect(push, 3)
    assert written[0] == f"retry: {RETRY_MS}\n\n".encode()
    assert [json.loads(w.removeprefix(b"data: ")) for w in written[1:]] == [
        {"frames": 1}, {"frames": 2}, {"frames": 3}]
    assert push.pushed == 3


def test_a_failing_state_is_an_event_and_the_stream_goes_on() -> None:
    calls: list[Exception] = []
    state = iter([RuntimeError("starting"), {"ok": 1}])

    def flaky() -> dict[str, Any]:
        item = next(state)
        if isinstance(item, Exception):
            raise item
        return item

    push = StatePush(flaky, interval_s=0.001, on_error=calls.append)
    written = collect(push, 2)
    assert written[1] == b'event: problem\ndata: {"error":"RuntimeError: starting"}\n\n'
    assert written[2] == b'data: {"ok":1}\n\n'
    assert len(calls) == 1


def test_a_client_that_hangs_up_ends_its_stream_quietly() -> None:
    def gone(data: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    StatePush(Counter(), interval_s=0.001).serve(gone)  # returns, raises nothing


def test_slots_are_limited() -> None:
    push = StatePush(Counter(), max_clients=2)
    assert push.claim() and push.claim() and not push.claim()
    push.release()
    assert push.claim() and push.clients == 2
    push.stop()
    push.release()
    assert not push.claim()  # a stopping server takes no new stream


# -- over HTTP --------------------------------------------------------------------------------

@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


def serve(engine: FakeEngine, **kw: Any) -> HealthServer:
    return HealthServer("127.0.0.1", 0, health=engine.health, state=engine.state,
                        command=engine.command, metrics=Metrics(), scenes=engine.scenes,
                        poll_interval_s=0.02, **kw).start()


@pytest.fixture
def server(engine: FakeEngine) -> Iterator[HealthServer]:
    srv = serve(engine, push_interval_s=0.02)
    try:
        yield srv
    finally:
        srv.stop()


def open_stream(server: HealthServer, headers: dict[str, str] | None = None
                ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/stream", headers=headers or {})
    return conn, conn.getresponse()


def read_events(resp: http.client.HTTPResponse, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        line = resp.readline()
        assert line, "the stream ended early"
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
    return events


def test_the_stream_pushes_the_state_as_it_moves(server: HealthServer) -> None:
    conn, resp = open_stream(server)
    try:
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/event-stream"
        assert resp.getheader("Cache-Control") == "no-store"
        events = read_events(resp, 2)
        assert events[0]["scene"] == "calm" and events[0]["features"]["motion"] is None
        # the frame count moves from one push to another (a few reads at most)
        for _ in range(200):
            if read_events(resp, 1)[0]["frames"] > events[0]["frames"]:
                break
        else:
            pytest.fail("the frame count never moved in 200 pushes")
    finally:
        conn.close()


def test_stop_ends_open_streams(engine: FakeEngine) -> None:
    srv = serve(engine, push_interval_s=0.02)
    conn, resp = open_stream(srv)
    try:
        read_events(resp, 1)
        srv.stop()
        while resp.readline():  # returns b"" at the end: the server closed it
            pass
        assert srv.push.clients == 0
    finally:
        conn.close()
        srv.stop()


def test_too_many_streams_are_told_to_come_back(engine: FakeEngine) -> None:
    srv = serve(engine, stream_clients=1)
    first, resp = open_stream(srv)
    try:
        read_events(resp, 1)
        second, refused = open_stream(srv)
        assert refused.status == 503 and refused.getheader("Retry-After") == "1"
        assert "streams" in json.loads(refused.read())["error"]
        second.close()
    finally:
        first.close()
        srv.stop()


def test_the_stream_needs_the_token(engine: FakeEngine) -> None:
    srv = serve(engine, token=TOKEN)
    try:
        conn, resp = open_stream(srv)
        assert resp.status == 401
        conn.close()
        conn, resp = open_stream(srv, {"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200 and read_events(resp, 1)[0]["scene"] == "calm"
        conn.close()
    finally:
        srv.stop()


def test_the_page_loads_only_its_own_files(server: HealthServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        csp = resp.getheader("Content-Security-Policy")
        assert "script-src 'self'" in csp and "unsafe" not in csp
        assert 'src="page.js"' in PAGE_HTML and 'href="page.css"' in PAGE_HTML
        for path, (body, content_type) in ASSETS.items():
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == body
            assert resp.getheader("Content-Type") == content_type
        assert b"EventSource" in ASSETS["/page.js"][0]
        assert b"setInterval(poll" not in ASSETS["/page.js"][0]
    finally:
        conn.close()


def test_the_page_files_ship_in_the_wheel() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = data["package-data"]["sonify.install.health"]
    static = ROOT / "engine" / "sonify" / "install" / "health" / "static"
    shipped = {p for pattern in patterns for p in static.parent.glob(pattern)}
    assert {static / "page.html", static / "page.css", static / "page.js"} <= shipped
