"""A small UDP listener thread for OSC inputs that are not the control server (Wekinator's
``/wek/inputs``, features arriving from another box).

It follows the OSC control server's pattern (``sonify.control.osc_server``): bind
``host:port`` (port 0 picks a free one) without ``SO_REUSEADDR`` (two programs on one port
would silently split the messages), a roomy receive buffer, a daemon thread that waits in
``select`` on the socket and a wake-up socket pair (no polling, and ``close()`` returns at
once), and a bind error that names the address, says who might hold it and which option
moves it.

Each readable moment drains what is waiting (up to ``MAX_BATCH`` datagrams): ``on_datagram``
runs for each, then ``on_batch`` once, so a receiver can publish once per burst instead of
once per message. Packets are taken apart with the control server's strict parser
(``parse_packet``: a truncated or padded packet is rejected whole). Nothing a callback raises
ends the thread: it is logged (rate-limited) and the thread goes on.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sonify.control.osc_server import (
    RECV_BUFFER_BYTES,
    ControlServerError,
    Rejected,
)
from sonify.control.osc_server import parse_packet as parse_timed_packet
from sonify.util.net import BadHost, bind_udp
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

MAX_BATCH = 256  # datagrams handled before on_batch runs (a flood still publishes)
_MAX_DATAGRAM = 65536

OscMessages = list[tuple[str, list[Any]]]  # (address, arguments) in packet order
Reject = Rejected  # raised by parse_packet: .reason ("malformed", "wrong_type") and .detail


def parse_packet(dgram: bytes) -> OscMessages:
    """Every message of an OSC message or bundle, in order (timetags are not kept: these
    inputs apply at once). Raises ``Reject`` for a packet that does not parse completely."""
    try:
        return [message for _, message in parse_timed_packet(dgram)]
    except Rejected:
        raise
    except Exception as exc:  # python-osc's ParseError, UnicodeDecodeError, ...
        raise Rejected("malformed", f"{type(exc).__name__}: {exc}") from None


class ListenError(ControlServerError):
    """The listener cannot bind: the message names the address and the option that moves it."""


class UdpListener:
    """Receives datagrams on ``host:port`` on a daemon thread.

    ``what`` names the listener in logs and errors ("Wekinator input"); ``option`` says how to
    pick another port ("[wekinator] port"). ``on_datagram(data, sender)`` runs for every
    datagram, ``on_batch()`` after each drained burst.
    """

    def __init__(self, what: str, host: str, port: int, option: str,
                 on_datagram: Callable[[bytes, tuple[Any, ...]], None],
                 on_batch: Callable[[], None] | None = None) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"{what}: port {port} is outside 0..65535")
        self.what = what
        self.host = host
        self._port = port
        self.option = option
        self._on_datagram = on_datagram
        self._on_batch = on_batch
        self._log = RateLimitedLog(logger)
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once bound (the real one when asked for 0), else the asked one."""
        return self._port

    @property
    def bound(self) -> bool:
        return self._sock is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def bind(self) -> None:
        """Bind the socket (no thread yet); ListenError says why it cannot."""
        if self._sock is not None:
            return
        try:
            sock = bind_udp(self.host, self._port, RECV_BUFFER_BYTES)
        except BadHost as exc:
            raise ListenError(f"{self.what}: cannot use host {self.host!r}: {exc}; give an IP "
                              f"address such as 127.0.0.1 ({self.option})") from None
        except OSError as exc:
            raise ListenError(
                f"{self.what}: cannot listen on {self.host}:{self._port} (UDP): {exc}; is "
                f"another sonify or OSC program using port {self._port}? Pick another port "
                f"with {self.option}") from None
        self._sock = sock
        self._port = sock.getsockname()[1]

    def start(self) -> None:
        """Bind if not bound yet, then serve on a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.what} already started")
        self.bind()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"{self.what.lower().replace(' ', '-')}:"
                                             f"{self._port}")
        self._thread.start()
        logger.info("%s listening on %s:%d (UDP)", self.what, self.host, self._port)

    def close(self, timeout_s: float = 2.0) -> None:
        """End the thread and free the port (safe to call twice, or before ``start``)."""
        thread = self._thread
        self._stop.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"\x00")
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                logger.warning("%s thread did not end within %.1f s", self.what, timeout_s)
        for s in (self._sock, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._sock = self._wake_r = self._wake_w = None
        self._thread = None

    def _serve(self) -> None:
        sock, wake = self._sock, self._wake_r
        assert sock is not None and wake is not None
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([sock, wake], [], [])
                if self._stop.is_set():
                    break
                if sock in readable and self._drain(sock) and self._on_batch is not None:
                    self._on_batch()
            except Exception:  # the show goes on: log and keep serving
                if self._stop.is_set():
                    break
                self._log.error("serve", "%s: unexpected error", self.what, exc_info=True)
                time.sleep(0.01)  # never spin on a persistent fault

    def _drain(self, sock: socket.socket) -> int:
        """Handle the datagrams waiting (at most MAX_BATCH); how many were read."""
        n = 0
        while n < MAX_BATCH:
            try:
                data, sender = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                self._log.warning("recv", "%s: receive failed: %s", self.what, exc)
                break
            n += 1
            try:
                self._on_datagram(data, sender)
            except Exception:
                self._log.error("handler", "%s: error handling a packet from %s", self.what,
                                sender[0], exc_info=True)
        return n


class ListeningService:
    """What an OSC input built on a ``UdpListener`` (``self._listener``) shows the runtime:
    where it listens and whether it does."""

    _listener: UdpListener

    @property
    def host(self) -> str:
        return self._listener.host

    @property
    def port(self) -> int:
        """The bound port once bound (the real one when asked for 0), else the asked one."""
        return self._listener.port

    @property
    def running(self) -> bool:
        return self._listener.running
