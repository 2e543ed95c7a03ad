"""Wekinator compatibility against real python-osc peers on 127.0.0.1: /wek/inputs in,
Wekinator's control messages in as typed commands, /wek/outputs out."""

from __future__ import annotations

import logging
import re
import shlex
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from sonify.cli import build_parser
from sonify.commands import TEACH_ACTIONS, Command, Teach, TeachOutputs, check
from sonify.config import Config
from sonify.control.osc_server import ControlServerError
from sonify.control.wekinator import (
    ACTIONS,
    NOT_SUPPORTED,
    WekinatorServer,
    WekinatorStats,
    outputs_message,
)
from tests.conftest import require_program
from tests.control.test_osc_server import Recorder, poll


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder) -> Iterator[WekinatorServer]:
    with WekinatorServer(recorder, port=0, out_port=9) as srv:
        yield srv


def client(server: WekinatorServer) -> SimpleUDPClient:
    return SimpleUDPClient("127.0.0.1", server.port)


def received(server: WekinatorServer, n: int) -> WekinatorStats:
    assert poll(lambda: server.stats.received >= n), server.stats
    return server.stats


def test_wek_inputs_are_the_latest_values_named_wek_n(server: WekinatorServer) -> None:
    assert server.values() == {}
    c = client(server)
    c.send_message("/wek/inputs", [0.25, 0.5, 1.0])
    received(server, 1)
    assert server.values() == {"wek:1": 0.25, "wek:2": 0.5, "wek:3": 1.0}
    c.send_message("/wek/inputs", [3, -2.5])  # ints are numbers too; the count may change
    received(server, 2)
    assert server.values() == {"wek:1": 3.0, "wek:2": -2.5}
    assert server.stats.inputs == 2 and not server.stats.rejected


def test_every_control_message_arrives_as_a_valid_typed_command(
        server: WekinatorServer, recorder: Recorder) -> None:
    c = client(server)
    for what in ACTIONS:
        c.send_message(f"/wekinator/control/{what}", [])
    c.send_message("/wekinator/control/outputs", [0.25, 64, 1.5])
    calls = recorder.wait_for(len(ACTIONS) + 1)
    assert calls == [Teach("record"), Teach("stop_recording"), Teach("train"), Teach("run"),
                     Teach("stop_running"), Teach("clear"), TeachOutputs((0.25, 64.0, 1.5))]
    for cmd in calls:
        assert check(cmd) is cmd
    assert {c.action for c in calls if isinstance(c, Teach)} <= set(TEACH_ACTIONS)
    assert server.stats.commands == len(calls)


def test_a_recording_session_in_one_bundle_keeps_its_order(
        server: WekinatorServer, recorder: Recorder) -> None:
    """What wekinator-node's trainOnData sends: outputs, inputs, ..., then train."""
    bundle = OscBundleBuilder(IMMEDIATELY)
    for address, args in [("/wekinator/control/startRecording", []),
                          ("/wekinator/control/outputs", [1.0]), ("/wek/inputs", [0.1, 0.9]),
                          ("/wekinator/control/stopRecording", []),
                          ("/wekinator/control/train", [])]:
        msg = OscMessageBuilder(address)
        for a in args:
            msg.add_arg(a, "f")
        bundle.add_content(msg.build())
    client(server).send(bundle.build())
    assert recorder.wait_for(4) == [Teach("record"), TeachOutputs((1.0,)),
                                    Teach("stop_recording"), Teach("train")]
    assert server.values() == pytest.approx({"wek:1": 0.1, "wek:2": 0.9})


def test_wek_outputs_reach_a_python_osc_server(recorder: Recorder) -> None:
    got: list[tuple[str, tuple[float, ...]]] = []
    done = threading.Event()

    def on_outputs(address: str, *args: float) -> None:
        got.append((address, args))
        done.set()

    dispatcher = Dispatcher()
    dispatcher.map("/wek/outputs", on_outputs)
    peer = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=peer.serve_forever, daemon=True)
    thread.start()
    try:
        with WekinatorServer(recorder, port=0, out_port=peer.server_address[1]) as srv:
            assert srv.send_outputs([0.5, 2.0, -1.0])
            assert done.wait(2.0)
            assert srv.stats.sent == 1
    finally:
        peer.shutdown()
        peer.server_close()
    assert got == [("/wek/outputs", (0.5, 2.0, -1.0))]


def test_outputs_to_a_dead_peer_or_before_start_never_raise(recorder: Recorder) -> None:
    srv = WekinatorServer(recorder, port=0, out_port=9)
    assert srv.send_outputs([1.0]) is False  # not started: nowhere to send from
    with srv:
        for _ in range(20):  # nobody listens on port 9: ICMP errors come back, never raise
            srv.send_outputs([0.1, 0.2])
    assert srv.stats.sent + srv.stats.send_failed == 21


def test_outputs_message_bytes() -> None:
    assert outputs_message([1.0]) == b"/wek/outputs\x00\x00\x00\x00,f\x00\x00\x3f\x80\x00\x00"


def test_bad_messages_are_ignored_with_a_log_line(
        server: WekinatorServer, recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sonify.control.wekinator")
    c = client(server)
    c.send_message("/wek/inputs", [0.5])
    c.send_message("/wek/inputs", ["loud", 0.2])  # a string among the inputs
    c.send_message("/wek/inputs", [])  # no inputs at all
    c.send_message("/wekinator/control/outputs", [])
    c.send_message("/wekinator/control/outputs", [float("nan")])
    c.send_message("/wek/inputz", [1.0])
    c.send_message("/wekinator/control/explode", [])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(b"/wek/inputs\x00,f\x00\x00\x3f", ("127.0.0.1", server.port))  # truncated
    sock.close()
    stats = received(server, 8)
    assert server.values() == {"wek:1": 0.5}  # only the good message counted
    assert recorder.snapshot() == []
    assert stats.rejected == {"wrong_type": 1, "wrong_arity": 2, "out_of_range": 1,
                              "unknown_address": 2, "malformed": 1}
    text = caplog.text
    assert "argument 1 is str 'loud'" in text and "needs one or more numbers" in text
    assert "not a Wekinator address" in text and "bad packet" in text  # once per reason
    assert server.running  # still serving
    c.send_message("/wekinator/control/train", [])
    assert recorder.wait_for(1) == [Teach("train")]


def test_unsupported_wekinator_messages_are_logged_once_each(
        server: WekinatorServer, recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sonify.control.wekinator")
    c = client(server)
    for _ in range(3):
        c.send_message("/wekinator/control/startDtwRecording", [1])
    for what in NOT_SUPPORTED:
        c.send_message(f"/wekinator/control/{what}", [1])
    stats = received(server, 3 + len(NOT_SUPPORTED))
    assert stats.rejected == {"not_supported": 3 + len(NOT_SUPPORTED)}
    assert caplog.text.count("startDtwRecording is not supported") == 1
    for what in NOT_SUPPORTED:
        assert f"/wekinator/control/{what} is not supported" in caplog.text
    assert recorder.snapshot() == []


def test_a_full_command_queue_counts_drops() -> None:
    calls: list[Command] = []

    def refuse(cmd: Command) -> bool:
        calls.append(cmd)
        return False

    with WekinatorServer(refuse, port=0, out_port=9) as srv:
        client(srv).send_message("/wekinator/control/train", [])
        stats = received(srv, 1)
        assert poll(lambda: srv.stats.rejected.get("dropped") == 1)
        assert calls == [Teach("train")] and stats.commands == 0


def test_a_taken_port_names_the_port_and_the_setting(recorder: Recorder) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ControlServerError, match=rf"127\.0\.0\.1:{port}.*\[wekinator\] "
                                                     r"port"):
            WekinatorServer(recorder, port=port).start()
    finally:
        holder.close()


def test_config_and_cli_turn_it_on() -> None:
    from sonify.config import load_config

    w = load_config().wekinator  # configs/default.toml documents every key
    assert (w.enabled, w.host, w.port, w.out_host, w.out_port) == (
        False, "127.0.0.1", 6448, "127.0.0.1", 12000)
    assert Config.model_validate({"wekinator": {"enabled": True, "port": 7000}}).wekinator.port \
        == 7000
    with pytest.raises(ValueError, match="wekinator.port"):
        Config.model_validate({"wekinator": {"port": 70000}})
    args = build_parser().parse_args(["run", "--wekinator"])
    assert args.wekinator is True


def test_readme_wekinator_example_with_liblo_oscsend(recorder: Recorder) -> None:
    """The README's commands, as written, against a server on a free port (liblo's oscsend
    is the peer: another OSC implementation than the one sonify uses)."""
    oscsend = require_program("oscsend", "liblo-tools")
    text = (Path(__file__).parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.S)
                 if "--wekinator" in b and "oscsend" in b)
    lines = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    run = build_parser().parse_args(lines[0][1:])
    assert lines[0][0] == "sonify" and run.wekinator is True
    sends = [line for line in lines if line[0] == "oscsend"]
    assert sends and all(line[1:3] == ["localhost", "6448"] for line in sends)
    with WekinatorServer(recorder, port=0, out_port=9) as srv:
        for line in sends:
            subprocess.run([oscsend, "127.0.0.1", str(srv.port), *line[3:]], check=True,
                           timeout=10)
        calls = recorder.wait_for(5)
        assert srv.values() == pytest.approx({"wek:1": 0.1, "wek:2": 0.5, "wek:3": 0.9})
    assert isinstance(calls[0], TeachOutputs) and calls[0].values == pytest.approx((0.7,))
    assert calls[1:] == [Teach("record"), Teach("stop_recording"), Teach("train"),
                         Teach("run")]
    assert any(line[-1] == "12000" for line in lines if line[0] == "oscdump")
