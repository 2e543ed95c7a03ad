"""The systemd notify protocol (sd_notify(3)), and the watchdog decision that feeds it.

Under ``Type=notify`` systemd passes the path of a datagram socket in ``NOTIFY_SOCKET``; the
service sends it newline-separated ``KEY=VALUE`` lines, one message per datagram:

- ``READY=1``: start-up is finished (systemd orders ``After=`` units and ends the start timeout);
- ``STATUS=...``: one free-text line ``systemctl status`` shows;
- ``WATCHDOG=1``: "still alive"; with ``WatchdogSec=`` set, systemd passes the interval in
  ``WATCHDOG_USEC`` and kills the service (SIGABRT by default) when no ping came in time;
- ``STOPPING=1``: shutting down; ``EXTEND_TIMEOUT_USEC=...``: more time for the current phase.

A path starting with ``@`` names a socket in Linux's abstract namespace (the ``@`` stands for a
leading NUL byte). Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so ``sonify
run`` behaves the same in a terminal. Sending never raises: a lost notification must not stop
the music; it is logged once.

Why not a library: the protocol is a dozen lines over a standard socket and has been stable
since systemd 209. ``systemd-python`` (the maintained binding) builds against libsystemd's C
headers (no wheels, an apt package outside the venv); ``sdnotify`` is unmaintained, swallows
every error and does not read ``WATCHDOG_USEC``. Doing it here keeps the box's venv pure-pip and
the bytes testable against a real socket (tests/service/test_notify.py).

``Watchdog`` decides *when* to ping: every half interval, and only while the capture loop and
the dispatch loop both beat (see its docstring for what counts as a beat and why).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping

logger = logging.getLogger(__name__)

DEFAULT_LIMITS_S: dict[str, float] = {
    # The capture loop reads a frame (or, with the camera lost, tries to reopen it) at least
    # every few seconds: OpenCV's V4L2 read gives up after 10 s, the retry back-off tops out at
    # 5 s. 30 s without a beat means the thread is stuck (a wedged USB camera, a hung read).
    "capture": 30.0,
    # The dispatch loop wakes at least every 0.5 s even with nothing to send.
    "dispatch": 5.0,
}


def socket_address(text: str) -> str:
    """The AF_UNIX address for a ``NOTIFY_SOCKET`` value: a filesystem path as it is, ``@name``
    as ``"\\0name"`` (the abstract namespace). ValueError for anything else (systemd 254's
    ``vsock:`` addresses are not supported)."""
    if text.startswith("@") and len(text) > 1:
        return "\0" + text[1:]
    if text.startswith("/"):
        return text
    raise ValueError(f"NOTIFY_SOCKET={text!r} is neither an absolute path nor '@abstract-name'")


def watchdog_interval_s(environ: Mapping[str, str] | None = None,
                        pid: int | None = None) -> float | None:
    """The watchdog interval systemd expects pings within (``WATCHDOG_USEC``, in seconds), or
    None when the watchdog is off or meant for another process (``WATCHDOG_PID``, as
    sd_watchdog_enabled(3) checks)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "").strip()
    if not usec:
        return None
    wd_pid = env.get("WATCHDOG_PID", "").strip()
    if wd_pid:
        if not wd_pid.isdigit():
            logger.warning("ignoring WATCHDOG_PID=%r: not a process id", wd_pid)
            return None
        if int(wd_pid) != (os.getpid() if pid is None else pid):
            return None
    if not usec.isdigit() or int(usec) == 0:
        logger.warning("ignoring WATCHDOG_USEC=%r: not a positive number of microseconds", usec)
        return None
    return int(usec) / 1e6


def _one_line(text: str) -> str:
    """A value fit for one ``KEY=VALUE`` line: a newline would start a new assignment."""
    return " ".join(text.split())


class Notifier:
    """Sends sd_notify messages to ``address`` (default: ``$NOTIFY_SOCKET``); a no-op when there
    is none. Thread-safe; every method returns whether the message went out and never raises.
    """

    def __init__(self, address: str | None = None, *,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "") if address is None else address
        self.address: str | None = None
        if raw:
            try:
                self.address = socket_address(raw)
            except ValueError as exc:
                logger.warning("%s; systemd notifications are off", exc)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when running under a notify-aware supervisor (``NOTIFY_SOCKET`` is set)."""
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram (what sd_notify does)."""
        if self.address is None or not assignments:
            return False
        data = "\n".join(assignments).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.sendto(data, self.address)
            except OSError as exc:
                if not self._failed:  # once: a supervisor that went away is not news per ping
                    logger.warning("cannot notify systemd at %r: %s", self.address, exc)
                self._failed = True
                return False
        if self._failed:
            logger.info("systemd notifications work again")
            self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up finished (send once: the first frame analysed and the dispatcher running)."""
        extra = () if status is None else (f"STATUS={_one_line(status)}",)
        return self.notify("READY=1", *extra)

    def status(self, text: str) -> bool:
        """The line ``systemctl status sonify`` shows."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Ping the watchdog: call only when ``Watchdog.poll`` says so."""
        return self.notify("WATCHDOG=1")

    def watchdog_trigger(self) -> bool:
        """Ask systemd to act now as if the watchdog had expired (restart the service)."""
        return self.notify("WATCHDOG=trigger")

    def stopping(self, status: str | None = None) -> bool:
        extra = () if status is None else (f"STATUS={_one_line(status)}",)
        return self.notify("STOPPING=1", *extra)

    def extend_timeout(self, seconds: float) -> bool:
        """More time for the current phase (start-up or stop) before systemd gives up."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1e6))}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def status_text(*, scene: str, fps: float, mood: str, notes_per_s: float | None = None,
                state: str = "playing") -> str:
    """The STATUS line, e.g. ``playing | scene gallery | 29.8 fps | mood calm | 2.5 notes/s``;
    ``state`` says ``playing``, ``closed, opens Mon 10:00``, ``camera lost, idle`` ..."""
    parts = [state, f"scene {scene}", f"{fps:.1f} fps", f"mood {mood}"]
    if notes_per_s is not None:
        parts.append(f"{notes_per_s:.1f} notes/s")
    return " | ".join(parts)


class Watchdog:
    """When to send ``WATCHDOG=1``: every ``interval_s / 2`` while every loop it watches beats.

    A pure decision on timestamps the runtime reports, from one monotonic clock (the engine's
    ``time.perf_counter``): ``beat(kind, t)`` from each watched loop, ``poll(now)`` from the
    thread that pings. Nothing here reads a clock, so tests step time by hand.

    What counts as "frames flow": the capture *loop's* beat, not the camera's frames. With the
    camera unplugged the engine fades to its idle behaviour and keeps retrying, and that is
    healthy: restarting would not bring the camera back, and a restart every minute would soon
    hit systemd's start limit and leave the box failed and silent for good, even after the
    cable is back. So the capture thread beats after every frame analysed *and* after every
    reconnection attempt; what stops the beats is a capture thread that is stuck (a hung driver
    read, a wedged USB device, an analysis that never returns), which a restart does cure.
    The dispatch loop beats every time it wakes (at least every 0.5 s with nothing to send), so
    silence outside opening hours is healthy too, and a dispatcher stuck in a blocking send is
    not. The thread that calls ``poll`` (the music loop) is watched by being the one that pings.

    ``interval_s`` None (no watchdog asked for): ``poll`` never pings, ``healthy`` still works
    (for the health page). A kind never beaten is unhealthy, so no ping goes out before start-up
    is done; systemd's watchdog only runs from READY=1 on (start-up is bounded by
    ``TimeoutStartSec=``).
    """

    def __init__(self, interval_s: float | None,
                 limits_s: Mapping[str, float] | None = None) -> None:
        if interval_s is not None and not interval_s > 0:
            raise ValueError(f"watchdog interval must be > 0 s, got {interval_s}")
        self.interval_s = interval_s
        self.limits_s = dict(DEFAULT_LIMITS_S if limits_s is None else limits_s)
        if not self.limits_s:
            raise ValueError("the watchdog needs at least one loop to watch")
        for kind, limit in self.limits_s.items():
            if not limit > 0:
                raise ValueError(f"watchdog limit for {kind!r} must be > 0 s, got {limit}")
        self._beats: dict[str, float] = {}
        self._last_ping: float | None = None
        self._unhealthy = False
        self.pings = 0

    @property
    def ping_every_s(self) -> float | None:
        return None if self.interval_s is None else self.interval_s / 2

    def beat(self, kind: str, t: float) -> None:
        """Loop ``kind`` was alive at ``t``. Any thread may call it (a float store is atomic)."""
        if kind not in self.limits_s:
            raise ValueError(f"unknown watchdog beat {kind!r}; watched: "
                             f"{', '.join(self.limits_s)}")
        self._beats[kind] = t

    def stale(self, now: float) -> list[str]:
        """Why the watched loops are not healthy at ``now`` (empty when they are)."""
        out = []
        for kind, limit in self.limits_s.items():
            t = self._beats.get(kind)
            if t is None:
                out.append(f"{kind} loop has not started")
            elif now - t > limit:
                out.append(f"{kind} loop silent for {now - t:.1f} s (limit {limit:g} s)")
        return out

    def healthy(self, now: float) -> bool:
        return not self.stale(now)

    def poll(self, now: float) -> bool:
        """True when a ``WATCHDOG=1`` should go out now (and counts it as sent)."""
        reasons = self.stale(now)
        if reasons:
            if not self._unhealthy and self._last_ping is not None:
                logger.error("watchdog: not pinging systemd (it will restart sonify): %s",
                             "; ".join(reasons))
            self._unhealthy = True
            return False
        recovered = self._unhealthy and self._last_ping is not None
        if recovered:
            logger.warning("watchdog: all loops beat again; pinging resumes")
        self._unhealthy = False
        every = self.ping_every_s
        if every is None:
            return False
        # on recovery ping at once: the last ping may be nearly a whole interval old
        if not recovered and self._last_ping is not None and now - self._last_ping < every:
            return False
        self._last_ping = now
        self.pings += 1
        return True
