"""MIDI out through python-rtmidi: a named port (found by a name pattern) or a virtual port.

Ports are always found by name, never by number: ALSA client numbers change between boots and
JACK lists ports in registration order. rtmidi itself only opens by index, so the index is looked
up from the name right before opening and checked again right after.

How the MIDI systems name ports (as ``MidiOut.get_ports()`` lists them):

- JACK: the full JACK port name ``client:port`` of every MIDI *input* port, e.g.
  ``dumper:input``, ``fluid:midi_00``. ``open_port(i, "out")`` registers our own port
  ``<client_name>:out`` and ``jack_connect``s it to the destination; a virtual port is a
  registered, unconnected port ``<client_name>:<NAME>`` others connect to.
- ALSA: ``Client:Port client:port`` with the numbers at the end, e.g.
  ``FLUID Synth (1234):Synth input port (1234:0) 128:0``; a pattern should use the stable part.

A destination that goes away is not reported by rtmidi: sends simply go nowhere. ``poll()`` (about
once a second) therefore looks the destination up in the port list; when it is gone the output
counts events as dropped, and when a port matching the pattern is back it reopens, connects and
calls ``on_reconnect`` (the scheduler then panics on it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import rtmidi

from engine.events import (
    MIDI_EVENTS,
    SONG_POSITION,
    ControlChange,
    Event,
    MidiSystem,
    NoteOff,
    NoteOn,
    PitchBend,
    ProgramChange,
)
from engine.outputs.base import (
    ALL_CHANNELS,
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    CC_SUSTAIN,
    Output,
)

logger = logging.getLogger(__name__)

# Our names for rtmidi's APIs (the values `--midi-api` and the config accept).
API_IDS: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
API_NAMES: dict[int, str] = {v: k for k, v in API_IDS.items()}
OWN_PORT_NAME = "out"  # our side of a connection: "<client_name>:out" under JACK
NOTE_OFF_VELOCITY = 64  # MIDI 1.0: a sender without release velocity sends 64


class MidiPortError(Exception):
    """A MIDI system or port cannot be used; the message says which, why and what to do."""


class _NotConnected(Exception):
    pass


# -- encoding (pure, no port) ---------------------------------------------------------------------

def encode(event: Event) -> list[int] | None:
    """The MIDI bytes of a MIDI event (running status never used), or None for other events.

    A note-off is ``0x8n pitch 64`` (the MIDI 1.0 default release velocity); a pitch bend's
    -8192..8191 becomes the 14-bit 0..16383, LSB first. A system message is its status byte
    (clock, start, continue, stop), a song position pointer ``0xF2 LSB MSB``.
    """
    if isinstance(event, NoteOn):
        return [0x90 | event.channel, event.pitch, event.velocity]
    if isinstance(event, NoteOff):
        return [0x80 | event.channel, event.pitch, NOTE_OFF_VELOCITY]
    if isinstance(event, ControlChange):
        return [0xB0 | event.channel, event.control, event.value]
    if isinstance(event, PitchBend):
        v = event.value + 8192
        return [0xE0 | event.channel, v & 0x7F, v >> 7]
    if isinstance(event, ProgramChange):
        return [0xC0 | event.channel, event.program]
    if isinstance(event, MidiSystem):
        if event.status == SONG_POSITION:
            return [SONG_POSITION, event.value & 0x7F, event.value >> 7]
        return [event.status]
    return None


def panic_messages() -> list[list[int]]:
    """Sustain off, all notes off, all sound off on each of the 16 channels (in that order)."""
    return [[0xB0 | ch, cc, 0] for ch in ALL_CHANNELS
            for cc in (CC_SUSTAIN, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF)]


def match_port(ports: list[str], pattern: str) -> int | None:
    """Index of the port named ``pattern`` (ignoring case), else of the first port whose name
    contains it; None when none does."""
    p = pattern.casefold()
    folded = [name.casefold() for name in ports]
    if p in folded:
        return folded.index(p)
    for i, name in enumerate(folded):
        if p in name:
            return i
    return None


# -- MIDI systems -----------------------------------------------------------------------------

def available_apis() -> list[str]:
    """The MIDI systems this python-rtmidi was built with, in its order of preference
    (e.g. ``["alsa", "jack"]`` on Linux). Built with is not running: see ``list_ports``."""
    return [API_NAMES[a] for a in rtmidi.get_compiled_api() if a in API_NAMES]


def _candidates(api: str) -> list[str]:
    compiled = available_apis()
    if api == "auto":
        return compiled
    if api not in API_IDS:
        raise MidiPortError(f"unknown MIDI system {api!r}: use one of auto, "
                            f"{', '.join(API_IDS)}")
    if api not in compiled:
        raise MidiPortError(f"MIDI system {api!r} is not built into python-rtmidi here; "
                            f"this one has: {', '.join(compiled) or 'none'}")
    return [api]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while probing: libjack prints "Cannot connect to server
    socket ..." straight to stderr when no JACK server runs, and we report that ourselves."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_client(kind: type[Any], api: str, client_name: str) -> tuple[Any, str]:
    """An rtmidi MidiOut/MidiIn on the first MIDI system that works, and that system's name."""
    errors: list[str] = []
    for name in _candidates(api):
        if (name == "alsa" and api == "auto" and sys.platform.startswith("linux")
                and not os.path.exists("/dev/snd/seq")):
            # skip it quietly: trying would only make libasound print an error on stderr
            errors.append("alsa: no ALSA sequencer (/dev/snd/seq is missing)")
            continue
        try:
            if name == "jack":
                with _quiet_stderr():
                    return kind(rtapi=API_IDS[name], name=client_name), name
            return kind(rtapi=API_IDS[name], name=client_name), name
        except rtmidi.RtMidiError as exc:
            hint = " (start jackd, or choose another MIDI system)" if name == "jack" else ""
            errors.append(f"{name}: {exc}{hint}")
    raise MidiPortError("no MIDI system works here: " + "; ".join(errors))


def list_ports(api: str = "auto", client_name: str = "sonify-ports") -> dict[str, Any]:
    """``{"api": "jack", "outputs": [...], "inputs": [...]}``: the ports of the first MIDI system
    that works (``outputs`` are the ports sonify can send to). Raises MidiPortError when no MIDI
    system works, saying why for each."""
    out, name = _open_client(rtmidi.MidiOut, api, client_name)
    try:
        outputs = list(out.get_ports())
    finally:
        out.delete()
    inp = rtmidi.MidiIn(rtapi=API_IDS[name], name=client_name)
    try:
        inputs = list(inp.get_ports())
    finally:
        inp.delete()
    return {"api": name, "outputs": outputs, "inputs": inputs}


# -- the output -------------------------------------------------------------------------------

class MidiOutput(Output):
    """MIDI to the first output port whose name contains ``port`` (case-insensitive; an exact
    name wins), or on a virtual port named ``virtual`` that synths connect to.

    ``api``: "auto" (the first MIDI system that works), "alsa", "jack", "coremidi" or "winmm".
    With ``wait`` a port missing at start is waited for (events are dropped and counted until
    ``poll()`` finds it); without, a MidiPortError lists the ports there are. No MIDI system at
    all is always a MidiPortError. ``drain_s``: at close, the time the last messages get to
    reach the peer (JACK delivers them over its next process cycles).
    """

    def __init__(self, port: str | None = None, *, virtual: str | None = None,
                 api: str = "auto", client_name: str = "sonify", wait: bool = True,
                 drain_s: float = 0.25) -> None:
        super().__init__()
        if (port is None) == (virtual is None):
            raise ValueError("MidiOutput needs either port= (a port name pattern) or "
                             "virtual= (the name of a port to create), not both or neither")
        if port is not None and not port.strip():
            raise ValueError("MidiOutput port pattern is empty")
        self.pattern = port
        self.virtual = virtual
        self.client_name = client_name
        self.drain_s = drain_s
        self._last_send = -1e9  # monotonic time of the last message handed to rtmidi
        self._midi, self.api = _open_client(rtmidi.MidiOut, api, client_name)
        self.target: str | None = None  # full name of the destination we are connected to
        self._lost_at: float | None = None  # monotonic time the destination went away
        self._silence_pending = False  # connected, the reconnect panic not sent yet
        self._poll_failed = False
        try:
            if virtual is not None:
                self.name = f"midi:{virtual} (virtual)"
                self._open_virtual(virtual)
            else:
                assert port is not None
                self.name = f"midi:{port}"
                if not self._connect():
                    if not wait:
                        raise MidiPortError(self._missing_message())
                    logger.warning("%s: no MIDI output port matches %r yet (%s); waiting for it "
                                   "(see `sonify ports`)", self.name, port, self.api)
        except rtmidi.RtMidiError as exc:
            self._midi.delete()
            raise MidiPortError(f"{self.name}: cannot open the MIDI port ({self.api}): "
                                f"{exc}") from None
        except BaseException:
            self._midi.delete()
            raise

    @property
    def connected(self) -> bool:
        return not self._closed and (self.virtual is not None or self.target is not None)

    def wants(self, event: Event) -> bool:
        return isinstance(event, (*MIDI_EVENTS, MidiSystem))

    # -- connection -----------------------------------------------------------------------

    def _open_virtual(self, name: str) -> None:
        try:
            self._midi.open_virtual_port(name)
        except (rtmidi.RtMidiError, NotImplementedError) as exc:
            raise MidiPortError(f"cannot create the virtual MIDI port {name!r} with {self.api}: "
                                f"{exc}") from None

    def _connect(self) -> bool:
        """Open and connect to the port matching the pattern, if there is one."""
        assert self.pattern is not None
        ports = list(self._midi.get_ports())
        i = match_port(ports, self.pattern)
        if i is None:
            return False
        if self._midi.is_port_open():
            self._midi.close_port()
        self._midi.open_port(i, OWN_PORT_NAME)
        # rtmidi opens by index: make sure the list did not change under us
        if self._midi.get_port_name(i) != ports[i]:
            self._midi.close_port()
            return False
        self.target = ports[i]
        logger.info("%s: connected to %r (%s)", self.name, self.target, self.api)
        return True

    def _missing_message(self) -> str:
        try:
            ports = list(self._midi.get_ports())
        except rtmidi.RtMidiError:
            ports = []
        listed = ", ".join(repr(p) for p in ports) if ports else "none"
        return (f"no MIDI output port matches {self.pattern!r} (MIDI system: {self.api}); "
                f"output ports there are: {listed}. List them with `sonify ports`; start the "
                f"synth first, or let sonify wait for the port to appear")

    def poll(self) -> None:
        """Notice a destination that went away (drop and count from then on) and reconnect
        when a port matching the pattern is back; then call ``on_reconnect``. Never raises."""
        if self._closed or self.pattern is None:
            return
        try:
            with self._lock:
                reconnected = self._check()
            self._poll_failed = False
        except Exception as exc:
            if not self._poll_failed:
                logger.warning("%s: cannot check the MIDI ports: %s", self.name, exc)
            self._poll_failed = True
            return
        if reconnected and self.on_reconnect is not None:
            try:
                self.on_reconnect(self)
            except Exception:
                logger.exception("%s: on_reconnect failed", self.name)
            finally:
                self._silence_pending = False

    def _check(self) -> bool:
        """True when this call connected: after a loss, or for the first time after waiting
        (the synth may still hold notes from an earlier sonify that was killed, so a first
        connection gets its panic too)."""
        if self._closed:
            return False
        ports = self._midi.get_ports()
        if self.target is not None:
            if self.target in ports:
                return False
            logger.warning("%s: MIDI port %r went away; dropping events until it is back",
                           self.name, self.target)
            self.target = None
            self._lost_at = time.monotonic()
            if self._midi.is_port_open():
                self._midi.close_port()
        if not self._connect():
            return False
        # until on_reconnect (the scheduler's panic) has run, the dispatch thread must not slip
        # a note onto the new connection ahead of it (poll releases the lock before the call)
        self._silence_pending = self.on_reconnect is not None
        if self._lost_at is None:  # the port we waited for since the start
            return True
        logger.info("%s: reconnected after %.1f s", self.name, time.monotonic() - self._lost_at)
        self._lost_at = None
        self.stats.reconnects += 1
        return True

    # -- transmit -------------------------------------------------------------------------

    def _send(self, event: Event) -> None:
        if self.target is None and self.virtual is None:
            raise _NotConnected(f"no MIDI port matching {self.pattern!r} connected")
        if self._silence_pending and isinstance(event, NoteOn):
            raise _NotConnected(f"{self.target!r} just connected: its panic goes first")
        msg = encode(event)
        if msg is not None:
            self._midi.send_message(msg)
            self._last_send = time.monotonic()

    def _panic(self) -> None:
        self._silence_pending = False
        if self.target is None and self.virtual is None:
            return  # nothing to silence; a reconnect panics anyway
        for msg in panic_messages():
            self._midi.send_message(msg)
        self._last_send = time.monotonic()

    def note_off_sweep(self, chunk: int = 64, pause_s: float = 0.025) -> int:
        """A note-off for every note on every channel (2048 messages), ``chunk`` at a time with
        a pause between (a JACK peer reads a bounded number of events per period). For the
        notes a killed earlier process left on: nobody knows which, and some synths ignore
        CC 123. Returns how many were sent."""
        sent = 0
        for channel in ALL_CHANNELS:
            for first in range(0, 128, chunk):
                time.sleep(pause_s)
                for pitch in range(first, min(128, first + chunk)):
                    self.send(NoteOff(0.0, channel, pitch))
                    sent += 1
        return sent

    def _close(self) -> None:
        # JACK hands our messages to the peer during its next process cycles; rtmidi's
        # close_port waits for one cycle only, and under load the peer may not have read them
        # yet when our port is unregistered: the final panic would be lost. Let them drain.
        wait_s = self.drain_s - (time.monotonic() - self._last_send)
        if wait_s > 0 and self._midi.is_port_open():
            time.sleep(wait_s)
        if self._midi.is_port_open():
            self._midi.close_port()
        self._midi.delete()
        self.target = None
