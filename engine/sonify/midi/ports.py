"""One MIDI port layer for MIDI out, MIDI control in and MIDI clock in: python-rtmidi clients
that find their ports by name and survive their MIDI system (the JACK server, the ALSA
sequencer) going away and coming back.

``MidiPort`` is one rtmidi client (``MidiOut`` or ``MidiIn``) with one port: a virtual port it
creates, or our own port connected to the first port whose name matches a pattern. Its owner
(``MidiOutput``, ``MidiControl``, ``MidiClockFollower``) calls ``poll()`` about once a second,
under the owner's own lock (the one that also guards sending or reading), and reacts to what it
returns: ``"lost"`` (the port or the MIDI system went away), ``"connected"`` (connected for the
first time after waiting), ``"reconnected"`` (after a loss; the output then panics before any
note). Every JACK and ALSA client of the process is opened through ``open_client``.

Watching the MIDI system (JACK server shutdown, xruns, stalls, the ring guard's clock) is
``sonify.midi.watch``; why it is built as it is, measured, is that module's docstring.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import rtmidi

from sonify.midi.watch import (  # re-exported: the port layer's users know them from here
    ALSA_SEQ_DEVICE,
    LOOK_INTERVAL_S,
    STALL_S,
    WATCH_CLIENT_NAME,
    XRUN_WINDOW_S,
    AlsaSequencerWatch,
    JackServerWatch,
    SystemWatch,
    quiet_stderr,
    system_watch,
)

__all__ = ["ALSA_SEQ_DEVICE", "API_IDS", "API_NAMES", "CONNECTED", "LOOK_INTERVAL_S", "LOST",
           "RECONNECTED", "STALL_S", "WATCH_CLIENT_NAME", "XRUN_WINDOW_S", "AlsaSequencerWatch",
           "JackServerWatch", "MidiPort", "MidiPortError", "RingGuard", "SystemWatch",
           "VirtualPortError", "available_apis", "list_ports", "match_port", "open_client",
           "quiet_stderr", "system_watch"]

logger = logging.getLogger(__name__)

# Our names for rtmidi's APIs (the values `--midi-api` and the config accept).
API_IDS: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
API_NAMES: dict[int, str] = {v: k for k, v in API_IDS.items()}

# rtmidi's JACK output ring (JACK_RINGBUFFER_SIZE in RtMidi.cpp); each message takes its length
# plus a 4-byte size in it.
RING_BYTES = 16384
RING_OVERHEAD_BYTES = 4
RING_CHECK_BYTES = 2048  # after this many bytes, look whether JACK's cycle moved on
RING_LIMIT_BYTES = RING_BYTES // 2  # never more than this in the ring without a cycle passing

# What poll() reports.
LOST = "lost"
CONNECTED = "connected"
RECONNECTED = "reconnected"


DRAIN_LIMIT_S = 1.0
"""The longest ``MidiPort.wait_cycles`` waits for a server's process cycles."""
CYCLE_POLL_S = 0.002  # how often it looks at the cycle counter meanwhile
CONNECTION_CHECK_S = 0.25
"""How long after connecting to a port ``MidiPort.poll`` looks whether JACK made the
connection (it refuses one to a client that is not active yet, and rtmidi does not say)."""


class MidiPortError(Exception):
    """A MIDI system or port cannot be used; the message says which, why and what to do."""


class VirtualPortError(MidiPortError):
    """A virtual port cannot be made (the MIDI system has no virtual ports, or refused)."""


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


# -- MIDI systems -------------------------------------------------------------------------------

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


def open_client(kind: type[Any], api: str, client_name: str) -> tuple[Any, str]:
    """An rtmidi MidiOut/MidiIn on the first MIDI system that works, and that system's name.
    A system found gone (see ``system_watch``) is refused until it is back."""
    errors: list[str] = []
    for name in _candidates(api):
        if (name == "alsa" and api == "auto" and sys.platform.startswith("linux")
                and not os.path.exists(ALSA_SEQ_DEVICE)):
            # skip it quietly: trying would only make libasound print an error on stderr
            errors.append(f"alsa: no ALSA sequencer ({ALSA_SEQ_DEVICE} is missing)")
            continue
        watch = system_watch(name)
        if watch is not None and watch.gone:
            watch.check(force=True)
            if watch.gone:
                errors.append(f"{name}: the {watch.system} is gone (waiting for it to return)")
                continue
        try:
            if isinstance(watch, JackServerWatch):  # no server: libjack prints five lines
                with watch.quiet():
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
    out, name = open_client(rtmidi.MidiOut, api, client_name)
    try:
        outputs = list(out.get_ports())
    finally:
        out.delete()
    inp, _ = open_client(rtmidi.MidiIn, name, client_name)
    try:
        inputs = list(inp.get_ports())
    finally:
        inp.delete()
    return {"api": name, "outputs": outputs, "inputs": inputs}


# -- one port -----------------------------------------------------------------------------------

class RingGuard:
    """Keeps rtmidi's JACK ring from filling while JACK does not empty it (a full ring hangs
    the process: see the module docstring).

    ``admit(nbytes, frame)`` counts the bytes a message takes in the ring; every
    ``RING_CHECK_BYTES`` it asks ``frame()`` for JACK's process-cycle frame. A frame that moved
    means rtmidi's process callback ran and emptied the ring: the count starts again. One that
    did not: at most ``RING_LIMIT_BYTES`` more go in, then it says no until the cycle moves.
    So the ring never holds more than the sum of the two (10 KB of its 16 KB). With no frame to
    go by (``frame()`` is None) it always says yes.
    """

    def __init__(self) -> None:
        self.unconfirmed = 0  # bytes handed to rtmidi since the cycle was last seen to move
        self._frame: int | None = None

    def admit(self, nbytes: int, frame: Callable[[], int | None]) -> bool:
        cost = nbytes + RING_OVERHEAD_BYTES
        self.unconfirmed += cost
        if self.unconfirmed <= RING_CHECK_BYTES:
            return True
        now = frame()
        if now is None:
            return True
        if now != self._frame:
            self._frame = now
            self.unconfirmed = cost
            return True
        if self.unconfirmed <= RING_LIMIT_BYTES:
            return True
        self.unconfirmed -= cost
        return False


class MidiPort:
    """One python-rtmidi client (``kind``: ``rtmidi.MidiOut`` or ``rtmidi.MidiIn``) with one
    port: ``virtual`` (a port it creates, that others connect to) or our port ``own_port``
    connected to the first port matching ``pattern`` (see ``match_port``; call ``connect()``).

    ``setup(midi)`` prepares each new rtmidi object (ignore_types, set_callback) and
    ``teardown(midi)`` runs before one is deleted (cancel_callback). Raises MidiPortError when
    no MIDI system works or the virtual port cannot be made. Not thread-safe: the owner calls
    it under its own lock. ``midi`` is None while the system is gone.
    """

    def __init__(self, kind: type[Any], *, api: str, client_name: str,
                 pattern: str | None = None, virtual: str | None = None, own_port: str,
                 label: str, setup: Callable[[Any], None] | None = None,
                 teardown: Callable[[Any], None] | None = None) -> None:
        if (pattern is None) == (virtual is None):
            raise ValueError("MidiPort needs either pattern= or virtual=, not both or neither")
        self.kind = kind
        self.client_name = client_name
        self.pattern = pattern
        self.virtual = virtual
        self.own_port = own_port
        self.label = label
        self._setup = setup
        self._teardown = teardown
        self.target: str | None = None  # full name of the port we are connected to
        self._verify_at: float | None = None  # when to look whether the connection took
        self.own_name: str | None = None  # our virtual port's full name, when it can be seen
        self.lost_at: float | None = None  # monotonic time the port or the system went away
        self.last_target: str | None = None  # the port we were connected to last
        self._ring = RingGuard()
        self.midi: Any = None
        self.midi, self.api = open_client(kind, api, client_name)
        self.watch = system_watch(self.api)
        self.generation = self.watch.generation if self.watch is not None else 0
        if self.watch is not None:
            self.watch.attach(self)
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    @property
    def is_output(self) -> bool:
        return self.kind is rtmidi.MidiOut

    @property
    def connected(self) -> bool:
        return self.live and (self.virtual is not None or self.target is not None)

    @property
    def live(self) -> bool:
        """Whether we hold a client of the MIDI system as it is now (not of a gone one)."""
        watch = self.watch
        return self.midi is not None and (
            watch is None or (not watch.gone and self.generation == watch.generation))

    @property
    def system_gone(self) -> bool:
        return self.watch is not None and self.watch.gone

    def system_problem(self) -> str | None:
        return self.watch.problem() if self.watch is not None else None

    def _prepare(self) -> None:
        if self._setup is not None:
            self._setup(self.midi)
        if self.virtual is None:
            return
        # our port is an output port when we send (JACK's view), an input port when we read
        before = self.watch.port_names(self.is_output) if self.watch is not None else None
        try:
            self.midi.open_virtual_port(self.virtual)
        except (rtmidi.RtMidiError, NotImplementedError) as exc:
            direction = "output" if self.is_output else "input"
            raise VirtualPortError(f"cannot create the virtual MIDI {direction} port "
                                   f"{self.virtual!r} with {self.api}: {exc}") from None
        self.own_name = self._own_port_name(before, self.virtual)

    def _own_port_name(self, before: set[str] | None, short: str | None) -> str | None:
        """Our port's full name: the one named ``short`` that appeared (JACK may have renamed
        the client when the name was taken)."""
        if before is None or self.watch is None:
            return None
        after = self.watch.port_names(self.is_output) or set()
        new = [n for n in after - before if n.endswith(f":{short}")]
        return new[0] if len(new) == 1 else None

    def ports(self) -> list[str]:
        """The ports this client could connect to ([] when it cannot tell)."""
        try:
            return list(self.midi.get_ports()) if self.midi is not None else []
        except rtmidi.RtMidiError:
            return []

    def connect(self, ports: list[str] | None = None) -> bool:
        """Open our port and connect it to the port matching the pattern, if there is one."""
        assert self.pattern is not None
        if self.midi is None:
            return False
        ports = list(self.midi.get_ports()) if ports is None else ports
        i = match_port(ports, self.pattern)
        if i is None:
            return False
        if self.midi.is_port_open():
            self.midi.close_port()
        before = self.watch.port_names(self.is_output) if self.watch is not None else None
        self.midi.open_port(i, self.own_port)
        # rtmidi opens by index: make sure the list did not change under us
        if self.midi.get_port_name(i) != ports[i]:
            self.midi.close_port()
            return False
        self.target = self.last_target = ports[i]
        self.own_name = self._own_port_name(before, self.own_port)
        # JACK refuses to connect a port whose client is not active yet (a synth that has
        # registered its port but not started), and rtmidi does not say so: look once, a
        # moment later, whether the connection is there (see _connection_refused)
        self._verify_at = time.monotonic() + CONNECTION_CHECK_S if self.own_name else None
        self._ring = RingGuard()
        logger.info("%s: connected to %r (%s)", self.label, self.target, self.api)
        return True

    def poll(self) -> str | None:
        """Notice the port or the MIDI system going away, and connect again when they are back:
        LOST, CONNECTED (the first time, after waiting from the start), RECONNECTED (after a
        loss) or None (nothing new). rtmidi errors propagate (the owner logs them)."""
        change: str | None = None
        watch = self.watch
        if watch is not None:
            watch.check()
            if self.midi is not None and (watch.gone or self.generation != watch.generation):
                self._lose(f"the {watch.system}")
                self._delete()  # before anything opens a new client: see the module docstring
                change = LOST
                watch.check(force=True)  # ours may have been the last old client
            if self.midi is None:
                if watch.gone or not self._reopen():
                    return change
                if self.virtual is not None:
                    return self._back()
        if self.pattern is None or self.midi is None:
            return change
        ports = list(self.midi.get_ports())
        if self.target is not None:
            if self.target in ports and not self._connection_refused():
                return change
            if self.target in ports:
                logger.warning("%s: the connection to %r did not take (JACK refuses one to a "
                               "client that is not active yet); connecting again", self.label,
                               self.target)
                self.lost_at = time.monotonic()
            else:
                self._lose(f"MIDI port {self.target!r}")
            self.target = None
            self.own_name = None
            if self.midi.is_port_open():
                self.midi.close_port()
            change = LOST
        if not self.connect(ports):
            return change
        return self._back()

    def _connection_refused(self) -> bool:
        """Whether the connection ``connect`` asked for is missing, looked at once,
        CONNECTION_CHECK_S after it (JACK lists a connection once the server has made it).
        Only once: a connection the user removes later, in a patchbay, stays removed."""
        if self._verify_at is None or time.monotonic() < self._verify_at:
            return False
        self._verify_at = None
        return self.listeners() == 0

    def _lose(self, what: str) -> None:
        if self.midi is not None and (self.virtual is not None or self.target is not None):
            logger.warning("%s: %s went away; waiting for it to come back", self.label, what)
            self.lost_at = time.monotonic()
        elif self.lost_at is None:
            logger.warning("%s: %s went away", self.label, what)

    def _back(self) -> str:
        if self.lost_at is None:  # waited for since the start
            return CONNECTED
        logger.info("%s: back after %.1f s", self.label, time.monotonic() - self.lost_at)
        self.lost_at = None
        return RECONNECTED

    def _reopen(self) -> bool:
        """A new client (and virtual port) on the system that is back; False if it fails."""
        try:
            self.midi, self.api = open_client(self.kind, self.api, self.client_name)
        except MidiPortError as exc:
            logger.debug("%s: no new client yet: %s", self.label, exc)
            return False
        self.generation = self.watch.generation if self.watch is not None else 0
        self._ring = RingGuard()
        try:
            self._prepare()
        except (MidiPortError, rtmidi.RtMidiError) as exc:
            logger.warning("%s: %s", self.label, exc)
            self._delete()
            return False
        return True

    # -- sending --------------------------------------------------------------------------

    def admit(self, nbytes: int) -> bool:
        """Whether a message of ``nbytes`` may go to rtmidi now: False while the MIDI system is
        gone, and under JACK when rtmidi's ring is not being emptied (``RingGuard``)."""
        watch = self.watch
        if watch is None:
            return True
        if watch.gone or self.generation != watch.generation:
            return False
        if not isinstance(watch, JackServerWatch):
            return True
        return self._ring.admit(nbytes, watch.frame)

    def refusal(self) -> str:
        """Why ``admit`` says no."""
        watch = self.watch
        if watch is not None and (watch.gone or self.generation != watch.generation):
            return f"the {watch.system} is gone"
        return (f"JACK has not run a process cycle while {self._ring.unconfirmed} bytes waited "
                f"for it (the server is stalled)")

    def wait_cycles(self, cycles: int = 2, limit_s: float = DRAIN_LIMIT_S) -> bool:
        """Wait until the MIDI system has run ``cycles`` process cycles from now (JACK: its
        frame counter moved that many times), so that what was handed to rtmidi before has
        been read by the peer. True at once where there are no cycles to see (ALSA, CoreMIDI:
        they deliver as they are sent); False after ``limit_s`` of a server that does not run
        them (stalled or gone: nothing would come of waiting longer)."""
        watch = self.watch
        if watch is None or not self.live:
            return True
        last = watch.frame()
        if last is None:
            return True
        deadline = time.monotonic() + limit_s
        seen = 0
        while seen < cycles:
            if time.monotonic() >= deadline:
                return False
            time.sleep(CYCLE_POLL_S)
            now = watch.frame()
            if now is None:
                return True
            if now != last:
                seen += 1
                last = now
        return True

    def listeners(self) -> int | None:
        """How many connections our port has (None when that cannot be seen)."""
        if self.own_name is None or self.watch is None or self.midi is None:
            return None
        return self.watch.listeners(self.own_name)

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        self._delete()
        if self.watch is not None:
            self.watch.detach(self)

    def _delete(self) -> None:
        # ``midi`` is cleared only once the client is deleted: until then the watch must see
        # it, so that no new JACK client opens (and frees it) meanwhile
        midi = self.midi
        self.target = None
        self.own_name = None
        if midi is None:
            return
        watch = self.watch
        # a client of a gone JACK server: libjack says "Server is not running" at each step
        quiet = (watch.quiet() if isinstance(watch, JackServerWatch) and not self.live
                 else contextlib.nullcontext())
        with quiet:
            try:
                if self._teardown is not None:
                    self._teardown(midi)
                if midi.is_port_open():
                    midi.close_port()
            except rtmidi.RtMidiError as exc:
                logger.warning("%s: closing the MIDI port failed: %s", self.label, exc)
            finally:
                try:
                    midi.delete()
                finally:
                    self.midi = None
