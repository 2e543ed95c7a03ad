"""OSCQuery: the OSC control address space as an HTTP JSON tree, its WebSocket and its mDNS name.

A VJ or show-control tool that speaks OSCQuery (Vidvox's proposal,
https://github.com/Vidvox/OSCQueryProposal: VDMX, Chataigne, ossia score, TouchOSC, Open Stage
Control, TouchDesigner components, ...) finds sonify on the network (``_oscjson._tcp``, see
:mod:`sonify.control.announce`), asks this server what sonify understands, builds its own
sliders and toggles from the answer, follows the values it LISTENs to over this server's
WebSocket (:mod:`sonify.control.oscquery_ws`), and sends plain OSC over UDP to the control
server (:mod:`sonify.control.osc_server`) to change things. This server only describes; it
never changes anything. The tree itself is :mod:`sonify.control.oscquery_tree`.

**HTTP.** ``GET /`` answers the whole tree; ``GET /sonify/tempo`` one node with everything under
it; ``GET /sonify/tempo?VALUE`` one attribute, as ``{"VALUE": [120.0]}``; ``GET /?HOST_INFO``
the server's name, the OSC port and transport and the optional attributes it serves (LISTEN
among them). All JSON (``Content-Type: application/json``), ``HEAD`` as ``GET`` without the
body. Errors: 404 for a path that is not in the tree, 400 for an attribute this server does not
know (``?LISTEN`` too: LISTEN is a WebSocket command), 204 for a known attribute the node lacks
(``?VALUE`` of ``/sonify/panic``), 405 for anything but GET/HEAD, 500 with ``{"error": 500,
"message": ...}`` when building the tree failed (a snapshot callback raised): the failure is
logged at most once every ``LOG_INTERVAL_S`` seconds and the server keeps serving.

**WebSocket.** A ``GET`` with ``Upgrade: websocket`` on the same port opens a WebSocket
(``ws://127.0.0.1:9001/``) for ``{"COMMAND": "LISTEN", "DATA": "/sonify/tempo"}`` and
``"IGNORE"``; the values of listened nodes come back as binary OSC messages (see
:mod:`sonify.control.oscquery_ws`). It passes the same checks as HTTP (allow list, Host
header) and one more: a browser's ``Origin`` must name this machine (loopback, or bound
elsewhere the bound host or this machine's names), as any web page may open a WebSocket to
127.0.0.1; tools that are not browsers send no Origin.

**Announcement.** With ``announce=True`` the server is announced over mDNS while it runs
(``_oscjson._tcp`` on this port, ``_osc._udp`` on the OSC port), on the interfaces it is bound
to, and withdrawn at ``stop()``.

The HTTP server binds 127.0.0.1 unless another host is passed explicitly (the runtime passes the
control server's host: OSCQuery is reachable wherever OSC control is). **Host check**: a request
whose ``Host`` header does not name this server is refused with 403, so a web page that rebinds
its own DNS name to this machine (DNS rebinding) cannot read the tree: bound to loopback only
loopback names pass; bound elsewhere loopback names, IP literals, the bound host and this
machine's host names (``sonify.util.net.host_header_allowed``). With ``allow`` (the control server's
allow list) a client address outside it is refused with 403 too.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from sonify.control.announce import Announcer
from sonify.control.osc_server import ControlServerError
from sonify.control.oscquery_tree import (
    NO_VALUE,
    READ_ONLY,
    READ_WRITE,
    SWITCH_TYPE,
    WRITE_ONLY,
    Node,
    SonifyTree,
    find_node,
)
from sonify.control.oscquery_ws import PUSH_INTERVAL_S, ListenHub, wants_websocket
from sonify.util.net import (
    host_header_allowed,
    host_header_name,
    is_allowed,
    is_loopback,
    own_host_names,
    parse_allow,
)
from sonify.util.ratelimit import LOG_INTERVAL_S as RATE_LIMIT_S
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9001  # TCP; the OSC control port (UDP 9000) + 1, as nothing standard is given
LOG_INTERVAL_S = RATE_LIMIT_S
REQUEST_TIMEOUT_S = 10.0  # a client that stalls mid-request cannot hold its thread for longer

# Optional attributes (the proposal's EXTENSIONS), and whether this server serves them.
EXTENSIONS: dict[str, bool] = {
    "ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True,
    "TAGS": False, "EXTENDED_TYPE": False, "UNIT": False, "CRITICAL": False, "CLIPMODE": False,
    "OVERLOADS": False, "HTML": False, "LISTEN": True, "PATH_CHANGED": False,
    "PATH_RENAMED": False, "PATH_ADDED": False, "PATH_REMOVED": False,
}
# What ``?ATTRIBUTE`` may ask for: the required attributes and the served extensions.
ATTRIBUTES: tuple[str, ...] = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE",
                               "DESCRIPTION")

__all__ = ["ATTRIBUTES", "DEFAULT_PORT", "EXTENSIONS", "NO_VALUE", "READ_ONLY", "READ_WRITE",
           "SWITCH_TYPE", "WRITE_ONLY", "Node", "OscQueryServer", "SonifyTree", "find_node"]


# -- the HTTP server ---------------------------------------------------------------------------

class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a request under way never holds up stop()

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily,
                 owner: OscQueryServer) -> None:
        self.address_family = family  # read by TCPServer.__init__ when it makes the socket
        self.owner = owner
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own server_bind asks socket.getfqdn(host): a reverse DNS lookup that can
        # stall start() for seconds on a machine without network.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "sonify-oscquery"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers at stop()
    timeout = REQUEST_TIMEOUT_S

    def do_GET(self) -> None:
        if wants_websocket(self.headers):
            self._websocket()
        else:
            self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def _not_allowed(self) -> None:
        if self._refused():
            return
        self._send_json(HTTPStatus.METHOD_NOT_ALLOWED,
                        {"error": 405, "message": "read-only: only GET and HEAD are answered; "
                                                  "send OSC over UDP to change things"},
                        extra_headers={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed

    def _refused(self) -> bool:
        """Answers 403 and returns True for a client or Host header this server does not serve."""
        refusal = self._refusal()
        if refusal is not None:
            self._send_json(HTTPStatus.FORBIDDEN, {"error": 403, "message": refusal})
        return refusal is not None

    def _refusal(self, websocket: bool = False) -> str | None:
        """Why this request is refused (logged, rate-limited), or None when it is served."""
        owner = self.server.owner
        client = str(self.client_address[0])
        if not is_allowed(client, owner.allow):
            owner.log.warning("not_allowed", "OSCQuery: refusing %s, not in the allow list", client)
            return f"{client} is not in the allow list"
        host = self.headers.get("Host")
        if not host_header_allowed(host, owner.host, owner.host_names):
            owner.log.warning("host", "OSCQuery: refusing a request for host %r from %s (not "
                              "this server's name: DNS rebinding?)", (host or "")[:80], client)
            return (f"this server does not answer to the host name {(host or '')[:80]!r}; use "
                    f"its address")
        origin = self.headers.get("Origin")
        if websocket and origin is not None and not owner.origin_allowed(origin):
            owner.log.warning("origin", "OSCQuery: refusing a WebSocket from a web page at %r "
                              "(%s): not this machine", origin[:80], client)
            return f"WebSockets from pages at {origin[:80]!r} are not accepted"
        return None

    def _websocket(self) -> None:
        """Upgrade to the LISTEN WebSocket and serve it on this thread until it closes (a
        refusal is answered in the WebSocket's HTTP/1.1, which its clients insist on)."""
        self.close_connection = True
        self.server.owner.hub.serve(self.connection, str(self.client_address[0]), self.path,
                                    self.headers.items(), refusal=self._refusal(websocket=True))

    def _answer(self) -> None:
        if self._refused():
            return
        owner = self.server.owner
        url = urlsplit(self.path)
        path = unquote(url.path) or "/"
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        attribute = unquote(url.query)
        if attribute == "HOST_INFO" and path == "/":
            self._send_json(HTTPStatus.OK, owner.host_info())
            return
        try:
            root = owner.tree()
            node = find_node(root, path)
            if node is None:
                self._send_json(HTTPStatus.NOT_FOUND,
                                {"error": 404, "message": f"no OSC node at {path!r}"})
                return
            if not attribute:
                body = json.dumps(node, allow_nan=False).encode()
            elif attribute in ATTRIBUTES:
                if attribute not in node:
                    self._send_empty(HTTPStatus.NO_CONTENT)
                    return
                body = json.dumps({attribute: node[attribute]}, allow_nan=False).encode()
            else:
                self._send_json(HTTPStatus.BAD_REQUEST, {
                    "error": 400,
                    "message": f"unknown attribute {attribute[:80]!r}; this server answers "
                               f"{', '.join(ATTRIBUTES)}, and HOST_INFO at / (LISTEN is a "
                               f"command on its WebSocket)"})
                return
        except Exception as exc:  # a snapshot callback failed: answer, log, keep serving
            owner.count_failure()
            owner.log.warning("tree", "OSCQuery: building the tree for %s failed: %s: %s",
                              path[:80], type(exc).__name__, exc, exc_info=True)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {
                "error": 500, "message": f"the address tree could not be built: "
                                         f"{type(exc).__name__}: {exc}"})
            return
        self._send_body(HTTPStatus.OK, body)

    def _send_json(self, status: HTTPStatus, obj: Mapping[str, Any],
                   extra_headers: Mapping[str, str] | None = None) -> None:
        self._send_body(status, json.dumps(obj).encode(), extra_headers)

    def _send_body(self, status: HTTPStatus, body: bytes,
                   extra_headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # values change between requests
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_empty(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """http.server's own errors (a malformed request, 501...) as JSON, not HTML."""
        self.close_connection = True
        try:
            short = HTTPStatus(code).phrase
        except ValueError:
            short = "error"
        body = json.dumps({"error": code, "message": message or short}).encode()
        self.send_response(code, short)
        self.send_header("Connection", "close")
        if code < 200 or code in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            self.end_headers()
            return
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("OSCQuery %s: " + format, self.address_string(), *args)


class OscQueryServer:
    """Serves ``tree()`` (a root node, built per request) as OSCQuery over HTTP on a daemon thread.

    ``start()`` binds ``host:port`` over TCP (port 0 picks a free one; ``port`` then tells which)
    and returns; ``stop()`` ends the thread and frees the port. ``osc_port`` (and ``osc_ip``,
    when the OSC control server is not on the same address as this one) go into HOST_INFO so
    clients know where to send OSC. ``host`` is 127.0.0.1 unless given: pass "0.0.0.0" (or a
    LAN address) to let other machines read the tree. ``allow`` (IP addresses or CIDR networks,
    as for the control server) limits who may; ``host_names`` are extra names the ``Host``
    header may give beyond the defaults (see the module docstring). The LISTEN WebSocket is
    served on the same port; ``announce`` announces the server over mDNS while it runs (the
    runtime turns it on; tests of the HTTP tree leave it off).
    """

    def __init__(
        self,
        tree: Callable[[], Mapping[str, Any]],
        *,
        osc_port: int,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        name: str = "sonify",
        osc_ip: str | None = None,
        allow: Sequence[str] | None = None,
        host_names: Sequence[str] = (),
        announce: bool = False,
        push_interval_s: float = PUSH_INTERVAL_S,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"OSCQuery port {port} is outside 0..65535")
        if not 0 < osc_port <= 65535:
            raise ValueError(f"OSCQuery: the OSC port {osc_port} is outside 1..65535 (give the "
                             f"port the OSC control server listens on)")
        if not host:
            raise ValueError("OSCQuery host is empty; give 127.0.0.1 (this machine only) or "
                             "0.0.0.0 (every interface) explicitly")
        self.tree = tree
        self.host = host
        self.allow = parse_allow(allow)  # ValueError naming a bad entry
        self.host_names = tuple(host_names)
        self._port = port
        self.osc_port = osc_port
        self.osc_ip = osc_ip
        self.name = name
        self.log = RateLimitedLog(logger, LOG_INTERVAL_S)
        self.hub = ListenHub(tree, log=self.log, on_failure=self.count_failure,
                             interval_s=push_interval_s)
        self.announce = announce
        self.announcer: Announcer | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one when asked for 0), else the asked one."""
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def failures(self) -> int:
        """Requests answered 500 because the tree could not be built."""
        with self._lock:
            return self._failures

    def count_failure(self) -> None:
        with self._lock:
            self._failures += 1

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser page at ``origin`` (``http://host:port``) may open the WebSocket:
        a page on this machine (a loopback name, or bound elsewhere the bound host or this
        machine's names), never any other page (see the module docstring)."""
        host = host_header_name(urlsplit(origin).netloc) if "://" in origin else ""
        if not host:  # "null" (a file:// page, a sandboxed frame) or garbage
            return False
        if is_loopback(host):
            return True
        if is_loopback(self.host):
            return False
        names = own_host_names() | {host_header_name(self.host)}
        return host in names | {n.lower().rstrip(".") for n in self.host_names}

    def host_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"NAME": self.name, "EXTENSIONS": dict(EXTENSIONS),
                                "OSC_PORT": self.osc_port, "OSC_TRANSPORT": "UDP"}
        if self.osc_ip:  # absent: the client sends OSC to the host it reached us on
            info["OSC_IP"] = self.osc_ip
        return info

    def start(self) -> None:
        """Bind and serve on a daemon thread; ControlServerError says why it cannot."""
        if self._thread is not None:
            raise RuntimeError("OSCQuery server already started")
        try:
            family = socket.getaddrinfo(self.host, self._port, type=socket.SOCK_STREAM)[0][0]
        except OSError as exc:
            raise ControlServerError(f"OSCQuery: cannot use host {self.host!r}: {exc}; give an "
                                     f"IP address such as 127.0.0.1") from None
        try:
            httpd = _HTTPServer((self.host, self._port), family, self)
        except OSError as exc:
            raise ControlServerError(
                f"OSCQuery: cannot listen on {self.host}:{self._port} (TCP): {exc}; is another "
                f"program (another sonify?) using it? Pick another port with --oscquery-port N "
                f"or [control] oscquery_port (0 turns OSCQuery off)") from None
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"oscquery:{self._port}", daemon=True)
        self._thread.start()
        self.hub.start()
        if self.announce:
            self.announcer = Announcer(host=self.host, oscquery_port=self._port,
                                       osc_port=self.osc_port)
            self.announcer.start()
        if is_loopback(self.host):
            logger.info("OSCQuery at %s (OSC control on UDP port %d)", self.url, self.osc_port)
        else:
            logger.info("OSCQuery at %s, reachable from other machines (read-only; OSC control "
                        "on UDP port %d)", self.url, self.osc_port)

    def stop(self, timeout_s: float = 2.0) -> None:
        """End the serving thread and free the port (requests under way finish on their own)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        if self.announcer is not None:
            self.announcer.stop()  # withdrawn first: no client is sent to a closing server
            self.announcer = None
        self.hub.stop(timeout_s)
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout_s)
        self._httpd = self._thread = None

    def __enter__(self) -> OscQueryServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
