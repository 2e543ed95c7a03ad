"""Small network helpers shared by the servers and the config (no heavy imports here)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for "", 0.0.0.0 and everything else."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# -- allow lists -------------------------------------------------------------------------------

def parse_allow_entry(entry: str) -> Network:
    """One allow-list entry: an IP address (``192.168.1.20``, ``::1``) or a network in CIDR
    form (``192.168.1.0/24``, ``fd00::/8``). ValueError saying what is expected otherwise.

    Host names are refused: a name is only as trustworthy as the DNS that answers it, and at
    boot it may not resolve at all. A network with host bits set (``192.168.1.5/24``) is refused
    too, as it is most likely a typo for an address or for ``192.168.1.0/24``.
    """
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not an IP address or network: write it as a string, "
                         "e.g. \"192.168.1.20\" or \"192.168.1.0/24\"")
    text = entry.strip()
    try:
        if "/" in text:
            return ipaddress.ip_network(text, strict=True)
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        if "/" in text and "host bits set" in str(exc):
            net = ipaddress.ip_network(text, strict=False)
            raise ValueError(f"{entry!r} has host bits set: write the network as {net} (or "
                             "the address alone, without /N)") from None
        raise ValueError(f"{entry!r} is not an IP address or network: give an address such "
                         "as 192.168.1.20 or a network such as 192.168.1.0/24 (host names are "
                         "not accepted)") from None
    return ipaddress.ip_network(address)


def parse_allow(entries: Iterable[str] | str | None) -> tuple[Network, ...] | None:
    """An allow list (see ``parse_allow_entry``); None stays None (everyone allowed)."""
    if entries is None:
        return None
    if isinstance(entries, str):
        entries = [entries]
    return tuple(parse_allow_entry(e) for e in entries)


def normal_address(host: str) -> Address | None:
    """The IP address of a peer as sockets report it: the IPv6 scope (``%eth0``) dropped and an
    IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) turned into IPv4; None when not an IP."""
    try:
        ip = ipaddress.ip_address(host.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_allowed(host: str, allow: Sequence[Network] | None) -> bool:
    """Whether the peer address ``host`` is in ``allow`` (None: everyone is)."""
    if allow is None:
        return True
    ip = normal_address(host)
    return ip is not None and any(ip.version == net.version and ip in net for net in allow)


# -- Host headers (DNS rebinding) --------------------------------------------------------------

def host_header_name(header: str) -> str:
    """The host part of an HTTP ``Host`` header: the port dropped, IPv6 brackets removed,
    lower case, a trailing dot dropped."""
    text = header.strip().lower()
    if text.startswith("["):
        name = text[1:text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        name = text.split(":", 1)[0]
    else:
        name = text  # a bare name, or an (invalid, unbracketed) IPv6 address
    return name.rstrip(".")


def own_host_names() -> set[str]:
    """This machine's names as a browser on the LAN may write them: the host name, its first
    label and ``NAME.local`` (mDNS). No DNS lookups (they can stall without a network)."""
    names: set[str] = set()
    hostname = socket.gethostname().lower().rstrip(".")
    if hostname:
        short = hostname.split(".", 1)[0]
        names |= {hostname, short, f"{short}.local"}
    return names


def host_header_allowed(header: str | None, bind_host: str,
                        extra_names: Iterable[str] = ()) -> bool:
    """Whether an HTTP request's ``Host`` header is one this server answers to, so that a web
    page that rebinds its own DNS name to this machine (DNS rebinding) cannot read it.

    A missing Host header (HTTP/1.0 clients) is allowed: browsers always send one. Bound to
    loopback, only a loopback name is allowed. Bound elsewhere: loopback names, any IP literal
    (a rebinding page is always reached through a name its author controls, never an IP
    address), the bound host itself, this machine's host names and ``extra_names``.
    """
    if header is None or not header.strip():
        return True
    name = host_header_name(header)
    if is_loopback(name):
        return True
    if is_loopback(bind_host):
        return False
    if normal_address(name) is not None:
        return True
    allowed = own_host_names() | {bind_host.strip().strip("[]").lower().rstrip(".")}
    allowed |= {n.lower().rstrip(".") for n in extra_names}
    return name in allowed


class BadHost(OSError):
    """The host of a listening address cannot be used (not an address, not resolvable)."""


def bind_udp(host: str, port: int, recv_buffer: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` with a ``recv_buffer``-byte receive
    buffer. No SO_REUSEADDR: two programs on one port would silently split the messages.
    ``BadHost`` when ``host`` cannot be used, ``OSError`` when the port cannot be bound (taken,
    not allowed); the caller words the error for its option."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        raise BadHost(str(exc)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
