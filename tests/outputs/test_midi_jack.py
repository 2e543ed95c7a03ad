"""MidiOutput against real JACK peers: a dummy-driver jackd and jack_midi_dump."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sonify.events import ControlChange, NoteOff, NoteOn, PitchBend, ProgramChange
from sonify.outputs.base import Output
from sonify.outputs.midi import MidiOutput, MidiPortError, list_ports, panic_messages


def test_notes_controls_bend_and_panic_arrive_as_exact_bytes(midi_dump: Any) -> None:
    out = MidiOutput(port=midi_dump.port, api="jack")
    assert out.connected and out.target == midi_dump.port and out.api == "jack"
    out.send(NoteOn(0.0, 0, 60, 100))
    out.send(ControlChange(0.0, 1, 74, 12))
    out.send(PitchBend(0.0, 2, -8192))
    out.send(PitchBend(0.0, 2, 8191))
    out.send(ProgramChange(0.0, 9, 5))
    out.send(NoteOff(0.0, 0, 60))
    out.panic()
    out.close()
    assert midi_dump.wait_for(6 + 48) == [
        [0x90, 60, 100], [0xB1, 74, 12], [0xE2, 0, 0], [0xE2, 0x7F, 0x7F], [0xC9, 5],
        [0x80, 60, 64], *panic_messages()]
    assert out.stats.sent == 6 and out.stats.dropped == 0


def test_a_port_name_pattern_is_enough(midi_dump: Any) -> None:
    out = MidiOutput(port=midi_dump.client.upper(), api="jack")  # a part of the name, any case
    assert out.target == midi_dump.port
    out.send(NoteOn(0.0, 3, 64, 1))
    out.close()
    assert midi_dump.wait_for(1) == [[0x93, 64, 1]]


def test_list_ports_shows_the_destination_and_our_virtual_port(midi_dump: Any) -> None:
    virt = MidiOutput(virtual="listme", api="jack", client_name="sonify-list")
    try:
        info = list_ports("jack")
    finally:
        virt.close()
    assert info["api"] == "jack"
    assert midi_dump.port in info["outputs"]
    assert "sonify-list:listme" in info["inputs"]  # what a MIDI input could read from


def test_a_missing_port_without_waiting_is_an_error_listing_the_ports(midi_dump: Any) -> None:
    with pytest.raises(MidiPortError) as err:
        MidiOutput(port="no-such-synth", api="jack", wait=False)
    msg = str(err.value)
    assert "'no-such-synth'" in msg and "jack" in msg
    assert repr(midi_dump.port) in msg and "sonify ports" in msg


def test_waiting_for_a_port_drops_events_until_it_appears(
        midi_dump_factory: Callable[[], Any], jack_server: Any) -> None:
    dump = midi_dump_factory()
    out = MidiOutput(port=dump.port, api="jack", wait=True)
    reconnects: list[Output] = []
    out.on_reconnect = reconnects.append
    assert not out.connected
    out.send(NoteOn(0.0, 0, 60, 100))
    out.panic()  # nothing to silence yet: neither sent nor counted
    assert out.stats.dropped == 1 and out.stats.sent == 0
    out.poll()
    assert not out.connected
    assert out.problem == f"no MIDI output port matches {dump.port!r} yet; waiting for it"

    dump.start()
    out.poll()
    assert out.connected and out.target == dump.port
    assert out.problem is None or "xrun" in out.problem  # (a loaded machine's JACK may xrun)
    # a first connection too: the synth may hold notes of an earlier sonify that was killed
    assert reconnects == [out] and out.stats.reconnects == 0
    out.send(NoteOn(0.0, 0, 62, 100))
    out.close()
    assert dump.wait_for(1) == [[0x90, 62, 100]]  # the note before the port never arrives


def test_a_destination_that_quits_and_returns_is_reconnected_with_a_callback(
        midi_dump: Any) -> None:
    out = MidiOutput(port=midi_dump.port, api="jack")
    reconnects: list[Output] = []

    def reconnected(o: Output) -> None:  # what the scheduler does: end notes, panic
        reconnects.append(o)
        o.panic()

    out.on_reconnect = reconnected
    out.send(NoteOn(0.0, 0, 60, 100))
    assert midi_dump.wait_for(1) == [[0x90, 60, 100]]

    midi_dump.stop()
    out.poll()  # notices the port is gone
    assert not out.connected
    assert out.problem == (f"MIDI port {midi_dump.port!r} went away; waiting for a port "
                           f"matching {midi_dump.port!r}")
    out.send(NoteOff(0.0, 0, 60))
    out.send(NoteOn(0.0, 0, 61, 100))
    assert out.stats.dropped == 2
    out.poll()  # still gone: no error, no reconnect
    assert reconnects == []

    midi_dump.start()
    out.poll()
    assert out.connected and reconnects == [out] and out.stats.reconnects == 1
    out.send(NoteOn(0.0, 0, 64, 100))
    out.close()
    # the new dump sees the panic of the reconnect, then what came after; nothing from the gap
    assert midi_dump.wait_for(49) == [*panic_messages(), [0x90, 64, 100]]


def test_a_virtual_port_can_be_connected_to_by_a_synth(midi_dump: Any, jack_server: Any) -> None:
    import subprocess

    out = MidiOutput(virtual="synthfeed", api="jack", client_name="sonify-virt")
    assert out.connected
    subprocess.run(["jack_connect", "sonify-virt:synthfeed", midi_dump.port], check=True,
                   env=jack_server.env, timeout=10)
    out.send(NoteOn(0.0, 5, 70, 80))
    out.close()
    assert midi_dump.wait_for(1) == [[0x95, 70, 80]]


class _InactiveClient:
    """A JACK client with a MIDI input port that is registered but not active yet, as a synth
    is for a moment while it starts (libjack through ctypes: no tool makes one on purpose)."""

    def __init__(self, name: str) -> None:
        import ctypes

        from sonify.midi.watch import _load_libjack

        lib = _load_libjack()
        assert lib is not None, "libjack not found"
        lib.jack_port_register.restype = ctypes.c_void_p
        lib.jack_port_register.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.c_ulong, ctypes.c_ulong]
        status = ctypes.c_int(0)
        self.lib = lib
        self.client = lib.jack_client_open(name.encode(), 1, ctypes.byref(status))  # NoStart
        assert self.client, f"jack_client_open failed: status {status.value}"
        self.port = lib.jack_port_register(self.client, b"in", b"8 bit raw midi", 1, 0)
        assert self.port
        self.name = f"{name}:in"

    def connections(self) -> int:
        return int(self.lib.jack_port_connected(self.port))

    def activate(self) -> None:
        assert self.lib.jack_activate(self.client) == 0

    def close(self) -> None:
        self.lib.jack_client_close(self.client)


def test_a_port_whose_client_is_not_active_yet_is_connected_again(jack_server: Any) -> None:
    """JACK refuses a connection to a client that has registered its port but is not active
    yet, and rtmidi does not say so: the output looks once whether the connection took and
    connects again (with the reconnect's panic) instead of playing into nothing."""
    import time

    from sonify.midi.ports import CONNECTION_CHECK_S

    late = _InactiveClient("latesynth")
    out = MidiOutput(port=late.name, api="jack", client_name="sonify-late")
    reconnects: list[Output] = []
    out.on_reconnect = reconnects.append
    try:
        assert out.target == late.name
        assert late.connections() == 0  # refused: the client is not active
        late.activate()
        out.poll()  # too soon to look: nothing changes
        assert reconnects == [] and late.connections() == 0
        time.sleep(CONNECTION_CHECK_S + 0.1)
        out.poll()
        assert late.connections() == 1, "the output did not connect again"
        assert out.connected and reconnects == [out] and out.stats.reconnects == 1
        time.sleep(CONNECTION_CHECK_S + 0.1)
        out.poll()  # looked once per connection: a good one is left alone
        assert late.connections() == 1 and reconnects == [out]
    finally:
        out.close()
        late.close()


def test_a_connection_that_took_is_checked_once_and_left_alone(midi_dump: Any) -> None:
    import time

    from sonify.midi.ports import CONNECTION_CHECK_S

    out = MidiOutput(port=midi_dump.port, api="jack")
    reconnects: list[Output] = []
    out.on_reconnect = reconnects.append
    time.sleep(CONNECTION_CHECK_S + 0.1)
    out.poll()
    assert out.connected and reconnects == [] and out.stats.reconnects == 0
    out.send(NoteOn(0.0, 0, 60, 100))
    out.close()
    assert midi_dump.wait_for(1) == [[0x90, 60, 100]]
