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

Opening, finding and reconnecting live in ``sonify.midi.ports`` (``MidiPort``), shared with the
MIDI inputs; its docstring says what rtmidi and JACK do when the server dies. What this output
does about it, in ``poll()`` (about every 0.5 s, from the music thread):

- A destination that goes away is not reported by rtmidi (sends simply go nowhere): the
  destination is looked up in the port list; while it is gone, events are dropped and counted,
  and when a port matching the pattern is back, the output connects and calls
  ``on_reconnect`` (the scheduler then ends its notes and panics on it).
- A MIDI system that goes away (the JACK server quits or is killed, the ALSA sequencer
  disappears): ``connected`` turns False, ``problem`` says so, events are dropped and counted;
  the old rtmidi client is deleted (under JACK that holds the whole process for 1 s: rtmidi
  waits for the dead server to drain it) and, once the system is back, a new client reopens
  the virtual port or reconnects to the pattern's port, then ``on_reconnect``.
- A virtual port made again on a restarted JACK server has nobody connected: its panic would
  be lost. The output waits (events dropped and counted, ``problem`` says why) until something
  connects to it, as a patchbay or session manager does, then calls ``on_reconnect``.
- Until ``on_reconnect`` has run, no note-on goes out on the new connection
  (``_silence_pending``): the panic comes first.
- rtmidi's JACK ring buffer is never filled while JACK does not empty it (a full ring hangs the
  process): sends that would are refused and counted as drops (``MidiPort.admit``); a stalled
  server and recent xruns show in ``problem``. MIDI JACK itself loses (an event that no longer
  fits into a period after an xrun) is not reported by rtmidi and cannot be counted.
"""

from __future__ import annotations

import logging
import time

import rtmidi

from sonify.events import (
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
from sonify.midi.ports import (
    API_IDS,
    API_NAMES,
    CONNECTED,
    DRAIN_LIMIT_S,
    LOST,
    RECONNECTED,
    JackServerWatch,
    MidiPort,
    MidiPortError,
    available_apis,
    list_ports,
    match_port,
)
from sonify.midi.ports import open_client as _open_client
from sonify.midi.ports import quiet_stderr as _quiet_stderr
from sonify.outputs.base import (
    ALL_CHANNELS,
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    CC_SUSTAIN,
    Output,
)

__all__ = ["API_IDS", "API_NAMES", "MidiOutput", "MidiPortError", "NOTE_OFF_VELOCITY",
           "OWN_PORT_NAME", "available_apis", "encode", "list_ports", "match_port",
           "panic_messages", "_open_client", "_quiet_stderr"]

logger = logging.getLogger(__name__)

OWN_PORT_NAME = "out"  # our side of a connection: "<client_name>:out" under JACK
NOTE_OFF_VELOCITY = 64  # MIDI 1.0: a sender without release velocity sends 64


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
        self.name = f"midi:{virtual} (virtual)" if virtual is not None else f"midi:{port}"
        self._last_send = -1e9  # monotonic time of the last message handed to rtmidi
        self._silence_pending = False  # connected, the reconnect panic not sent yet
        self._awaiting_listener = False  # virtual port made again: nobody connected to it yet
        self._poll_failed = False
        try:
            self._port = MidiPort(rtmidi.MidiOut, api=api, client_name=client_name,
                                  pattern=port, virtual=virtual, own_port=OWN_PORT_NAME,
                                  label=self.name)
        except rtmidi.RtMidiError as exc:
            raise MidiPortError(f"{self.name}: cannot open the MIDI port ({api}): "
                                f"{exc}") from None
        self.api = self._port.api
        if port is None:
            return
        try:
            found = self._port.connect()
            if not found and not wait:
                raise MidiPortError(self._missing_message())
        except rtmidi.RtMidiError as exc:
            self._port.close()
            raise MidiPortError(f"{self.name}: cannot open the MIDI port ({self.api}): "
                                f"{exc}") from None
        except BaseException:
            self._port.close()
            raise
        if not found:
            logger.warning("%s: no MIDI output port matches %r yet (%s); waiting for it "
                           "(see `sonify ports`)", self.name, port, self.api)

    @property
    def target(self) -> str | None:
        """Full name of the destination we are connected to (None for a virtual port)."""
        return self._port.target

    @property
    def connected(self) -> bool:
        return not self._closed and self._port.connected and not self._awaiting_listener

    @property
    def problem(self) -> str | None:
        """Why MIDI does not get through now: the MIDI system gone, the port gone, nobody
        connected to the virtual port made again after a restart, a stalled JACK server, recent
        JACK xruns; None when none of these."""
        if self._closed:
            return None
        port = self._port
        system = port.system_problem()
        if port.system_gone:
            return system
        if self._awaiting_listener:
            return (f"the MIDI system came back; waiting for something to connect to the "
                    f"virtual port {port.own_name or self.virtual!r}")
        if self.pattern is not None and port.target is None:
            if port.last_target is not None:
                return (f"MIDI port {port.last_target!r} went away; waiting for a port "
                        f"matching {self.pattern!r}")
            return f"no MIDI output port matches {self.pattern!r} yet; waiting for it"
        return system

    @property
    def jack_xruns(self) -> int | None:
        """How many xruns JACK has reported since this process began watching it (None when
        not on JACK or not watched): a message JACK loses in one is not reported otherwise."""
        watch = self._port.watch
        if isinstance(watch, JackServerWatch) and watch.watching:
            return watch.xrun_total
        return None

    def wants(self, event: Event) -> bool:
        return isinstance(event, (*MIDI_EVENTS, MidiSystem))

    # -- connection -----------------------------------------------------------------------

    def _missing_message(self) -> str:
        ports = self._port.ports()
        listed = ", ".join(repr(p) for p in ports) if ports else "none"
        return (f"no MIDI output port matches {self.pattern!r} (MIDI system: {self.api}); "
                f"output ports there are: {listed}. List them with `sonify ports`; start the "
                f"synth first, or let sonify wait for the port to appear")

    def poll(self) -> None:
        """Notice a destination or a MIDI system that went away (drop and count from then on)
        and reconnect when they are back; then call ``on_reconnect``. Never raises."""
        if self._closed:
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
        port = self._port
        change = port.poll()
        if change == LOST:
            self._awaiting_listener = False
            return False
        if change == RECONNECTED and self.virtual is not None:
            listeners = port.listeners()
            if listeners is not None and listeners == 0:
                logger.info("%s: waiting for something to connect to %r before playing on",
                            self.name, port.own_name)
                self._awaiting_listener = True
                return False
        elif change is None and self._awaiting_listener:
            listeners = port.listeners()
            if listeners is not None and listeners == 0:
                return False
            self._awaiting_listener = False
            change = RECONNECTED
        if change not in (CONNECTED, RECONNECTED):
            return False
        if change == RECONNECTED:
            self.stats.reconnects += 1
        # until on_reconnect (the scheduler's panic) has run, the dispatch thread must not slip
        # a note onto the new connection ahead of it (poll releases the lock before the call)
        self._silence_pending = self.on_reconnect is not None
        return True

    # -- transmit -------------------------------------------------------------------------

    def _refused(self) -> str | None:
        """Why nothing can be sent now, or None."""
        port = self._port
        if not port.live:
            return port.system_problem() or "no MIDI client"
        if self._awaiting_listener:
            return f"nothing is connected to {port.own_name or self.virtual!r} yet"
        if not port.connected:
            return f"no MIDI port matching {self.pattern!r} connected"
        return None

    def _send(self, event: Event) -> None:
        refused = self._refused()
        if refused is not None:
            raise _NotConnected(refused)
        if self._silence_pending and isinstance(event, NoteOn):
            raise _NotConnected(f"{self.target or self.virtual!r} just connected: its panic "
                                f"goes first")
        msg = encode(event)
        if msg is not None:
            self._transmit(msg)

    def _transmit(self, msg: list[int]) -> None:
        port = self._port
        if not port.admit(len(msg)):
            raise _NotConnected(port.refusal())
        port.midi.send_message(msg)
        self._last_send = time.monotonic()

    def _panic(self) -> None:
        if self._refused() is not None:
            self._silence_pending = False
            return  # nothing to silence; a reconnect panics anyway
        for msg in panic_messages():
            self._transmit(msg)
        self._silence_pending = False

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
        # The fixed wait is not always enough: a loaded machine's JACK can miss its cycles for
        # longer (xruns), so wait on top for two cycles that JACK has run (a second at most).
        port = self._port
        since = time.monotonic() - self._last_send
        wait_s = self.drain_s - since
        if wait_s > 0 and port.live:
            time.sleep(wait_s)
        if since < self.drain_s + DRAIN_LIMIT_S and not port.wait_cycles():
            logger.warning("%s: JACK ran no process cycle in %.1f s at close: the last messages "
                           "may not have reached %r", self.name, DRAIN_LIMIT_S, port.target)
        port.close()
