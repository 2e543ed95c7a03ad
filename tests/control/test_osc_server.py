"""OSC control server against real UDP on 127.0.0.1 (python-osc clients, liblo's oscsend)."""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pythonosc import osc_message
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.parsing import osc_types
from pythonosc.udp_client import SimpleUDPClient

from sonify.commands import (
    KINDS,
    TEMPO_RANGE_BPM,
    Command,
    Freeze,
    Learn,
    Mute,
    Panic,
    SetParam,
    SetScene,
    SetTempo,
)
from sonify.control.osc_server import ADDRESS_SPACE, ControlServer, ControlStats, status_reply
from tests.conftest import require_program

SCENES = ["calm", "storm"]
VOICES = ["bass", "lead"]
PARAMS = {"cutoff": (0.0, 1.0), "swing": (-0.5, 0.5)}
STATUS = {"scene": "calm", "tempo_bpm": 96.0, "mood": "serene", "fps": 29.5, "frozen": True}


class Recorder:
    """The runtime's command queue, as seen from the server: a thread-safe list of calls."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.calls: list[Command] = []
        self.fail_on: str | None = None  # a kind

    def __call__(self, cmd: Command) -> None:
        if cmd.kind == self.fail_on:
            raise RuntimeError(f"runtime refused {cmd.kind}")
        with self._cond:
            self.calls.append(cmd)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout_s: float = 2.0) -> list[Command]:
        """The calls once there are at least ``n`` (fails after ``timeout_s``)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls) >= n, timeout_s)
            assert ok, f"expected {n} command(s) within {timeout_s} s, got {self.calls}"
            return list(self.calls)

    def snapshot(self) -> list[Command]:
        with self._cond:
            return list(self.calls)


def poll(predicate: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def wait_received(server: ControlServer, n: int, timeout_s: float = 2.0) -> ControlStats:
    """The stats once the server has read and handled ``n`` datagrams."""
    assert poll(lambda: server.stats.handled >= n, timeout_s), server.stats
    return server.stats


def msg(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, tuple):  # (value, explicit type tag)
            builder.add_arg(*a)
        else:
            builder.add_arg(a)
    return builder.build().dgram


def bundle(timetag: float, *messages: bytes) -> bytes:
    """``#bundle``, the NTP timetag of ``timetag`` (Unix seconds; 0 = immediately), elements."""
    elements = b"".join(osc_types.write_int(len(m)) + m for m in messages)
    return b"#bundle\x00" + osc_types.write_date(timetag) + elements


def make_server(rec: Recorder, **kw: Any) -> ControlServer:
    return ControlServer(rec, lambda: dict(STATUS), port=0, known_scenes=lambda: SCENES,
                         voices=lambda: VOICES, params=lambda: PARAMS, **kw)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def server(rec: Recorder) -> Iterator[ControlServer]:
    srv = make_server(rec)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sender(server: ControlServer) -> Iterator[Callable[[bytes], None]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        def send(data: bytes) -> None:
            sock.sendto(data, ("127.0.0.1", server.port))

        yield send
    finally:
        sock.close()


# -- each address, each command --------------------------------------------------------------

@pytest.mark.parametrize(("address", "value", "expected"), [
    ("/sonify/scene", "storm", SetScene("storm")),
    ("/sonify/param/cutoff", 0.25, SetParam("cutoff", 0.25)),
    ("/sonify/param/cutoff", 1, SetParam("cutoff", 1.0)),
    ("/sonify/param/swing", -0.5, SetParam("swing", -0.5)),
    ("/sonify/tempo", 128.5, SetTempo(128.5)),
    ("/sonify/tempo", 90, SetTempo(90.0)),
    ("/sonify/tempo", 20, SetTempo(20.0)),
    ("/sonify/tempo", 300.0, SetTempo(300.0)),
    ("/sonify/mute/bass", 1, Mute("bass", True)),
    ("/sonify/mute/lead", 0, Mute("lead", False)),
    ("/sonify/mute/lead", 1.0, Mute("lead", True)),
    ("/sonify/freeze", 1, Freeze(True)),
    ("/sonify/freeze", False, Freeze(False)),
    ("/sonify/learn", "cutoff", Learn("cutoff")),
    ("/sonify/learn", "tempo", Learn("tempo")),
    ("/sonify/panic", None, Panic()),
    ("/sonify/panic", 1, Panic()),
])
def test_each_address_becomes_its_command(server: ControlServer, rec: Recorder, address: str,
                                          value: Any, expected: Command) -> None:
    client = SimpleUDPClient("127.0.0.1", server.port)
    client.send_message(address, [] if value is None else value)
    assert rec.wait_for(1) == [expected]
    stats = wait_received(server, 1)
    assert (stats.received, stats.applied, stats.rejected_total) == (1, 1, 0)


def test_panic_button_release_does_nothing(server: ControlServer, rec: Recorder,
                                           sender: Callable[[bytes], None]) -> None:
    sender(msg("/sonify/panic", 0))
    sender(msg("/sonify/panic", 1))
    assert rec.wait_for(1) == [Panic()]
    stats = wait_received(server, 2)
    assert stats.rejected_total == 0 and rec.snapshot() == [Panic()]


def test_oscsend_drives_scene_and_panic(server: ControlServer, rec: Recorder) -> None:
    oscsend = require_program("oscsend", "liblo-tools")
    port = str(server.port)
    subprocess.run([oscsend, "127.0.0.1", port, "/sonify/scene", "s", "storm"],
                   check=True, timeout=5)
    assert rec.wait_for(1) == [SetScene("storm")]
    subprocess.run([oscsend, "127.0.0.1", port, "/sonify/panic"], check=True, timeout=5)
    subprocess.run([oscsend, "127.0.0.1", port, "/sonify/tempo", "i", "140"], check=True,
                   timeout=5)
    assert rec.wait_for(3) == [SetScene("storm"), Panic(), SetTempo(140.0)]


# -- status -----------------------------------------------------------------------------------

def test_status_replies_to_the_sender(server: ControlServer, rec: Recorder) -> None:
    replies: list[tuple[tuple[str, int], str, tuple[Any, ...]]] = []
    dispatcher = Dispatcher()
    dispatcher.map("/sonify/status", lambda addr, path, *args: replies.append((addr, path, args)),
                   needs_reply_address=True)
    peer = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    peer.timeout = 2.0
    try:
        peer.socket.sendto(msg("/sonify/status"), ("127.0.0.1", server.port))
        peer.handle_request()  # one datagram, or the timeout
    finally:
        peer.server_close()
    assert len(replies) == 1, "no /sonify/status reply within 2 s"
    (host, port), path, args = replies[0]
    assert (host, port) == ("127.0.0.1", server.port)  # it comes from the control port
    assert path == "/sonify/status"
    assert args[0] == "calm" and args[2] == "serene" and args[4] == 1
    assert args[1] == pytest.approx(96.0) and args[3] == pytest.approx(29.5)
    # the reply can arrive before the server has counted it: wait for it to finish the datagram
    assert rec.snapshot() == [] and wait_received(server, 1).replies == 1


def test_status_reply_format_is_sfsfi_with_defaults() -> None:
    reply = osc_message.OscMessage(status_reply({}))
    assert reply.address == "/sonify/status"
    assert reply.dgram[16:24] == b",sfsfi\x00\x00"
    assert reply.params == ["-", 0.0, "-", 0.0, 0]


# -- nothing bad gets through -----------------------------------------------------------------

def _bad_packets(rng: random.Random) -> tuple[list[bytes], dict[str, int]]:
    """Packets that must all be refused, and the least each reason should count."""
    packets: list[bytes] = []
    for i in range(500):  # random bytes, some dressed as OSC to reach deeper into the parser
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        packets.append([body, b"/" + body, b"#bundle\x00" + body][i % 3])
    valid_with_args = [msg("/sonify/tempo", 120.0), msg("/sonify/scene", "storm"),
                       msg("/sonify/param/cutoff", 0.5), msg("/sonify/mute/bass", 1),
                       msg("/sonify/freeze", 1), bundle(0, msg("/sonify/tempo", 99.0))]
    for good in valid_with_args:  # every truncation (a bare bundle header is an empty bundle)
        packets.extend(good[:n] for n in range(1, len(good)))
    wrong_type = [msg("/sonify/tempo", "fast"), msg("/sonify/scene", 3), msg("/sonify/learn", 3),
                  msg("/sonify/param/cutoff", "x"), msg("/sonify/mute/bass", "yes"),
                  msg("/sonify/freeze", "on"), msg("/sonify/tempo", (b"\x01", "b")),
                  msg("/sonify/tempo", True), msg("/sonify/scene", (b"storm", "b"))]
    wrong_arity = [msg("/sonify/tempo"), msg("/sonify/tempo", 120.0, 130.0), msg("/sonify/scene"),
                   msg("/sonify/freeze"), msg("/sonify/panic", 1, 1), msg("/sonify/status", 1)]
    unknown = [msg("/sonify/nope", 1), msg("/other", 1.0), msg("/sonify/param/", 0.5),
               msg("/sonify/mute/", 1), msg("/sonify/*", 1), msg("/sonify/m*/bass", 1)]
    out_of_range = [msg("/sonify/tempo", 19.9), msg("/sonify/tempo", 300.5),
                    msg("/sonify/tempo", float("nan")), msg("/sonify/tempo", float("inf")),
                    msg("/sonify/param/cutoff", 1.5), msg("/sonify/param/swing", -0.6),
                    msg("/sonify/mute/bass", 2), msg("/sonify/freeze", -1),
                    msg("/sonify/freeze", 0.5), msg("/sonify/panic", 7)]
    unknown_names = [msg("/sonify/scene", "nope"), msg("/sonify/param/volume", 0.5),
                     msg("/sonify/param/cut*", 0.5), msg("/sonify/mute/drums", 1),  # no patterns
                     msg("/sonify/learn", "volume")]
    packets += wrong_type + wrong_arity + unknown + out_of_range + unknown_names
    least = {"malformed": 200, "wrong_type": len(wrong_type), "wrong_arity": len(wrong_arity),
             "unknown_address": len(unknown), "out_of_range": len(out_of_range),
             "unknown_scene": 1, "unknown_param": 3, "unknown_voice": 1}
    return packets, least


def test_fuzz_issues_no_command_and_the_server_survives(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    packets, least = _bad_packets(random.Random(20240611))
    for i, packet in enumerate(packets, 1):
        sender(packet)
        if i % 50 == 0:  # keep within the socket buffer: UDP drops what overflows
            wait_received(server, i)
    stats = wait_received(server, len(packets))
    assert rec.snapshot() == []
    assert stats.applied == 0 and stats.pending == 0
    assert stats.received == len(packets)
    # An empty bundle (the bare header) is the only packet that is neither refused nor applied.
    assert stats.rejected_total >= len(packets) - 1
    for reason, n in least.items():
        assert stats.rejected.get(reason, 0) >= n, (reason, stats.rejected)
    assert server.running
    sender(msg("/sonify/tempo", 120))
    assert rec.wait_for(1) == [SetTempo(120.0)]


def test_rejections_are_logged_at_most_once_per_reason(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    odd_tag = b"/sonify/tempo\x00\x00\x00,x\x00\x00"  # python-osc would log these two
    odd_element = b"#bundle\x00" + b"\x00" * 7 + b"\x01" + b"\x00\x00\x00\x04abcd"
    for _ in range(20):
        for packet in (b"garbage", odd_element, odd_tag, msg("/sonify/tempo", 1000.0)):
            sender(packet)
    wait_received(server, 80)
    assert server.stats.rejected == {"malformed": 40, "wrong_type": 20, "out_of_range": 20}
    assert [r.name for r in caplog.records] == ["sonify.control.osc_server"] * 3
    assert rec.snapshot() == []


def test_a_failing_command_or_status_does_not_stop_the_server(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    rec.fail_on = "tempo"
    sender(msg("/sonify/tempo", 120))
    wait_received(server, 1)
    assert server.stats.rejected == {"handler_error": 1}
    sender(msg("/sonify/panic"))
    assert rec.wait_for(1) == [Panic()]
    assert server.running


def test_a_failing_status_callback_sends_no_reply(rec: Recorder) -> None:
    def broken_status() -> dict[str, object]:
        raise KeyError("fps")

    srv = ControlServer(rec, broken_status, port=0, known_scenes=lambda: SCENES,
                        voices=lambda: VOICES, params=lambda: PARAMS)
    with srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(msg("/sonify/status"), ("127.0.0.1", srv.port))
        sock.sendto(msg("/sonify/panic"), ("127.0.0.1", srv.port))
        assert rec.wait_for(1) == [Panic()]
        assert srv.stats.rejected == {"handler_error": 1} and srv.stats.replies == 0


# -- bundles and time -------------------------------------------------------------------------

def test_a_future_bundle_never_blocks_a_later_panic(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    sender(bundle(time.time() + 5.0, msg("/sonify/tempo", 150)))
    t0 = time.monotonic()
    sender(msg("/sonify/panic"))
    assert rec.wait_for(1, timeout_s=0.5) == [Panic()]
    assert time.monotonic() - t0 < 0.5
    assert server.stats.pending == 1  # the tempo waits for its time, the thread does not


def test_a_future_bundle_applies_at_its_time(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    t0 = time.monotonic()
    sender(bundle(time.time() + 0.3, msg("/sonify/tempo", 150), msg("/sonify/freeze", 1)))
    assert rec.wait_for(2, timeout_s=2.0) == [SetTempo(150.0), Freeze(True)]
    assert 0.25 <= time.monotonic() - t0 < 1.0
    assert server.stats.pending == 0


def test_panic_inside_a_future_bundle_acts_at_once(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    sender(bundle(time.time() + 5.0, msg("/sonify/tempo", 150), msg("/sonify/panic")))
    assert rec.wait_for(1, timeout_s=0.5) == [Panic()]
    assert server.stats.pending == 1


def test_a_bundle_an_hour_ahead_is_dropped(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    sender(bundle(time.time() + 3600.0, msg("/sonify/tempo", 150), msg("/sonify/scene", "storm")))
    stats = wait_received(server, 1)
    assert stats.rejected == {"too_far_future": 1} and stats.pending == 0
    sender(bundle(time.time() + 3600.0, msg("/sonify/tempo", 150), msg("/sonify/panic")))
    assert rec.wait_for(1) == [Panic()]  # panic still silences a sender with a bad clock
    sender(msg("/sonify/freeze", 0))
    assert rec.wait_for(2) == [Panic(), Freeze(False)]


def test_immediate_and_past_bundles_apply_in_order(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    sender(bundle(0, msg("/sonify/scene", "storm"), msg("/sonify/tempo", 100)))
    sender(bundle(time.time() - 60.0, msg("/sonify/mute/bass", 1)))
    assert rec.wait_for(3) == [SetScene("storm"), SetTempo(100.0), Mute("bass", True)]


def test_a_bundle_with_one_bad_message_applies_none_of_it(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    sender(bundle(0, msg("/sonify/tempo", 100), msg("/sonify/param/cutoff", float("nan")),
                  msg("/sonify/freeze", 1)))
    assert wait_received(server, 1).rejected == {"out_of_range": 1}
    sender(msg("/sonify/tempo", 90))  # a marker: everything before it has been handled
    assert rec.wait_for(1) == [SetTempo(90.0)]


def test_a_panic_in_a_refused_bundle_still_acts(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    sender(bundle(0, msg("/sonify/tempo", 1000), msg("/sonify/panic")))
    assert rec.wait_for(1) == [Panic()]
    assert wait_received(server, 1).rejected == {"out_of_range": 1}


def test_status_requests_are_rate_limited(
        server: ControlServer, rec: Recorder, sender: Callable[[bytes], None]) -> None:
    for _ in range(200):
        sender(msg("/sonify/status"))
    stats = wait_received(server, 200, timeout_s=5.0)
    assert stats.rejected.get("rate_limited", 0) >= 100
    assert stats.replies <= 200 - stats.rejected["rate_limited"]


# -- who may talk -----------------------------------------------------------------------------

def test_a_sender_not_allowed_is_ignored(rec: Recorder) -> None:
    with make_server(rec, allow=["127.0.0.2"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.1", 0))
            stranger.sendto(msg("/sonify/panic"), ("127.0.0.1", srv.port))
            stats = wait_received(srv, 1)
        assert stats.rejected == {"not_allowed": 1} and rec.snapshot() == []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as friend:
            friend.bind(("127.0.0.2", 0))  # all of 127/8 is loopback on Linux
            friend.sendto(msg("/sonify/panic"), ("127.0.0.1", srv.port))
            assert rec.wait_for(1) == [Panic()]


def test_an_allowed_network_lets_its_senders_in(rec: Recorder) -> None:
    with make_server(rec, allow=["10.0.0.0/8", "127.0.0.2/31"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.1", 0))
            stranger.sendto(msg("/sonify/panic"), ("127.0.0.1", srv.port))
            assert wait_received(srv, 1).rejected == {"not_allowed": 1}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as friend:
            friend.bind(("127.0.0.3", 0))  # in 127.0.0.2/31
            friend.sendto(msg("/sonify/panic"), ("127.0.0.1", srv.port))
            assert rec.wait_for(1) == [Panic()]


def test_allow_list_entries_must_be_addresses(rec: Recorder) -> None:
    with pytest.raises(ValueError, match="'my-laptop' is not an IP address"):
        make_server(rec, allow=["127.0.0.1", "my-laptop"])


# -- lifecycle ---------------------------------------------------------------------------------

def test_stop_ends_the_thread_promptly_and_frees_the_port(rec: Recorder) -> None:
    srv = make_server(rec)
    srv.start()
    port = srv.port
    assert port != 0 and srv.running
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 0.5
    assert not srv.running
    assert not [t for t in threading.enumerate() if t.name == f"osc-control:{port}"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))  # raises if the port were still held
    srv.stop()  # a second stop is harmless


def test_a_taken_port_is_a_clear_error(rec: Recorder) -> None:
    from sonify.control.osc_server import ControlServerError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        srv = ControlServer(rec, dict, port=squatter.getsockname()[1],
                            voices=list, params=dict)
        with pytest.raises(ControlServerError, match="cannot listen on 127.0.0.1:"):
            srv.start()
        assert not srv.running


def test_address_space_documents_every_address() -> None:
    paths = {entry["path"] for entry in ADDRESS_SPACE}
    assert paths == {"/sonify/scene", "/sonify/param/{name}", "/sonify/tempo",
                     "/sonify/mute/{voice}", "/sonify/freeze", "/sonify/learn", "/sonify/panic",
                     "/sonify/status", "/sonify/teach/record", "/sonify/teach/snapshot",
                     "/sonify/teach/train", "/sonify/teach/run", "/sonify/teach/clear",
                     "/sonify/teach/outputs"}
    for entry in ADDRESS_SPACE:
        assert {"path", "types", "range", "description"} <= entry.keys()
        assert entry["command"] is None or entry["command"] in KINDS
    tempo = next(e for e in ADDRESS_SPACE if e["path"] == "/sonify/tempo")
    assert tempo["range"] == TEMPO_RANGE_BPM  # the command module's, not a copy
