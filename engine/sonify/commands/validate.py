"""The one validator: ``check(cmd, context)`` returns ``cmd`` or raises ``CommandError`` (see
``sonify.commands``)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sonify.commands.kinds import (
    KINDS,
    LEARN_TARGETS,
    TEACH_ACTIONS,
    Command,
    Extra,
    Freeze,
    Learn,
    Mute,
    Panic,
    Reload,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Status,
    Stop,
    Teach,
    TeachOutputs,
    Transpose,
    Trigger,
)
from sonify.limits import (
    MASTER_RANGE,
    PITCH_RANGE,
    TEMPO_RANGE_BPM,
    TRANSPOSE_RANGE,
    VELOCITY_RANGE,
)
from sonify.scene.schema import Scene

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
        case SetParam(name=name, value=value, norm=norm):
            _name(name, "the parameter name")
            number = _number(value, f"param {name}")
            _flag(norm, "norm")
            if norm:
                _within(number, (0.0, 1.0), f"param {name}/norm")
            if ctx.params is not None:
                ranges = ctx.params()
                _known(name, ranges, "unknown_param", "parameter")
                if not norm:
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
        case Teach(action=action):
            _name(action, "the teach action")
            _known(action, TEACH_ACTIONS, "unknown_command", "teach action")
        case TeachOutputs(values=values):
            if not isinstance(values, tuple) or not values:
                raise CommandError("wrong_arity", f"teach outputs need one or more numbers, "
                                                  f"got {values!r:.80}")
            for i, v in enumerate(values):
                _number(v, f"teach output {i + 1}")
        case Extra(name=name):
            _name(name, "an extra command's name")
            if name in KINDS:
                raise CommandError("unknown_command", f"{name!r} is a built-in command: use "
                                                      f"{KINDS[name].__name__}, not Extra")
        case _:
            raise CommandError("unknown_command", f"not a command: {cmd!r:.80}")
    return cmd  # type: ignore[return-value]  # every case above is a Command


_NO_CONTEXT = CommandContext()


