"""Control commands: one frozen type per command, the ranges, one validator, and the one door.

**The commands.** Every control path (OSC, MIDI in, the web page, the scene file watcher, tests)
speaks these types and nothing else; the performance core dispatches on them with ``match``:

==========================================  ============  ====================================
command                                     ``kind``      what it does
==========================================  ============  ====================================
``SetScene(name)``                          scene         switch scene (quantised)
``SetParam(name, value)``                   param         set a scene parameter in its range
``SetTempo(bpm)``                           tempo         fix the tempo (``TEMPO_RANGE_BPM``)
``Mute(voice, muted)``                      mute          mute or unmute one voice
``Freeze(on)``                              freeze        hold the current features, or release
``Panic()``                                 panic         all notes off now
``Learn(param)``                            learn         MIDI learn: the next knob binds here
``SetMaster(level)``                        master        master level 0..1 (``MASTER_RANGE``)
``Transpose(semitones)``                    transpose     ``TRANSPOSE_RANGE`` semitones
``Trigger(pitch, velocity)``                trigger       play one note (``PITCH_RANGE``,
                                                          ``VELOCITY_RANGE``)
``Status(reply)``                           status        ``reply(state)`` on the music thread
``Reload(scene, path)``                     reload        a checked edit of the running scene
``Stop()``                                  stop          end the run
``Extra(name, arg)``                        ``name``      an extension or test hook the core
                                                          looks up by name
==========================================  ============  ====================================

``kind`` names the command in the queue's rate table, metrics labels and logs. ``Command`` is
the union; ``KINDS`` maps each built-in kind to its type.

**One validator.** ``check(cmd, context)`` returns ``cmd`` or raises ``CommandError(reason,
message)``: ``wrong_type``, ``out_of_range``, ``unknown_scene``, ``unknown_param``,
``unknown_voice``, ``unknown_command`` (the reasons the OSC and health servers count). The
ranges are checked against the constants here; names against a ``CommandContext`` (known
scenes, voices, parameters with their ranges), each looked up only by the commands that need it.
The types do not check themselves when built: a front door parses into a command, then checks.

**Parsers**, so each front door is thin: ``from_osc(address, args)`` (the OSC address space
under ``OSC_PREFIX``), ``from_json(name, arg)`` (the web page's ``{"name", "arg"}`` bodies; its
inverse ``to_json``), and the ``clamped`` constructors MIDI in uses to turn a knob or a key into
a command that is valid by construction.

**The door.** A bounded queue that coalesces and rate-limits commands. Every control path hands
a command to ``CommandQueue.put`` from its own thread; the music thread takes a bounded batch
each block with ``take``. A flood of valid commands must not make notes late (a 2,000
messages/s ``/sonify/scene`` flood once stalled the music thread for seconds), so:

- **Coalescing.** A command that sets a state (``SetScene``, ``Reload``, ``SetTempo``,
  ``Freeze``, ``SetMaster``, ``Transpose``, ``Panic``, ``Stop``, ``SetParam`` per name, ``Mute``
  per voice: ``STATE_KEYS``) replaces a waiting one of the same key: the latest wins, and it
  moves to the back so the order of the latest requests is kept. However many arrive, a key is
  applied at most once per take.
- **Rate limits.** Each kind has a token bucket (``RATES``). A state command that finds its
  bucket empty waits in the queue (still replaced by newer ones) until a token comes: the
  latest request is applied, late rather than lost. An event command (``Trigger``, ``Learn``,
  ``Status``, ``Extra``) that finds its bucket empty is dropped and counted.
- **Bounds.** At most ``max_waiting`` commands wait (then new event commands are dropped and
  counted; state commands always have their one slot per key) and ``take(limit)`` hands out
  at most ``limit`` per block.

``stats()`` counts, per kind: received, applied (taken), coalesced (replaced by a newer one)
and dropped (rate limit or full). Thread-safe; ``take`` never blocks.
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

from sonify.limits import (  # re-exported: the ranges belong with the commands
    MASTER_RANGE,
    PITCH_RANGE,
    TEMPO_RANGE_BPM,
    TRANSPOSE_RANGE,
    VELOCITY_RANGE,
)
from sonify.scene.schema import Scene
from sonify.util.ratelimit import TokenBucket

# -- the ranges (defined here and read everywhere else) ------------------------------------------


# What MIDI learn can bind a knob to besides the live scene's parameters, and what it does.
LEARN_TARGETS: dict[str, str] = {
    "tempo": "tempo in bpm over tempo_range_bpm (or lo..hi): SetTempo(bpm)",
    "master": "master level 0..1 (or lo..hi): SetMaster(level)",
    "freeze": "value >= 64 freezes the features, < 64 releases them: Freeze(on)",
    "panic": "a button: all notes off when the value goes from < 64 to >= 64: Panic()",
}

OSC_PREFIX = "/sonify"

REJECT_REASONS: tuple[str, ...] = ("malformed", "unknown_command", "unknown_address",
                                   "wrong_type", "wrong_arity", "out_of_range", "unknown_scene",
                                   "unknown_param", "unknown_voice")


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


# -- the commands ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SetScene:
    """Switch to the scene ``name`` (at the next beat, bar or phrase: ``[scene] quantize``)."""

    name: str
    kind: ClassVar[str] = "scene"


@dataclass(frozen=True, slots=True)
class SetParam:
    """Set the live scene's parameter ``name`` to ``value`` (within its declared range)."""

    name: str
    value: float
    kind: ClassVar[str] = "param"


@dataclass(frozen=True, slots=True)
class SetTempo:
    """Fix the tempo at ``bpm`` (within ``TEMPO_RANGE_BPM``)."""

    bpm: float
    kind: ClassVar[str] = "tempo"

    @classmethod
    def clamped(cls, bpm: float) -> SetTempo:
        return cls(float(_clamp(bpm, TEMPO_RANGE_BPM)))


@dataclass(frozen=True, slots=True)
class Mute:
    """Mute (``muted``) or unmute the voice ``voice``."""

    voice: str
    muted: bool
    kind: ClassVar[str] = "mute"


@dataclass(frozen=True, slots=True)
class Freeze:
    """``on``: hold the current features (the music stops following the picture); off: release."""

    on: bool
    kind: ClassVar[str] = "freeze"


@dataclass(frozen=True, slots=True)
class Panic:
    """All notes off now: drop what is queued, note-offs, CC 123 and 120 on every channel."""

    kind: ClassVar[str] = "panic"


@dataclass(frozen=True, slots=True)
class Learn:
    """MIDI learn: the next knob moved binds to ``param`` (a parameter or a ``LEARN_TARGETS``)."""

    param: str
    kind: ClassVar[str] = "learn"


@dataclass(frozen=True, slots=True)
class SetMaster:
    """The master level, 0..1 (``MASTER_RANGE``): scales note velocities."""

    level: float
    kind: ClassVar[str] = "master"

    @classmethod
    def clamped(cls, level: float) -> SetMaster:
        return cls(float(_clamp(level, MASTER_RANGE)))


@dataclass(frozen=True, slots=True)
class Transpose:
    """Transpose every note by ``semitones`` (within ``TRANSPOSE_RANGE``)."""

    semitones: int
    kind: ClassVar[str] = "transpose"

    @classmethod
    def clamped(cls, semitones: int) -> Transpose:
        return cls(int(_clamp(semitones, TRANSPOSE_RANGE)))


@dataclass(frozen=True, slots=True)
class Trigger:
    """Play one note now, on the control's trigger channel (``[control] trigger_channel``)."""

    pitch: int
    velocity: int
    kind: ClassVar[str] = "trigger"

    @classmethod
    def clamped(cls, pitch: int, velocity: int) -> Trigger:
        return cls(int(_clamp(pitch, PITCH_RANGE)), int(_clamp(velocity, VELOCITY_RANGE)))


@dataclass(frozen=True, slots=True)
class Status:
    """Call ``reply(state)`` with the engine's state, on the music thread."""

    reply: Callable[[Mapping[str, object]], None]
    kind: ClassVar[str] = "status"


@dataclass(frozen=True, slots=True)
class Reload:
    """The running scene's file changed: ``scene`` (already checked) applies at the next bar,
    if ``path`` is still the running scene's file."""

    scene: Scene
    path: Path
    kind: ClassVar[str] = "reload"


@dataclass(frozen=True, slots=True)
class Stop:
    """End the run."""

    kind: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class Extra:
    """An extension or test hook: the core calls the callable registered under ``name`` with
    ``arg``. Its ``kind`` is its name (rates, metrics and logs tell hooks apart)."""

    name: str
    arg: object = None

    @property
    def kind(self) -> str:
        return self.name


Command: TypeAlias = (SetScene | SetParam | SetTempo | Mute | Freeze | Panic | Learn | SetMaster
                      | Transpose | Trigger | Status | Reload | Stop | Extra)

COMMAND_TYPES: tuple[type, ...] = (SetScene, SetParam, SetTempo, Mute, Freeze, Panic, Learn,
                                   SetMaster, Transpose, Trigger, Status, Reload, Stop, Extra)
# kind -> type of every built-in command (an Extra's kind is its own name)
KINDS: dict[str, type] = {
    SetScene.kind: SetScene, SetParam.kind: SetParam, SetTempo.kind: SetTempo, Mute.kind: Mute,
    Freeze.kind: Freeze, Panic.kind: Panic, Learn.kind: Learn, SetMaster.kind: SetMaster,
    Transpose.kind: Transpose, Trigger.kind: Trigger, Status.kind: Status, Reload.kind: Reload,
    Stop.kind: Stop,
}


# -- the validator --------------------------------------------------------------------------------

class CommandError(ValueError):
    """A command that is refused: ``reason`` is the metrics label (see ``REJECT_REASONS``), the
    message says what is wrong and what is accepted."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CommandContext:
    """What ``check`` compares names with. Each lookup is called only by the commands that need
    it (on the caller's thread: hand over cheap, thread-safe snapshots); a lookup left None is
    not checked. ``params`` gives each parameter's (lo, hi)."""

    scenes: Callable[[], Collection[str]] | None = None
    voices: Callable[[], Collection[str]] | None = None
    params: Callable[[], Mapping[str, tuple[float, float]]] | None = None

    @classmethod
    def of(cls, *, scenes: Collection[str] | None = None, voices: Collection[str] | None = None,
           params: Mapping[str, tuple[float, float]] | None = None) -> CommandContext:
        """A context of fixed values (tests, a one-off check)."""
        return cls(scenes=None if scenes is None else lambda: scenes,
                   voices=None if voices is None else lambda: voices,
                   params=None if params is None else lambda: params)


def _listing(names: Collection[str]) -> str:
    """The names as the user gave them (a list keeps its order, a set is sorted)."""
    shown = list(names) if isinstance(names, Sequence) else sorted(names)
    return ", ".join(str(n) for n in shown) or "none"


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise CommandError("wrong_type", f"{what} must be a name (a non-empty string), "
                                         f"got {value!r}")
    return value


def _known(name: str, known: Collection[str], reason: str, what: str) -> None:
    if name not in known:
        raise CommandError(reason, f"unknown {what} {name!r}; known: {_listing(known)}")


def _number(value: object, what: str) -> float:
    """A finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CommandError("wrong_type", f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise CommandError("out_of_range", f"{what} must be finite, got {number}")
    return number


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CommandError("wrong_type", f"{what} must be a whole number, got {value!r}")
    return int(value)


def _within(value: float, bounds: tuple[float, float], what: str, unit: str = "") -> None:
    lo, hi = bounds
    if not lo <= value <= hi:
        unit = f" {unit}" if unit else ""
        raise CommandError("out_of_range",
                           f"{what} must be {lo:g}..{hi:g}{unit}, got {value:g}")


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise CommandError("wrong_type", f"{what} must be true or false, got {value!r}")
    return value


def check(cmd: object, context: CommandContext | None = None) -> Command:
    """``cmd`` itself when it is a valid command, else ``CommandError`` saying why (see the
    module docstring). Types and the ranges here are always checked; names against
    ``context`` where it has a lookup."""
    ctx = context if context is not None else _NO_CONTEXT
    match cmd:
        case SetScene(name=name):
            _name(name, "the scene name")
            if ctx.scenes is not None:
                _known(name, ctx.scenes(), "unknown_scene", "scene")
        case SetParam(name=name, value=value):
            _name(name, "the parameter name")
            number = _number(value, f"param {name}")
            if ctx.params is not None:
                ranges = ctx.params()
                _known(name, ranges, "unknown_param", "parameter")
                _within(number, ranges[name], f"param {name}")
        case SetTempo(bpm=bpm):
            _within(_number(bpm, "tempo"), TEMPO_RANGE_BPM, "tempo", "bpm")
        case Mute(voice=voice, muted=muted):
            _name(voice, "the voice")
            _flag(muted, "muted")
            if ctx.voices is not None:
                _known(voice, ctx.voices(), "unknown_voice", "voice")
        case Freeze(on=on):
            _flag(on, "freeze")
        case Panic() | Stop():
            pass
        case Learn(param=param):
            _name(param, "the learn target")
            if ctx.params is not None:
                _known(param, [*LEARN_TARGETS, *sorted(ctx.params())], "unknown_param",
                       "learn target")
        case SetMaster(level=level):
            _within(_number(level, "master level"), MASTER_RANGE, "master level")
        case Transpose(semitones=semitones):
            _within(_integer(semitones, "transpose"), TRANSPOSE_RANGE, "transpose", "semitones")
        case Trigger(pitch=pitch, velocity=velocity):
            _within(_integer(pitch, "trigger pitch"), PITCH_RANGE, "trigger pitch")
            _within(_integer(velocity, "trigger velocity"), VELOCITY_RANGE, "trigger velocity")
        case Status(reply=reply):
            if not callable(reply):
                raise CommandError("wrong_type", f"status needs a callable reply, got {reply!r}")
        case Reload(scene=scene, path=path):
            if not isinstance(scene, Scene) or not isinstance(path, Path):
                raise CommandError("wrong_type", f"reload needs a checked Scene and its Path, "
                                                 f"got {type(scene).__name__} and {path!r}")
        case Extra(name=name):
            _name(name, "an extra command's name")
            if name in KINDS:
                raise CommandError("unknown_command", f"{name!r} is a built-in command: use "
                                                      f"{KINDS[name].__name__}, not Extra")
        case _:
            raise CommandError("unknown_command", f"not a command: {cmd!r:.80}")
    return cmd  # type: ignore[return-value]  # every case above is a Command


_NO_CONTEXT = CommandContext()


# -- parsers ------------------------------------------------------------------------------------

def _osc_number(value: object, what: str) -> float:
    """An OSC ``i``/``h``/``f``/``d`` argument as a float (``T``/``F`` are not numbers here);
    a NaN is left for ``check`` to refuse."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CommandError("wrong_type", f"{what} must be a number, got "
                                         f"{type(value).__name__}")
    return float(value)


def _osc_switch(value: object, what: str) -> bool:
    """A 0|1 switch: ``T``/``F``, ``i`` 0/1 or ``f`` 0.0/1.0 (what toggles send)."""
    if isinstance(value, bool):
        return value
    number = _osc_number(value, what)
    if number not in (0.0, 1.0):
        raise CommandError("out_of_range", f"{what} must be 0 or 1, got {value!r}")
    return number == 1.0


def _one_arg(args: Sequence[Any], address: str) -> Any:
    if len(args) != 1:
        raise CommandError("wrong_arity", f"{address} takes 1 argument, got {len(args)}")
    return args[0]


def from_osc(address: str, args: Sequence[Any], *, prefix: str = OSC_PREFIX) -> Command | None:
    """The command an OSC message asks for, not yet checked (``check`` it), or None for a panic
    button's release (``{prefix}/panic 0``). ``CommandError`` (``unknown_address``,
    ``wrong_arity``, ``wrong_type``, ``out_of_range`` for a switch that is not 0|1) otherwise.

    Addresses are literal (no OSC patterns): ``/scene s``, ``/param/<name> f|i``, ``/tempo f|i``,
    ``/mute/<voice> 0|1``, ``/freeze 0|1``, ``/learn s``, ``/panic`` (or ``/panic 0|1``).
    ``/status`` is a request for a reply, which the OSC server answers itself: not a command.
    """
    if address == f"{prefix}/panic":
        if not args:
            return Panic()
        return Panic() if _osc_switch(_one_arg(args, address), "panic button") else None
    if address == f"{prefix}/scene":
        return SetScene(_one_arg(args, address))
    if address == f"{prefix}/tempo":
        return SetTempo(_osc_number(_one_arg(args, address), "tempo"))
    if address == f"{prefix}/freeze":
        return Freeze(_osc_switch(_one_arg(args, address), "freeze"))
    if address == f"{prefix}/learn":
        return Learn(_one_arg(args, address))
    param = address.removeprefix(f"{prefix}/param/")
    if param != address and param:
        return SetParam(param, _osc_number(_one_arg(args, address), f"param {param}"))
    voice = address.removeprefix(f"{prefix}/mute/")
    if voice != address and voice:
        return Mute(voice, _osc_switch(_one_arg(args, address), f"mute {voice}"))
    raise CommandError("unknown_address", f"unknown address {address[:80]!r}")


# What JSON can express, in the order an error lists them.
JSON_KINDS: tuple[str, ...] = ("scene", "mute", "freeze", "panic", "tempo", "param", "master",
                               "transpose", "trigger", "learn")


def _json_flag(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise CommandError("wrong_type", f"{what} must be true or false (or 0/1), got {value!r}")


def _json_pair(arg: object, keys: tuple[str, str], defaults: Mapping[str, object],
               usage: str) -> tuple[object, object]:
    """``{"a": .., "b": ..}`` or ``[a, b]``."""
    if isinstance(arg, Mapping):
        return arg.get(keys[0]), arg.get(keys[1], defaults.get(keys[1]))
    if isinstance(arg, list | tuple) and len(arg) == 2:
        return arg[0], arg[1]
    raise CommandError("wrong_type", usage)


def from_json(name: object, arg: object, *, kinds: Sequence[str] = JSON_KINDS) -> Command:
    """The command a JSON request ``{"name": name, "arg": arg}`` asks for, not yet checked
    (``check`` it); ``kinds`` are the names this door accepts (``unknown_command`` otherwise).

    ``scene`` a name; ``mute`` ``{"voice": v, "muted": bool}`` (muted defaults to true) or
    ``[v, bool]``; ``freeze`` bool or 0/1; ``panic`` anything; ``tempo`` bpm; ``param``
    ``{"name": n, "value": x}`` or ``[n, x]``; ``master`` 0..1; ``transpose`` semitones;
    ``trigger`` ``{"pitch": p, "velocity": v}`` or ``[p, v]``; ``learn`` a target name.
    Numbers are checked by ``check``; booleans are not numbers.
    """
    if not isinstance(name, str) or name not in kinds or name not in JSON_KINDS:
        raise CommandError("unknown_command", f"unknown command {name!r}; use one of "
                                              f"{', '.join(k for k in kinds if k in JSON_KINDS)}")
    if name == "scene":
        if not isinstance(arg, str):
            raise CommandError("wrong_type", f"scene needs a scene name, got {arg!r}")
        return SetScene(arg)
    if name == "mute":
        voice, muted = _json_pair(arg, ("voice", "muted"), {"muted": True},
                                  'mute needs {"voice": NAME, "muted": true|false} or '
                                  '[NAME, bool]')
        return Mute(voice, _json_flag(muted, "muted"))  # type: ignore[arg-type]
    if name == "freeze":
        return Freeze(_json_flag(arg, "freeze"))
    if name == "panic":
        return Panic()
    if name == "tempo":
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            raise CommandError("wrong_type", f"tempo needs a number of bpm, got {arg!r}")
        return SetTempo(float(arg))
    if name == "param":
        param, value = _json_pair(arg, ("name", "value"), {},
                                  'param needs {"name": NAME, "value": NUMBER} or [NAME, NUMBER]')
        return SetParam(param, value)  # type: ignore[arg-type]
    if name == "master":
        return SetMaster(arg)  # type: ignore[arg-type]
    if name == "transpose":
        return Transpose(arg)  # type: ignore[arg-type]
    if name == "trigger":
        pitch, velocity = _json_pair(arg, ("pitch", "velocity"), {},
                                     'trigger needs {"pitch": 0..127, "velocity": 1..127} or '
                                     '[PITCH, VELOCITY]')
        return Trigger(pitch, velocity)  # type: ignore[arg-type]
    return Learn(arg)  # type: ignore[arg-type]


def to_json(cmd: Command) -> tuple[str, object]:
    """``(name, arg)``, JSON-able, as ``from_json`` reads them (for replies and logs; a status
    reply, a reloaded scene and an extra's argument are shown, not round-tripped)."""
    match cmd:
        case SetScene(name=name):
            return cmd.kind, name
        case SetParam(name=name, value=value):
            return cmd.kind, {"name": name, "value": value}
        case SetTempo(bpm=bpm):
            return cmd.kind, bpm
        case Mute(voice=voice, muted=muted):
            return cmd.kind, {"voice": voice, "muted": muted}
        case Freeze(on=on):
            return cmd.kind, on
        case Learn(param=param):
            return cmd.kind, param
        case SetMaster(level=level):
            return cmd.kind, level
        case Transpose(semitones=semitones):
            return cmd.kind, semitones
        case Trigger(pitch=pitch, velocity=velocity):
            return cmd.kind, {"pitch": pitch, "velocity": velocity}
        case Reload(path=path):
            return cmd.kind, str(path)
        case Extra(name=name, arg=arg):
            return name, repr(arg)
    return cmd.kind, None  # Panic, Stop, Status


# -- the door -----------------------------------------------------------------------------------

# kind -> (commands per second, burst). A state command over its rate waits; an event command
# over its rate is dropped. Not listed: unlimited (still coalesced if a state command).
RATES: dict[str, tuple[float, float]] = {
    SetScene.kind: (8.0, 4.0),  # each one loads and checks a scene file
    Reload.kind: (4.0, 2.0),
    Trigger.kind: (200.0, 64.0),  # notes from MIDI in: a fast player, not a flood
    Learn.kind: (4.0, 4.0),
    Status.kind: (50.0, 20.0),
}
# State commands: type -> coalescing key. Any other command is an event command (FIFO).
STATE_KEYS: dict[type, Callable[[Any], Hashable]] = {
    SetScene: lambda cmd: SetScene.kind,
    Reload: lambda cmd: Reload.kind,
    SetTempo: lambda cmd: SetTempo.kind,
    Freeze: lambda cmd: Freeze.kind,
    SetMaster: lambda cmd: SetMaster.kind,
    Transpose: lambda cmd: Transpose.kind,
    Panic: lambda cmd: Panic.kind,
    Stop: lambda cmd: Stop.kind,
    SetParam: lambda cmd: (SetParam.kind, cmd.name),
    Mute: lambda cmd: (Mute.kind, cmd.voice),
}
ALWAYS_ADMITTED: tuple[type, ...] = (Panic, Stop)  # even into a full queue
MAX_WAITING = 512
TAKE_LIMIT = 64


@dataclass
class KindStats:
    received: int = 0
    applied: int = 0
    coalesced: int = 0
    dropped: int = 0


@dataclass
class CommandStats:
    kinds: dict[str, KindStats] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(k.dropped for k in self.kinds.values())

    @property
    def coalesced(self) -> int:
        return sum(k.coalesced for k in self.kinds.values())


class CommandQueue:
    """See the module docstring. ``clock`` (seconds, monotonic) is injectable for tests."""

    def __init__(self, rates: Mapping[str, tuple[float, float]] | None = None, *,
                 max_waiting: int = MAX_WAITING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rates = dict(RATES if rates is None else rates)
        self._buckets: dict[str, TokenBucket] = {}
        self._waiting: OrderedDict[tuple[str, Hashable], Command] = OrderedDict()
        self._seq = 0
        self.max_waiting = max_waiting
        self._stats: dict[str, KindStats] = {}

    def _bucket(self, kind: str, now: float) -> TokenBucket | None:
        rate = self._rates.get(kind)
        if rate is None:
            return None
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = TokenBucket(rate[0], rate[1], now)
        return bucket

    def _kind(self, kind: str) -> KindStats:
        stats = self._stats.get(kind)
        if stats is None:
            stats = self._stats[kind] = KindStats()
        return stats

    def put(self, cmd: Command) -> bool:
        """Queue a command (any thread). False when it was dropped (rate limit or full)."""
        kind = cmd.kind
        keyer = STATE_KEYS.get(type(cmd))
        with self._lock:
            stats = self._kind(kind)
            stats.received += 1
            if keyer is not None:
                try:
                    key: tuple[str, Hashable] | None = ("state", keyer(cmd))
                    hash(key)
                except TypeError:  # an unhashable name: no coalescing for it
                    key = None
                if key is not None:
                    if self._waiting.pop(key, None) is not None:
                        stats.coalesced += 1
                    elif (len(self._waiting) >= self.max_waiting
                          and not isinstance(cmd, ALWAYS_ADMITTED)):
                        stats.dropped += 1
                        return False
                    self._waiting[key] = cmd
                    return True
            bucket = self._bucket(kind, self._clock())
            if bucket is not None and not bucket.take(self._clock()):
                stats.dropped += 1
                return False
            if len(self._waiting) >= self.max_waiting:
                stats.dropped += 1
                return False
            self._seq += 1
            self._waiting[("event", self._seq)] = cmd
            return True

    def take(self, limit: int = TAKE_LIMIT) -> list[Command]:
        """Up to ``limit`` commands in order (the music thread, once per block). A state
        command whose rate is used up stays for a later take."""
        out: list[Command] = []
        with self._lock:
            if not self._waiting:
                return out
            now = self._clock()
            for key in list(self._waiting):
                if len(out) >= limit:
                    break
                cmd = self._waiting[key]
                if key[0] == "state":
                    bucket = self._bucket(cmd.kind, now)
                    if bucket is not None and not bucket.take(now):
                        continue  # waits for its token; a newer request may still replace it
                del self._waiting[key]
                self._kind(cmd.kind).applied += 1
                out.append(cmd)
        return out

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def stats(self) -> CommandStats:
        with self._lock:
            return CommandStats({k: KindStats(**vars(v)) for k, v in self._stats.items()})
