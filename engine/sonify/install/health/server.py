"""The health and control page: a small HTTP server for the installation box.

Size (about 620 lines, over the 500 we aim for): one HTTP surface. The request handler checks
tokens, origins and failure limits, and each route reads best beside the checks that guard it;
the page (``page``, ``static/``), the push stream's loop (``stream``) and the lockout
(``limiter``) live apart.

Routes (all GET unless said):

==================  ==========================================================================
``/``               the performance page (``sonify.install.health.page``; no external
                    assets): launch grid, sliders, XY pads, mute/solo, learn, tempo tap, feature
                    scopes, piano roll, thumbnail, health and outputs
``/page.js``        its script and ``/page.css`` its style
``/api/stream``     ``state()`` pushed as server-sent events every ``push_interval_s``
                    (``sonify.install.health.stream``; at most ``stream_clients`` at once, then
                    503): what the page shows
``/health``         ``health()`` as JSON; 200 when ``health()["ok"]`` is true (or missing),
                    503 when false: for a watchdog, a load balancer or ``curl -f``
``/metrics``        Prometheus text (``Metrics.render()``)
``/api/state``      ``state()`` as JSON, once (scripts; the page asks it why a stream broke)
``/api/scenes``     ``scenes()`` as a JSON list
``/thumbnail.jpg``  ``thumbnail()`` as image/jpeg; 204 when there is no picture yet
POST
``/api/command``    ``{"name": ..., "arg": ...}`` (below), checked, then ``command(cmd)``
==================  ==========================================================================

Commands (the typed commands of ``sonify.commands``, parsed by ``from_json`` and checked by
``check``, as the OSC control server's are; anything else is a 400 with a message and its
``reason``, counted in ``sonify_control_rejected_total{reason}``). The answer is ``{"ok": true,
"name": ..., "arg": ...}``, the command as ``to_json`` writes it.

=========  ====================================  =========================
name       arg                                   command
=========  ====================================  =========================
scene      a name in ``scenes()``                ``SetScene(name)``
mute       ``{"voice": v, "muted": bool}`` or    ``Mute(v, bool)``
           ``[v, bool]``; v in state()["voices"]
freeze     bool (or 0/1)                         ``Freeze(bool)``
panic      anything (ignored)                    ``Panic()``
tempo      number, ``TEMPO_RANGE_BPM`` (20..300) ``SetTempo(float)``
param      ``{"name": n, "value": x}`` or         ``SetParam(n, x)``
           ``[n, x]``; n in state()["param_ranges"],
           x within its range
master     number, ``MASTER_RANGE`` (0..1)         ``SetMaster(float)``
learn      a parameter, ``tempo``, ``master``...  ``Learn(name)`` (MIDI control on)
=========  ====================================  =========================

**Security.** The server binds 127.0.0.1 unless told otherwise. Any other address needs a
token of at least ``MIN_TOKEN_LENGTH`` characters (the constructor raises without one); with a
token every request must carry it, else 401:

- scripts send ``Authorization: Bearer <token>``;
- a browser opens ``/?token=<token>`` once: the answer is a redirect to the same address without
  the token, setting a cookie (HttpOnly, SameSite=Strict, a year) that carries a keyed hash of
  the token, never the token itself, so the token does not stay in the address bar, the
  history, or a proxy's logs; the page's own requests then carry the cookie. A cookie that no
  longer matches (the token was changed) is cleared by the 401 that refuses it.

Tokens and cookies are compared in constant time (as SHA-256 digests: not even the length
leaks). A client address that offers ``MAX_FAILURES`` wrong tokens or cookies within
``FAILURE_WINDOW_S`` seconds is answered 429 (with ``Retry-After``) for ``LOCKOUT_S`` seconds,
whatever it sends; each refusal is counted (``unauthorized``, ``rate_limited``) and logged at
most once every ``LOG_INTERVAL_S`` seconds. A request without any token is refused without
counting as a failure (a browser asking for ``/favicon.ico`` guesses nothing).

Commands must be ``Content-Type: application/json``, which a cross-site form cannot send without
a CORS preflight this server never grants, and a request whose ``Origin`` is not this server is
refused (403): a web page in the gallery's browser cannot drive the show. On loopback, the
``Host`` header must name a loopback host (a DNS-rebinding page cannot read the state). The page
forbids framing (no click-jacking of the panic button).

**Faults.** A callback that raises gives that request a 500 with a JSON error; the error is
logged at most once per route every ``LOG_INTERVAL_S`` seconds; the server keeps serving.
Callbacks run on the server's request threads, so hand it cheap, thread-safe snapshots; commands
go to the runtime's command queue (``Runtime.command``), never into its objects.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sonify.commands import (
    Command,
    CommandContext,
    CommandError,
    Freeze,
    Learn,
    Mute,
    Panic,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Teach,
    check,
    from_json,
    to_json,
)
from sonify.install.health.limiter import (  # re-exported: tests and callers know them here
    FAILURE_WINDOW_S,
    LOCKOUT_S,
    MAX_FAILURES,
    MAX_TRACKED_CLIENTS,
    FailureLimiter,
)
from sonify.install.health.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from sonify.install.health.metrics import Metrics
from sonify.install.health.page import ASSETS, PAGE_HTML
from sonify.install.health.stream import MAX_CLIENTS, PUSH_INTERVAL_S, StatePush
from sonify.util.net import is_loopback
from sonify.util.ratelimit import LOG_INTERVAL_S as RATE_LIMIT_S
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

__all__ = ["COMMANDS", "DEFAULT_HOST", "DEFAULT_PORT", "FAILURE_WINDOW_S", "LOCKOUT_S",
           "MAX_FAILURES", "MAX_TRACKED_CLIENTS", "MIN_TOKEN_LENGTH", "CommandError",
           "FailureLimiter", "HealthServer", "is_loopback", "param_ranges", "validate_command"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOG_INTERVAL_S = RATE_LIMIT_S
MAX_BODY_BYTES = 4096
REQUEST_TIMEOUT_S = 10.0
COMMANDS = (SetScene.kind, Mute.kind, Freeze.kind, Panic.kind, SetTempo.kind,  # the page's
            SetParam.kind, SetMaster.kind, Learn.kind, Teach.kind)

MIN_TOKEN_LENGTH = 16  # characters; brute force at the rate below is then hopeless
COOKIE_MAX_AGE_S = 365 * 24 * 3600
_COOKIE_KEY = b"sonify health page cookie v1"
_TOKEN_IN_LOGS = re.compile(r"(token=)[^&\s]*", re.IGNORECASE)

HealthFn = Callable[[], Mapping[str, Any]]
StateFn = Callable[[], Mapping[str, Any]]
ThumbnailFn = Callable[[], bytes | None]
CommandFn = Callable[[Command], None]
ScenesFn = Callable[[], list[str]]


def validate_command(name: object, arg: object, *, scenes: list[str], voices: list[str],
                     params: Mapping[str, tuple[float, float]] | None = None) -> Command:
    """The command a ``{"name", "arg"}`` request asks for, checked against ``scenes``,
    ``voices`` and ``params`` (name -> range), or ``CommandError`` saying what is wrong
    (``sonify.commands``)."""
    return check(from_json(name, arg, kinds=COMMANDS),
                 CommandContext.of(scenes=scenes, voices=voices, params=params))


def param_ranges(state: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The scene's parameters and their ranges, from a state's ``param_ranges``."""
    ranges = state.get("param_ranges") or {}
    return {str(name): (float(lo), float(hi)) for name, (lo, hi) in ranges.items()}


def _jsonable(obj: Any) -> Any:
    """Plain JSON types: NaN and infinities become null (browsers' JSON.parse rejects them),
    tuples and sets become lists, NumPy scalars their Python values."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v) for v in obj]
    item = getattr(obj, "tolist", None)  # NumPy scalars and arrays
    if callable(item):
        return _jsonable(item())
    return str(obj)


def _dumps(obj: Any) -> bytes:
    return json.dumps(_jsonable(obj), allow_nan=False, separators=(",", ":")).encode()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: HealthServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback to stderr: a client that hung up or timed out
        # is routine for a page left open on a gallery screen
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            logger.debug("health server: client %s: %r", client_address, exc)
        else:
            self.app.errors.error("connection", "health server: request from %s failed: %r",
                                  client_address, exc)


class HealthServer:
    """The health/metrics/control HTTP server, on a daemon thread.

    ``start()`` binds and serves (``port=0`` picks a free port: read ``port`` or ``url``);
    ``stop()`` shuts it down. Raises ``ValueError`` for a non-loopback ``host`` without a
    ``token``, and ``OSError`` from ``start()`` when the address cannot be bound.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        health: HealthFn,
        state: StateFn,
        command: CommandFn,
        thumbnail: ThumbnailFn | None = None,
        metrics: Metrics | None = None,
        scenes: ScenesFn | None = None,
        token: str | None = None,
        poll_interval_s: float = 0.5,
        push_interval_s: float = PUSH_INTERVAL_S,
        stream_clients: int = MAX_CLIENTS,
    ) -> None:
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the health server token (http.token) is {len(token)} characters "
                             f"long: use at least {MIN_TOKEN_LENGTH}")
        self.loopback = is_loopback(host)
        if not self.loopback and token is None:
            raise ValueError(
                f"the health server would listen on {host!r}, which other machines can reach: "
                "set a token (http.token; requests then need 'Authorization: Bearer TOKEN', "
                "or open /?token=TOKEN once in a browser), or bind 127.0.0.1")
        self.host = host
        self.requested_port = port
        self.health = health
        self.state = state
        self.command = command
        self.thumbnail = thumbnail
        self.metrics = metrics
        self.scenes = scenes or (lambda: [])
        # looked up only by the command that needs it (the state is not built for a panic)
        self._context = CommandContext(
            scenes=lambda: [str(s) for s in self.scenes()],
            voices=lambda: [str(v) for v in (self.state().get("voices") or [])],
            params=lambda: param_ranges(self.state()))
        self.token = token
        self._token_digest = _digest(token) if token is not None else b""
        # The cookie holds a keyed hash of the token: it survives restarts, dies when the token
        # changes, and a stolen cookie does not reveal the token.
        self.cookie_value = hmac.new(token.encode("utf-8", "surrogateescape"), _COOKIE_KEY,
                                     hashlib.sha256).hexdigest() if token is not None else ""
        self.limiter = FailureLimiter()
        self.auth_log = RateLimitedLog(logger, LOG_INTERVAL_S)
        self.poll_interval_s = poll_interval_s  # how soon stop() is noticed
        self.errors = RateLimitedLog(logger, LOG_INTERVAL_S, logging.ERROR)
        self.push = StatePush(state, interval_s=push_interval_s, max_clients=stream_clients,
                              dumps=_dumps, on_error=lambda exc: self.errors.error(
                                  "stream", "health server: state failed: %r", exc))
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> HealthServer:
        if self._httpd is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host.strip("[]") else socket.AF_INET
        server_cls = type("_BoundServer", (_Server,), {"address_family": family})
        httpd = server_cls((self.host.strip("[]"), self.requested_port), _Handler)
        httpd.app = self
        self._httpd = httpd
        self.push.start()
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        kwargs={"poll_interval": self.poll_interval_s},
                                        name="sonify-health", daemon=True)
        self._thread.start()
        logger.info("health page on %s", self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.push.stop()  # open streams end within one push interval
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            return self.requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.host.strip("[]")
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    # -- requests -----------------------------------------------------------------------------

    @property
    def cookie_name(self) -> str:
        # Browsers keep cookies per host, not per port: two engines on one box keep theirs apart
        return f"sonify_token_{self.port}"

    def token_matches(self, offered: str) -> bool:
        """Constant time, as digests (so not even the length of the token leaks)."""
        return self.token is not None and hmac.compare_digest(_digest(offered),
                                                              self._token_digest)

    def cookie_matches(self, offered: str) -> bool:
        return bool(self.cookie_value) and hmac.compare_digest(_digest(offered),
                                                               _digest(self.cookie_value))

    def authorized(self, header: str | None, query_token: str | None,
                   cookie: str | None = None) -> bool:
        """Whether any of the offered credentials is right (always, without a token)."""
        if self.token is None:
            return True
        offered = []
        if header and header[:7].lower() == "bearer ":
            offered.append(self.token_matches(header[7:].strip()))
        if query_token is not None:
            offered.append(self.token_matches(query_token))
        if cookie is not None:
            offered.append(self.cookie_matches(cookie))
        return any(offered)

    def run_command(self, payload: object) -> Command:
        """Check a decoded JSON request and issue its command; ``CommandError`` if refused."""
        if not isinstance(payload, Mapping):
            raise CommandError("malformed", 'send a JSON object {"name": ..., "arg": ...}')
        cmd = check(from_json(payload.get("name"), payload.get("arg"), kinds=COMMANDS),
                    self._context)
        self.command(cmd)
        return cmd

    def rejected(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.control_rejected(reason)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "sonify"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_S

    # -- plumbing -----------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        # the request line may hold ?token=: never write it to a log
        shown = tuple(_TOKEN_IN_LOGS.sub(r"\1***", a) if isinstance(a, str) else a
                      for a in args)
        logger.debug("%s " + format, self.address_string(), *shown)

    def _send(self, status: int, body: bytes, content_type: str,
              extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, _dumps(obj), "application/json")

    def _error(self, status: int, message: str, **extra: Any) -> None:
        self._json(status, {"ok": False, "error": message, **extra})

    def _guard(self, query: dict[str, list[str]]) -> bool:
        """Host and token checks; answers and returns False when the request is refused (or
        redirected to drop a ``?token=`` from its address)."""
        app = self.server.app
        if app.loopback:
            host = self.headers.get("Host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host and not is_loopback(name):
                self._error(403, f"this server answers only to a loopback host name, not {host!r}")
                return False
        if app.token is None:
            return True
        client = str(self.client_address[0])
        locked_s = app.limiter.locked_for(client)
        if locked_s > 0:
            app.rejected("rate_limited")
            app.auth_log.warning("locked", "health server: refusing %s for %.0f s more: too "
                                 "many wrong tokens", client, locked_s)
            self._send(429, _dumps({"ok": False, "error": "too many wrong tokens from this "
                                    f"address: try again in {math.ceil(locked_s)} s"}),
                       "application/json", {"Retry-After": str(math.ceil(locked_s))})
            return False
        header = self.headers.get("Authorization")
        # ?token= only on a page visit (GET/HEAD): it is turned into a cookie at once
        tokens = query.get("token") if self.command in ("GET", "HEAD") else None
        query_token = tokens[0] if tokens else None
        cookie = self._cookie(app.cookie_name)
        if app.authorized(header, query_token, cookie):
            app.limiter.succeeded(client)
            if query_token is not None:
                self._redirect_without_token(query)
                return False
            return True
        app.rejected("unauthorized")
        extra = {"WWW-Authenticate": 'Bearer realm="sonify"'}
        offered = query_token is not None or cookie is not None or bool(header)
        if offered:
            locked = app.limiter.failed(client)
            app.auth_log.warning("unauthorized", "health server: a wrong token from %s%s",
                                 client, f"; refused for {app.limiter.lockout_s:g} s"
                                 if locked else "")
        if cookie is not None:  # a stale cookie (the token changed): stop the browser sending it
            extra["Set-Cookie"] = f"{app.cookie_name}=; Path=/; Max-Age=0; HttpOnly; " \
                                  "SameSite=Strict"
        self._send(401, _dumps({"ok": False, "error": "a valid token is required: send "
                                "'Authorization: Bearer TOKEN', or open /?token=TOKEN once in "
                                "a browser"}), "application/json", extra)
        return False

    def _cookie(self, name: str) -> str | None:
        raw = self.headers.get("Cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel is not None else None

    def _redirect_without_token(self, query: dict[str, list[str]]) -> None:
        app = self.server.app
        rest = {k: v for k, v in query.items() if k != "token"}
        location = urlsplit(self.path).path or "/"
        if rest:
            location += "?" + urlencode(rest, doseq=True)
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Set-Cookie", f"{app.cookie_name}={app.cookie_value}; Path=/; "
                                       f"Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _call(self, route: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, fn()
        except Exception as exc:
            self.server.app.errors.error(route, "health server: %s failed: %r", route, exc)
            self._error(500, f"{route} failed: {type(exc).__name__}: {exc}")
            return False, None

    # -- routes -------------------------------------------------------------------------------

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if not self._guard(query):
            return
        app = self.server.app
        path = parts.path
        if path in ("/", "/index.html"):
            self._send(200, PAGE_HTML.encode(), "text/html; charset=utf-8", {
                "Content-Security-Policy": _PAGE_CSP, "X-Frame-Options": "DENY"})
        elif path in ASSETS:
            body, content_type = ASSETS[path]
            self._send(200, body, content_type)
        elif path == "/api/stream":
            self._stream()
        elif path == "/health":
            ok, report = self._call("health", app.health)
            if ok:
                healthy = bool(report.get("ok", True)) if isinstance(report, Mapping) else True
                self._json(200 if healthy else 503, report)
        elif path == "/metrics":
            if app.metrics is None:
                self._error(404, "metrics are not enabled")
                return
            ok, text = self._call("metrics", app.metrics.render)
            if ok:
                self._send(200, text, METRICS_CONTENT_TYPE)
        elif path == "/api/state":
            ok, state = self._call("state", app.state)
            if ok:
                self._json(200, state)
        elif path == "/api/scenes":
            ok, scenes = self._call("scenes", app.scenes)
            if ok:
                self._json(200, list(scenes))
        elif path == "/favicon.ico":  # browsers ask; an empty answer keeps their console clean
            self._empty(204)
        elif path == "/thumbnail.jpg":
            if app.thumbnail is None:
                self._error(404, "no thumbnail source")
                return
            ok, jpeg = self._call("thumbnail", app.thumbnail)
            if not ok:
                return
            if not jpeg:
                self._empty(204)
            else:
                self._send(200, bytes(jpeg), "image/jpeg")
        else:
            self._error(404, f"no such page: {path}")

    def _stream(self) -> None:
        """Server-sent events until the client leaves or the server stops (``stream``)."""
        push = self.server.app.push
        if not push.claim():
            self._send(503, _dumps({"ok": False, "error": f"{push.max_clients} state streams "
                                    "are open already: try again shortly"}),
                       "application/json", {"Retry-After": "1"})
            return
        try:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Accel-Buffering", "no")  # a proxy in front must not buffer it
            self.end_headers()

            def write(data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()

            push.serve(write)
        finally:
            push.release()

    def do_POST(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if not self._guard(parse_qs(parts.query, keep_blank_values=True)):
            return
        app = self.server.app
        if parts.path != "/api/command":
            self._error(404, f"no such endpoint: {parts.path}")
            return
        origin = self.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != self.headers.get("Host"):
            app.rejected("forbidden_origin")
            self._error(403, f"commands from another site ({origin}) are refused")
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            app.rejected("malformed")
            self._error(415, "send the command as Content-Type: application/json")
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            app.rejected("malformed")
            self._error(400 if length < 0 else 413,
                        f"a command needs a Content-Length of at most {MAX_BODY_BYTES} bytes")
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            app.rejected("malformed")
            self._error(400, f"the body is not JSON: {exc}")
            return
        # a refused command comes back as a value (a 400), a failing callback raises (a 500)
        ok, result = self._call("command", lambda: _run_command_checked(app, payload))
        if not ok:
            return
        if isinstance(result, CommandError):
            app.rejected(result.reason)
            self._error(400, str(result), reason=result.reason)
            return
        name, arg = to_json(result)
        self._json(200, {"ok": True, "name": name, "arg": arg})


def _run_command_checked(app: HealthServer, payload: object) -> Command | CommandError:
    try:
        return app.run_command(payload)
    except CommandError as exc:
        return exc


# the page loads only its own script and style: nothing inline, nothing from elsewhere
_PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
             "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
