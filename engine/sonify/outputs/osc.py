"""OSC out over UDP (python-osc builds the messages; one non-blocking socket ships them).

Addresses are relative to a prefix (``/sonify`` by default): ``/bass/level`` goes out as
``/sonify/bass/level``; an address that already starts with the prefix is left as it is.

Notes, for SuperCollider, Max and Pd (``notes``, on by default: every note of every scene):

- ``<prefix>/note voice(s) channel(i) pitch(i) velocity(f) duration_s(f)`` when a note starts:
  the scene's voice name, the channel 1..16 as the scene file writes it, the MIDI pitch
  0..127, the velocity as 0..1 (velocity / 127; ``note_velocity = "int"``: 1..127 as an
  ``i``) and the note's length in seconds as scheduled (a receiver can play it without
  waiting for a note-off; 0 when unknown; a scene change or a panic may end it sooner);
- ``<prefix>/noteoff voice(s) channel(i) pitch(i)`` when it ends, only with ``note_offs``
  (for a receiver that holds notes: a sustained synth in Max, a gate in Pd); a panic's
  note-offs name the voice that played the note.

With ``midi_as_osc`` the other MIDI events go out too: ``<prefix>/cc ch control value``,
``<prefix>/bend ch value`` (-8192..8191) and ``<prefix>/program ch program``, all int32, the
channel 0..15 as MIDI numbers it.

With ``bundle_latency_s`` every message travels in a bundle timetagged ``event.t + latency``,
the engine-clock time turned into wall-clock (NTP) time, so a receiver such as SuperCollider
plays it at that moment however late the packet arrives (within the latency).

Encoding is apart from sending: ``encode`` returns the datagram bytes for an event, so tests
check exact bytes without a socket.

A target whose host name does not resolve (a typo, or a box booting before its network is up)
does not stop the show: it is named in one warning, whatever goes to it is dropped and counted
(``problem`` says why), and a background thread tries the name again, waiting
``retry_initial_s`` and then twice as long each time up to ``retry_max_s``, until it resolves.
"""

from __future__ import annotations

import logging
import math
import numbers
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pythonosc.osc_message_builder import OscMessageBuilder

from sonify.events import (
    ControlChange,
    Event,
    NoteOff,
    NoteOn,
    OscMessage,
    PitchBend,
    ProgramChange,
)
from sonify.outputs.base import Output

logger = logging.getLogger(__name__)

NTP_UNIX_OFFSET_S = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
RESOLVE_RETRY_INITIAL_S = 1.0  # a name that did not resolve is tried again after this ...
RESOLVE_RETRY_MAX_S = 30.0  # ... doubling up to this
OscArg = int | float | str | bool
OscTarget = tuple[str, int] | str


class OscTargetError(ValueError):
    """An OSC target that cannot be used (bad HOST:PORT, a host name that does not resolve)."""


# -- encoding (pure, no socket) -----------------------------------------------------------------

def osc_message(address: str, args: Sequence[OscArg] = ()) -> bytes:
    """The datagram of one OSC message: int -> i (h beyond 32 bits), float -> f, str -> s,
    bool -> T/F."""
    builder = OscMessageBuilder(address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(arg, "T" if arg else "F")
        elif isinstance(arg, numbers.Integral):
            v = int(arg)
            builder.add_arg(v, "i" if -(2**31) <= v < 2**31 else "h")
        elif isinstance(arg, numbers.Real):
            builder.add_arg(float(arg), "f")
        elif isinstance(arg, str):
            builder.add_arg(arg, "s")
        else:
            raise TypeError(f"OSC argument {arg!r} of {address}: use int, float, str or bool")
    return bytes(builder.build().dgram)


def ntp_timetag(unix_s: float) -> bytes:
    """The 64-bit OSC timetag (NTP: seconds since 1900, 32.32 fixed point) of a Unix time."""
    secs = math.floor(unix_s)
    frac = min(int(round((unix_s - secs) * 2**32)), 2**32 - 1)
    return struct.pack(">II", secs + NTP_UNIX_OFFSET_S, frac)


def osc_bundle(messages: Sequence[bytes], unix_s: float) -> bytes:
    """A bundle of message datagrams, timetagged at the wall-clock time ``unix_s``."""
    parts = [b"#bundle\x00", ntp_timetag(unix_s)]
    for m in messages:
        parts += [struct.pack(">i", len(m)), m]
    return b"".join(parts)


def normalize_prefix(prefix: str) -> str:
    """``""``, ``"/"`` -> no prefix; otherwise a leading ``/`` and no trailing one."""
    p = prefix.strip().rstrip("/")
    if p and not p.startswith("/"):
        p = "/" + p
    return p


def full_address(address: str, prefix: str) -> str:
    if not prefix or address == prefix or address.startswith(prefix + "/"):
        return address
    return prefix + address


NOTE_VELOCITIES = ("float", "int")


def note_args(event: NoteOn, velocity: str = "float") -> tuple[OscArg, ...]:
    """The arguments of ``<prefix>/note``: voice, channel 1..16, pitch, velocity (0..1, or
    1..127 with ``velocity="int"``), duration in seconds."""
    vel: OscArg = event.velocity if velocity == "int" else round(event.velocity / 127.0, 6)
    return (event.voice, event.channel + 1, event.pitch, vel, float(event.duration_s))


def to_osc(event: Event, prefix: str = "/sonify", midi_as_osc: bool = False, *,
           notes: bool = False, note_offs: bool = False,
           velocity: str = "float") -> tuple[str, tuple[OscArg, ...]] | None:
    """(address, args) an event goes out as, or None when it does not go out over OSC
    (``notes``/``note_offs``/``midi_as_osc``: see the module docstring)."""
    prefix = normalize_prefix(prefix)
    if isinstance(event, OscMessage):
        return full_address(event.address, prefix), tuple(event.args)
    if isinstance(event, NoteOn):
        return (prefix + "/note", note_args(event, velocity)) if notes else None
    if isinstance(event, NoteOff):
        if notes and note_offs:
            return prefix + "/noteoff", (event.voice, event.channel + 1, event.pitch)
        return None
    if not midi_as_osc:
        return None
    if isinstance(event, ControlChange):
        return prefix + "/cc", (event.channel, event.control, event.value)
    if isinstance(event, PitchBend):
        return prefix + "/bend", (event.channel, event.value)
    if isinstance(event, ProgramChange):
        return prefix + "/program", (event.channel, event.program)
    return None


def encode(event: Event, prefix: str = "/sonify", *, midi_as_osc: bool = False,
           notes: bool = False, note_offs: bool = False, velocity: str = "float",
           timetag_unix_s: float | None = None) -> bytes | None:
    """The datagram for an event: a message, or (with ``timetag_unix_s``) a bundle holding it;
    None when the event does not go out over OSC."""
    osc = to_osc(event, prefix, midi_as_osc, notes=notes, note_offs=note_offs,
                 velocity=velocity)
    if osc is None:
        return None
    dgram = osc_message(*osc)
    return dgram if timetag_unix_s is None else osc_bundle([dgram], timetag_unix_s)


def wall_clock_offset_s() -> float:
    """Add to an engine-clock time (time.perf_counter) to get wall-clock (Unix) time."""
    return time.time() - time.perf_counter()


# -- targets --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedTarget:
    host: str
    port: int
    family: int
    sockaddr: tuple[str, int] | tuple[str, int, int, int]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_target(target: OscTarget) -> tuple[str, int]:
    """``("host", port)`` from a tuple or ``"HOST:PORT"`` (``"[::1]:9000"`` for IPv6)."""
    if isinstance(target, str):
        host, sep, port_s = target.rpartition(":")
        if not sep or not host or not port_s.isdigit():
            raise OscTargetError(f"OSC target {target!r}: write it as HOST:PORT, "
                                 "e.g. 127.0.0.1:57120")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        port = int(port_s)
    else:
        host, port = target
    if not 1 <= int(port) <= 65535:
        raise OscTargetError(f"OSC target {host}:{port}: the port must be 1..65535")
    return host, int(port)


def resolve_target(target: OscTarget) -> ResolvedTarget:
    """The address to send to; OscTargetError when the host name does not resolve."""
    host, port = parse_target(target)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: a label IDNA refuses
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise OscTargetError(f"OSC target {host}:{port}: the host name {host!r} does not "
                             f"resolve ({why}); check the name or use an IP "
                             f"address") from None
    family, _, _, _, sockaddr = infos[0]
    return ResolvedTarget(host, port, family, sockaddr)  # type: ignore[arg-type]


# -- the output -------------------------------------------------------------------------------

class OscOutput(Output):
    """OSC over UDP to one or more targets (``("host", port)`` or ``"HOST:PORT"``).

    Host names are resolved here; a malformed target is an OscTargetError, but a name that does
    not resolve is not: it is retried in the background (see the module docstring) and sends
    to it count as drops meanwhile. ``resolver`` is ``resolve_target`` unless a test passes
    another. ``notes``, ``note_offs``, ``note_velocity`` and ``midi_as_osc``: what goes out
    besides OSC messages (the module docstring). UDP cannot tell whether anyone listens; a
    send the system refuses (unreachable network, full buffer) is counted as a drop, never
    raised.
    """

    def __init__(self, targets: Sequence[OscTarget] | OscTarget, *, prefix: str = "/sonify",
                 bundle_latency_s: float | None = None, midi_as_osc: bool = False,
                 notes: bool = True, note_offs: bool = False, note_velocity: str = "float",
                 resolver: Callable[[tuple[str, int]], ResolvedTarget] = resolve_target,
                 retry_initial_s: float = RESOLVE_RETRY_INITIAL_S,
                 retry_max_s: float = RESOLVE_RETRY_MAX_S) -> None:
        super().__init__()
        if isinstance(targets, str) or (isinstance(targets, tuple) and len(targets) == 2
                                        and isinstance(targets[1], int)):
            targets = [targets]  # type: ignore[list-item]
        if not targets:
            raise OscTargetError("OscOutput needs at least one target (HOST:PORT)")
        if bundle_latency_s is not None and not (bundle_latency_s >= 0):
            raise ValueError(f"bundle_latency_s must be >= 0, got {bundle_latency_s}")
        if note_velocity not in NOTE_VELOCITIES:
            raise ValueError(f"note_velocity must be one of {', '.join(NOTE_VELOCITIES)}, "
                             f"got {note_velocity!r}")
        parsed = [parse_target(t) for t in targets]  # type: ignore[arg-type]
        self.prefix = normalize_prefix(prefix)
        self.bundle_latency_s = bundle_latency_s
        self.midi_as_osc = midi_as_osc
        self.notes = notes
        self.note_offs = note_offs
        self.note_velocity = note_velocity
        # (channel, pitch) -> the voice of the last note there (at most 16 x 128 entries): a
        # panic's note-offs, which the scheduler sends without a voice, name it
        self._voices: dict[tuple[int, int], str] = {}
        self.name = "osc:" + ",".join(f"{h}:{p}" for h, p in parsed)
        # engine clock -> wall clock; read at each bundle so wall-clock adjustments follow
        self.wall_offset: Callable[[], float] = wall_clock_offset_s
        self._resolver = resolver
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.targets: list[ResolvedTarget] = []  # the resolved ones, which are sent to
        self._unresolved: dict[tuple[str, int], str] = {}  # (host, port) -> why not
        self._sockets: dict[int, socket.socket] = {}
        self._last_ok = True
        self._stop = threading.Event()
        self._resolving: threading.Thread | None = None
        for host, port in parsed:
            try:
                target = resolver((host, port))
            except OscTargetError as exc:
                self._unresolved[(host, port)] = str(exc)
                logger.warning("%s. Meanwhile sonify plays on without it: what goes there is "
                               "dropped (and counted) while the name is tried again in the "
                               "background", exc)
                continue
            self._add(target)
        if self._unresolved:
            self._resolving = threading.Thread(target=self._resolve_later, daemon=True,
                                               name=f"{self.name}-resolve")
            self._resolving.start()

    def _add(self, target: ResolvedTarget) -> None:
        if target.family not in self._sockets:
            sock = socket.socket(target.family, socket.SOCK_DGRAM)
            sock.setblocking(False)  # never stall the dispatch thread
            self._sockets[target.family] = sock
        self.targets.append(target)

    def _resolve_later(self) -> None:
        """Try the names that did not resolve, with backoff, until all do or the output closes
        (a lookup can block for seconds: never on the dispatch thread, never under the lock)."""
        delay = self.retry_initial_s
        while self._unresolved and not self._stop.wait(delay):
            for key in list(self._unresolved):
                try:
                    target = self._resolver(key)
                except Exception as exc:  # OscTargetError, or anything a resolver raises
                    with self._lock:
                        self._unresolved[key] = str(exc)
                    continue
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._add(target)
                    del self._unresolved[key]
                    if not self._unresolved:
                        self._last_ok = True  # the next send says how the sockets fare
                logger.warning("OSC target %s:%d resolves now (%s): sending to it", key[0],
                               key[1], target.sockaddr[0])
            delay = min(delay * 2, self.retry_max_s)

    @property
    def unresolved(self) -> list[str]:
        """``HOST:PORT`` of the targets whose names do not resolve (yet)."""
        return [f"{h}:{p}" for h, p in list(self._unresolved)]

    @property
    def problem(self) -> str | None:
        if self._closed:
            return None
        waiting = list(self._unresolved.values())
        if waiting:
            return "; ".join(waiting) + " (retrying in the background)"
        return super().problem

    @property
    def connected(self) -> bool:
        return not self._closed and self._last_ok and not self._unresolved

    def wants(self, event: Event) -> bool:
        if isinstance(event, OscMessage):
            return True
        if isinstance(event, NoteOn):
            return self.notes
        if isinstance(event, NoteOff):
            return self.notes and self.note_offs
        return self.midi_as_osc and isinstance(event, (ControlChange, PitchBend, ProgramChange))

    def encode(self, event: Event) -> bytes | None:
        timetag = None
        if self.bundle_latency_s is not None:
            timetag = event.t + self.bundle_latency_s + self.wall_offset()
        return encode(event, self.prefix, midi_as_osc=self.midi_as_osc, notes=self.notes,
                      note_offs=self.note_offs, velocity=self.note_velocity,
                      timetag_unix_s=timetag)

    def _send(self, event: Event) -> None:
        if isinstance(event, NoteOn):
            self._voices[(event.channel, event.pitch)] = event.voice
        elif isinstance(event, NoteOff):
            voice = self._voices.pop((event.channel, event.pitch), event.voice)
            if not event.voice and voice:
                event = replace(event, voice=voice)
        dgram = self.encode(event)
        if dgram is not None:
            self._ship(dgram)

    def _panic(self) -> None:
        self._voices.clear()
        self._ship(osc_message(self.prefix + "/panic"))

    def _ship(self, dgram: bytes) -> None:
        failed: list[str] = []
        for t in self.targets:
            try:
                self._sockets[t.family].sendto(dgram, t.sockaddr)
            except OSError as exc:
                failed.append(f"{t}: {exc}")
        failed += [f"{h}:{p}: the host name does not resolve (retrying in the background)"
                   for h, p in self._unresolved]
        self._last_ok = not failed
        if failed:
            raise OSError("OSC send failed: " + "; ".join(failed))

    def _close(self) -> None:
        self._stop.set()  # the resolver thread ends at its next wake-up (under this lock)
        for sock in self._sockets.values():
            sock.close()
