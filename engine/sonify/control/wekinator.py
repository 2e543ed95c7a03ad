"""Wekinator compatibility: sonify in Wekinator's place for existing controllers and patches.

Wekinator (Fiebrink) listens on UDP 6448 for ``/wek/inputs f f f ...`` (one float per input,
from a feature extractor: a webcam patch, a Leap Motion helper, TouchOSC ...) and for its
control messages, and sends its model's outputs as ``/wek/outputs f f ...`` to UDP 12000.
``WekinatorServer`` does the same, so those patches and tutorials work with sonify:

- the latest ``/wek/inputs`` are ``values()`` -> ``{"wek:1": v1, "wek:2": v2, ...}`` (read
  from any thread, e.g. the music thread each block);
- the control messages become the typed commands ``Teach(action)`` / ``TeachOutputs(values)``
  (``sonify.commands``), checked and handed to ``put`` (the runtime's command door), as the
  OSC control server does: nothing here touches the model or the performance;
- ``send_outputs(values)`` sends ``/wek/outputs`` (non-blocking UDP; a peer that is not there
  costs nothing and raises nothing).

The control addresses are the list Wekinator 2 documents under "Controlling Wekinator via
OSC messages" (wekinator.org, detailed instructions), as mirrored by the wekinator-node SDK
(https://github.com/hughrawlinson/wekinator-node, README and ``lib/wekinator-node.js``, which
sends exactly these addresses under ``/wekinator/control``):

=============================================  ================================================
``/wekinator/control/...``                     here
=============================================  ================================================
``startRecording``                             ``Teach("record")``
``stopRecording``                              ``Teach("stop_recording")``
``train``                                      ``Teach("train")``
``startRunning``                               ``Teach("run")``
``stopRunning``                                ``Teach("stop_running")``
``deleteAllExamples``                          ``Teach("clear")``
``outputs f f ...``                            ``TeachOutputs(values)`` (one float per output)
``startDtwRecording i``, ``stopDtwRecording``  not supported (no dynamic time warping models)
``cancelTrain``                                not supported (training takes well under a
                                               second, it is never in progress to cancel)
``enableModelRunning i...``,                   not supported (one model for every output;
``disableModelRunning i...``,                  record and run are for all outputs at once)
``enableModelRecording i...``,
``disableModelRecording i...``
``setInputNames s...``,                        not supported (inputs are ``wek:N``; outputs
``setOutputNames s...``                        are the scene's ``[teach] outputs``)
``selectInputsForOutput i i...``               not supported (the scene chooses its features)
=============================================  ================================================

A message that is not supported is logged once (per address) and ignored; one that is broken
(a string among the inputs, ``/wek/inputs`` or ``outputs`` with no arguments, a NaN, an
address nothing here knows) is counted by reason in ``stats.rejected`` and logged at most
once per reason every few seconds; none raises. Arguments after an action message's address
(a button's ``1``) are ignored. Numbers are ``f``, ``d``, ``i`` or ``h``; booleans are not
numbers here. Bundles apply their messages at once and in order (Wekinator ignores timetags
too). A ``put`` that answers False (the command door full or rate-limited) is counted as
``dropped``.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder

from sonify.commands import Command, CommandError, Teach, TeachOutputs, check
from sonify.control.udp import ListeningService, Reject, UdpListener, parse_packet
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

DEFAULT_PORT = 6448  # where Wekinator listens
DEFAULT_OUT_PORT = 12000  # where Wekinator sends its outputs
INPUTS_ADDRESS = "/wek/inputs"
OUTPUTS_ADDRESS = "/wek/outputs"
CONTROL_PREFIX = "/wekinator/control/"
INPUT_PREFIX = "wek:"  # values() keys: wek:1, wek:2 ... (Wekinator numbers inputs from 1)
RESOLVE_RETRY_S = 5.0  # an out_host that did not resolve is tried again after this

ACTIONS: dict[str, str] = {
    "startRecording": "record",
    "stopRecording": "stop_recording",
    "train": "train",
    "startRunning": "run",
    "stopRunning": "stop_running",
    "deleteAllExamples": "clear",
}
"""Wekinator's control messages that are a ``Teach`` action here (see the module docstring)."""

NOT_SUPPORTED: dict[str, str] = {
    "startDtwRecording": "sonify has no dynamic time warping models",
    "stopDtwRecording": "sonify has no dynamic time warping models",
    "cancelTrain": "training takes well under a second: there is nothing to cancel",
    "enableModelRunning": "one model serves every output: use startRunning/stopRunning",
    "disableModelRunning": "one model serves every output: use startRunning/stopRunning",
    "enableModelRecording": "examples are recorded for every output: use startRecording",
    "disableModelRecording": "examples are recorded for every output: use startRecording",
    "setInputNames": "inputs are named wek:1, wek:2 ... in the scene",
    "setOutputNames": "outputs are the scene's [teach] outputs",
    "selectInputsForOutput": "the scene's [teach] features choose the inputs",
}
"""Wekinator's documented control messages that have no meaning here, and why."""

REJECT_REASONS = ("malformed", "unknown_address", "wrong_type", "wrong_arity", "out_of_range",
                  "not_supported", "dropped")


@dataclass(frozen=True)
class WekinatorStats:
    """What the server did since it was created."""

    received: int = 0  # datagrams read
    inputs: int = 0  # /wek/inputs messages taken
    commands: int = 0  # commands handed to put() and accepted
    sent: int = 0  # /wek/outputs messages sent
    send_failed: int = 0  # /wek/outputs that could not be sent (no route, name unresolved)
    rejected: Mapping[str, int] = field(default_factory=dict)  # reason -> count


def _numbers(address: str, args: list[Any]) -> tuple[float, ...]:
    """The arguments as finite floats; Reject when there are none or one is not a number."""
    if not args:
        raise Reject("wrong_arity", f"{address} needs one or more numbers, got none")
    out = []
    for i, a in enumerate(args):
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise Reject("wrong_type", f"{address}: argument {i + 1} is {type(a).__name__} "
                                       f"{a!r:.40}, not a number")
        v = float(a)
        if not math.isfinite(v):
            raise Reject("out_of_range", f"{address}: argument {i + 1} is {v}")
        out.append(v)
    return tuple(out)


def outputs_message(values: Sequence[float]) -> bytes:
    """The datagram of ``/wek/outputs f f ...`` for ``values``."""
    builder = OscMessageBuilder(OUTPUTS_ADDRESS)
    for v in values:
        builder.add_arg(float(v), "f")
    return builder.build().dgram


class WekinatorServer(ListeningService):
    """Wekinator's OSC face: ``/wek/inputs`` and control messages in on ``host:port``
    (127.0.0.1:6448 by default; port 0 picks a free one), ``/wek/outputs`` out to
    ``out_host:out_port`` (127.0.0.1:12000). ``start()`` binds and serves on a daemon thread
    (``ListenError``, a ``ControlServerError``, names a taken port); ``close()`` (or
    ``stop()``) ends it."""

    name = "Wekinator"

    def __init__(self, put: Callable[[Command], bool | None], *, host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT, out_host: str = "127.0.0.1",
                 out_port: int = DEFAULT_OUT_PORT) -> None:
        if not 1 <= out_port <= 65535:
            raise ValueError(f"Wekinator out_port {out_port} is outside 1..65535")
        self._put = put
        self._listener = UdpListener("Wekinator input", host, port,
                                     "[wekinator] port in the config",
                                     self._handle_datagram)
        self.out_host = out_host
        self.out_port = out_port
        self._log = RateLimitedLog(logger)
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._received = self._inputs = self._commands = self._sent = self._send_failed = 0
        self._rejected: dict[str, int] = {}
        self._told: set[str] = set()  # not-supported addresses already logged
        self._out_sock: socket.socket | None = None
        self._out_addr: Any = None
        self._next_resolve = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._listener.start()
        self._resolve()
        logger.info("Wekinator in place: /wek/inputs and /wekinator/control/* on %s:%d, "
                    "/wek/outputs to %s:%d", self.host, self.port, self.out_host, self.out_port)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            sock, self._out_sock, self._out_addr = self._out_sock, None, None
        if sock is not None:
            sock.close()

    stop = close  # the runtime's Service protocol

    def __enter__(self) -> WekinatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the engine reads and sends -------------------------------------------------------

    def values(self) -> dict[str, float]:
        """The latest ``/wek/inputs`` as ``{"wek:1": v1, ...}`` (empty before the first)."""
        with self._lock:
            return dict(self._values)

    @property
    def stats(self) -> WekinatorStats:
        with self._lock:
            return WekinatorStats(received=self._received, inputs=self._inputs,
                                  commands=self._commands, sent=self._sent,
                                  send_failed=self._send_failed, rejected=dict(self._rejected))

    def send_outputs(self, values: Sequence[float]) -> bool:
        """Send ``/wek/outputs`` with ``values`` to ``out_host:out_port``; False when it could
        not go (not started, the host name does not resolve, the network refuses). Never
        blocks and never raises for the peer's sake."""
        dgram = outputs_message(values)
        with self._lock:
            sock, addr = self._out_sock, self._out_addr
        if sock is None or addr is None:
            if sock is not None and time.monotonic() >= self._next_resolve:
                self._resolve()
                with self._lock:
                    addr = self._out_addr
            if sock is None or addr is None:
                self._count_send(False)
                return False
        try:
            sock.sendto(dgram, addr)
        except OSError as exc:  # full buffer, no route, an ICMP error from an earlier send
            self._log.warning("send", "Wekinator: /wek/outputs to %s:%d not sent: %s",
                              self.out_host, self.out_port, exc)
            self._count_send(False)
            return False
        self._count_send(True)
        return True

    def _count_send(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._sent += 1
            else:
                self._send_failed += 1

    def _resolve(self) -> None:
        """The out address and a non-blocking socket for its family; a host that does not
        resolve is said once and tried again every RESOLVE_RETRY_S."""
        self._next_resolve = time.monotonic() + RESOLVE_RETRY_S
        try:
            family, _, _, _, addr = socket.getaddrinfo(self.out_host, self.out_port,
                                                       type=socket.SOCK_DGRAM)[0]
        except OSError as exc:
            self._log.warning("resolve", "Wekinator: cannot send /wek/outputs to %s:%d: %s "
                              "(tried again every %g s)", self.out_host, self.out_port, exc,
                              RESOLVE_RETRY_S)
            family, addr = socket.AF_INET, None
        with self._lock:
            if self._out_sock is None or self._out_sock.family != family:
                old, self._out_sock = self._out_sock, socket.socket(family, socket.SOCK_DGRAM)
                self._out_sock.setblocking(False)
                if old is not None:
                    old.close()
            self._out_addr = addr

    # -- the server thread ---------------------------------------------------------------------

    def _handle_datagram(self, data: bytes, sender: tuple[Any, ...]) -> None:
        with self._lock:
            self._received += 1
        try:
            messages = parse_packet(data)
        except Reject as rej:
            self._reject(rej.reason, "Wekinator: bad packet from %s: %s", sender[0], rej.detail)
            return
        for address, args in messages:
            try:
                self._handle(address, args)
            except Reject as rej:
                self._reject(rej.reason, "Wekinator: %s from %s ignored: %s", address[:80],
                             sender[0], rej.detail)

    def _handle(self, address: str, args: list[Any]) -> None:
        if address == INPUTS_ADDRESS:
            numbers = _numbers(address, args)
            with self._lock:
                if len(numbers) != len(self._values) and self._values:
                    self._log.log("inputs_count", "Wekinator: /wek/inputs now has %d values "
                                  "(had %d)", len(numbers), len(self._values))
                self._values = {f"{INPUT_PREFIX}{i + 1}": v for i, v in enumerate(numbers)}
                self._inputs += 1
            return
        if not address.startswith(CONTROL_PREFIX):
            raise Reject("unknown_address", f"not a Wekinator address (expected "
                                            f"{INPUTS_ADDRESS} or {CONTROL_PREFIX}...)")
        what = address[len(CONTROL_PREFIX):]
        cmd: Command
        if what in ACTIONS:
            cmd = Teach(ACTIONS[what])
        elif what == "outputs":
            cmd = TeachOutputs(_numbers(address, args))
        elif what in NOT_SUPPORTED:
            self._not_supported(address, NOT_SUPPORTED[what])
            return
        else:
            raise Reject("unknown_address", "not one of Wekinator's control messages")
        self._issue(cmd, address)

    def _issue(self, cmd: Command, address: str) -> None:
        try:
            check(cmd)
        except CommandError as exc:
            raise Reject(exc.reason, str(exc)) from None
        if self._put(cmd) is False:
            self._reject("dropped", "Wekinator: %s dropped: the command queue is full or "
                         "rate-limited", address)
            return
        with self._lock:
            self._commands += 1

    def _not_supported(self, address: str, why: str) -> None:
        with self._lock:
            self._rejected["not_supported"] = self._rejected.get("not_supported", 0) + 1
            first = address not in self._told
            self._told.add(address)
        if first:
            logger.warning("Wekinator: %s is not supported here and is ignored: %s", address, why)

    def _reject(self, reason: str, msg: str, *args: object) -> None:
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self._log.warning(reason, msg, *args)
