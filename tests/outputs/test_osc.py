"""OSC: exact datagrams without a socket, then a python-osc server and oscdump as receivers."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Any

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage as ParsedMessage
from pythonosc.osc_server import ThreadingOSCUDPServer

from sonify.events import ControlChange, NoteOff, NoteOn, OscMessage, PitchBend, Tempo
from sonify.outputs.osc import (
    OscOutput,
    OscTargetError,
    ResolvedTarget,
    encode,
    ntp_timetag,
    osc_bundle,
    osc_message,
    parse_target,
    resolve_target,
)
from tests.conftest import wait_until


def test_a_message_has_its_exact_bytes() -> None:
    dgram = encode(OscMessage(0.0, "/bass/level", (1, 0.5, "hi", True, False)))
    assert dgram == (
        b"/sonify/bass/level\x00\x00"        # 18 chars + NUL, padded to 20
        b",ifsTF\x00\x00"                    # type tags
        b"\x00\x00\x00\x01"                  # int32 1
        b"\x3f\x00\x00\x00"                  # float32 0.5
        b"hi\x00\x00"                        # string
    )


def test_the_prefix_is_added_once() -> None:
    assert encode(OscMessage(0.0, "/sonify/x")) == osc_message("/sonify/x")
    assert encode(OscMessage(0.0, "/sonify")) == osc_message("/sonify")
    assert encode(OscMessage(0.0, "/sonifyx")) == osc_message("/sonify/sonifyx")
    assert encode(OscMessage(0.0, "/x"), prefix="/app/") == osc_message("/app/x")
    assert encode(OscMessage(0.0, "/x"), prefix="") == osc_message("/x")


def test_big_ints_go_as_int64() -> None:
    dgram = osc_message("/n", (2**40,))
    assert dgram == b"/n\x00\x00,h\x00\x00" + struct.pack(">q", 2**40)


def test_timetag_is_ntp_seconds_and_fraction() -> None:
    assert ntp_timetag(0.0) == struct.pack(">II", 2208988800, 0)
    assert ntp_timetag(1.5) == struct.pack(">II", 2208988801, 2**31)
    assert ntp_timetag(1_700_000_000.25) == struct.pack(">II", 1_700_000_000 + 2208988800,
                                                        2**30)


def test_a_bundle_has_its_exact_bytes() -> None:
    msg = osc_message("/sonify/x", (1,))
    dgram = encode(OscMessage(5.0, "/x", (1,)), timetag_unix_s=1_700_000_000.5)
    assert dgram == (b"#bundle\x00" + struct.pack(">II", 1_700_000_000 + 2208988800, 2**31)
                     + struct.pack(">i", len(msg)) + msg)
    parsed = OscBundle(dgram)  # and python-osc reads it back
    assert parsed.timestamp == pytest.approx(1_700_000_000.5, abs=1e-6)
    assert osc_bundle([msg], 1_700_000_000.5) == dgram


def test_midi_goes_as_osc_only_when_asked() -> None:
    assert encode(NoteOn(0.0, 1, 60, 100)) is None
    assert encode(ControlChange(0.0, 2, 74, 12)) is None
    # notes have their own message (tests/outputs/test_osc_notes.py), not midi_as_osc's
    assert encode(NoteOn(0.0, 1, 60, 100), midi_as_osc=True) is None
    assert encode(NoteOff(0.0, 1, 60), midi_as_osc=True) is None
    assert encode(ControlChange(0.0, 2, 74, 12), midi_as_osc=True) == osc_message(
        "/sonify/cc", (2, 74, 12))
    assert encode(PitchBend(0.0, 0, -100), midi_as_osc=True) == osc_message(
        "/sonify/bend", (0, -100))
    assert encode(Tempo(0.0, 120.0), midi_as_osc=True) is None


def test_targets_parse_and_bad_ones_are_named() -> None:
    assert parse_target("127.0.0.1:57120") == ("127.0.0.1", 57120)
    assert parse_target("[::1]:9000") == ("::1", 9000)
    assert parse_target(("localhost", 9000)) == ("localhost", 9000)
    with pytest.raises(OscTargetError, match="HOST:PORT"):
        parse_target("localhost")
    with pytest.raises(OscTargetError, match="1..65535"):
        parse_target("localhost:70000")


def test_a_host_that_does_not_resolve_is_named_and_does_not_stop_the_output(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sonify.outputs.osc"):
        out = OscOutput(["no-such-host.invalid:9000", "127.0.0.1:9"])
    assert any("'no-such-host.invalid' does not resolve" in r.getMessage()
               and "tried again in the background" in r.getMessage() for r in caplog.records)
    assert out.name == "osc:no-such-host.invalid:9000,127.0.0.1:9"
    assert out.unresolved == ["no-such-host.invalid:9000"]
    assert not out.connected
    assert out.problem is not None and "does not resolve" in out.problem
    assert "retrying" in out.problem
    out.send(OscMessage(0.0, "/x", (1,)))  # goes to 127.0.0.1:9, counted as dropped for the other
    assert out.stats.dropped == 1 and "does not resolve" in out.stats.last_error
    resolving = out._resolving
    assert resolving is not None and resolving.is_alive()
    out.close()
    resolving.join(5.0)  # the retry thread ends with the output
    assert not resolving.is_alive()
    assert out.problem is None


def test_a_name_that_resolves_later_is_sent_to_from_then_on(receiver: Receiver) -> None:
    calls: list[tuple[str, int]] = []

    def resolver(target: tuple[str, int]) -> ResolvedTarget:
        calls.append(target)
        if len(calls) < 4:  # at construction and twice in the background: no network yet
            raise OscTargetError(f"OSC target {target[0]}:{target[1]}: the host name "
                                 f"{target[0]!r} does not resolve (no network yet)")
        return resolve_target(("127.0.0.1", receiver.port))

    out = OscOutput([("synth.lan", receiver.port)], resolver=resolver, retry_initial_s=0.01,
                    retry_max_s=0.02)
    try:
        out.send(OscMessage(0.0, "/early", ()))
        assert out.stats.dropped == 1 and out.stats.sent == 0
        assert "synth.lan" in (out.problem or "")
        assert wait_until(lambda: not out.unresolved, 5.0)
        assert len(calls) == 4 and set(calls) == {("synth.lan", receiver.port)}
        assert out.connected and out.problem is None
        out.send(OscMessage(0.0, "/late", ()))
        assert out.stats.sent == 1
        got = receiver.wait(1)
        assert [ParsedMessage(d).address for d in got] == ["/sonify/late"]
    finally:
        out.close()


def test_retries_back_off() -> None:
    """Attempts come at retry_initial_s, then twice as long each time, up to retry_max_s."""
    times: list[float] = []

    def resolver(target: tuple[str, int]) -> ResolvedTarget:
        times.append(time.monotonic())
        raise OscTargetError("does not resolve")

    out = OscOutput(["nowhere.lan:9000"], resolver=resolver, retry_initial_s=0.05,
                    retry_max_s=0.2)
    try:
        assert wait_until(lambda: len(times) >= 6, 10.0)
    finally:
        out.close()
    gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]
    # 0.05, 0.1, 0.2, 0.2, ...: each wait at least as long as the backoff says
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.19
    assert times[1] - times[0] >= 0.045


def test_an_unreachable_target_never_raises_and_counts_drops() -> None:
    # a broadcast address without SO_BROADCAST: the kernel refuses every send
    out = OscOutput([("255.255.255.255", 9)])
    out.send(OscMessage(0.0, "/x", (1,)))
    out.panic()
    assert out.stats.dropped == 2 and out.stats.sent == 0
    assert not out.connected
    out.close()


def test_osc_output_skips_what_it_does_not_send() -> None:
    out = OscOutput("127.0.0.1:9")
    assert out.wants(OscMessage(0.0, "/x"))
    assert out.wants(NoteOn(0.0, 0, 60, 100))  # notes go out by default
    assert not out.wants(NoteOff(0.0, 0, 60))  # note-offs where asked
    assert not out.wants(ControlChange(0.0, 0, 7, 100))
    assert not out.wants(Tempo(0.0, 120.0))
    assert not OscOutput("127.0.0.1:9", notes=False).wants(NoteOn(0.0, 0, 60, 100))
    assert OscOutput("127.0.0.1:9", midi_as_osc=True).wants(ControlChange(0.0, 0, 7, 100))


class Receiver:
    """A python-osc UDP server on 127.0.0.1 that keeps every message with its bundle time."""

    def __init__(self) -> None:
        self.got: list[tuple[str, tuple[Any, ...]]] = []
        self.raw: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except OSError:
                continue
            self.raw.append(data)

    def wait(self, n: int, timeout_s: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        while len(self.raw) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.raw

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.close()


def test_messages_reach_a_python_osc_server(receiver: Receiver) -> None:
    out = OscOutput([("127.0.0.1", receiver.port)], midi_as_osc=True)
    out.send(OscMessage(time.perf_counter(), "/mood", ("calm", 0.25)))
    out.send(NoteOn(time.perf_counter(), 0, 60, 100))
    out.panic()
    raw = receiver.wait(3)
    out.close()
    msgs = [ParsedMessage(d) for d in raw]
    assert [(m.address, m.params) for m in msgs] == [
        ("/sonify/mood", ["calm", 0.25]),
        ("/sonify/note", ["", 1, 60, pytest.approx(100 / 127), 0.0]),
        ("/sonify/panic", [])]
    assert out.stats.sent == 2 and out.stats.dropped == 0


def test_bundles_carry_the_event_time_plus_latency_as_wall_time(receiver: Receiver) -> None:
    out = OscOutput([("127.0.0.1", receiver.port)], bundle_latency_s=0.2)
    t = time.perf_counter()
    out.send(OscMessage(t, "/hit", (1,)))
    expected_wall = t + 0.2 + (time.time() - time.perf_counter())
    raw = receiver.wait(1)
    out.close()
    bundle = OscBundle(raw[0])
    assert bundle.timestamp == pytest.approx(expected_wall, abs=0.005)
    (content,) = list(bundle)
    assert content.address == "/sonify/hit" and content.params == [1]


def test_server_callbacks_see_the_messages() -> None:
    # the same through python-osc's own server and dispatcher, as a SuperCollider stand-in
    got: list[tuple[str, list[Any]]] = []
    done = threading.Event()
    dispatcher = Dispatcher()

    def handler(address: str, *args: Any) -> None:
        got.append((address, list(args)))
        done.set()

    dispatcher.map("/sonify/*", handler)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = OscOutput([("127.0.0.1", server.server_address[1])], bundle_latency_s=0.05)
        out.send(OscMessage(time.perf_counter(), "/level", (0.75,)))
        assert done.wait(5.0)
        out.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert got == [("/sonify/level", [0.75])]


def test_oscdump_receives_messages_with_their_types(oscdump: Any) -> None:
    out = OscOutput(f"127.0.0.1:{oscdump.port}", midi_as_osc=True)
    out.send(OscMessage(time.perf_counter(), "/voice/lead", (3, 0.5, "warm", True)))
    out.send(ControlChange(time.perf_counter(), 1, 74, 99))
    out.panic()
    msgs = oscdump.wait_for(3)
    out.close()
    assert [(m.address, m.types, m.args) for m in msgs] == [
        ("/sonify/voice/lead", "ifsT", (3, 0.5, "warm", True)),
        ("/sonify/cc", "iii", (1, 74, 99)),
        ("/sonify/panic", "", ()),
    ]


def test_oscdump_sees_a_bundle_timetagged_in_the_future(oscdump: Any) -> None:
    out = OscOutput(f"127.0.0.1:{oscdump.port}", bundle_latency_s=0.5)
    sent_wall = time.time()
    out.send(OscMessage(time.perf_counter(), "/later", (1,)))
    time.sleep(0.2)
    assert oscdump.messages() == []  # held by the receiver until its time
    (msg,) = oscdump.wait_for(1)
    out.close()
    assert msg.address == "/sonify/later"
    assert msg.timetag_unix_s == pytest.approx(sent_wall + 0.5, abs=0.05)
