"""mDNS/DNS-SD announcement of the OSCQuery server, so show-control tools find sonify by itself.

Chataigne, ossia score, VDMX, TouchOSC and Open Stage Control browse the local network for
``_oscjson._tcp.local.`` (the OSCQuery proposal's service type); the OSC control port is
announced too, as ``_osc._udp.local.``, for tools that only send OSC. Both carry the same
instance name (``sonify on <host>``; a second sonify on the network becomes ``... (2)``) and
point to the addresses the servers are bound to, announced on those interfaces only: bound to
127.0.0.1 (the default) the announcement stays on this machine's loopback, so only tools on
this machine see it; bound to 0.0.0.0 (``[control] host``), every interface's addresses are
announced on every interface. The python-zeroconf package (``zeroconf``) does the work.

Registering probes the network for a name clash first (about 1.5 s, both services side by
side), so it runs on its own thread and ``start()`` returns at once. ``stop()`` withdraws what
is registered (the "goodbye" packets that make browsers drop it at once; a registration still
probing is abandoned) and closes the sockets. A network without
multicast does not stop the show: the failure is logged once and OSCQuery goes on, reachable
by its address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import threading
from typing import TYPE_CHECKING

from sonify.util.net import is_loopback

if TYPE_CHECKING:
    from zeroconf import ServiceInfo, Zeroconf

logger = logging.getLogger(__name__)

OSCQUERY_TYPE = "_oscjson._tcp.local."
OSC_TYPE = "_osc._udp.local."
REGISTER_TIMEOUT_S = 10.0  # probing takes about 1.5 s; a registration longer than this failed


def short_host_name() -> str:
    """This machine's host name as a DNS label (``studio-pc``), or ``sonify`` when it has none."""
    label = socket.gethostname().split(".", 1)[0].lower()
    label = re.sub(r"[^a-z0-9-]+", "-", label).strip("-")
    return label[:40] or "sonify"


def announce_addresses(host: str) -> tuple[list[str], bool]:
    """(the addresses to announce, whether to announce on every interface) for a bind host."""
    if is_loopback(host):
        return (["::1"] if ":" in host else ["127.0.0.1"]), False
    name = host.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:  # a host name: announce what it resolves to
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM)
        return sorted({str(info[4][0]) for info in infos}), False
    if ip.is_unspecified:  # every interface: 0.0.0.0 its IPv4 addresses, :: all of them
        import ifaddr  # zeroconf's own dependency, which lists the interfaces

        found = {str(a.ip if a.is_IPv4 else a.ip[0]) for adapter in ifaddr.get_adapters()
                 for a in adapter.ips if a.is_IPv4 or ip.version == 6}
        usable = (a for a in found if not ipaddress.ip_address(a).is_link_local)  # no scope
        return sorted(usable), True
    return [str(ip)], False


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end (in its loop)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


class Announcer:
    """Announces ``_oscjson._tcp`` (TCP ``oscquery_port``) and ``_osc._udp`` (UDP ``osc_port``)
    for the servers bound to ``host`` while started (see the module docstring)."""

    name = "OSCQuery announcement"

    def __init__(self, *, host: str, oscquery_port: int, osc_port: int,
                 instance: str | None = None) -> None:
        self.host = host
        self.oscquery_port = oscquery_port
        self.osc_port = osc_port
        self.instance = instance or f"sonify on {short_host_name()}"
        self._zeroconf: Zeroconf | None = None
        self._infos: list[ServiceInfo] = []
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None  # the registration, in zeroconf's loop
        self._lock = threading.Lock()
        self._stopping = False
        self.registered = threading.Event()  # set once both services are announced
        self.names: list[str] = []  # the service names as announced (after any renaming)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("announcement already started")
        self._thread = threading.Thread(target=self._register, name="oscquery-mdns",
                                        daemon=True)
        self._thread.start()

    def _register(self) -> None:
        try:
            from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, Zeroconf

            addresses, everywhere = announce_addresses(self.host)
            v6 = any(":" in a for a in addresses)
            v4 = any(":" not in a for a in addresses)
            version = IPVersion.All if v4 and v6 else IPVersion.V6Only if v6 else IPVersion.V4Only
            zc = Zeroconf(interfaces=InterfaceChoice.All if everywhere else addresses,
                          ip_version=version)
            with self._lock:
                if self._stopping:
                    zc.close()
                    return
                self._zeroconf = zc
            server = f"sonify-{short_host_name()}.local."
            infos = [ServiceInfo(type_, f"{self.instance}.{type_}", port=port, server=server,
                                 parsed_addresses=addresses, properties={})
                     for type_, port in ((OSCQUERY_TYPE, self.oscquery_port),
                                         (OSC_TYPE, self.osc_port))]

            async def register_both() -> None:  # probed side by side: half the time
                self._task = asyncio.current_task()
                broadcasts = await asyncio.gather(*(
                    zc.async_register_service(info, allow_name_change=True) for info in infos))
                await asyncio.gather(*broadcasts)

            assert zc.loop is not None
            asyncio.run_coroutine_threadsafe(register_both(), zc.loop).result(
                REGISTER_TIMEOUT_S)
            with self._lock:
                if self._stopping:
                    return  # stop() has withdrawn (or is withdrawing) what is registered
                self._infos = infos
                self.names = [info.name for info in infos]
            self.registered.set()
            logger.info("OSCQuery announced over mDNS as %r (%s on %s)", self.instance,
                        OSCQUERY_TYPE, ", ".join(addresses))
        except Exception as exc:  # no multicast here, a bad interface...: OSCQuery goes on
            if not self._stopping:
                logger.warning("OSCQuery: no mDNS announcement (%s: %s); clients can still "
                               "be given its address and port by hand", type(exc).__name__,
                               exc)

    def stop(self) -> None:
        """Withdraw the services (goodbye packets) and close; safe to call twice. A
        registration still probing is abandoned, not waited for."""
        with self._lock:
            self._stopping = True
            zc = self._zeroconf
            self._zeroconf, self._infos = None, []
        self._thread = None
        if zc is None:
            return
        try:
            task = self._task
            if task is not None and zc.loop is not None and not task.done():
                asyncio.run_coroutine_threadsafe(_cancelled(task), zc.loop).result(1.0)
            zc.unregister_all_services()  # one round of goodbyes for what is registered
        except Exception as exc:
            logger.warning("OSCQuery: withdrawing the mDNS announcement failed: %s", exc)
        finally:
            zc.close()
        self.registered.clear()
