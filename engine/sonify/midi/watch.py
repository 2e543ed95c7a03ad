"""Watching a MIDI system for ``sonify.midi.ports``: the JACK server going away and coming back,
xruns, stalls, and whether something listens on a virtual port; the ALSA sequencer's device.

Size (about 515 lines): most of it is the measured account below and the ctypes bindings it
justifies; the watch classes themselves are short.

What python-rtmidi and JACK do when the JACK server dies
========================================================
Measured here with python-rtmidi 1.5.8 (RtMidi 6, the wheel's own libjack 1.9.22), jackd 1.9.21
with the dummy driver, jackd stopped by SIGINT and by SIGKILL (no difference), and read in
RtMidi's ``MidiOutJack`` and jack2's ``JackLibGlobals``:

- Nothing raises, nothing exits. libjack prints three lines per client on stderr from its own
  thread ("Cannot read socket fd = 5 err = Success", "CheckRes error", "JackSocketClientChannel
  read fail") and "Server is not running" on later calls. rtmidi sets no shutdown callback, and
  its error callback is not called.
- The old client answers from the dead server's graph, which stays mapped: ``get_ports()``
  still lists the ports that were there (even a destination whose program has quit since) and
  ``is_port_open()`` stays True, also after a new server with the same name has started. So the
  port-list check that notices a vanished port never notices a vanished server.
- ``send_message`` never raises: it writes into rtmidi's 16 KB ring buffer, which only JACK's
  process thread empties. With the server gone (or stalled) the ring fills after 2339 three-byte
  messages, then ``MidiOutJack::sendMessage`` waits for room with ``sched_yield()``, and
  python-rtmidi calls it holding the GIL: the whole process hangs for good.
- A message lost inside JACK is never reported: when ``jack_midi_event_reserve`` fails in
  rtmidi's process callback (the period's MIDI buffer is full, e.g. after an xrun) the event is
  discarded without a word (RtMidi PR #203). JACK's xrun callback is the only sign there is.
- The old client cannot be used again: it is tied to the old server's socket and graph. It must
  be deleted and a new ``MidiOut``/``MidiIn`` created once a server is back. Deleting it:
  ``MidiOut.close_port()`` waits 1 s for the dead process thread to drain the ring (RtMidi's
  ``sem_timedwait``) holding the GIL, then ``delete()`` is immediate; a ``MidiIn`` goes at once.
- It must be deleted *before* any other JACK client opens in the process: jack2 remembers that
  the server shut down, and the next ``jack_client_open`` (even one that fails because no server
  runs) first closes and frees every client still allocated, behind rtmidi's back; the rtmidi
  object then holds a dangling pointer (measured: ``get_ports()`` returns [], closing it kills
  the process with SIGSEGV). Hence one watch per process, and ``open_client`` refusing while
  an old client is left.
- Opening a client with no server running fails in 3-4 ms and prints five lines on stderr, so
  the music thread can look for the server once a second itself (with libjack's messages
  pointed at a C no-op meanwhile: no stderr at each look).
- libjack reports a shutdown only through ``jack_on_shutdown``, and rtmidi hides its
  ``jack_client_t``. So ``JackServerWatch`` opens a client of its own (no ports, named
  ``sonify-watch``) on the same libjack through ctypes: its shutdown callback marks the server
  gone (within a poll), its xrun callback counts xruns, ``jack_last_frame_time`` shows whether
  the server's process cycle still runs (guarding the ring above), and ``jack_port_connected``
  whether something listens on a virtual port. Those callbacks are ``sem_post`` on semaphores
  the polls read, not Python: libjack calls them from its own threads, and Python there would
  wait for the GIL, which a thread stuck in rtmidi's full ring holds (a deadlock).

Without that libjack (not found or not loadable) the watch is blind: a vanished server goes
unnoticed and the ring is not guarded, as before. jack2's shutdown flag is per process, not per
server: one process talks to one JACK server (``JACK_DEFAULT_SERVER``). A client JACK
zombifies while the server runs on is not noticed.

The ALSA sequencer is handled the same way with what can be seen of it: it is gone while
``/dev/snd/seq`` is missing; its clients are then deleted and made anew when it is back. (The
kernel does not unload the sequencer while clients hold it open, so this is for a device taken
away, e.g. from a container; it cannot be tested on a machine without one.)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sonify.midi.ports import MidiPort

logger = logging.getLogger("sonify.midi.ports")

ALSA_SEQ_DEVICE = "/dev/snd/seq"
STALL_S = 1.0  # no JACK process cycle for this long: the server is stalled
LOOK_INTERVAL_S = 1.0  # while the server is gone, look for it this often
XRUN_WINDOW_S = 10.0  # xruns this recent make a problem
WATCH_CLIENT_NAME = "sonify-watch"
_JACK_NO_START_SERVER = 0x01  # jack_options_t JackNoStartServer
_JACK_PORT_IS_INPUT = 0x1
_JACK_PORT_IS_OUTPUT = 0x2
_JACK_MIDI_TYPE = b"8 bit raw midi"


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while probing: libjack prints "Cannot connect to server
    socket ..." straight to stderr when no JACK server runs, and we report that ourselves. Only
    used when libjack's message callbacks cannot be reached (see ``_libjack_quiet``): it
    silences every thread's stderr for the moment."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -- watching a MIDI system ---------------------------------------------------------------------

class SystemWatch:
    """Whether a MIDI system is there, shared by every ``MidiPort`` on it (one per process).

    ``generation`` counts the times it was found gone: a port whose client is of an older
    generation deletes it at its next ``poll()``; only when none is left does the watch look for
    the system again (``LOOK_INTERVAL_S``), and ports make new clients once it is back. The lock
    guards the watch's own state only: the watch never calls into a port or its owner, so an
    owner may call it while holding its own lock.
    """

    system = "MIDI system"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0
        self.gone = False
        self.gone_since: float | None = None
        self._ports: weakref.WeakSet[MidiPort] = weakref.WeakSet()
        self._next_look = 0.0

    def attach(self, port: MidiPort) -> None:
        with self._lock:
            self._ports.add(port)

    def detach(self, port: MidiPort) -> None:
        with self._lock:
            self._ports.discard(port)

    def check(self, force: bool = False) -> None:
        """Notice the system going away, and look for it while it is gone (at most every
        ``LOOK_INTERVAL_S``, or now with ``force``). Cheap; called by every port's poll."""
        with self._lock:
            now = time.monotonic()
            if force:
                self._next_look = now
            self._check(now)

    def _check(self, now: float) -> None:  # noqa: B027 (a system that is always there)
        """Under the lock."""

    def _stale_clients(self) -> bool:
        """Whether a port still holds a client of a gone generation (under the lock)."""
        return any(p.midi is not None and p.generation != self.generation
                   for p in list(self._ports))

    def _mark_gone(self, now: float, why: str) -> None:
        self.generation += 1
        self.gone = True
        self.gone_since = now
        self._next_look = now
        logger.warning("the %s is gone (%s): MIDI through it is dropped until it returns",
                       self.system, why)

    def _mark_back(self, now: float) -> None:
        logger.info("the %s is back after %.1f s", self.system, now - (self.gone_since or now))
        self.gone = False
        self.gone_since = None

    def problem(self) -> str | None:
        """Why MIDI through this system does not get through now, or None."""
        return f"the {self.system} is gone; waiting for it to return" if self.gone else None

    def frame(self) -> int | None:
        """The system's current process-cycle frame, where it has one (JACK)."""
        return None

    def listeners(self, port_name: str) -> int | None:
        """How many connections our port ``port_name`` has, where that can be seen."""
        return None

    def port_names(self, outputs: bool) -> set[str] | None:
        """The MIDI ports there are (output ports, else input ports), where that can be seen
        apart from rtmidi."""
        return None


class AlsaSequencerWatch(SystemWatch):
    """The ALSA sequencer is there while its device is (see the module docstring)."""

    system = "ALSA sequencer"

    def _check(self, now: float) -> None:
        present = os.path.exists(ALSA_SEQ_DEVICE)
        if not self.gone and not present:
            self._mark_gone(now, f"{ALSA_SEQ_DEVICE} is missing")
        elif (self.gone and present and now >= self._next_look
              and not self._stale_clients()):
            self._mark_back(now)


# libjack calls back from its own threads, its real-time ones included. Python there would
# wait for the GIL, and a thread spinning in rtmidi's send (a full ring: see above) holds it
# while it waits for exactly those threads: a deadlock. (With Python callbacks here, a test
# that floods a JACK port hung once, spinning.) So the callbacks are C functions: ``sem_post``
# on a semaphore of ours (shutdown, xruns: the polls read it), and ``strlen`` for messages
# (it reads the message and does nothing: a no-op of a fitting shape).
_LIBC = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None


def _c_function(name: str) -> int | None:
    try:
        return ctypes.cast(getattr(_LIBC, name), ctypes.c_void_p).value
    except AttributeError:  # no libc here (Windows), or not this function
        return None


class _Semaphore:
    """A POSIX semaphore libjack posts (``POST`` called with ``pointer``) and we read."""

    POST = _c_function("sem_post")

    def __init__(self) -> None:
        if _LIBC is None or self.POST is None:
            raise OSError("no POSIX semaphores here")
        self._sem = (ctypes.c_long * 8)()  # a sem_t (32 bytes on 64-bit Linux), with room
        if _LIBC.sem_init(self._sem, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "sem_init failed")
        self.pointer = ctypes.addressof(self._sem)

    def take_all(self) -> int:
        """How many posts there were since the last call."""
        assert _LIBC is not None
        n = 0
        while _LIBC.sem_trywait(self._sem) == 0:
            n += 1
        return n


_NO_OP_MESSAGE = _c_function("strlen")
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: list[tuple[Any, int | None]] = []


@contextlib.contextmanager
def _libjack_quiet(lib: Any | None) -> Iterator[None]:
    """libjack's error and info messages (on stderr by default) dropped for the moment: its
    message callbacks point at the C no-op meanwhile. Without that libjack, fd 2 is silenced."""
    global _quiet_depth
    try:
        cells = [ctypes.c_void_p.in_dll(lib, var)
                 for var in ("jack_error_callback", "jack_info_callback")] if lib else []
    except ValueError:
        cells = []
    if not cells or _NO_OP_MESSAGE is None:
        with quiet_stderr():
            yield
        return
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved[:] = [(cell, cell.value) for cell in cells]
            for cell in cells:
                cell.value = _NO_OP_MESSAGE
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for cell, value in _quiet_saved:
                    cell.value = value


def _libjack_path() -> str | None:
    """The libjack python-rtmidi runs on: the one mapped into this process (its wheel brings its
    own copy), else the system's."""
    found: set[str] = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and "/libjack" in fields[5] and ".so" in fields[5]:
                    found.add(fields[5].strip())
    except OSError:
        pass
    if found:
        return sorted(found, key=lambda p: ("rtmidi" not in p, p))[0]
    return ctypes.util.find_library("jack")


def _load_libjack() -> Any | None:
    path = _libjack_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        lib.jack_client_open.restype = vp
        lib.jack_client_open.argtypes = [cp, ci, ctypes.POINTER(ci)]
        lib.jack_client_close.argtypes = [vp]
        lib.jack_client_close.restype = ci
        lib.jack_activate.argtypes = [vp]
        lib.jack_activate.restype = ci
        lib.jack_on_shutdown.argtypes = [vp, vp, vp]  # (client, function, its argument)
        lib.jack_on_shutdown.restype = None
        lib.jack_set_xrun_callback.argtypes = [vp, vp, vp]
        lib.jack_set_xrun_callback.restype = ci
        lib.jack_last_frame_time.argtypes = [vp]
        lib.jack_last_frame_time.restype = ctypes.c_uint32
        lib.jack_port_by_name.argtypes = [vp, cp]
        lib.jack_port_by_name.restype = vp
        lib.jack_port_connected.argtypes = [vp]
        lib.jack_port_connected.restype = ci
        lib.jack_get_ports.argtypes = [vp, cp, cp, ctypes.c_ulong]
        lib.jack_get_ports.restype = ctypes.POINTER(cp)
        lib.jack_free.argtypes = [vp]
        lib.jack_free.restype = None
    except (OSError, AttributeError) as exc:
        logger.info("cannot use libjack (%s) to watch the JACK server: %s", path, exc)
        return None
    return lib


class JackServerWatch(SystemWatch):
    """The JACK server, seen through a watch client of our own (see the module docstring)."""

    system = "JACK server"

    def __init__(self, lib: Any | None) -> None:
        super().__init__()
        self._probe: int | None = None  # our watch client (jack_client_t *)
        self.xrun_total = 0
        self._xruns: deque[tuple[float, int]] = deque(maxlen=256)  # (check time, new xruns)
        self._frame: int | None = None  # the process cycle's frame at the last check
        self._frame_moved_at = 0.0  # when a check last saw it move
        self._checked_at = 0.0
        self._exiting = False
        if lib is None:
            logger.info("libjack not found: a JACK server that quits or restarts will not be "
                        "noticed")
        try:
            self._shutdown = _Semaphore()  # posted by libjack when the server shuts down
            self._xrun = _Semaphore()  # posted by libjack at each xrun
        except OSError as exc:
            if lib is not None:
                logger.info("cannot watch the JACK server: %s", exc)
            lib = None
        self._lib = lib
        atexit.register(self._at_exit)

    @property
    def watching(self) -> bool:
        return self._lib is not None

    def quiet(self) -> contextlib.AbstractContextManager[None]:
        """libjack's messages dropped while in it (see ``_libjack_quiet``)."""
        return _libjack_quiet(self._lib)

    def _at_exit(self) -> None:
        if not self._lock.acquire(timeout=1.0):  # a daemon thread stuck in libjack: leave it
            return
        try:
            self._exiting = True
            self._close_probe()
        finally:
            self._lock.release()

    # -- ports ------------------------------------------------------------------------------

    def attach(self, port: MidiPort) -> None:
        with self._lock:
            self._ports.add(port)
            if self._probe is None and not self.gone:
                self._open_probe(time.monotonic())

    def detach(self, port: MidiPort) -> None:
        with self._lock:
            self._ports.discard(port)
            if not self._ports and not self.gone:
                self._close_probe()

    # -- the watch client -------------------------------------------------------------------

    def _open_probe(self, now: float) -> bool:
        lib = self._lib
        if lib is None or self._exiting:
            return False
        status = ctypes.c_int(0)
        with self.quiet():  # no server: five lines on stderr otherwise, every look
            client = lib.jack_client_open(WATCH_CLIENT_NAME.encode(), _JACK_NO_START_SERVER,
                                          ctypes.byref(status))
        if not client:
            return False
        self._shutdown.take_all()
        lib.jack_on_shutdown(client, _Semaphore.POST, self._shutdown.pointer)
        xruns = lib.jack_set_xrun_callback(client, _Semaphore.POST, self._xrun.pointer)
        if xruns != 0 or lib.jack_activate(client) != 0:
            logger.debug("JACK watch client: xruns will not be counted")
        self._probe = client
        self._frame = None
        self._frame_moved_at = self._checked_at = now
        return True

    def _close_probe(self) -> None:
        client, self._probe = self._probe, None
        if client is not None and self._lib is not None:
            with self.quiet():
                self._lib.jack_client_close(client)

    def _check(self, now: float) -> None:
        lib = self._lib
        if lib is None:
            return
        xruns = self._xrun.take_all()
        if xruns:
            self.xrun_total += xruns
            self._xruns.append((now, xruns))
        if not self.gone:
            if self._shutdown.take_all():
                self._close_probe()
                self._mark_gone(now, "it shut down")
            elif self._probe is None:
                if self._ports and now >= self._next_look:  # the last try failed: again
                    self._next_look = now + LOOK_INTERVAL_S
                    self._open_probe(now)
            else:
                frame = lib.jack_last_frame_time(self._probe)
                if frame != self._frame:
                    self._frame, self._frame_moved_at = frame, now
                self._checked_at = now
        if self.gone and now >= self._next_look and not self._stale_clients():
            self._next_look = now + LOOK_INTERVAL_S
            if self._open_probe(now):
                self._mark_back(now)

    # -- what it sees -----------------------------------------------------------------------

    def stalled_s(self) -> float:
        """How long the process cycle had not moved at the last check (0 when unknown)."""
        if self.gone or self._probe is None or self._frame is None:
            return 0.0
        return max(0.0, self._checked_at - self._frame_moved_at)

    def recent_xruns(self, now: float | None = None) -> int:
        """Xruns seen by the checks of about the last ``XRUN_WINDOW_S``."""
        now = time.monotonic() if now is None else now
        return sum(n for t, n in list(self._xruns) if now - t <= XRUN_WINDOW_S)

    def problem(self) -> str | None:
        if self.gone:
            return "the JACK server is gone; waiting for it to return"
        stalled = self.stalled_s()
        if stalled >= STALL_S:
            return (f"the JACK server has not run a process cycle for {stalled:.0f} s "
                    f"(stalled): MIDI does not get through")
        xruns = self.recent_xruns()
        if xruns:
            return (f"JACK reported {xruns} xrun(s) in the last {XRUN_WINDOW_S:.0f} s: MIDI may "
                    f"have been late or lost")
        return None

    def frame(self) -> int | None:
        with self._lock:
            if self._probe is None or self._lib is None:
                return None
            return int(self._lib.jack_last_frame_time(self._probe))

    def listeners(self, port_name: str) -> int | None:
        with self._lock:
            if self._probe is None or self._lib is None:
                return None
            port = self._lib.jack_port_by_name(self._probe, port_name.encode())
            if not port:
                return None
            return int(self._lib.jack_port_connected(port))

    def port_names(self, outputs: bool) -> set[str] | None:
        with self._lock:
            if self._probe is None or self._lib is None:
                return None
            flags = _JACK_PORT_IS_OUTPUT if outputs else _JACK_PORT_IS_INPUT
            names = self._lib.jack_get_ports(self._probe, None, _JACK_MIDI_TYPE, flags)
            if not names:
                return set()
            try:
                found: set[str] = set()
                i = 0
                while names[i] is not None:
                    found.add(names[i].decode("utf-8", "replace"))
                    i += 1
                return found
            finally:
                self._lib.jack_free(ctypes.cast(names, ctypes.c_void_p))


_watches: dict[str, SystemWatch] = {}
_watches_lock = threading.Lock()


def system_watch(api: str) -> SystemWatch | None:
    """The process's watch of MIDI system ``api`` ("jack", "alsa" on Linux), made on first use;
    None for systems that do not go away (CoreMIDI, Windows MM)."""
    with _watches_lock:
        watch = _watches.get(api)
        if watch is None:
            if api == "jack":
                watch = JackServerWatch(_load_libjack())
            elif api == "alsa" and sys.platform.startswith("linux"):
                watch = AlsaSequencerWatch()
            else:
                return None
            _watches[api] = watch
        return watch
