"""OSCQuery's WebSocket: a real websockets client LISTENs and IGNOREs; values come as OSC."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sonify.control.oscquery import OscQueryServer, SonifyTree
from tests.conftest import wait_until
from tests.control.test_oscquery import OSC_PORT, Engine, get, get_json


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def server(engine: Engine) -> Iterator[OscQueryServer]:
    tree = SonifyTree(state=engine.state, scenes=engine.scenes, params=engine.params,
                      voices=engine.voices, features=engine.features, osc_port=OSC_PORT)
    srv = OscQueryServer(tree, osc_port=OSC_PORT, port=0, push_interval_s=0.01)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def ws(server: OscQueryServer, **kwargs: Any) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}/", open_timeout=5, proxy=None, **kwargs)


def command(conn: ClientConnection, verb: str, path: str) -> None:
    conn.send(json.dumps({"COMMAND": verb, "DATA": path}))


def receive(conn: ClientConnection) -> tuple[str, list[Any]]:
    """The next pushed value: a binary frame holding one OSC message."""
    data = conn.recv(timeout=5)
    assert isinstance(data, bytes), data
    message = OscMessage(data)
    return message.address, list(message.params)


def test_listen_sends_the_value_at_once_then_every_change(server: OscQueryServer,
                                                        engine: Engine) -> None:
    with ws(server) as conn:
        command(conn, "LISTEN", "/sonify/tempo")
        assert receive(conn) == ("/sonify/tempo", [96.0])
        with engine.lock:
            engine.state_dict["tempo_bpm"] = 128.5
        assert receive(conn) == ("/sonify/tempo", [128.5])
        with engine.lock:
            engine.state_dict["tempo_bpm"] = 70.0
        assert receive(conn) == ("/sonify/tempo", [70.0])


def test_ignore_stops_the_values(server: OscQueryServer, engine: Engine) -> None:
    with ws(server) as conn:
        command(conn, "LISTEN", "/sonify/tempo")
        assert receive(conn) == ("/sonify/tempo", [96.0])
        command(conn, "IGNORE", "/sonify/tempo")
        command(conn, "LISTEN", "/sonify/scene")  # handled after the IGNORE, in order
        assert receive(conn) == ("/sonify/scene", ["calm"])
        with engine.lock:
            engine.state_dict.update(tempo_bpm=140.0, scene="storm")
        assert receive(conn) == ("/sonify/scene", ["storm"])
        with engine.lock:
            engine.state_dict["scene"] = "calm"
        # a tempo still listened to would have come before this, pushed with "storm"
        assert receive(conn) == ("/sonify/scene", ["calm"])


def test_values_go_out_typed_as_their_nodes(server: OscQueryServer, engine: Engine) -> None:
    with ws(server) as conn:
        for path in ("/sonify/mute/lead", "/sonify/freeze", "/sonify/param/cutoff",
                     "/sonify/feature/brightness"):
            command(conn, "LISTEN", path)
            assert receive(conn) == (path, [{"/sonify/mute/lead": True, "/sonify/freeze": False,
                                             "/sonify/param/cutoff": 0.25,
                                             "/sonify/feature/brightness": 0.5}[path]])
        with engine.lock:
            engine.muted["lead"] = False
        assert receive(conn) == ("/sonify/mute/lead", [False])


def test_a_path_that_appears_later_is_sent_when_it_does(server: OscQueryServer,
                                                        engine: Engine) -> None:
    with ws(server) as conn:
        command(conn, "LISTEN", "/sonify/param/drive")  # the next scene's parameter
        command(conn, "LISTEN", "/sonify/scene")
        assert receive(conn) == ("/sonify/scene", ["calm"])
        with engine.lock:
            engine.state_dict["scene"] = "storm"
            engine.param_values["drive"] = (0.0, 2.0, 1.5)
        assert sorted([receive(conn), receive(conn)]) == [("/sonify/param/drive", [1.5]),
                                                          ("/sonify/scene", ["storm"])]


def test_two_clients_hear_only_what_they_listen_to(server: OscQueryServer,
                                                   engine: Engine) -> None:
    with ws(server) as tempo, ws(server) as scene:
        command(tempo, "LISTEN", "/sonify/tempo")
        command(scene, "LISTEN", "/sonify/scene")
        assert receive(tempo) == ("/sonify/tempo", [96.0])
        assert receive(scene) == ("/sonify/scene", ["calm"])
        with engine.lock:
            engine.state_dict["scene"] = "storm"
        assert receive(scene) == ("/sonify/scene", ["storm"])
        with engine.lock:
            engine.state_dict["tempo_bpm"] = 101.0
        assert receive(tempo) == ("/sonify/tempo", [101.0])  # not the scene


def test_bad_messages_are_ignored_and_the_session_goes_on(server: OscQueryServer) -> None:
    with ws(server) as conn:
        for text in ("not json", json.dumps({"COMMAND": "SHOUT", "DATA": "/sonify/tempo"}),
                     json.dumps({"COMMAND": "LISTEN"}), json.dumps({"DATA": "/x"}),
                     json.dumps({"COMMAND": "LISTEN", "DATA": "no-slash"}), "[]"):
            conn.send(text)
        conn.send(b"\x00\x01binary")
        command(conn, "LISTEN", "/sonify/tempo")
        assert receive(conn) == ("/sonify/tempo", [96.0])


def test_a_failing_callback_is_counted_and_pushing_resumes(server: OscQueryServer,
                                                           engine: Engine) -> None:
    with ws(server) as conn:
        engine.fail_with = RuntimeError("runtime is reloading")
        command(conn, "LISTEN", "/sonify/tempo")
        assert wait_until(lambda: server.failures >= 2, 5)
        engine.fail_with = None
        assert receive(conn) == ("/sonify/tempo", [96.0])


def test_the_http_tree_still_answers_beside_websockets(server: OscQueryServer) -> None:
    with ws(server) as conn:
        command(conn, "LISTEN", "/sonify/tempo")
        assert receive(conn) == ("/sonify/tempo", [96.0])
        assert get_json(server, "/sonify/tempo?VALUE") == {"VALUE": [96.0]}
        assert get_json(server, "/?HOST_INFO")["EXTENSIONS"]["LISTEN"] is True
        assert get(server, "/sonify/tempo?LISTEN")[0] == 400  # LISTEN is not an HTTP query


def test_stop_closes_the_websockets(engine: Engine) -> None:
    tree = SonifyTree(state=engine.state, scenes=engine.scenes, params=engine.params,
                      voices=engine.voices)
    srv = OscQueryServer(tree, osc_port=OSC_PORT, port=0)
    srv.start()
    try:
        with ws(srv) as conn:
            command(conn, "LISTEN", "/sonify/tempo")
            assert receive(conn) == ("/sonify/tempo", [96.0])
            srv.stop()
            with pytest.raises(ConnectionClosedOK):
                conn.recv(timeout=5)
            assert conn.close_code == 1001
    finally:
        srv.stop()
    assert not srv.running and srv.hub.sessions == 0


def test_a_web_page_elsewhere_may_not_open_it(server: OscQueryServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(server, origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        ws(server, origin="null")  # type: ignore[arg-type]
    with ws(server, origin=f"http://localhost:{server.port}") as conn:  # type: ignore[arg-type]
        command(conn, "LISTEN", "/sonify/tempo")
        assert receive(conn) == ("/sonify/tempo", [96.0])
    server.host = "192.0.2.10"  # judged as if bound to a LAN address (no test binds the LAN)
    assert server.origin_allowed("http://192.0.2.10:8765")
    assert server.origin_allowed(f"http://{socket.gethostname().split('.')[0].lower()}.local")
    assert not server.origin_allowed("http://203.0.113.5")


def test_a_broken_upgrade_is_refused_and_the_server_goes_on(server: OscQueryServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n")  # no Sec-WebSocket-Key
        reply = conn.recv(4096)
    assert reply.split(b" ", 2)[1] in (b"400", b"426")
    assert get_json(server, "/sonify/tempo?VALUE") == {"VALUE": [96.0]}


def test_addresses_added_later_are_described_and_can_be_listened_to(
        monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    """The room left for /norm variants and sent addresses: data, no code in the tree."""
    from sonify.control import oscquery_tree
    from sonify.control.osc_server import ADDRESS_SPACE

    space = [*ADDRESS_SPACE,
             {"path": "/sonify/tempo/norm", "types": "f", "range": (0.0, 1.0), "access": 3,
              "description": "the tempo as 0..1 of 20..300 BPM",
              "value": lambda state: [(float(state["tempo_bpm"]) - 20) / 280]},
             {"path": "/sonify/param/{name}/norm", "types": "f", "range": (0.0, 1.0),
              "access": 3, "description": "a parameter as 0..1 of its range",
              "value": lambda name, p: [(p[2] - p[0]) / (p[1] - p[0])]}]
    monkeypatch.setattr(oscquery_tree, "ADDRESS_SPACE", space)
    sends = [{"path": "/sonify/note", "types": "siiff", "access": 0,
              "description": "a note: voice, channel, pitch, velocity, duration_s"}]
    tree = SonifyTree(state=engine.state, scenes=engine.scenes, params=engine.params,
                      voices=engine.voices, sends=lambda: sends)
    with OscQueryServer(tree, osc_port=OSC_PORT, port=0, push_interval_s=0.01) as srv:
        norm = get_json(srv, "/sonify/tempo/norm")
        assert (norm["TYPE"], norm["ACCESS"], norm["RANGE"]) == ("f", 3, [{"MIN": 0.0,
                                                                            "MAX": 1.0}])
        assert norm["VALUE"] == [pytest.approx((96.0 - 20) / 280)]
        assert get_json(srv, "/sonify/tempo?VALUE") == {"VALUE": [96.0]}  # still a method
        assert get_json(srv, "/sonify/param/swing/norm?VALUE") == {"VALUE": [0.5]}
        note = get_json(srv, "/sonify/note")
        assert (note["TYPE"], note["ACCESS"]) == ("siiff", 0) and "VALUE" not in note
        with ws(srv) as conn:
            command(conn, "LISTEN", "/sonify/tempo")
            assert receive(conn) == ("/sonify/tempo", [96.0])
            command(conn, "LISTEN", "/sonify/param/cutoff/norm")
            assert receive(conn) == ("/sonify/param/cutoff/norm", [0.25])
