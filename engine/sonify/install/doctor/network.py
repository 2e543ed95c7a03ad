"""Checks of the network: each OSC target (name lookups on a thread with a time limit), the
local control ports (free, or held by which process), and what the config exposes to other
machines."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sonify.config import Config, exposure_warnings, parse_host_port
from sonify.install.doctor.base import FAIL, OK, WARN, Check, _Context
from sonify.util.net import is_loopback

RESOLVE_TIMEOUT_S = 3.0  # a name lookup of an OSC target
OWNER_SCAN_S = 1.0  # looking for the process that holds a port

# Where the local control servers are configured: (section, key) candidates tried in order with
# getattr, since these settings are younger than this module; the default applies when none is
# there. A port of 0 means the server is off.
CONTROL_PORTS: tuple[tuple[str, str, tuple[tuple[str, str], ...], int, tuple[tuple[str, str], ...]],
                     ...] = (
    # name, protocol, port keys, default port, host keys
    ("control port", "udp", (("control", "port"), ("control", "osc_port")), 9000,
     (("control", "host"),)),
    ("http port", "tcp", (("http", "port"), ("health", "port"), ("control", "http_port")), 8765,
     (("http", "host"), ("health", "host"))),
    ("oscquery port", "tcp", (("control", "oscquery_port"),), 0, (("control", "host"),)),
)

DEFAULT_CONTROL_HOST = "127.0.0.1"


# -- OSC targets -------------------------------------------------------------------------------

def _check_osc(ctx: _Context) -> list[Check]:
    targets = ctx.config.osc.targets
    if not targets:
        return [Check("osc", OK, "no OSC targets ([osc] targets = [])")]
    return [_check_osc_target(ctx, t) for t in targets]


def _check_osc_target(ctx: _Context, target: str) -> Check:
    name = f"osc {target}"
    host, port = parse_host_port(target)
    try:
        addresses = _resolve(host, port, socket.SOCK_DGRAM)
    except OSError as exc:
        why = exc.strerror or str(exc)
        return Check(name, WARN, f"{host!r} does not resolve now ({why}): sonify runs anyway, "
                     "drops what would go there (counted) and retries the name in the "
                     "background until it resolves",
                     f"fix the name (`getent hosts {host}`; /etc/hosts or DNS), or use an IP "
                     f"address in [osc] targets in {ctx.where}; at boot a name may resolve only "
                     "once the network is up")
    shown = ", ".join(sorted({a for _, a in addresses}))
    if all(ipaddress.ip_address(a.split("%")[0]).is_loopback for _, a in addresses):
        listening = _udp_listening(port)
        if listening is None:
            listening = _bind_free(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", port) \
                is not None
        if listening:
            return Check(name, OK, f"something on this machine receives on UDP port {port}")
        return Check(name, WARN,
                     f"nothing on this machine listens on UDP port {port} now: messages go "
                     "nowhere until the receiver starts (sonify runs anyway)",
                     f"start the receiver on port {port} (SuperCollider's sclang listens on "
                     "57120, `oscdump " + str(port) + "` shows what arrives), or correct the port "
                     f"in [osc] targets in {ctx.where}")
    family, address = addresses[0]
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((address, port))  # UDP connect sends nothing: it only finds a route
    except OSError as exc:
        return Check(name, WARN, f"{host} ({shown}): no route from here ({exc.strerror})",
                     "check the network cable and address (`ip route get " + address + "`)")
    return Check(name, OK, f"{host} resolves to {shown}; UDP cannot prove that anything "
                 f"receives (check on that machine, e.g. `oscdump {port}`)")


def _resolve(host: str, port: int, kind: int) -> list[tuple[int, str]]:
    """(family, address) for ``host``; OSError when it does not resolve in time."""
    result: list[Any] = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=kind))
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=lookup, daemon=True, name="doctor-resolve")
    thread.start()
    thread.join(RESOLVE_TIMEOUT_S)
    if not result:
        raise OSError(errno.ETIMEDOUT, f"no answer within {RESOLVE_TIMEOUT_S:g} s")
    if isinstance(result[0], OSError):
        raise result[0]
    return [(info[0], str(info[4][0])) for info in result[0]]


def _proc_net(proto: str, port: int) -> list[tuple[str, int]] | None:
    """(local address, inode) of the sockets bound to ``port`` (UDP) or listening on it (TCP)
    from /proc/net; None where /proc/net cannot be read."""
    found: list[tuple[str, int]] = []
    readable = False
    for suffix in ("", "6"):
        try:
            lines = Path(f"/proc/net/{proto}{suffix}").read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            addr_hex, _, port_hex = parts[1].rpartition(":")
            if int(port_hex, 16) != port or (proto == "tcp" and parts[3] != "0A"):
                continue
            found.append((_hex_address(addr_hex), int(parts[9])))
    return found if readable else None


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    # /proc/net prints each 32-bit word in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _udp_listening(port: int) -> bool | None:
    """Whether a UDP socket on this machine would get datagrams sent to loopback ``port``."""
    sockets = _proc_net("udp", port)
    if sockets is None:
        return None
    return any(ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_unspecified
               or a.startswith("::ffff:127.") for a, _ in sockets)


def _socket_owner(inodes: Iterable[int]) -> str:
    """``pid N (command)`` of the process holding one of the socket ``inodes`` (readable
    processes only, within OWNER_SCAN_S), else ""."""
    wanted = {f"socket:[{i}]" for i in inodes}
    end = time.monotonic() + OWNER_SCAN_S
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return ""
    for pid in pids:
        if time.monotonic() > end:
            break
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            for fd in fds:
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                        cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                        return f"pid {pid} ({cmd if len(cmd) <= 80 else cmd[:77] + '...'})"
        except OSError:
            continue
    return ""


def _bind_free(family: int, kind: int, host: str, port: int) -> OSError | None:
    """None when ``(host, port)`` can be bound now (nobody holds it), else the error."""
    try:
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:  # as a server does: TIME_WAIT leftovers are fine
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        return exc
    return None


# -- control ports -----------------------------------------------------------------------------

def _setting(config: Config, keys: tuple[tuple[str, str], ...]) -> tuple[Any, str]:
    for section, key in keys:
        value = getattr(getattr(config, section, None), key, None)
        if value is not None:
            return value, f"[{section}] {key}"
    return None, ""


def _check_control_ports(ctx: _Context) -> list[Check]:
    checks = []
    for name, proto, port_keys, default, host_keys in CONTROL_PORTS:
        port, key = _setting(ctx.config, port_keys)
        if port is None:
            if not default:
                continue
            port, key = default, f"[{port_keys[0][0]}] {port_keys[0][1]}"
        host, _ = _setting(ctx.config, host_keys)
        host = str(host or DEFAULT_CONTROL_HOST)
        port = int(port)
        if port == 0:
            checks.append(Check(name, OK, f"off ({key} = 0)"))
            continue
        checks.append(_check_bind(ctx, name, proto, host, port, key))
    return checks


def _check_bind(ctx: _Context, name: str, proto: str, host: str, port: int, key: str) -> Check:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    where = f"{proto.upper()} {host}:{port}"
    try:
        family, address = _resolve(host, port, kind)[0]
    except OSError as exc:
        return Check(name, FAIL, f"{where}: the host does not resolve ({exc.strerror or exc})",
                     f"set the host for {key} in {ctx.where} to 127.0.0.1 or an address of "
                     "this machine")
    error = _bind_free(family, kind, address, port)
    if error is None:
        return Check(name, OK, f"{where} is free")
    if error.errno == errno.EADDRINUSE:
        sockets = _proc_net(proto, port) or []
        owner = _socket_owner(i for _, i in sockets)
        held = owner or "another program (a sonify already running, perhaps)"
        return Check(name, FAIL, f"{where} is in use, held by {held}",
                     f"stop that program (`ss -{proto[0]}lpn 'sport = :{port}'` names it; "
                     f"`systemctl stop sonify` for the service), or set {key} in {ctx.where} to "
                     "a free port (0 turns it off)")
    if error.errno == errno.EACCES:
        return Check(name, FAIL, f"{where}: permission denied (ports below 1024 need root)",
                     f"set {key} in {ctx.where} to a port of 1024 or more")
    return Check(name, FAIL, f"{where} cannot be bound: {error.strerror or error}",
                 f"set the host for {key} in {ctx.where} to 127.0.0.1 or an address of this "
                 "machine (`ip -brief address`)")


# -- exposure ----------------------------------------------------------------------------------

def _check_exposure(ctx: _Context) -> Check:
    """What other machines can reach: the control server and OSCQuery (which binds where the
    control server binds) and the health page."""
    c, h = ctx.config.control, ctx.config.http
    lines: list[str] = []
    if not c.port:
        lines.append("OSC control is off ([control] port = 0), and OSCQuery with it")
    else:
        query = (f"; OSCQuery (the read-only description of the controls) binds where it does, "
                 f"TCP {c.host}:{c.oscquery_port}" if c.oscquery_port else "; OSCQuery is off")
        if not c.exposed:
            lines.append(f"OSC control on UDP {c.host}:{c.port}: this machine only{query}")
        elif c.allow:
            lines.append(f"OSC control on UDP {c.host}:{c.port} is reachable from other "
                         f"machines; only senders in [control] allow are obeyed "
                         f"({', '.join(c.allow)}){query}")
        else:
            lines.append(f"OSC control on UDP {c.host}:{c.port} is reachable from other "
                         f"machines and obeys any of them (allow_any = true){query}")
    if not h.port:
        lines.append("the health page is off ([http] port = 0)")
    elif is_loopback(h.host):
        lines.append(f"the health page on TCP {h.host}:{h.port}: this machine only")
    else:
        lines.append(f"the health page on TCP {h.host}:{h.port} is reachable from other "
                     "machines, for requests that carry [http] token")
    warnings = exposure_warnings(ctx.config)
    if warnings:
        return Check("exposure", WARN, "\n".join([*warnings, *lines]),
                     f"in {ctx.where} list the machines that may control the show in [control] "
                     "allow (addresses or networks, e.g. [\"192.168.1.0/24\"]) and remove "
                     "allow_any, or set [control] host = \"127.0.0.1\"")
    return Check("exposure", OK, "\n".join(lines))
