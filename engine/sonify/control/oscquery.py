"""OSCQuery: the OSC control address space as a read-only HTTP JSON tree.

Size (about 530 lines, just over the 500 we aim for): the tree and the HTTP server that serves
it (the two sections below) are one small protocol, kept together.

A VJ or show-control tool that speaks OSCQuery (Vidvox's proposal,
https://github.com/Vidvox/OSCQueryProposal: VDMX, Chataigne, ossia score, TouchDesigner
components, ...) asks this server what sonify understands, builds its own sliders and toggles from
the answer, and then sends plain OSC over UDP to the control server
(:mod:`sonify.control.osc_server`). This server only describes; it never changes anything.

**HTTP.** ``GET /`` answers the whole tree; ``GET /sonify/tempo`` one node with everything under
it; ``GET /sonify/tempo?VALUE`` one attribute, as ``{"VALUE": [120.0]}``; ``GET /?HOST_INFO``
the server's name, the OSC port and transport and the optional attributes it serves. All JSON
(``Content-Type: application/json``), ``HEAD`` as ``GET`` without the body. Errors: 404 for a
path that is not in the tree, 400 for an attribute this server does not know (``?LISTEN`` too:
no WebSocket streaming here), 204 for a known attribute the node lacks (``?VALUE`` of
``/sonify/panic``), 405 for anything but GET/HEAD, 500 with ``{"error": 500, "message": ...}``
when building the tree failed (a snapshot callback raised): the failure is logged at most once
every ``LOG_INTERVAL_S`` seconds and the server keeps serving.

**The tree.** :class:`SonifyTree` builds it on every request from the static ``ADDRESS_SPACE`` of
the OSC control server and snapshot callbacks (scenes, params with their current values, voices
with their mute state, the runtime's ``state()`` and, when features are streamed, their latest
values), so values and the set of params and voices follow the running scene. Attributes per
node: ``FULL_PATH``, ``CONTENTS`` (containers), ``TYPE``, ``ACCESS`` (0 none, 1 read, 2 write,
3 both), ``VALUE`` (a list, one item per type tag), ``RANGE`` (a list of ``{"MIN", "MAX"}`` or
``{"VALS"}``, one per type tag) and ``DESCRIPTION``.

Switches (``/sonify/mute/<voice>``, ``/sonify/freeze``) are typed ``"T"``, OSCQuery's boolean:
Chataigne, VDMX, ossia and VRChat-style tools make a toggle of ``T``/``F`` but an integer
slider or number box of ``"i"``, and the control server takes the ``T``/``F`` they then send
(as well as 0/1). ``/sonify/panic`` has no ``TYPE`` (it takes no argument, the proposal's way to
say so) and ACCESS 2; ``/sonify/status`` has no ``TYPE`` and ACCESS 0, its reply is described.

Not done: mDNS/zeroconf advertisement (``_oscjson._tcp``) and the optional WebSocket
``LISTEN``/``PATH_CHANGED`` streaming; clients are given the host and port by hand.

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
import math
import socket
import socketserver
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from sonify.commands import TEMPO_RANGE_BPM, Freeze, Mute, Panic, SetParam, SetScene, SetTempo
from sonify.control.osc_server import ADDRESS_SPACE, PREFIX, ControlServerError
from sonify.features.registry import MOOD_LABELS, SCALARS
from sonify.util.net import host_header_allowed, is_allowed, is_loopback, parse_allow
from sonify.util.ratelimit import LOG_INTERVAL_S as RATE_LIMIT_S
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9001  # TCP; the OSC control port (UDP 9000) + 1, as nothing standard is given
LOG_INTERVAL_S = RATE_LIMIT_S
REQUEST_TIMEOUT_S = 10.0  # a client that stalls mid-request cannot hold its thread for longer
SWITCH_TYPE = "T"  # OSCQuery's boolean; see the module docstring for why not "i"

# Optional attributes (the proposal's EXTENSIONS), and whether this server serves them.
EXTENSIONS: dict[str, bool] = {
    "ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True,
    "TAGS": False, "EXTENDED_TYPE": False, "UNIT": False, "CRITICAL": False, "CLIPMODE": False,
    "OVERLOADS": False, "HTML": False, "LISTEN": False, "PATH_CHANGED": False,
    "PATH_RENAMED": False, "PATH_ADDED": False, "PATH_REMOVED": False,
}
# What ``?ATTRIBUTE`` may ask for: the required attributes and the served extensions.
ATTRIBUTES: tuple[str, ...] = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE",
                               "DESCRIPTION")

NO_VALUE, READ_ONLY, WRITE_ONLY, READ_WRITE = 0, 1, 2, 3

Node = dict[str, Any]


# -- the tree ----------------------------------------------------------------------------------

def _number(value: object) -> float | None:
    """A JSON-safe float: NaN and infinities (not JSON) become null."""
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _container(path: str, description: str = "") -> Node:
    node: Node = {"FULL_PATH": path, "ACCESS": NO_VALUE, "CONTENTS": {}}
    if description:
        node["DESCRIPTION"] = description
    return node


def _insert(root: Node, node: Node) -> None:
    """Put ``node`` at its FULL_PATH, creating the containers on the way."""
    parts = [p for p in node["FULL_PATH"].split("/") if p]
    parent = root
    for depth, name in enumerate(parts[:-1], start=1):
        contents = parent.setdefault("CONTENTS", {})
        if name not in contents:
            contents[name] = _container("/" + "/".join(parts[:depth]))
        parent = contents[name]
    contents = parent.setdefault("CONTENTS", {})
    existing = contents.get(parts[-1])
    if existing is not None and existing.get("CONTENTS"):  # keep what is already below
        below = node.setdefault("CONTENTS", {})
        for name, child in existing["CONTENTS"].items():
            below.setdefault(name, child)
    contents[parts[-1]] = node


class SonifyTree:
    """Builds the OSCQuery tree of sonify's control address space; call it for a fresh one.

    Each call asks every callback once, on the calling (HTTP) thread, so they should hand over
    cheap, thread-safe snapshots:

    - ``state()``: the runtime's state dict; ``scene``, ``tempo_bpm``, ``frozen`` and ``mood``
      are read (a missing key leaves that VALUE out);
    - ``scenes()``: the scene names ``/sonify/scene`` accepts;
    - ``params()``: ``{name: (lo, hi, current value)}``, one ``/sonify/param/<name>`` each;
    - ``voices()``: ``{voice: muted}``, one ``/sonify/mute/<voice>`` each;
    - ``features()`` (optional): ``{name: value}`` as last streamed, 0..1; given, the tree also
      describes the read-only ``<feature_prefix>/feature/<name>`` stream (every scalar of the
      feature registry, plus ``mood``). Leave it out when features are not streamed.
    """

    def __init__(
        self,
        *,
        state: Callable[[], Mapping[str, object]],
        scenes: Callable[[], Collection[str]],
        params: Callable[[], Mapping[str, tuple[float, float, float]]],
        voices: Callable[[], Mapping[str, bool]],
        features: Callable[[], Mapping[str, float]] | None = None,
        feature_prefix: str = PREFIX,
        osc_port: int | None = None,
    ) -> None:
        self._state = state
        self._scenes = scenes
        self._params = params
        self._voices = voices
        self._features = features
        self.feature_prefix = feature_prefix.rstrip("/")
        self.osc_port = osc_port

    def __call__(self) -> Node:
        state = self._state()
        where = f" on UDP port {self.osc_port}" if self.osc_port else ""
        root = _container("/", f"sonify: camera frames into music. Control it with OSC{where}; "
                               f"this tree is read-only")
        _insert(root, _container(PREFIX, "sonify's controls"))
        for entry in ADDRESS_SPACE:
            path: str = entry["path"]
            if "/{" in path:  # a family of addresses: a container of one node per name
                container = _container(path[:path.index("/{")], entry["description"])
                _insert(root, container)
                for node in self._family(entry, container["FULL_PATH"]):
                    _insert(root, node)
            else:
                _insert(root, self._method(entry, state))
        if self._features is not None:
            self._add_features(root, state)
        return root

    def _method(self, entry: Mapping[str, Any], state: Mapping[str, object]) -> Node:
        command = entry.get("command")
        node: Node = {"FULL_PATH": entry["path"], "DESCRIPTION": entry["description"]}
        if command == SetScene.kind:
            node.update(TYPE="s", ACCESS=READ_WRITE,
                        RANGE=[{"VALS": sorted(str(s) for s in self._scenes())}])
            if "scene" in state:
                node["VALUE"] = [str(state["scene"])]
        elif command == SetTempo.kind:
            lo, hi = TEMPO_RANGE_BPM
            node.update(TYPE="f", ACCESS=READ_WRITE, RANGE=[{"MIN": lo, "MAX": hi}])
            if "tempo_bpm" in state:
                node["VALUE"] = [_number(state["tempo_bpm"])]
        elif command == Freeze.kind:
            node.update(TYPE=SWITCH_TYPE, ACCESS=READ_WRITE, RANGE=[{"MIN": 0, "MAX": 1}])
            if "frozen" in state:
                node["VALUE"] = [bool(state["frozen"])]
        elif command == Panic.kind:
            node["ACCESS"] = WRITE_ONLY  # a bang: no argument, so no TYPE (see the docstring)
        elif command is None:  # /sonify/status: a request for a reply, no value of its own
            node["ACCESS"] = NO_VALUE
            reply = entry.get("reply")
            if reply:
                node["DESCRIPTION"] += (f" (reply type tags {reply['types']!r}: "
                                        f"{', '.join(reply['args'])})")
        else:  # an address added to ADDRESS_SPACE later: described, value unknown here
            node["ACCESS"] = WRITE_ONLY
            if entry.get("types"):
                node["TYPE"] = entry["types"]
            if isinstance(entry.get("range"), tuple) and len(entry["range"]) == 2:
                node["RANGE"] = [{"MIN": entry["range"][0], "MAX": entry["range"][1]}]
        return node

    def _family(self, entry: Mapping[str, Any], base: str) -> list[Node]:
        command = entry.get("command")
        nodes: list[Node] = []
        if command == SetParam.kind:
            for name, (lo, hi, value) in sorted(self._params().items()):
                nodes.append({"FULL_PATH": f"{base}/{name}", "TYPE": "f", "ACCESS": READ_WRITE,
                              "RANGE": [{"MIN": _number(lo), "MAX": _number(hi)}],
                              "VALUE": [_number(value)],
                              "DESCRIPTION": f"scene parameter {name}"})
        elif command == Mute.kind:
            for voice, muted in sorted(self._voices().items()):
                nodes.append({"FULL_PATH": f"{base}/{voice}", "TYPE": SWITCH_TYPE,
                              "ACCESS": READ_WRITE, "RANGE": [{"MIN": 0, "MAX": 1}],
                              "VALUE": [bool(muted)],
                              "DESCRIPTION": f"true (or 1) mutes voice {voice}, false (0) "
                                             f"unmutes it"})
        return nodes

    def _add_features(self, root: Node, state: Mapping[str, object]) -> None:
        assert self._features is not None
        values = self._features()
        base = f"{self.feature_prefix}/feature"
        _insert(root, _container(base, "the feature stream: what the camera sees, sent to the "
                                       "OSC targets as floats 0..1 (read-only here)"))
        described = {spec.name: spec.description + (
            f" (streamed as count / {spec.span[1]:g}, at most 1)" if spec.hi is None else "")
            for spec in SCALARS}
        names = list(described) + sorted(n for n in values if n not in described)
        for name in names:
            node: Node = {"FULL_PATH": f"{base}/{name}", "TYPE": "f", "ACCESS": READ_ONLY,
                          "RANGE": [{"MIN": 0.0, "MAX": 1.0}],
                          "DESCRIPTION": described.get(name, f"feature {name}")}
            if name in values:
                node["VALUE"] = [_number(values[name])]
            _insert(root, node)
        mood: Node = {"FULL_PATH": f"{base}/mood", "TYPE": "s", "ACCESS": READ_ONLY,
                      "RANGE": [{"VALS": list(MOOD_LABELS)}],
                      "DESCRIPTION": "the mood label of the picture"}
        if "mood" in state:
            mood["VALUE"] = [str(state["mood"])]
        _insert(root, mood)


def find_node(root: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The node at ``path`` ("/" is the root), or None."""
    node = root
    for name in (p for p in path.split("/") if p):
        contents = node.get("CONTENTS")
        if not isinstance(contents, Mapping) or name not in contents:
            return None
        node = contents[name]
    return node


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
        owner = self.server.owner
        client = str(self.client_address[0])
        if not is_allowed(client, owner.allow):
            owner.log.warning("not_allowed", "OSCQuery: refusing %s, not in the allow list", client)
            self._send_json(HTTPStatus.FORBIDDEN, {"error": 403, "message":
                                                   f"{client} is not in the allow list"})
            return True
        host = self.headers.get("Host")
        if not host_header_allowed(host, owner.host, owner.host_names):
            owner.log.warning("host", "OSCQuery: refusing a request for host %r from %s (not "
                              "this server's name: DNS rebinding?)", (host or "")[:80], client)
            self._send_json(HTTPStatus.FORBIDDEN, {
                "error": 403, "message": f"this server does not answer to the host name "
                                         f"{(host or '')[:80]!r}; use its address"})
            return True
        return False

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
                               f"{', '.join(ATTRIBUTES)}, and HOST_INFO at /"})
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
    header may give beyond the defaults (see the module docstring).
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
                f"program using it? Pick another OSCQuery port (0 picks a free one)") from None
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"oscquery:{self._port}", daemon=True)
        self._thread.start()
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
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout_s)
        self._httpd = self._thread = None

    def __enter__(self) -> OscQueryServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
