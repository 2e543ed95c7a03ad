"""OSCQuery over real HTTP on 127.0.0.1 (urllib): the tree, single attributes, errors, lifecycle."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from sonify.commands import TEMPO_RANGE_BPM
from sonify.control.osc_server import ADDRESS_SPACE, ControlServerError
from sonify.control.oscquery import (
    EXTENSIONS,
    OscQueryServer,
    SonifyTree,
    find_node,
)
from sonify.features.registry import FEATURES, SCALARS

OSC_PORT = 9000


class Engine:
    """The snapshots the runtime would hand over, changeable from the test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state_dict: dict[str, object] = {"scene": "calm", "tempo_bpm": 96.0,
                                              "mood": "calm", "fps": 29.5, "frozen": False}
        self.scene_names = ["storm", "calm"]
        self.param_values: dict[str, tuple[float, float, float]] = {
            "cutoff": (0.0, 1.0, 0.25), "swing": (-0.5, 0.5, 0.0)}
        self.muted = {"bass": False, "lead": True}
        self.feature_values = {spec.name: 0.5 for spec in SCALARS}
        self.fail_with: Exception | None = None

    def state(self) -> dict[str, object]:
        with self.lock:
            if self.fail_with is not None:
                raise self.fail_with
            return dict(self.state_dict)

    def scenes(self) -> list[str]:
        return list(self.scene_names)

    def params(self) -> dict[str, tuple[float, float, float]]:
        with self.lock:
            return dict(self.param_values)

    def voices(self) -> dict[str, bool]:
        with self.lock:
            return dict(self.muted)

    def features(self) -> dict[str, float]:
        with self.lock:
            return dict(self.feature_values)


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def server(engine: Engine) -> Iterator[OscQueryServer]:
    tree = SonifyTree(state=engine.state, scenes=engine.scenes, params=engine.params,
                      voices=engine.voices, features=engine.features, osc_port=OSC_PORT)
    srv = OscQueryServer(tree, osc_port=OSC_PORT, port=0)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def get(server: OscQueryServer, target: str, method: str = "GET") -> tuple[int, dict[str, str],
                                                                           bytes]:
    """(status, headers, body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{target}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def get_json(server: OscQueryServer, target: str) -> Any:
    status, headers, body = get(server, target)
    assert status == 200, (status, body)
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def test_root_lists_every_control_address(server: OscQueryServer) -> None:
    root = get_json(server, "/")
    assert root["FULL_PATH"] == "/"
    assert root["ACCESS"] == 0
    sonify = root["CONTENTS"]["sonify"]
    assert sonify["FULL_PATH"] == "/sonify"
    for entry in ADDRESS_SPACE:  # every documented address, or its family's container
        path = entry["path"].split("/{")[0]
        assert find_node(root, path) is not None, path
    assert set(sonify["CONTENTS"]) >= {"scene", "param", "tempo", "mute", "freeze", "panic",
                                       "status", "feature"}


def test_host_info_says_where_to_send_osc(server: OscQueryServer) -> None:
    info = get_json(server, "/?HOST_INFO")
    assert info["NAME"] == "sonify"
    assert info["OSC_PORT"] == OSC_PORT
    assert info["OSC_TRANSPORT"] == "UDP"
    assert info["EXTENSIONS"] == EXTENSIONS
    assert info["EXTENSIONS"]["VALUE"] and info["EXTENSIONS"]["RANGE"]
    assert info["EXTENSIONS"]["ACCESS"] and info["EXTENSIONS"]["LISTEN"]  # over the WebSocket
    assert "OSC_IP" not in info  # the client uses the address it reached us on


def test_host_info_names_another_osc_address_when_given(engine: Engine) -> None:
    with OscQueryServer(lambda: {"FULL_PATH": "/"}, osc_port=9100, port=0, name="stage-left",
                        osc_ip="192.168.1.20") as srv:
        info = get_json(srv, "/?HOST_INFO")
    assert (info["NAME"], info["OSC_IP"], info["OSC_PORT"]) == ("stage-left", "192.168.1.20", 9100)


def test_tempo_node_is_a_ranged_read_write_float(server: OscQueryServer) -> None:
    node = get_json(server, "/sonify/tempo")
    assert node == {"FULL_PATH": "/sonify/tempo", "TYPE": "f", "ACCESS": 3,
                    "RANGE": [{"MIN": TEMPO_RANGE_BPM[0], "MAX": TEMPO_RANGE_BPM[1]}],
                    "VALUE": [96.0], "DESCRIPTION": node["DESCRIPTION"]}
    assert "beats per minute" in node["DESCRIPTION"]


def test_scene_node_offers_the_known_scenes(server: OscQueryServer) -> None:
    node = get_json(server, "/sonify/scene")
    assert node["TYPE"] == "s"
    assert node["ACCESS"] == 3
    assert node["RANGE"] == [{"VALS": ["calm", "storm"]}]
    assert node["VALUE"] == ["calm"]


def test_nested_param_and_mute_nodes_follow_the_scene(server: OscQueryServer) -> None:
    params = get_json(server, "/sonify/param")
    assert params["ACCESS"] == 0 and set(params["CONTENTS"]) == {"cutoff", "swing"}
    swing = get_json(server, "/sonify/param/swing")
    assert swing["FULL_PATH"] == "/sonify/param/swing"
    assert (swing["TYPE"], swing["ACCESS"]) == ("f", 3)
    assert swing["RANGE"] == [{"MIN": -0.5, "MAX": 0.5}]
    assert swing["VALUE"] == [0.0]
    lead = get_json(server, "/sonify/mute/lead")
    assert (lead["TYPE"], lead["ACCESS"], lead["VALUE"]) == ("T", 3, [True])
    assert lead["RANGE"] == [{"MIN": 0, "MAX": 1}]
    assert get_json(server, "/sonify/mute/bass")["VALUE"] == [False]
    assert get_json(server, "/sonify/mute/lead/")["FULL_PATH"] == "/sonify/mute/lead"


def test_panic_is_write_only_and_status_has_no_value(server: OscQueryServer) -> None:
    panic = get_json(server, "/sonify/panic")
    assert panic["ACCESS"] == 2 and "TYPE" not in panic and "VALUE" not in panic
    status = get_json(server, "/sonify/status")
    assert status["ACCESS"] == 0 and "TYPE" not in status
    assert "sfsfi" in status["DESCRIPTION"]
    freeze = get_json(server, "/sonify/freeze")
    assert (freeze["TYPE"], freeze["ACCESS"], freeze["VALUE"]) == ("T", 3, [False])


def test_features_are_read_only_and_ranged_0_to_1(server: OscQueryServer) -> None:
    features = get_json(server, "/sonify/feature")
    assert set(features["CONTENTS"]) == {spec.name for spec in SCALARS} | {"mood"}
    brightness = get_json(server, "/sonify/feature/brightness")
    assert (brightness["TYPE"], brightness["ACCESS"]) == ("f", 1)
    assert brightness["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}]
    assert brightness["VALUE"] == [0.5]
    assert "luma" in brightness["DESCRIPTION"]
    stars = get_json(server, "/sonify/feature/stars")  # a count: its scale is the registry's
    assert stars["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}]
    assert f"count / {FEATURES['stars'].span[1]:g}, at most 1" in stars["DESCRIPTION"]
    assert "count / 16," in stars["DESCRIPTION"]
    mood = get_json(server, "/sonify/feature/mood")
    assert (mood["TYPE"], mood["ACCESS"], mood["VALUE"]) == ("s", 1, ["calm"])


def test_no_feature_nodes_without_a_feature_stream(engine: Engine) -> None:
    tree = SonifyTree(state=engine.state, scenes=engine.scenes, params=engine.params,
                      voices=engine.voices)
    assert "feature" not in tree()["CONTENTS"]["sonify"]["CONTENTS"]


def test_single_attribute_queries(server: OscQueryServer) -> None:
    assert get_json(server, "/sonify/tempo?VALUE") == {"VALUE": [96.0]}
    assert get_json(server, "/sonify/tempo?TYPE") == {"TYPE": "f"}
    assert get_json(server, "/sonify/scene?RANGE") == {"RANGE": [{"VALS": ["calm", "storm"]}]}
    assert get_json(server, "/sonify/mute/lead?ACCESS") == {"ACCESS": 3}
    assert get_json(server, "/sonify/param/cutoff?FULL_PATH") == {
        "FULL_PATH": "/sonify/param/cutoff"}
    assert set(get_json(server, "/sonify/mute?CONTENTS")["CONTENTS"]) == {"bass", "lead"}


def test_a_known_attribute_the_node_lacks_is_no_content(server: OscQueryServer) -> None:
    status, _, body = get(server, "/sonify/panic?VALUE")
    assert (status, body) == (204, b"")


def test_values_change_between_requests(server: OscQueryServer, engine: Engine) -> None:
    assert get_json(server, "/sonify/tempo?VALUE") == {"VALUE": [96.0]}
    with engine.lock:
        engine.state_dict.update(tempo_bpm=128.5, scene="storm", frozen=True)
        engine.param_values["cutoff"] = (0.0, 1.0, 0.75)
        engine.param_values["drive"] = (0.0, 2.0, 1.0)
        engine.muted["lead"] = False
        engine.feature_values["motion"] = 0.9
    assert get_json(server, "/sonify/tempo?VALUE") == {"VALUE": [128.5]}
    assert get_json(server, "/sonify/scene?VALUE") == {"VALUE": ["storm"]}
    assert get_json(server, "/sonify/freeze?VALUE") == {"VALUE": [True]}
    assert get_json(server, "/sonify/param/cutoff?VALUE") == {"VALUE": [0.75]}
    assert get_json(server, "/sonify/param/drive?RANGE") == {"RANGE": [{"MIN": 0.0, "MAX": 2.0}]}
    assert get_json(server, "/sonify/mute/lead?VALUE") == {"VALUE": [False]}
    assert get_json(server, "/sonify/feature/motion?VALUE") == {"VALUE": [0.9]}


def test_a_value_that_is_not_a_number_is_null_not_broken_json(server: OscQueryServer,
                                                              engine: Engine) -> None:
    with engine.lock:
        engine.feature_values["motion"] = float("nan")
    assert get_json(server, "/sonify/feature/motion?VALUE") == {"VALUE": [None]}


def test_unknown_path_is_404(server: OscQueryServer) -> None:
    for target in ("/nope", "/sonify/mute/drums", "/sonify/tempo/extra", "/sonify/param/x?VALUE"):
        status, headers, body = get(server, target)
        assert status == 404, target
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body)["error"] == 404


def test_unknown_attribute_is_400(server: OscQueryServer) -> None:
    for target in ("/sonify/tempo?BOGUS", "/sonify/tempo?LISTEN", "/sonify?HOST_INFO",
                   "/?value"):
        status, headers, body = get(server, target)
        assert status == 400, target
        assert headers["Content-Type"] == "application/json"
        assert "VALUE" in json.loads(body)["message"]


def test_it_is_read_only(server: OscQueryServer) -> None:
    status, headers, body = get(server, "/sonify/tempo", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert json.loads(body)["error"] == 405
    status, headers, body = get(server, "/sonify/tempo", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_a_failing_callback_is_a_500_and_the_server_survives(
        server: OscQueryServer, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    engine.fail_with = RuntimeError("runtime is reloading")
    with caplog.at_level(logging.WARNING, logger="sonify.control.oscquery"):
        for _ in range(5):
            status, headers, body = get(server, "/sonify/tempo?VALUE")
            assert status == 500
            assert headers["Content-Type"] == "application/json"
            error = json.loads(body)
            assert error["error"] == 500 and "runtime is reloading" in error["message"]
    assert server.failures == 5
    warnings = [r for r in caplog.records if "building the tree" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: one line, not one per request
    assert get_json(server, "/?HOST_INFO")["OSC_PORT"] == OSC_PORT  # needs no callback
    engine.fail_with = None
    assert get_json(server, "/sonify/tempo?VALUE") == {"VALUE": [96.0]}
    assert server.running


def test_a_malformed_snapshot_is_a_500_too(server: OscQueryServer, engine: Engine) -> None:
    with engine.lock:
        engine.param_values["broken"] = (0.0, 1.0)  # type: ignore[assignment]
    status, _, body = get(server, "/sonify/param/cutoff")
    assert status == 500 and "ValueError" in json.loads(body)["message"]


def test_concurrent_requests(server: OscQueryServer) -> None:
    results: list[int] = []

    def client() -> None:
        for _ in range(10):
            results.append(get(server, "/")[0])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 40


def test_stop_frees_the_port(engine: Engine) -> None:
    srv = OscQueryServer(lambda: {"FULL_PATH": "/"}, osc_port=OSC_PORT, port=0)
    srv.start()
    port = srv.port
    assert port != 0 and srv.running
    assert get_json(srv, "/") == {"FULL_PATH": "/"}
    srv.stop()
    assert not srv.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    again = OscQueryServer(lambda: {"FULL_PATH": "/"}, osc_port=OSC_PORT, port=port)
    again.start()  # the same port binds again at once
    try:
        assert get_json(again, "/") == {"FULL_PATH": "/"}
    finally:
        again.stop()
    srv.stop()  # a second stop does nothing


def test_a_taken_port_says_so() -> None:
    with OscQueryServer(lambda: {}, osc_port=OSC_PORT, port=0) as first:
        second = OscQueryServer(lambda: {}, osc_port=OSC_PORT, port=first.port)
        with pytest.raises(ControlServerError, match=f"127.0.0.1:{first.port} \\(TCP\\)"):
            second.start()
        assert not second.running


def test_binds_loopback_unless_told_otherwise() -> None:
    with OscQueryServer(lambda: {}, osc_port=OSC_PORT, port=0) as srv:
        assert srv.host == "127.0.0.1"
        assert srv.url == f"http://127.0.0.1:{srv.port}/"
    with pytest.raises(ValueError, match="0.0.0.0"):
        OscQueryServer(lambda: {}, osc_port=OSC_PORT, host="")
    with pytest.raises(ValueError, match="OSC port"):
        OscQueryServer(lambda: {}, osc_port=0)


def test_http_servers_own_errors_are_json_too(server: OscQueryServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"BREW /sonify HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 501")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"] == 501


# -- who may read it: the Host header (DNS rebinding) and the allow list -------------------------

def get_as(server: OscQueryServer, host: str | None, target: str = "/",
           method: str = "GET") -> int:
    """The status of a request carrying ``Host: host`` (None: no Host header, as HTTP/1.0)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        head = f"{method} {target} HTTP/1.0\r\n" + (f"Host: {host}\r\n" if host else "")
        conn.sendall((head + "\r\n").encode())
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def test_a_rebound_host_name_is_refused_on_loopback(server: OscQueryServer) -> None:
    # a page on evil.example whose DNS now says 127.0.0.1 asks with its own name: refused
    assert get_as(server, f"evil.example:{server.port}") == 403
    assert get_as(server, "evil.example", "/?HOST_INFO") == 403
    assert get_as(server, "evil.example", method="POST") == 403
    for name in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "[::1]", None):
        assert get_as(server, name) == 200, name


def test_bound_elsewhere_it_answers_to_its_addresses_and_names(
        server: OscQueryServer) -> None:
    # served on loopback, judged as if bound to a LAN address (no test binds the LAN)
    server.host = "192.0.2.10"
    server.host_names = ("sonify-box.example",)
    hostname = socket.gethostname().lower()
    for name in ("192.0.2.10:9001", "10.1.2.3", "[fd00::1]:9001", "localhost",
                 "sonify-box.example", hostname, f"{hostname.split('.')[0]}.local"):
        assert get_as(server, name) == 200, name
    assert get_as(server, "evil.example") == 403
    assert get_as(server, "192.0.2.10.evil.example") == 403


def test_the_allow_list_limits_who_may_read(engine: Engine) -> None:
    tree = SonifyTree(state=engine.state, scenes=engine.scenes, params=engine.params,
                      voices=engine.voices, osc_port=OSC_PORT)
    with OscQueryServer(tree, osc_port=OSC_PORT, port=0, allow=["10.0.0.0/8"]) as srv:
        status, _, body = get(srv, "/")
        assert status == 403 and b"not in the allow list" in body
    with OscQueryServer(tree, osc_port=OSC_PORT, port=0, allow=["127.0.0.0/8"]) as srv:
        assert get(srv, "/")[0] == 200
    with pytest.raises(ValueError, match="not an IP address or network"):
        OscQueryServer(tree, osc_port=OSC_PORT, port=0, allow=["box.local"])
