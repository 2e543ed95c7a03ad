"""The health server over plain HTTP on 127.0.0.1, with a fake engine behind it."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sonify.commands import (
    Command,
    Freeze,
    Learn,
    Mute,
    Panic,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
)
from sonify.install.health.metrics import Metrics
from sonify.install.health.server import (
    LOCKOUT_S,
    MAX_FAILURES,
    MIN_TOKEN_LENGTH,
    HealthServer,
    is_loopback,
    validate_command,
)
from tests.health.fakes import SCENES, VOICES, FakeEngine

TOKEN = "s3cret-token-0123456789"  # MIN_TOKEN_LENGTH is 16


class Client:
    def __init__(self, server: HealthServer) -> None:
        self.port = server.port

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get_json(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, _, body = self.request("GET", path, **kw)
        return status, json.loads(body)

    def command(self, name: str, arg: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _, body = self.request("POST", "/api/command", {"name": name, "arg": arg}, **kw)
        return status, json.loads(body)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def make_server(engine: FakeEngine, metrics: Metrics, **kw: Any) -> HealthServer:
    return HealthServer("127.0.0.1", 0, health=engine.health, state=engine.state,
                        thumbnail=engine.thumbnail, command=engine.command, metrics=metrics,
                        scenes=engine.scenes, poll_interval_s=0.02, **kw)


@pytest.fixture
def server(engine: FakeEngine, metrics: Metrics) -> Iterator[HealthServer]:
    with make_server(engine, metrics) as srv:
        yield srv


@pytest.fixture
def client(server: HealthServer) -> Client:
    return Client(server)


def test_port_zero_picks_a_free_port_on_loopback(server: HealthServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_health_is_200_when_healthy_and_503_when_not(client: Client,
                                                     engine: FakeEngine) -> None:
    status, body = client.get_json("/health")
    assert status == 200 and body["ok"] is True and body["source"]["name"] == "demo"
    engine.ok = False
    status, body = client.get_json("/health")
    assert status == 503 and body["ok"] is False


def test_metrics_are_prometheus_text(client: Client, metrics: Metrics) -> None:
    metrics.frame(0.002)
    metrics.observe_lateness_batch([0.0002, 0.001])
    status, headers, body = client.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"sonify_frames", "sonify_dispatch_lateness_seconds", "sonify_uptime_seconds"} <= names


def test_state_is_json_with_nan_as_null(client: Client) -> None:
    status, state = client.get_json("/api/state")
    assert status == 200
    assert state["scene"] == "calm" and state["voices"] == VOICES
    assert state["features"]["motion"] is None  # NaN is not JSON
    status, scenes = client.get_json("/api/scenes")
    assert status == 200 and scenes == SCENES


def test_thumbnail_is_a_jpeg_or_204(client: Client, engine: FakeEngine) -> None:
    status, headers, body = client.request("GET", "/thumbnail.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert body[:3] == b"\xff\xd8\xff" and headers["cache-control"] == "no-store"
    engine.thumb = None
    status, _, body = client.request("GET", "/thumbnail.jpg")
    assert status == 204 and body == b""


def test_the_page_is_self_contained(client: Client) -> None:
    status, headers, body = client.request("GET", "/")
    page = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert 'id="launch"' in page and 'id="panic"' in page
    for asset in ("page.js", "page.css"):  # its own files, from this server, and nothing else
        assert client.request("GET", "/" + asset)[0] == 200


def test_unknown_path_is_404(client: Client) -> None:
    status, body = client.get_json("/nope")
    assert status == 404 and "nope" in body["error"]


@pytest.mark.parametrize(("name", "arg", "issued", "answer"), [
    ("scene", "storm", SetScene("storm"), "storm"),
    ("mute", {"voice": "bass", "muted": True}, Mute("bass", True),
     {"voice": "bass", "muted": True}),
    ("mute", ["lead", 0], Mute("lead", False), {"voice": "lead", "muted": False}),
    ("freeze", True, Freeze(True), True),
    ("panic", None, Panic(), None),
    ("tempo", 120, SetTempo(120.0), 120.0),
    ("param", {"name": "cutoff", "value": 440}, SetParam("cutoff", 440),
     {"name": "cutoff", "value": 440}),
    ("param", ["density", 0.25], SetParam("density", 0.25), {"name": "density", "value": 0.25}),
    ("master", 0.5, SetMaster(0.5), 0.5),
    ("learn", "space", Learn("space"), "space"),
    ("learn", "tempo", Learn("tempo"), "tempo"),
])
def test_valid_commands_reach_the_runtime(client: Client, engine: FakeEngine, name: str,
                                          arg: Any, issued: Command, answer: Any) -> None:
    status, body = client.command(name, arg)
    assert status == 200 and body == {"ok": True, "name": name, "arg": answer}
    assert engine.seen() == [issued]


@pytest.mark.parametrize(("name", "arg", "reason", "words"), [
    ("scene", "nowhere", "unknown_scene", "calm, storm, night"),
    ("scene", 3, "wrong_type", "scene name"),
    ("mute", {"voice": "drums", "muted": True}, "unknown_voice", "bass, lead"),
    ("mute", "bass", "wrong_type", "voice"),
    ("mute", ["bass", "yes"], "wrong_type", "true or false"),
    ("freeze", "please", "wrong_type", "true or false"),
    ("tempo", 1000, "out_of_range", "20..300"),
    ("tempo", True, "wrong_type", "number"),
    ("reboot", None, "unknown_command", "scene, mute"),
    ("param", ["resonance", 0.5], "unknown_param", "cutoff, density, space"),
    ("param", ["cutoff", 10], "out_of_range", "200..8000"),
    ("param", {"name": "density"}, "wrong_type", "number"),
    ("master", 2, "out_of_range", "0..1"),
    ("learn", "colour", "unknown_param", "tempo, master"),
    ("transpose", 3, "unknown_command", "scene, mute, freeze, panic, tempo, param"),
])
def test_bad_commands_are_400_with_a_message_and_counted(
        client: Client, engine: FakeEngine, metrics: Metrics, name: str, arg: Any,
        reason: str, words: str) -> None:
    status, body = client.command(name, arg)
    assert status == 400 and body["ok"] is False and body["reason"] == reason
    assert words in body["error"]
    assert engine.seen() == []
    text = metrics.render().decode()
    assert f'sonify_control_rejected_total{{reason="{reason}"}} 1.0' in text


def test_malformed_requests_are_refused(client: Client, engine: FakeEngine) -> None:
    status, _, body = client.request("POST", "/api/command", raw=b"{not json",
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and b"not JSON" in body
    status, _, _ = client.request("POST", "/api/command", raw=b'["scene", "storm"]',
                                  headers={"Content-Type": "application/json"})
    assert status == 400
    # a plain-text body is what a cross-site form can send without a preflight
    status, _, _ = client.request("POST", "/api/command", raw=b'{"name": "panic"}',
                                  headers={"Content-Type": "text/plain"})
    assert status == 415
    status, _, _ = client.request("POST", "/api/command", raw=b"x" * 5000,
                                  headers={"Content-Type": "application/json"})
    assert status == 413
    assert engine.seen() == []


def test_commands_from_another_site_are_refused(client: Client, engine: FakeEngine) -> None:
    status, body = client.command("panic", headers={"Origin": "http://evil.example"})
    assert status == 403 and engine.seen() == []
    status, body = client.command("panic",
                                  headers={"Origin": f"http://127.0.0.1:{client.port}"})
    assert status == 200 and engine.seen() == [Panic()]


def test_a_rebound_host_name_is_refused_on_loopback(client: Client) -> None:
    status, body = client.get_json("/api/state", headers={"Host": "evil.example"})
    assert status == 403
    status, _ = client.get_json("/api/state", headers={"Host": f"localhost:{client.port}"})
    assert status == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.168.1.20", "::", "box.local"])
def test_a_non_loopback_address_requires_a_token(engine: FakeEngine, host: str) -> None:
    with pytest.raises(ValueError, match="token"):
        HealthServer(host, 0, health=engine.health, state=engine.state, command=engine.command)
    srv = HealthServer(host, 0, health=engine.health, state=engine.state,
                       command=engine.command, token=TOKEN)  # not started: nothing is exposed
    assert srv.loopback is False


def test_loopback_names() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "", "10.0.0.1", "example.com", "::"]))


def test_with_a_token_every_request_needs_it(engine: FakeEngine, metrics: Metrics) -> None:
    with make_server(engine, metrics, token=TOKEN) as srv:
        c = Client(srv)
        for path in ("/", "/health", "/metrics", "/api/state", "/thumbnail.jpg"):
            status, headers, _ = c.request("GET", path)
            assert status == 401, path
            assert headers["www-authenticate"].startswith("Bearer")
        assert c.command("panic")[0] == 401
        assert c.request("GET", "/api/state?" + urlencode({"token": "wrong"}))[0] == 401
        assert c.request("GET", "/api/state",
                         headers={"Authorization": "Bearer wrong"})[0] == 401
        assert engine.seen() == []
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert c.request("GET", "/api/state", headers=auth)[0] == 200
        assert c.request("GET", "/health", headers=auth)[0] == 200
        assert c.command("panic", headers=auth)[0] == 200
        assert c.command("scene", "night", headers=auth)[0] == 200
        assert engine.seen() == [Panic(), SetScene("night")]
        assert 'sonify_control_rejected_total{reason="unauthorized"}' in metrics.render().decode()


@pytest.mark.parametrize(("what", "path"), [
    ("state", "/api/state"), ("health", "/health"), ("thumbnail", "/thumbnail.jpg"),
    ("scenes", "/api/scenes"),
])
def test_a_failing_callback_is_a_500_and_the_server_survives(
        client: Client, engine: FakeEngine, caplog: pytest.LogCaptureFixture,
        what: str, path: str) -> None:
    engine.fail.add(what)
    with caplog.at_level(logging.ERROR, logger="sonify.install.health.server"):
        for _ in range(3):
            status, body = client.get_json(path)
            assert status == 500 and f"{what} exploded" in body["error"]
    assert len([r for r in caplog.records if "exploded" in r.getMessage()]) == 1  # rate-limited
    engine.fail.clear()
    assert client.request("GET", path)[0] == 200


def test_a_failing_command_sink_is_a_500(client: Client, engine: FakeEngine) -> None:
    engine.fail.add("command")
    status, body = client.command("panic")
    assert status == 500 and "command exploded" in body["error"]
    engine.fail.clear()
    assert client.command("panic")[0] == 200


def test_concurrent_clients(client: Client, engine: FakeEngine) -> None:
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(20):
                assert client.request("GET", "/api/state")[0] == 200
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_stop_releases_the_port(engine: FakeEngine, metrics: Metrics) -> None:
    srv = make_server(engine, metrics).start()
    port = srv.port
    srv.stop()
    srv.stop()  # idempotent
    again = HealthServer("127.0.0.1", port, health=engine.health, state=engine.state,
                         command=engine.command, poll_interval_s=0.02).start()
    try:
        assert again.port == port
    finally:
        again.stop()


def test_validate_command_is_usable_on_its_own() -> None:
    assert validate_command("tempo", 60.5, scenes=[], voices=[]) == SetTempo(60.5)
    with pytest.raises(ValueError, match="unknown scene"):
        validate_command("scene", "x", scenes=["a"], voices=[])
    with pytest.raises(ValueError, match="0..1"):
        validate_command("param", ["a", 2], scenes=[], voices=[], params={"a": (0.0, 1.0)})


def test_a_command_that_needs_no_lookup_does_not_build_the_state(
        client: Client, engine: FakeEngine) -> None:
    engine.fail.add("state")
    engine.fail.add("scenes")
    assert client.command("panic")[0] == 200 and client.command("tempo", 90)[0] == 200
    assert engine.seen() == [Panic(), SetTempo(90.0)]


def test_a_silent_client_does_not_block_others(client: Client) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", client.port), timeout=5) as idle:
        idle.sendall(b"GET /api/st")  # and then nothing
        assert client.request("GET", "/api/state")[0] == 200


# -- the token: length, header, a cookie set once, rate-limited failures -------------------------

def cookie_of(headers: dict[str, str]) -> tuple[str, str]:
    """(name, value) of the Set-Cookie of a response (http.client folds repeated headers)."""
    first = headers["set-cookie"].split(";", 1)[0]
    name, _, value = first.partition("=")
    return name, value


def test_a_token_shorter_than_16_characters_is_refused(engine: FakeEngine) -> None:
    assert MIN_TOKEN_LENGTH == 16
    for short in ("a", "x" * 15):
        with pytest.raises(ValueError, match=r"http\.token.*at least 16"):
            HealthServer("0.0.0.0", 0, health=engine.health, state=engine.state,
                         command=engine.command, token=short)
    HealthServer("0.0.0.0", 0, health=engine.health, state=engine.state,
                 command=engine.command, token="x" * 16)  # 16 is enough


def test_a_token_in_the_address_becomes_a_cookie_and_leaves_the_address(
        engine: FakeEngine, metrics: Metrics) -> None:
    with make_server(engine, metrics, token=TOKEN) as srv:
        c = Client(srv)
        status, headers, _ = c.request("GET", "/?" + urlencode({"token": TOKEN, "t": "1"}))
        assert status == 303
        assert headers["location"] == "/?t=1"  # the token is gone, the rest is kept
        name, value = cookie_of(headers)
        attributes = headers["set-cookie"].lower()
        assert name == f"sonify_token_{srv.port}"
        assert "httponly" in attributes and "samesite=strict" in attributes
        assert "max-age=" in attributes and "path=/" in attributes
        assert TOKEN not in headers["set-cookie"]  # a keyed hash, never the token itself
        cookie = {"Cookie": f"{name}={value}"}
        assert c.request("GET", "/", headers=cookie)[0] == 200
        assert c.request("GET", "/thumbnail.jpg", headers=cookie)[0] == 200
        assert c.command("panic", headers=cookie)[0] == 200
        assert engine.seen() == [Panic()]
        # another value, or the cookie of another engine's port, is no cookie at all
        assert c.request("GET", "/api/state", headers={"Cookie": f"{name}=0{value[1:]}"})[0] \
            == 401
        assert c.request("GET", "/api/state", headers={"Cookie": f"sonify_token_1={value}"})[0] \
            == 401


def test_a_token_in_a_command_address_is_not_accepted(engine: FakeEngine,
                                                      metrics: Metrics) -> None:
    with make_server(engine, metrics, token=TOKEN) as srv:
        c = Client(srv)
        status, _, _ = c.request("POST", "/api/command?" + urlencode({"token": TOKEN}),
                                 {"name": "panic"})
        assert status == 401 and engine.seen() == []


def test_a_stale_cookie_is_cleared(engine: FakeEngine, metrics: Metrics) -> None:
    with make_server(engine, metrics, token=TOKEN) as srv:
        status, headers, _ = Client(srv).request(
            "GET", "/api/state", headers={"Cookie": f"sonify_token_{srv.port}=old"})
        assert status == 401
        assert headers["set-cookie"].startswith(f"sonify_token_{srv.port}=;")
        assert "max-age=0" in headers["set-cookie"].lower()


def test_wrong_tokens_lock_the_address_out_for_a_while(
        engine: FakeEngine, metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    with make_server(engine, metrics, token=TOKEN) as srv:
        srv.limiter.clock = lambda: now[0]
        srv.auth_log.interval_s = 3600.0  # one line per reason for the whole test
        c = Client(srv)
        good = {"Authorization": f"Bearer {TOKEN}"}
        # no token at all is not a guess: a browser asking for /favicon.ico locks nobody out
        for _ in range(2 * MAX_FAILURES):
            assert c.request("GET", "/favicon.ico")[0] == 401
        assert c.request("GET", "/health", headers=good)[0] == 200
        with caplog.at_level(logging.WARNING, logger="sonify.install.health.server"):
            for n in range(MAX_FAILURES):
                wrong = {"Authorization": f"Bearer wrong-token-{n:010d}"}
                assert c.request("GET", "/health", headers=wrong)[0] == 401
        # locked: even the right token is refused (a right guess must not show), with a time
        status, headers, body = c.request("GET", "/health", headers=good)
        assert status == 429 and int(headers["retry-after"]) == int(LOCKOUT_S)
        assert b"too many wrong tokens" in body
        assert c.command("panic", headers=good)[0] == 429 and engine.seen() == []
        # logged, but not a line per attempt
        wrong_lines = [r for r in caplog.records if "a wrong token from" in r.getMessage()]
        assert len(wrong_lines) == 1  # rate-limited: not a line per attempt
        text = metrics.render().decode()
        assert 'sonify_control_rejected_total{reason="rate_limited"} 2.0' in text
        now[0] += LOCKOUT_S + 1
        assert c.request("GET", "/health", headers=good)[0] == 200


def test_failures_spread_over_more_than_a_minute_do_not_lock(engine: FakeEngine,
                                                             metrics: Metrics) -> None:
    now = [0.0]
    with make_server(engine, metrics, token=TOKEN) as srv:
        srv.limiter.clock = lambda: now[0]
        c = Client(srv)
        for _ in range(3 * MAX_FAILURES):
            assert c.request("GET", "/health", headers={"Authorization": "Bearer nope"})[0] \
                == 401
            now[0] += 61.0 / (MAX_FAILURES - 1)  # fewer than MAX_FAILURES in any minute
        assert c.request("GET", "/health", headers={"Authorization": f"Bearer {TOKEN}"})[0] \
            == 200


def test_the_token_never_reaches_the_log(engine: FakeEngine, metrics: Metrics,
                                         caplog: pytest.LogCaptureFixture) -> None:
    with make_server(engine, metrics, token=TOKEN) as srv, \
            caplog.at_level(logging.DEBUG, logger="sonify.install.health.server"):
        Client(srv).request("GET", "/?" + urlencode({"token": TOKEN}))
        Client(srv).request("GET", "/?" + urlencode({"token": "a-wrong-token-here"}))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "token=***" in text
    assert TOKEN not in text and "a-wrong-token-here" not in text
