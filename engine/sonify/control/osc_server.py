"""OSC control input: a UDP server that turns OSC messages into runtime commands.

Size (about 600 lines, over the 500 we aim for): one server. The datagram parsing and the
serving thread share the counters and reject reasons; its rules (one queue, never touch
runtime state) are easiest to check in one place.

The server never touches runtime state. Each valid message becomes one typed command
(``sonify.commands``: parsed by ``from_osc``, checked by ``check``) handed to ``command(cmd)``,
the runtime's one command queue, which the music thread drains. Lookups (``known_scenes()``,
``voices()``, ``params()``, ``status()``) run on the server thread, so the caller should hand
over cheap, thread-safe snapshots.

Address space (also :data:`ADDRESS_SPACE`, which the OSCQuery tree reads). Addresses are
literal: no OSC pattern matching (``*``, ``?``, ``[..]``, ``{..}``).

=========================  =========  ===========================  ================================
address                    args       accepted values              command
=========================  =========  ===========================  ================================
/sonify/scene              s          a name in known_scenes()     SetScene(name)
/sonify/param/<name>       f|i        params()[name] = (lo, hi)    SetParam(name, float(value))
/sonify/tempo              f|i        TEMPO_RANGE_BPM (20..300)    SetTempo(float(bpm))
/sonify/mute/<voice>       i|f|T|F    0 or 1; voice in voices()    Mute(voice, bool)
/sonify/freeze             i|f|T|F    0 or 1                       Freeze(bool)
/sonify/learn              s          a parameter in params(), or  Learn(name): MIDI learn
                                      tempo, master, freeze, panic
/sonify/panic              (none)     -, or 0|1 (button: 1 fires,  Panic()
                           or i|f|T|F 0 is the release, ignored)
/sonify/status             (none)     -                            no command; replies (below)
=========================  =========  ===========================  ================================

``f`` also accepts ``d`` (double) and ``i`` also ``h`` (int64); booleans are not numbers here.
A 0|1 switch accepts ``i`` 0/1, ``f`` 0.0/1.0 (what TouchOSC-style toggles send) and ``T``/``F``.

**Status reply.** ``/sonify/status`` answers the sender's own address and port, from the server's
port, with one message ``/sonify/status ,sfsfi``: ``scene`` (string), ``tempo_bpm`` (float),
``mood`` (string), ``fps`` (float), ``frozen`` (int 0/1), read from the same keys of the
``status()`` dict ("-", 0.0, "-", 0.0, 0 when a key is missing).

**Bundles and time.** Packets are taken apart here with python-osc's value decoders
(``pythonosc.parsing.osc_types``), not by its ``Dispatcher``/``OSCUDPServer``: the dispatcher's
``call_handlers_for_packet`` sleeps on the receiving thread until a future timetag unless
``strict_timing=False`` (and then it cannot tell how far ahead a bundle is), swallows parse errors
uncounted, lets ``UnicodeDecodeError`` escape, and ``OscMessage`` pads a truncated float with zeros
and logs odd type tags on the root logger once per packet. Nothing ever sleeps on the server
thread: a message in a bundle timetagged in the future is checked at once and its command is held
in a small heap until its time, while the thread keeps reading (``select`` wakes it for the next
datagram or the next due command, whichever comes first). ``/sonify/panic`` always acts at once,
whatever its bundle's timetag, even one dropped as too far ahead (a sender whose clock is off must
still be able to silence the show). Bundles stamped more than ``max_future_s`` ahead are otherwise
dropped whole; past or "immediately" timetags apply at once; nested bundles run no earlier than
their enclosing bundle. A packet that does not parse completely is rejected whole, so a truncated
bundle applies nothing; a bundle with one message that is refused (a NaN, an unknown scene...)
applies none of its messages either: all or none (a panic in it still acts).
``/sonify/status`` replies are limited to ``STATUS_RATE_PER_S`` a second (``rate_limited``).
Commands go to ``command()``, the runtime's queue, which coalesces and rate-limits them
(``sonify.commands``): a flood of valid commands cannot make the music late.

**Rejections.** Every rejected datagram or message is counted by reason in ``stats.rejected``
(``not_allowed``, ``malformed``, ``unknown_address``, ``wrong_type``, ``wrong_arity``,
``out_of_range``, ``unknown_scene``, ``unknown_param``, ``unknown_voice``, ``too_far_future``,
``queue_full``, ``handler_error``, ``reply_failed``, ``rate_limited``) and logged at most once
per reason every ``LOG_INTERVAL_S`` seconds. Nothing rejected issues a command, and no exception
ends the thread.
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import osc_types

from sonify.commands import (
    LEARN_TARGETS,
    OSC_PREFIX,
    TEMPO_RANGE_BPM,
    Command,
    CommandContext,
    CommandError,
    Freeze,
    Learn,
    Mute,
    Panic,
    SetParam,
    SetScene,
    SetTempo,
    check,
    from_osc,
)
from sonify.util.net import BadHost, bind_udp, is_allowed, parse_allow
from sonify.util.ratelimit import LOG_INTERVAL_S as RATE_LIMIT_S
from sonify.util.ratelimit import RateLimitedLog, TokenBucket

logger = logging.getLogger(__name__)

PREFIX = OSC_PREFIX
LOG_INTERVAL_S = RATE_LIMIT_S
MAX_PENDING = 1024  # future-bundle commands waiting for their time
MAX_BUNDLE_DEPTH = 8
STATUS_RATE_PER_S = 50.0  # /sonify/status replies (each reads the engine's state)
RECV_BUFFER_BYTES = 1 << 20  # absorbs a controller's burst while the thread is busy
_MAX_DATAGRAM = 65536
_BUNDLE_PREFIX = b"#bundle\x00"
_TAG_SIZES = {"i": 4, "f": 4, "h": 8, "d": 8, "b": 4}

ADDRESS_SPACE: list[dict[str, Any]] = [
    {"path": f"{PREFIX}/scene", "types": "s", "range": "a name from known_scenes()",
     "command": SetScene.kind, "description": "switch to the named scene"},
    {"path": f"{PREFIX}/param/{{name}}", "types": "f", "range": "params()[name] = (lo, hi)",
     "command": SetParam.kind,
     "description": "set a scene parameter (an int is taken as a float)"},
    {"path": f"{PREFIX}/tempo", "types": "f", "range": TEMPO_RANGE_BPM,
     "command": SetTempo.kind, "description": "set the tempo in beats per minute"},
    {"path": f"{PREFIX}/mute/{{voice}}", "types": "i", "range": (0, 1),
     "command": Mute.kind,
     "description": "1 mutes the voice, 0 unmutes it (voice from voices())"},
    {"path": f"{PREFIX}/freeze", "types": "i", "range": (0, 1),
     "command": Freeze.kind, "description": "1 holds the current features (the music stops "
                                            "following the picture), 0 releases them"},
    {"path": f"{PREFIX}/learn", "types": "s",
     "range": f"a parameter name (or {', '.join(LEARN_TARGETS)})",
     "command": Learn.kind, "description": "MIDI learn: the next knob moved on the MIDI "
                                           "controller binds to this parameter"},
    {"path": f"{PREFIX}/teach/record", "types": "i", "range": (0, 1), "command": "teach",
     "description": "mapping by example: 1 starts recording examples (the features paired "
                    "with the outputs' current values, [teach] record_hz a second), 0 stops"},
    {"path": f"{PREFIX}/teach/snapshot", "types": "", "range": None, "command": "teach",
     "description": "mapping by example: record one example now"},
    {"path": f"{PREFIX}/teach/train", "types": "", "range": None, "command": "teach",
     "description": "mapping by example: train the model on the examples (saved with them)"},
    {"path": f"{PREFIX}/teach/run", "types": "i", "range": (0, 1), "command": "teach",
     "description": "mapping by example: 1 lets the model drive its outputs, 0 stops it"},
    {"path": f"{PREFIX}/teach/clear", "types": "", "range": None, "command": "teach",
     "description": "mapping by example: delete every example"},
    {"path": f"{PREFIX}/teach/outputs", "types": "f", "range": None,
     "command": "teach_outputs",
     "description": "mapping by example: the outputs' values (one float each, in their own "
                    "units) the next examples pair with, in "
                    "the order of the scene's [teach] outputs"},
    {"path": f"{PREFIX}/panic", "types": "", "range": None, "command": Panic.kind,
     "description": "all notes off now, even inside a future bundle; an optional 0|1 argument "
                    "is a button: 1 fires, 0 (the release) is ignored"},
    {"path": f"{PREFIX}/status", "types": "", "range": None, "command": None,
     "description": "reply to the sender with /sonify/status scene:s tempo_bpm:f mood:s fps:f "
                    "frozen:i",
     "reply": {"path": f"{PREFIX}/status", "types": "sfsfi",
               "args": ["scene", "tempo_bpm", "mood", "fps", "frozen"]}},
]

REJECT_REASONS = ("not_allowed", "malformed", "unknown_address", "wrong_type", "wrong_arity",
                  "out_of_range", "unknown_scene", "unknown_param", "unknown_voice",
                  "too_far_future", "queue_full", "handler_error", "reply_failed",
                  "rate_limited")


class ControlServerError(Exception):
    """The server cannot listen (port taken, bad host): says where and what to do."""


@dataclass(frozen=True)
class ControlStats:
    """A snapshot of what the server did since it was created."""

    received: int = 0  # datagrams read from the socket, allowed or not
    handled: int = 0  # of those, datagrams whose handling has finished
    applied: int = 0  # commands handed to command()
    rejected: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    pending: int = 0  # commands from future bundles waiting for their time
    replies: int = 0  # /sonify/status replies sent

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


_Message = tuple[str, list[Any]]  # address, arguments


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _bundled_scene_names() -> list[str]:
    from sonify.scene.schema import available_scenes

    return list(available_scenes())


# -- parsing (python-osc decodes the values; the structure and timetags are read here) ---------

def _parse_message(dgram: bytes) -> _Message:
    """Address and arguments, the whole datagram accounted for.

    python-osc's ``OscMessage`` pads a short float with zeros (a workaround for Reaktor) and
    logs unknown type tags on the root logger; here a short or long datagram is malformed, so a
    truncated ``/sonify/tempo 120.0`` can never turn into a valid 32 bpm.
    """
    if len(dgram) % 4:
        raise Rejected("malformed", f"message length {len(dgram)} is not a multiple of 4")
    address, index = osc_types.get_string(dgram, 0)
    args: list[Any] = []
    value: Any
    if index == len(dgram):  # no type tag string: an old-style message without arguments
        return address, args
    tags, index = osc_types.get_string(dgram, index)
    if not tags.startswith(","):
        raise Rejected("malformed", f"type tag string {tags[:20]!r} lacks its comma")
    for tag in tags[1:]:
        size = _TAG_SIZES.get(tag)
        if size is not None and len(dgram) - index < size:
            raise Rejected("malformed", f"argument {tag!r} cut short")
        if tag == "i":
            value, index = osc_types.get_int(dgram, index)
        elif tag == "h":
            value, index = osc_types.get_int64(dgram, index)
        elif tag == "f":
            value, index = osc_types.get_float(dgram, index)
        elif tag == "d":
            value, index = osc_types.get_double(dgram, index)
        elif tag == "s":
            value, index = osc_types.get_string(dgram, index)
        elif tag == "b":
            length, start = osc_types.get_int(dgram, index)
            end = start + length + (-length % 4)
            if length < 0 or end > len(dgram):
                raise Rejected("malformed", f"blob of {length} bytes does not fit the message")
            value, index = dgram[start:start + length], end
        elif tag in "TFN":
            value = {"T": True, "F": False, "N": None}[tag]
        else:  # timetags, colours, MIDI, arrays, symbols...: nothing here takes them
            raise Rejected("wrong_type", f"{address[:80]!r}: OSC type {tag!r} is not accepted")
        args.append(value)
    if index != len(dgram):
        raise Rejected("malformed", f"{len(dgram) - index} bytes after the last argument")
    return address, args


def parse_packet(dgram: bytes, outer_time: float = 0.0,
                  depth: int = 0) -> list[tuple[float, _Message]]:
    """(timetag, message) for every message; timetag 0.0 means now. Raises on any defect."""
    if dgram.startswith(b"/"):
        return [(outer_time, _parse_message(dgram))]
    if not dgram.startswith(_BUNDLE_PREFIX):
        raise Rejected("malformed", "neither an OSC message nor a bundle")
    if depth >= MAX_BUNDLE_DEPTH:
        raise Rejected("malformed", f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    if len(dgram) < 16:
        raise Rejected("malformed", "bundle shorter than its timetag")
    timetag, index = osc_types.get_date(dgram, len(_BUNDLE_PREFIX))
    when = max(float(timetag), outer_time)  # IMMEDIATELY (0) inherits the enclosing time
    out: list[tuple[float, _Message]] = []
    while index < len(dgram):
        size, index = osc_types.get_int(dgram, index)
        if size <= 0 or size % 4 or index + size > len(dgram):
            raise Rejected("malformed", f"bundle element size {size} does not fit the packet")
        out.extend(parse_packet(dgram[index:index + size], when, depth + 1))
        index += size
    return out


def _no_args(args: list[Any], address: str) -> None:
    if args:
        raise Rejected("wrong_arity", f"{address} takes no arguments, got {len(args)}")


@functools.lru_cache(maxsize=1024)  # per sender address; ipaddress parsing is slow per packet
def _normal_ip(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


# An action a valid message asks for: run now or at its time on the server thread.
_Action = Callable[[], None]


class ControlServer:
    """Receives OSC over UDP on a daemon thread and forwards valid messages to ``command``.

    ``start()`` binds ``host:port`` (port 0 picks a free one; ``port`` then tells which) and
    returns; ``stop()`` ends the thread and closes the socket. ``allow`` lists the IP addresses
    that may control the engine (None: any sender that can reach ``host``).
    """

    name = "OSC control"

    def __init__(
        self,
        command: Callable[[Command], None],
        status: Callable[[], Mapping[str, object]],
        *,
        host: str = "127.0.0.1",
        port: int = 9000,
        allow: Sequence[str] | None = None,
        known_scenes: Callable[[], Collection[str]] = _bundled_scene_names,
        voices: Callable[[], Collection[str]],
        params: Callable[[], Mapping[str, tuple[float, float]]],
        max_future_s: float = 10.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"OSC control port {port} is outside 0..65535")
        if not max_future_s >= 0:
            raise ValueError(f"max_future_s must be >= 0, got {max_future_s}")
        self._command = command
        self._status = status
        self.host = host
        self._port = port
        self._allow = parse_allow(allow)  # addresses and CIDR networks (sonify.util.net)
        self._allowed: dict[str, bool] = {}  # sender address -> allowed (checked once each)
        self._known_scenes = known_scenes
        self._voices = voices
        self._params = params
        self._context = CommandContext(scenes=self._scene_names, voices=voices, params=params)
        self.max_future_s = float(max_future_s)
        self._log = RateLimitedLog(logger, LOG_INTERVAL_S)
        self._status_bucket = TokenBucket(STATUS_RATE_PER_S, STATUS_RATE_PER_S, time.monotonic())
        self._scenes_cache: tuple[float, Collection[str]] | None = None
        self._lock = threading.Lock()
        self._received = 0
        self._handled = 0
        self._applied = 0
        self._replies = 0
        self._rejected: dict[str, int] = {}
        self._pending: list[tuple[float, int, _Action]] = []  # (monotonic due, seq, action)
        self._seq = 0
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port once started (the real one when asked for 0), else the asked one."""
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> ControlStats:
        with self._lock:
            return ControlStats(received=self._received, handled=self._handled,
                                applied=self._applied,
                                rejected=dict(self._rejected), pending=len(self._pending),
                                replies=self._replies)

    def start(self) -> None:
        """Bind and serve on a daemon thread; ControlServerError says why it cannot."""
        if self._thread is not None:
            raise RuntimeError("OSC control server already started")
        try:
            sock = bind_udp(self.host, self._port, RECV_BUFFER_BYTES)
        except BadHost as exc:
            raise ControlServerError(f"OSC control: cannot use host {self.host!r}: {exc}; "
                                     f"give an IP address such as 127.0.0.1") from None
        except OSError as exc:
            raise ControlServerError(
                f"OSC control: cannot listen on {self.host}:{self._port} (UDP): {exc}; "
                f"is another sonify or OSC program using it? Pick another control port") from None
        self._sock = sock
        self._port = sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"osc-control:{self._port}",
                                        daemon=True)
        self._thread.start()
        logger.info("OSC control listening on %s:%d%s", self.host, self._port,
                    "" if self._allow is None
                    else f" (allowed: {', '.join(str(n) for n in self._allow)})")

    def stop(self, timeout_s: float = 2.0) -> None:
        """End the thread, drop commands still waiting for their time, free the port."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"\x00")
            except OSError:
                pass
        thread.join(timeout_s)
        if thread.is_alive():
            logger.warning("OSC control thread did not end within %.1f s (a callback is stuck?)",
                           timeout_s)
        for s in (self._sock, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._sock = self._wake_r = self._wake_w = None
        self._thread = None
        with self._lock:
            dropped = len(self._pending)
            self._pending.clear()
        if dropped:
            logger.info("OSC control stopped: %d future-bundle commands dropped", dropped)

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the server thread --------------------------------------------------------------------

    def _serve(self) -> None:
        sock, wake = self._sock, self._wake_r
        assert sock is not None and wake is not None
        while not self._stop.is_set():
            try:
                with self._lock:
                    due = self._pending[0][0] if self._pending else None
                timeout = None if due is None else max(0.0, due - time.monotonic())
                readable, _, _ = select.select([sock, wake], [], [], timeout)
                if self._stop.is_set():
                    break
                if sock in readable:
                    self._drain(sock)
                self._run_due()
            except Exception:  # the show goes on: log, count, keep serving
                if self._stop.is_set():
                    break
                self._reject("handler_error", "OSC control: unexpected error", exc_info=True)
                time.sleep(0.01)  # never spin on a persistent fault

    def _drain(self, sock: socket.socket) -> None:
        for _ in range(256):  # then let due commands run even under a flood
            try:
                data, sender = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                self._log.warning("recv", "OSC control: receive failed: %s", exc)
                return
            with self._lock:
                self._received += 1
            try:
                self._handle_datagram(data, sender)
            except Exception:
                self._reject("handler_error", "OSC control: error handling a packet from %s",
                             sender[0], exc_info=True)
            finally:
                with self._lock:
                    self._handled += 1

    def _run_due(self) -> None:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._pending or self._pending[0][0] > now:
                    return
                _, _, action = heapq.heappop(self._pending)
            self._run(action)

    def _run(self, action: _Action) -> None:
        try:
            action()
        except Exception:
            self._reject("handler_error", "OSC control: a command failed", exc_info=True)

    # -- one datagram --------------------------------------------------------------------------

    def _handle_datagram(self, data: bytes, sender: tuple[Any, ...]) -> None:
        host = _normal_ip(str(sender[0]))
        allowed = self._allowed.get(host)
        if allowed is None:
            if len(self._allowed) > 4096:  # a spoofed-source flood must not grow it forever
                self._allowed.clear()
            allowed = self._allowed[host] = is_allowed(host, self._allow)
        if not allowed:
            self._reject("not_allowed", "OSC control: ignoring %s, not in the allow list", host)
            return
        try:
            messages = parse_packet(data)
        except Rejected as rej:
            self._reject(rej.reason, "OSC control: bad packet from %s: %s", host, rej.detail)
            return
        except Exception as exc:  # python-osc's ParseError, UnicodeDecodeError, ...
            self._reject("malformed", "OSC control: bad packet from %s (%d bytes): %s",
                         host, len(data), exc)
            return
        wall_now, mono_now = time.time(), time.monotonic()
        too_far = rejected = False
        checked: list[tuple[float, bool, _Action, str]] = []
        for timetag, (address, args) in messages:
            ahead_s = timetag - wall_now if timetag else 0.0
            panic = address == f"{PREFIX}/panic"
            if ahead_s > self.max_future_s and not panic:
                too_far = True
                continue
            try:
                action = self._action(address, args, sender)
            except Rejected as rej:
                rejected = True
                self._reject(rej.reason, "OSC control: %s from %s rejected%s: %s",
                             address[:80], host,
                             " (its bundle applies nothing)" if len(messages) > 1 else "",
                             rej.detail)
                continue
            if action is not None:
                checked.append((ahead_s, panic, action, address))
        for ahead_s, panic, action, address in checked:
            # a bundle is applied whole or not at all; only a panic acts whatever the rest
            if rejected and not panic:
                continue
            if panic or ahead_s <= 0.0:
                self._run(action)
            else:
                self._schedule(mono_now + ahead_s, action, address, host)
        if too_far:
            self._reject("too_far_future", "OSC control: bundle from %s timetagged more than "
                         "%.1f s ahead dropped (clocks out of sync?)", host, self.max_future_s)

    def _schedule(self, due: float, action: _Action, address: str, host: str) -> None:
        with self._lock:
            full = len(self._pending) >= MAX_PENDING
            if not full:
                self._seq += 1
                heapq.heappush(self._pending, (due, self._seq, action))
        if full:
            self._reject("queue_full", "OSC control: %s from %s dropped: %d future-bundle "
                         "commands already waiting", address, host, MAX_PENDING)

    def _reject(self, reason: str, msg: str, *args: object, exc_info: bool = False) -> None:
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self._log.warning(reason, msg, *args, exc_info=exc_info)

    def _issue(self, cmd: Command) -> _Action:
        def action() -> None:
            self._command(cmd)
            with self._lock:
                self._applied += 1
        return action

    def _action(self, address: str, args: list[Any], sender: tuple[Any, ...]) -> _Action | None:
        """Check one message; the action it asks for (None: nothing to do). Raises Rejected."""
        if address == f"{PREFIX}/status":
            _no_args(args, address)
            with self._lock:
                allowed = self._status_bucket.take(time.monotonic())
            if not allowed:
                raise Rejected("rate_limited", f"more than {STATUS_RATE_PER_S:g} status "
                                              f"requests a second")
            return lambda: self._reply_status(sender)
        try:
            cmd = from_osc(address, args, prefix=PREFIX)
            if cmd is None:
                return None  # a panic button's release
            check(cmd, self._context)
        except CommandError as exc:
            raise Rejected(exc.reason, str(exc)) from None
        return self._issue(cmd)

    def _scene_names(self) -> Collection[str]:
        """``known_scenes()``, looked up at most once a second (it may read a folder)."""
        now = time.monotonic()
        if self._scenes_cache is None or now - self._scenes_cache[0] > 1.0:
            self._scenes_cache = (now, self._known_scenes())
        return self._scenes_cache[1]

    def _reply_status(self, sender: tuple[Any, ...]) -> None:
        dgram = status_reply(self._status())
        sock = self._sock
        if sock is None:
            return
        try:
            sock.sendto(dgram, sender)
        except OSError as exc:
            self._reject("reply_failed", "OSC control: status reply to %s:%s failed: %s",
                         sender[0], sender[1], exc)
            return
        with self._lock:
            self._replies += 1


def status_reply(status: Mapping[str, object]) -> bytes:
    """The bytes of the ``/sonify/status ,sfsfi`` reply built from a ``status()`` dict."""
    builder = OscMessageBuilder(f"{PREFIX}/status")
    builder.add_arg(str(status.get("scene", "-")), "s")
    builder.add_arg(float(_as_float(status.get("tempo_bpm", 0.0))), "f")
    builder.add_arg(str(status.get("mood", "-")), "s")
    builder.add_arg(float(_as_float(status.get("fps", 0.0))), "f")
    builder.add_arg(1 if status.get("frozen") else 0, "i")
    return builder.build().dgram


def _as_float(value: object) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"status value {value!r} is not a number")
