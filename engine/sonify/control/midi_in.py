"""MIDI control input: knobs, program changes and keys of a MIDI controller as runtime commands.

Size (about 800 lines, over the 500 we aim for): it is one class, ``MidiControl``, whose reader
thread, port cycle (wait, connect, lose, reconnect) and MIDI learn share one lock and one
state; splitting it would spread those invariants over modules.

Like the OSC control server, this never touches runtime state: each message that means
something becomes one typed command (``sonify.commands``, checked by its ``check``) handed to
``command(cmd)``, the runtime's one command queue. The lookups ``params()`` ({name: (lo, hi)}
of the live scene) and ``scenes()`` (scene names) run on the MIDI reader thread, so hand over
cheap, thread-safe snapshots.

The port: a virtual input (``virtual=``, default ``sonify-control``; under JACK the port
``<client_name>:<virtual>`` that a controller is connected to) or an existing MIDI source chosen
by a case-insensitive name pattern (``port=``; an exact name wins, as for MIDI out). A pattern
that matches nothing is a MidiControlError listing the input ports there are, unless ``wait``:
then the reader thread looks for the port every ``poll_interval_s`` and connects when it
appears, and again after it went away and came back. A MIDI system that goes away (the JACK
server quits or is killed) is noticed by the same poll: the client is deleted, and once the
system is back a new one reopens the virtual port (the controller's patchbay connects it again)
or reconnects to the pattern's port; see ``sonify.midi.ports``.

What the messages do
====================

=====================  =============================================  ==============================
message                when                                           command
=====================  =============================================  ==============================
Control Change         bound to a scene parameter                     SetParam(name, value)
                       bound to "tempo"                               SetTempo(bpm)
                       bound to "master"                              SetMaster(level 0..1)
                       bound to "freeze" (value >= 64 is on)          Freeze(bool)
                       bound to "panic" (a button: fires on press)    Panic()
                       bound to "teach_record" / "teach_run"          Teach(record|stop_recording,
                       (value >= 64 is on)                            run|stop_running)
                       bound to "teach_snapshot" / "teach_train"      Teach(snapshot|train)
                       (buttons: fire on press)
Program Change n       program_scenes[n], else sorted(scenes())[n]    SetScene(name)
Note On (velocity>0)   notes = "transpose"                            Transpose(note - root)
                       notes = "trigger"                              Trigger(note, velocity)
=====================  =============================================  ==============================

**Bindings.** ``{channel, cc, param, lo, hi}``: channel 1..16, or 0 for any channel; a CC value
0..127 maps linearly onto ``lo..hi`` (default: the parameter's own range from ``params()``; for
"tempo" ``tempo_range_bpm``, for "master" 0..1; ``lo > hi`` inverts the knob) and the result is
clamped into the parameter's range (for "tempo" the engine's ``TEMPO_RANGE_BPM``, for "master"
``MASTER_RANGE``; a transposing key is clamped into ``TRANSPOSE_RANGE``: ``sonify.commands``).
A command is issued only when the value differs from the last one this binding's target sent
(knobs repeat values; controllers resend on page changes).
Lookup order for a CC on channel c: a learned binding of (c, cc), a configured binding of
(c, cc), a configured binding of (any, cc). 14-bit CC pairs and (N)RPN are not decoded.

**MIDI learn.** ``learn(target)`` arms learn mode (from a command such as ``/sonify/learn
cutoff``): the next Control Change (0..119; channel-mode messages such as All Notes Off are never
learned) binds its (channel, cc) to ``target``, replacing an older learned binding of that CC on
that channel, and is consumed. Learned bindings are written to ``learn_file`` (JSON, written to a
temporary file and renamed over the old one) and read back at construction, so they survive a
restart. Learn mode disarms after ``learn_timeout_s``.

**Channel.** ``channel`` (1..16, 0 = any) filters Program Change and notes; each CC binding has
its own channel.

**Counting.** Every message is counted in ``stats``: ``rejected`` by reason (``malformed``,
``unmapped_cc``, ``unknown_param``, ``unmapped_program``, ``unknown_scene``, ``handler_error``,
or another reason of ``sonify.commands.check`` for a command it refuses; logged as a warning at
most once per reason every ``LOG_INTERVAL_S`` seconds) and ``ignored`` by reason for traffic
that is expected and harmless (``wrong_channel``, ``unchanged``, ``note_off``, ``notes_off``,
``sysex``, ``system``, ``channel_mode``, ``other_channel_message``; DEBUG only).
Nothing raises out of ``handle()``, and no error ends the reader thread.

**Threads.** One reader thread takes the messages from rtmidi's input queue with
``get_message()`` (every ``READ_INTERVAL_S`` = 2 ms when idle, at once while messages keep
coming), hands them to ``handle()``, and every ``poll_interval_s`` checks the port and the learn
timeout; it also writes the learn file. An rtmidi *callback* is not used on purpose: under JACK,
rtmidi calls it on JACK's real-time process thread, which must then wait for the GIL (stalling
the whole JACK graph behind Python), and python-rtmidi's ``cancel_callback``/``close_port`` free
the callback while that thread may already be inside it waiting for the GIL: with a controller
flooding CCs during ``stop()`` this crashed the process (heap corruption) or deadlocked
(``delete()`` waiting for the JACK cycle while holding the GIL). Polling keeps Python off JACK's
thread entirely; the cost is at most 2 ms of latency and 500 cheap wake-ups a second.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rtmidi

from sonify.commands import (
    LEARN_TARGETS,
    Command,
    CommandContext,
    CommandError,
    Freeze,
    Panic,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Teach,
    Transpose,
    Trigger,
    check,
)
from sonify.config import (
    MIDI_CONTROL_VIRTUAL,
    MIDI_TEMPO_KNOB_BPM,
    MidiControlConfig,
    check_tempo_range,
)
from sonify.midi.ports import RECONNECTED, MidiPort, MidiPortError, VirtualPortError
from sonify.util.atomicio import atomic_write
from sonify.util.notice import NOTICE
from sonify.util.ratelimit import LOG_INTERVAL_S as RATE_LIMIT_S
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

LOG_INTERVAL_S = RATE_LIMIT_S
READ_INTERVAL_S = 0.002  # how often the reader looks for MIDI when none came (latency bound)
MAX_BATCH = 512  # messages read in one go before housekeeping gets a turn
DEFAULT_CLIENT = "sonify-control"
OWN_PORT_NAME = "in"  # our side of a connection: "<client_name>:in" under JACK
LEARN_FILE_FORMAT = "sonify-midi-learn"
LEARN_FILE_VERSION = 1
FIRST_CHANNEL_MODE_CC = 120  # 120..127: all sound off, reset, local, all notes off, modes

# Targets a CC can be bound to besides the live scene's parameters (sonify.commands).
SPECIAL_TARGETS: dict[str, str] = LEARN_TARGETS
NOTE_ACTIONS = ("off", "transpose", "trigger")

REJECT_REASONS = ("malformed", "unmapped_cc", "unknown_param", "unmapped_program",
                  "unknown_scene", "handler_error")
IGNORE_REASONS = ("wrong_channel", "unchanged", "note_off", "notes_off", "sysex", "system",
                  "channel_mode", "other_channel_message")

# Data bytes a channel message carries, by its status nibble.
_CHANNEL_MESSAGE_LENGTH = {0x80: 3, 0x90: 3, 0xA0: 3, 0xB0: 3, 0xC0: 2, 0xD0: 2, 0xE0: 3}


class MidiControlError(MidiPortError):
    """MIDI control input cannot be used (no MIDI system, no such port, a bad learn file path):
    the message says which, why and what to do."""


@dataclass(frozen=True)
class CcBinding:
    """Control Change ``cc`` on ``channel`` (1..16, 0 = any) drives ``param``."""

    channel: int
    cc: int
    param: str
    lo: float | None = None
    hi: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.channel <= 16:
            raise ValueError(f"CC binding for {self.param!r}: channel {self.channel} is not "
                             f"1..16 (or 0 for any channel)")
        if not 0 <= self.cc <= 127:
            raise ValueError(f"CC binding for {self.param!r}: cc {self.cc} is not 0..127")
        if not self.param:
            raise ValueError(f"CC binding of cc {self.cc}: the param name is empty")
        for name, v in (("lo", self.lo), ("hi", self.hi)):
            if v is not None and not math.isfinite(v):
                raise ValueError(f"CC binding for {self.param!r}: {name} must be finite")
        if (self.lo is None) != (self.hi is None):
            raise ValueError(f"CC binding for {self.param!r}: give both lo and hi, or neither")

    def describe(self) -> str:
        where = "any channel" if self.channel == 0 else f"channel {self.channel}"
        return f"CC {self.cc} on {where} -> {self.param}"


@dataclass(frozen=True)
class MidiControlStats:
    """A snapshot of what the MIDI control did since it was created."""

    received: int = 0  # messages handed to the handler
    applied: int = 0  # commands handed to command()
    learned: int = 0  # bindings made by MIDI learn
    rejected: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    ignored: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    reconnects: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _ignore_sysex_clock_and_sensing(midi: Any) -> None:
    midi.ignore_types(sysex=True, timing=True, active_sense=True)


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# -- the learn file -----------------------------------------------------------------------------

def load_learned(path: str | Path) -> list[CcBinding]:
    """The bindings in a learn file; [] when it does not exist. A file that cannot be read is
    logged and skipped (it is replaced at the next learn), an entry that is not valid too."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        logger.warning("MIDI learn file %s cannot be read (%s): starting without learned "
                       "bindings; the next learn replaces it", p, exc)
        return []
    entries = data.get("bindings") if isinstance(data, dict) else None
    if not isinstance(entries, list) or data.get("format") != LEARN_FILE_FORMAT:
        logger.warning("MIDI learn file %s is not a %s file: starting without learned "
                       "bindings; the next learn replaces it", p, LEARN_FILE_FORMAT)
        return []
    out = []
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise TypeError("not an object")
            channel, cc, param = entry["channel"], entry["cc"], entry["param"]
            if not (isinstance(channel, int) and isinstance(cc, int)
                    and isinstance(param, str)) or isinstance(channel, bool):
                raise TypeError("channel and cc must be integers, param a string")
            out.append(CcBinding(channel, cc, param))
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("MIDI learn file %s: binding %d skipped: %s", p, i, exc)
    return out


def save_learned(path: str | Path, bindings: Collection[CcBinding]) -> None:
    """Write the learn file atomically: a temporary file beside it, then ``os.replace``."""
    p = Path(path)
    data = {"format": LEARN_FILE_FORMAT, "version": LEARN_FILE_VERSION,
            "bindings": [{"channel": b.channel, "cc": b.cc, "param": b.param}
                         for b in sorted(bindings, key=lambda b: (b.channel, b.cc))]}
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


# -- the control --------------------------------------------------------------------------------

class MidiControl:
    """MIDI in (python-rtmidi) to runtime commands; see the module docstring for the mapping.

    Construct (checks the settings and reads the learn file), ``start()`` (opens the MIDI port;
    MidiControlError says why it cannot), ``stop()``. ``handle(message)`` is the handler the
    reader thread calls; tests feed it bytes directly, without a port.
    """

    def __init__(
        self,
        command: Callable[[Command], None],
        *,
        params: Callable[[], Mapping[str, tuple[float, float]]],
        scenes: Callable[[], Collection[str]],
        port: str | None = None,
        virtual: str | None = None,
        api: str = "auto",
        client_name: str = DEFAULT_CLIENT,
        wait: bool = False,
        bindings: Sequence[CcBinding] = (),
        channel: int = 0,
        notes: str = "off",
        transpose_root: int = 60,
        program_scenes: Sequence[str] = (),
        tempo_range_bpm: tuple[float, float] = MIDI_TEMPO_KNOB_BPM,
        learn_file: str | Path | None = None,
        learn_timeout_s: float = 30.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        if port is not None and virtual is not None:
            raise ValueError("MidiControl takes port= (a MIDI source name pattern) or virtual= "
                             "(the name of a port to create), not both")
        if port is not None and not port.strip():
            raise ValueError("MidiControl port pattern is empty")
        if not 0 <= channel <= 16:
            raise ValueError(f"MIDI control channel {channel} is not 1..16 (or 0 for any)")
        if notes not in NOTE_ACTIONS:
            raise ValueError(f"MIDI control notes action {notes!r}: use one of "
                             f"{', '.join(NOTE_ACTIONS)}")
        if not 0 <= transpose_root <= 127:
            raise ValueError(f"transpose root {transpose_root} is not a MIDI note 0..127")
        if not learn_timeout_s > 0:
            raise ValueError(f"learn timeout must be > 0 s, got {learn_timeout_s}")
        check_tempo_range(tempo_range_bpm)
        self._command = command
        self._params = params
        self._scenes = scenes
        self._context = CommandContext(scenes=scenes, params=params)
        self.pattern = port
        self.virtual = MIDI_CONTROL_VIRTUAL if port is None and virtual is None else virtual
        self.api_requested = api
        self.api: str | None = None  # the MIDI system in use once started
        self.client_name = client_name
        self.wait = wait
        self.channel = channel
        self.notes = notes
        self.transpose_root = transpose_root
        self.program_scenes = list(program_scenes)
        self.tempo_range_bpm = (float(tempo_range_bpm[0]), float(tempo_range_bpm[1]))
        self.learn_file = Path(learn_file) if learn_file else None
        self.learn_timeout_s = float(learn_timeout_s)
        self.poll_interval_s = poll_interval_s
        self.name = (f"MIDI control (port {port!r})" if port is not None
                     else f"MIDI control (virtual {self.virtual!r})")

        self._configured: dict[tuple[int, int], CcBinding] = {}
        for b in bindings:
            key = (b.channel, b.cc)
            if key in self._configured:
                raise ValueError(f"MIDI control: two bindings for {b.describe()!r} and "
                                 f"{self._configured[key].describe()!r}; keep one")
            self._configured[key] = b
        self._learned: dict[tuple[int, int], CcBinding] = {}
        if self.learn_file is not None:
            for b in load_learned(self.learn_file):
                self._learned[(b.channel, b.cc)] = b
            if self._learned:
                logger.info("%s: %d learned binding(s) from %s", self.name, len(self._learned),
                            self.learn_file)

        self._lock = threading.RLock()  # counters and bindings: held for dict work only
        self._port_lock = threading.Lock()  # the rtmidi object: reader, poll() and stop()
        self._log = RateLimitedLog(logger, LOG_INTERVAL_S)
        self._last_sent: dict[str, object] = {}  # target -> last value sent
        self._learn_target: str | None = None
        self._learn_deadline = 0.0
        self._received = 0
        self._applied = 0
        self._learned_count = 0
        self._reconnects = 0
        self._rejected: dict[str, int] = {}
        self._ignored: dict[str, int] = {}
        self._save_pending = False

        self._port: MidiPort | None = None  # the rtmidi MidiIn and its port once started
        self._poll_failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, config: MidiControlConfig, command: Callable[[Command], None], *,
                    params: Callable[[], Mapping[str, tuple[float, float]]],
                    scenes: Callable[[], Collection[str]],
                    client_name: str = DEFAULT_CLIENT) -> MidiControl:
        port = config.port.strip() or None
        return cls(command, params=params, scenes=scenes, port=port,
                   virtual=None if port else config.virtual, api=config.api,
                   client_name=client_name, wait=config.wait_for_port,
                   bindings=[CcBinding(b.channel, b.cc, b.param, b.lo, b.hi) for b in config.cc],
                   channel=config.channel, notes=config.notes,
                   transpose_root=config.transpose_root, program_scenes=config.program_scenes,
                   tempo_range_bpm=config.tempo_range_bpm,
                   learn_file=config.learn_file or None,
                   learn_timeout_s=config.learn_timeout_s)

    # -- state --------------------------------------------------------------------------------

    @property
    def stats(self) -> MidiControlStats:
        with self._lock:
            return MidiControlStats(received=self._received, applied=self._applied,
                                    learned=self._learned_count, rejected=dict(self._rejected),
                                    ignored=dict(self._ignored), reconnects=self._reconnects)

    @property
    def bindings(self) -> list[CcBinding]:
        """Every binding in effect: learned ones, then configured ones they do not shadow."""
        with self._lock:
            out = list(self._learned.values())
            out += [b for k, b in self._configured.items() if k not in self._learned]
            return out

    @property
    def learned_bindings(self) -> list[CcBinding]:
        with self._lock:
            return list(self._learned.values())

    @property
    def learning(self) -> str | None:
        """The target learn mode waits to bind, or None."""
        with self._lock:
            self._expire_learn(time.monotonic())
            return self._learn_target

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def connected(self) -> bool:
        port = self._port
        return port is not None and port.connected

    @property
    def target(self) -> str | None:
        """The source port we are connected to."""
        port = self._port
        return port.target if port is not None else None

    @property
    def port_name(self) -> str | None:
        """Our own port as other programs see it (JACK: ``client:port``), once started."""
        port = self._port
        if port is None:
            return None
        if port.own_name is not None:
            return port.own_name
        if self.virtual is not None:
            return f"{self.client_name}:{self.virtual}"
        return f"{self.client_name}:{OWN_PORT_NAME}"

    # -- learn ----------------------------------------------------------------------------------

    def learn(self, target: str, timeout_s: float | None = None) -> None:
        """Arm learn mode: the next CC binds to ``target`` (a live parameter or one of
        SPECIAL_TARGETS). ValueError names the known targets when ``target`` is none of them.
        Arming again replaces the target and restarts the timeout."""
        known = self._known_targets()
        if target not in known:
            raise ValueError(f"MIDI learn: no parameter {target!r} (known: "
                             f"{', '.join(sorted(known)) or 'none'})")
        timeout = self.learn_timeout_s if timeout_s is None else float(timeout_s)
        with self._lock:
            self._learn_target = target
            self._learn_deadline = time.monotonic() + timeout
        logger.log(NOTICE, "%s: learning %r: move a knob or fader within %.0f s", self.name,
                   target, timeout)

    def cancel_learn(self) -> None:
        with self._lock:
            target, self._learn_target = self._learn_target, None
        if target is not None:
            logger.info("%s: learning %r cancelled", self.name, target)

    def forget(self, target: str) -> int:
        """Remove the learned bindings of ``target`` (configured ones come back); how many."""
        with self._lock:
            keys = [k for k, b in self._learned.items() if b.param == target]
            for k in keys:
                del self._learned[k]
            if keys:
                self._request_save()
        if keys:
            logger.info("%s: forgot %d learned binding(s) of %r", self.name, len(keys), target)
        return len(keys)

    def save(self) -> None:
        """Write the learned bindings to ``learn_file`` now (nothing without one)."""
        with self._lock:
            self._save_pending = False
            learned = list(self._learned.values())
        if self.learn_file is None:
            return
        try:
            save_learned(self.learn_file, learned)
        except OSError as exc:
            logger.error("%s: cannot save learned bindings to %s: %s", self.name,
                         self.learn_file, exc)
            return
        logger.debug("%s: %d learned binding(s) saved to %s", self.name, len(learned),
                     self.learn_file)

    def reset(self) -> None:
        """Forget the values last sent, so the next CC of every binding is sent even if equal
        (e.g. after a scene switch reset the parameters)."""
        with self._lock:
            self._last_sent.clear()

    def _known_targets(self) -> set[str]:
        return set(SPECIAL_TARGETS) | set(self._params())

    def _expire_learn(self, now: float) -> None:
        if self._learn_target is not None and now > self._learn_deadline:
            logger.log(NOTICE, "%s: learning %r timed out after %.0f s without a CC",
                       self.name, self._learn_target, self.learn_timeout_s)
            self._learn_target = None

    def _request_save(self) -> None:
        if self.learn_file is None:
            return
        if self._thread is not None and self._thread.is_alive():
            self._save_pending = True  # the reader writes it after the messages at hand
        else:
            self.save()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the MIDI port and start listening. MidiControlError: no MIDI system works, the
        virtual port cannot be made, or (without ``wait``) no source matches the pattern."""
        if self._port is not None:
            raise RuntimeError(f"{self.name} already started")
        try:
            port = MidiPort(rtmidi.MidiIn, api=self.api_requested, client_name=self.client_name,
                            pattern=self.pattern, virtual=self.virtual, own_port=OWN_PORT_NAME,
                            label=self.name, setup=_ignore_sysex_clock_and_sensing)
        except MidiPortError as exc:
            hint = "; name a controller port instead" if isinstance(exc, VirtualPortError) else ""
            raise MidiControlError(f"{self.name}: {exc}{hint}") from None
        except rtmidi.RtMidiError as exc:
            raise MidiControlError(f"{self.name}: cannot open the MIDI port "
                                   f"({self.api_requested}): {exc}") from None
        self.api = port.api
        try:
            with self._port_lock:
                self._port = port
            if self.virtual is not None:
                logger.info("%s: listening on %s (%s)", self.name, self.port_name, self.api)
            else:
                with self._port_lock:
                    found = port.connect()
                if not found:
                    if not self.wait:
                        raise MidiControlError(self._missing_message())
                    logger.warning("%s: no MIDI input port matches %r yet (%s); waiting for it "
                                   "(see `sonify ports`)", self.name, self.pattern, self.api)
        except rtmidi.RtMidiError as exc:
            self._release()
            raise MidiControlError(f"{self.name}: cannot open the MIDI port ({self.api}): "
                                   f"{exc}") from None
        except BaseException:
            self._release()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="midi-control", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop listening, close the port, write a pending learn file."""
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join(timeout_s)
            self._thread = None
        self._release()
        if self._save_pending:
            self.save()

    def __enter__(self) -> MidiControl:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _release(self) -> None:
        with self._port_lock:
            port, self._port = self._port, None
            if port is not None:
                port.close()

    def _missing_message(self) -> str:
        ports = self._port.ports() if self._port is not None else []
        listed = ", ".join(repr(p) for p in ports) if ports else "none"
        return (f"{self.name}: no MIDI input port matches {self.pattern!r} (MIDI system: "
                f"{self.api}); input ports there are: {listed}. List them with `sonify ports`; "
                f"plug in or start the controller first, let sonify wait for it "
                f"(wait_for_port), or use the virtual port and connect the controller to it")

    def poll(self) -> None:
        """Notice a source or a MIDI system that went away and reconnect when they are back.
        Called by the reader thread; never raises."""
        try:
            with self._port_lock:
                change = self._port.poll() if self._port is not None else None
            self._poll_failed = False
        except Exception as exc:
            if not self._poll_failed:
                logger.warning("%s: cannot check the MIDI ports: %s", self.name, exc)
            self._poll_failed = True
            return
        if change == RECONNECTED:
            with self._lock:
                self._reconnects += 1

    # -- the reader thread ----------------------------------------------------------------------

    def _serve(self) -> None:
        """Read MIDI, and every ``poll_interval_s`` check the port, the learn timeout and a
        pending learn file. Messages are read with ``get_message`` rather than an rtmidi
        callback: see the module docstring."""
        next_check = time.monotonic() + self.poll_interval_s
        while not self._stop.is_set():
            try:
                got = self._read()
                now = time.monotonic()
                if self._save_pending:
                    self.save()
                if now >= next_check:
                    next_check = now + self.poll_interval_s
                    with self._lock:
                        self._expire_learn(now)
                    self.poll()
            except Exception:
                self._reject("handler_error", "%s: unexpected error in the MIDI reader",
                             self.name, exc_info=True)
                got = 0
            if got < MAX_BATCH:
                self._stop.wait(READ_INTERVAL_S)

    def _read(self) -> int:
        """Hand every queued message to the handler (at most MAX_BATCH); how many."""
        for n in range(MAX_BATCH):
            with self._port_lock:
                midi = self._port.midi if self._port is not None else None
                if midi is None:
                    return n
                event = midi.get_message()
            if event is None:
                return n
            self.handle(event[0])
        return MAX_BATCH

    def handle(self, message: Sequence[int]) -> None:
        """Turn one MIDI message into at most one command. Never raises."""
        with self._lock:
            self._received += 1
        try:
            self._dispatch(list(message))
        except _Reject as rej:
            self._reject(rej.reason, "%s: %s", self.name, rej.detail)
        except Exception:
            self._reject("handler_error", "%s: error handling MIDI message %s", self.name,
                         _hex(message), exc_info=True)

    def _dispatch(self, msg: list[Any]) -> None:
        if not msg:
            raise _Reject("malformed", "empty MIDI message")
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255
                   for b in msg):
            raise _Reject("malformed", f"MIDI message {msg[:8]!r} holds values that are not "
                                       f"bytes")
        status = msg[0]
        if status < 0x80:
            raise _Reject("malformed", f"MIDI message {_hex(msg)} starts with a data byte")
        if status == 0xF0:
            self._ignore("sysex")
            return
        if status >= 0xF0:
            if any(b >= 0x80 for b in msg[1:]) and status != 0xF7:
                raise _Reject("malformed", f"system message {_hex(msg)} has a status byte "
                                           f"among its data")
            self._ignore("system")
            return
        kind, channel = status & 0xF0, (status & 0x0F) + 1
        length = _CHANNEL_MESSAGE_LENGTH[kind]
        if len(msg) != length or any(b >= 0x80 for b in msg[1:]):
            raise _Reject("malformed", f"MIDI message {_hex(msg)}: a status {status:#04x} "
                                       f"message is {length} bytes, data bytes below 0x80")
        if kind == 0xB0:
            self._on_cc(channel, msg[1], msg[2])
        elif kind == 0xC0:
            self._on_program(channel, msg[1])
        elif kind == 0x90 and msg[2] > 0:
            self._on_note(channel, msg[1], msg[2])
        elif kind in (0x80, 0x90):
            self._ignore("note_off")
        else:  # aftertouch, channel pressure, pitch bend
            self._ignore("other_channel_message")

    # -- Control Change

    def _on_cc(self, channel: int, cc: int, value: int) -> None:
        with self._lock:
            self._expire_learn(time.monotonic())
            target = self._learn_target
            if target is not None and cc < FIRST_CHANNEL_MODE_CC:
                self._learn(CcBinding(channel, cc, target))
                return
            binding = self._lookup(channel, cc)
        if binding is None:
            if cc >= FIRST_CHANNEL_MODE_CC:
                self._ignore("channel_mode")
                return
            if any(b.cc == cc for b in self.bindings):
                self._ignore("wrong_channel")
                return
            raise _Reject("unmapped_cc", f"CC {cc} on channel {channel} is not bound (bind it "
                                         f"in [control.midi] or with MIDI learn)")
        self._apply_binding(binding, value)

    def _learn(self, binding: CcBinding) -> None:
        """Under the lock: bind, disarm, have the learn file written."""
        key = (binding.channel, binding.cc)
        old = self._learned.get(key) or self._configured.get(key)
        self._learned[key] = binding
        self._learn_target = None
        self._learned_count += 1
        self._request_save()
        logger.log(NOTICE, "%s: learned %s%s", self.name, binding.describe(),
                   f" (was {old.param})" if old is not None and old.param != binding.param
                   else "")

    def _lookup(self, channel: int, cc: int) -> CcBinding | None:
        return (self._learned.get((channel, cc)) or self._configured.get((channel, cc))
                or self._configured.get((0, cc)))

    def _apply_binding(self, b: CcBinding, value: int) -> None:
        target = b.param
        if target == "freeze":
            self._send_changed(target, Freeze(value >= 64))
        elif target in ("panic", "teach_snapshot", "teach_train"):  # buttons: fire on press
            pressed = value >= 64
            with self._lock:
                was = self._last_sent.get(target, False)
                self._last_sent[target] = pressed
            if pressed and not was:
                self._issue(Panic() if target == "panic" else Teach(target.removeprefix("teach_")))
            else:
                self._ignore("unchanged")
        elif target in ("teach_record", "teach_run"):  # switches: >= 64 on
            on, off = ("record", "stop_recording") if target == "teach_record" else (
                "run", "stop_running")
            self._send_changed(target, Teach(on if value >= 64 else off))
        elif target == "tempo":
            lo, hi = self.tempo_range_bpm if b.lo is None or b.hi is None else (b.lo, b.hi)
            self._send_changed(target, SetTempo.clamped(_scale(value, lo, hi)))
        elif target == "master":
            lo, hi = (0.0, 1.0) if b.lo is None or b.hi is None else (b.lo, b.hi)
            self._send_changed(target, SetMaster.clamped(_scale(value, lo, hi)))
        else:
            ranges = self._params()
            if target not in ranges:
                raise _Reject("unknown_param", f"{b.describe()}: the scene has no parameter "
                                               f"{target!r} (it has: "
                                               f"{', '.join(sorted(ranges)) or 'none'})")
            p_lo, p_hi = ranges[target]
            lo, hi = (p_lo, p_hi) if b.lo is None or b.hi is None else (b.lo, b.hi)
            scaled = min(max(_scale(value, lo, hi), min(p_lo, p_hi)), max(p_lo, p_hi))
            self._send_changed(target, SetParam(target, scaled))

    def _send_changed(self, key: str, cmd: Command) -> None:
        """Issue ``cmd`` unless it is what ``key``'s binding sent last."""
        current = cmd
        with self._lock:
            if key in self._last_sent and self._last_sent[key] == current:
                unchanged = True
            else:
                unchanged = False
                self._last_sent[key] = current
        if unchanged:
            self._ignore("unchanged")
        else:
            self._issue(cmd)

    # -- Program Change and notes

    def _on_program(self, channel: int, program: int) -> None:
        if self.channel and channel != self.channel:
            self._ignore("wrong_channel")
            return
        known = self._scenes()
        names = self.program_scenes or sorted(known)
        if program >= len(names):
            raise _Reject("unmapped_program", f"program change {program} on channel {channel}: "
                                              f"only {len(names)} scene(s) are numbered "
                                              f"(0..{len(names) - 1})")
        self._issue(SetScene(names[program]), f"program change {program}")

    def _on_note(self, channel: int, note: int, velocity: int) -> None:
        if self.notes == "off":
            self._ignore("notes_off")
        elif self.channel and channel != self.channel:
            self._ignore("wrong_channel")
        elif self.notes == "transpose":
            self._issue(Transpose.clamped(note - self.transpose_root))
        else:
            self._issue(Trigger.clamped(note, velocity))

    # -- counting

    def _issue(self, cmd: Command, what: str = "") -> None:
        """Check ``cmd`` (``sonify.commands.check``: a scene or parameter that is not there,
        a value out of range) and hand it over; ``what`` prefixes a refusal's message."""
        try:
            check(cmd, self._context)
        except CommandError as exc:
            raise _Reject(exc.reason, f"{what}: {exc}" if what else str(exc)) from None
        self._command(cmd)
        with self._lock:
            self._applied += 1

    def _ignore(self, reason: str) -> None:
        with self._lock:
            self._ignored[reason] = self._ignored.get(reason, 0) + 1

    def _reject(self, reason: str, msg: str, *args: object, exc_info: bool = False) -> None:
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self._log.warning(reason, msg, *args, exc_info=exc_info)


def _scale(value: int, lo: float, hi: float) -> float:
    """CC 0..127 onto lo..hi (lo > hi inverts)."""
    return lo + (hi - lo) * value / 127.0


def _hex(message: Sequence[Any]) -> str:
    try:
        return " ".join(f"{b:02x}" for b in list(message)[:16]) or "(empty)"
    except (TypeError, ValueError):
        return repr(message)[:60]
