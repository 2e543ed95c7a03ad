"""OSCQuery's WebSocket: LISTEN/IGNORE, and the values of listened nodes pushed as OSC.

The proposal's streaming (https://github.com/Vidvox/OSCQueryProposal, "LISTEN"): a client opens
a WebSocket on the OSCQuery HTTP port itself (``ws://127.0.0.1:9001/``) and sends JSON text
messages ``{"COMMAND": "LISTEN", "DATA": "/sonify/tempo"}`` (and ``"IGNORE"`` to stop); from
then on every new value of that node arrives as one binary WebSocket message holding an OSC
message, exactly the bytes OSC over UDP would carry (address: the node's path; arguments: its
VALUE, typed by its TYPE: ``/sonify/tempo ,f 128.0``, ``/sonify/mute/bass ,T``). The current
value is sent at once after LISTEN, so a client that joins late knows where things stand. Any
node with a VALUE can be listened to: tempo, scene, freeze, params, mutes and, when they are
streamed, the features. A path that is not in the tree (yet) is kept: the param of a scene
that has not started is sent when it appears. Other commands, malformed JSON and binary frames
(OSC sent to this socket: send it to the UDP control port) are ignored, and logged at most once
every few seconds.

**Design.** The HTTP server's handler thread hands the socket of a ``GET`` with ``Upgrade:
websocket`` to a :class:`Session`: websockets' Sans-I/O ``ServerProtocol`` does the opening
handshake and the framing (pings answered, close handshake, size limit), and the thread reads
frames until the client or :meth:`ListenHub.stop` closes. One :class:`ListenHub` thread, awake
only while a session is open, builds the tree every ``PUSH_INTERVAL_S`` from the same snapshot
callbacks the HTTP answers use (the runtime's published state: never the music thread's live
objects) and sends each session the listened values that changed since it last sent them.
Every write to a session goes through its lock with a send timeout: a client that stops reading
is dropped after ``SEND_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from email.message import Message
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from sonify.control.oscquery_tree import readable_value
from sonify.outputs.osc import OscArg, osc_message
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

PUSH_INTERVAL_S = 0.05  # how often listened values are looked at (a change arrives within it)
SEND_TIMEOUT_S = 2.0  # a client that takes no data for this long is dropped
READ_POLL_S = 0.5  # the reading thread looks at its stop flag at least this often
MAX_MESSAGE_BYTES = 64 * 1024  # a LISTEN is a few dozen bytes
MAX_LISTENS = 4096  # paths one session may listen to
MAX_PATH_CHARS = 1024
COMMANDS = ("LISTEN", "IGNORE")


def wants_websocket(headers: Mapping[str, str] | Message) -> bool:
    """Whether a request asks to upgrade to a WebSocket (``Upgrade: websocket``)."""
    return "websocket" in str(headers.get("Upgrade", "")).lower()


def osc_args(types: str | None, value: Iterable[object]) -> list[OscArg]:
    """A node's VALUE as OSC arguments of its TYPE (a float node's 1 goes out as 1.0)."""
    items = list(value)
    tags = types if types and len(types) == len(items) else None
    args: list[OscArg] = []
    for i, item in enumerate(items):
        tag = tags[i] if tags else ""
        if tag in ("T", "F"):
            args.append(bool(item))
        elif tag == "f":
            args.append(float(item))  # type: ignore[arg-type]
        elif tag == "i":
            args.append(int(item))  # type: ignore[call-overload]
        elif tag == "s":
            args.append(str(item))
        else:
            args.append(item)  # type: ignore[arg-type]
    return args


class Session:
    """One WebSocket client: its handshake, its reading loop and what it listens to."""

    def __init__(self, sock: socket.socket, peer: str, hub: ListenHub) -> None:
        self.sock = sock
        self.peer = peer
        self.hub = hub
        self.protocol = ServerProtocol(max_size=MAX_MESSAGE_BYTES)
        self._lock = threading.Lock()  # the protocol, the socket's writes, the two below
        self._listening: set[str] = set()
        self._sent: dict[str, tuple[object, ...]] = {}  # path -> the value last sent
        self._fragments: list[bytes] = []
        self._closing = False

    # -- the handshake and the reading loop (the HTTP handler's thread) ----------------------

    def handshake(self, path: str, headers: Iterable[tuple[str, str]],
                  refusal: str | None = None) -> bool:
        """Answers the upgrade request: 101, True; or 403 with ``refusal`` (the HTTP checks
        failed), or 400/426 for a malformed request, False.

        The HTTP server has read the request already; it is handed to the protocol again as
        bytes, as its parser starts with the request (the Sans-I/O way, no private API)."""
        self.sock.settimeout(SEND_TIMEOUT_S)
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        with self._lock:
            self.protocol.receive_data((head + "\r\n").encode("latin-1", errors="replace"))
            requests = [e for e in self.protocol.events_received() if isinstance(e, Request)]
            if refusal is not None:
                response = self.protocol.reject(403, refusal + "\n")
            elif requests:
                response = self.protocol.accept(requests[0])
            else:  # not even a request: answer as the protocol does for a malformed one
                response = self.protocol.reject(400, "malformed WebSocket upgrade request\n")
            self.protocol.send_response(response)
            self._flush()
        if response.status_code != 101 and refusal is None:  # a refusal is logged already
            self.hub.log.warning("handshake", "OSCQuery: a WebSocket upgrade from %s refused "
                                 "(%d): %s", self.peer, response.status_code,
                                 (response.body or b"").decode(errors="replace").strip())
            return False
        return True

    def run(self) -> None:
        """Reads frames until the client closes, the connection fails or ``close()``."""
        try:
            while not self._closing:
                ready, _, _ = select.select([self.sock], [], [], READ_POLL_S)
                if not ready:
                    continue
                data = self.sock.recv(65536)
                with self._lock:
                    if data:
                        self.protocol.receive_data(data)
                    else:
                        self.protocol.receive_eof()
                    events = self.protocol.events_received()
                    self._flush()
                for event in events:
                    if isinstance(event, Frame):
                        self._on_frame(event)
                if not data or self.protocol.state is State.CLOSED:
                    break
        except (OSError, ValueError):  # reset by the client, or closed by close()
            pass
        finally:
            self._closing = True

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.BINARY:
            self.hub.log.warning("binary", "OSCQuery: OSC over the WebSocket from %s ignored: "
                                 "send OSC to the UDP control port", self.peer)
            return
        if frame.opcode is Opcode.TEXT:
            self._fragments = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT and self._fragments:
            self._fragments.append(bytes(frame.data))
        else:
            return  # ping, pong and close: the protocol has answered them
        if frame.fin:
            text = b"".join(self._fragments).decode("utf-8", errors="replace")
            self._fragments = []
            self._on_message(text)

    def _on_message(self, text: str) -> None:
        try:
            message = json.loads(text)
            command, path = message["COMMAND"], message["DATA"]
            if command not in COMMANDS or not isinstance(path, str):
                raise ValueError(command)
            if not path.startswith("/") or len(path) > MAX_PATH_CHARS:
                raise ValueError(path)
        except (ValueError, KeyError, TypeError):
            self.hub.log.warning("command", "OSCQuery: a WebSocket message from %s ignored: "
                                 "%r (this server takes {\"COMMAND\": \"LISTEN\" or \"IGNORE\", "
                                 "\"DATA\": \"/path\"})", self.peer, text[:120])
            return
        with self._lock:
            if command == "LISTEN" and len(self._listening) < MAX_LISTENS:
                self._listening.add(path)
            elif command == "IGNORE":
                self._listening.discard(path)
            self._sent.pop(path, None)  # LISTEN: the current value goes out at the next tick
        logger.debug("OSCQuery: %s %s %s", self.peer, command, path)
        self.hub.wake()

    # -- writing (the hub's thread, and close() from any thread) -----------------------------

    def listening(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._listening)

    def push(self, path: str, types: str | None, value: tuple[object, ...]) -> None:
        """Send ``path``'s value if it is listened to and differs from the one last sent."""
        with self._lock:
            if (path not in self._listening or self._sent.get(path) == value
                    or self.protocol.state is not State.OPEN):
                return
            self._sent[path] = value
            self.protocol.send_binary(osc_message(path, osc_args(types, value)))
            self._flush()

    def close(self) -> None:
        """Close with 1001 (going away) and wake the reading thread."""
        self._closing = True
        with self._lock:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(1001, "sonify is stopping")
                self._flush()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _flush(self) -> None:
        """Write what the protocol has to send (holding the lock); a failure ends the session."""
        for chunk in self.protocol.data_to_send():
            try:
                if chunk:
                    self.sock.sendall(chunk)
                else:  # the protocol's end of stream: close our half
                    self.sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                self._closing = True
                if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    self.hub.log.warning("send", "OSCQuery: WebSocket client %s dropped: %s",
                                         self.peer, exc)
                return


class ListenHub:
    """The open sessions, and the thread that pushes listened values to them.

    ``tree()`` is the same tree the HTTP answers serve; a failure to build it is counted
    (``on_failure``) and logged at most once every few seconds, and pushing goes on.
    """

    def __init__(self, tree: Callable[[], Mapping[str, Any]], *, log: RateLimitedLog,
                 on_failure: Callable[[], None] = lambda: None,
                 interval_s: float = PUSH_INTERVAL_S, name: str = "oscquery-push") -> None:
        self.tree = tree
        self.log = log
        self.on_failure = on_failure
        self.interval_s = interval_s
        self._name = name
        self._lock = threading.Lock()
        self._sessions: set[Session] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Close every session and end the thread."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.close()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def serve(self, sock: socket.socket, peer: str, path: str,
              headers: Iterable[tuple[str, str]], refusal: str | None = None) -> None:
        """Run one WebSocket session on ``sock`` (an upgrade request already read) to its end;
        with ``refusal``, answer 403 saying it instead."""
        if self._stopping.is_set():
            return
        session = Session(sock, peer, self)
        if not session.handshake(path, headers, refusal):
            return
        with self._lock:
            self._sessions.add(session)
        self.wake()
        logger.info("OSCQuery: WebSocket client %s connected", peer)
        try:
            session.run()
        finally:
            with self._lock:
                self._sessions.discard(session)
            logger.info("OSCQuery: WebSocket client %s gone", peer)

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                idle = not self._sessions
            self._wake.wait(None if idle else self.interval_s)
            self._wake.clear()
            if not self._stopping.is_set():
                self.push_once()

    def push_once(self) -> None:
        """Build the tree once and send every session its changed, listened values."""
        with self._lock:
            wanted = [(s, s.listening()) for s in self._sessions]
        wanted = [(s, paths) for s, paths in wanted if paths]
        if not wanted:
            return
        try:
            root = self.tree()
        except Exception as exc:  # a snapshot callback failed: try again at the next tick
            self.on_failure()
            self.log.warning("push", "OSCQuery: building the tree for WebSocket listeners "
                             "failed: %s: %s", type(exc).__name__, exc)
            return
        for session, paths in wanted:
            for path in paths:
                found = readable_value(root, path)
                if found is not None:
                    session.push(path, *found)
