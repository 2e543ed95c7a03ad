"""The parsers the front doors share: ``from_osc`` (the OSC address space), ``from_json`` and
its inverse ``to_json`` (the web page's bodies) (see ``sonify.commands``)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from sonify.commands.kinds import (
    NORM_SUFFIX,
    OSC_PREFIX,
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
    Teach,
    TeachOutputs,
    Transpose,
    Trigger,
)
from sonify.commands.validate import CommandError

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


def _osc_fraction(value: object, what: str) -> float:
    """A ``/norm`` argument: a number 0..1."""
    number = _osc_number(value, what)
    if not 0.0 <= number <= 1.0:  # a NaN fails here too
        raise CommandError("out_of_range", f"{what} must be 0..1, got {value!r}")
    return number


def _one_arg(args: Sequence[Any], address: str) -> Any:
    if len(args) != 1:
        raise CommandError("wrong_arity", f"{address} takes 1 argument, got {len(args)}")
    return args[0]


def from_osc(address: str, args: Sequence[Any], *, prefix: str = OSC_PREFIX) -> Command | None:
    """The command an OSC message asks for, not yet checked (``check`` it), or None for a panic
    button's release (``{prefix}/panic 0``). ``CommandError`` (``unknown_address``,
    ``wrong_arity``, ``wrong_type``, ``out_of_range`` for a switch that is not 0|1) otherwise.

    Addresses are literal (no OSC patterns): ``/scene s``, ``/param/<name> f|i``, ``/tempo f|i``,
    ``/mute/<voice> 0|1``, ``/freeze 0|1``, ``/learn s``, ``/panic`` (or ``/panic 0|1``),
    mapping by example: ``/teach/record 0|1`` (start or stop recording examples),
    ``/teach/run 0|1``, ``/teach/snapshot``, ``/teach/train``, ``/teach/clear`` and
    ``/teach/outputs f...`` (the values the next examples pair with), and
    the 0..1 variants for a fader: ``/tempo/norm f`` (linearly over ``TEMPO_RANGE_BPM``) and
    ``/param/<name>/norm f`` (over the parameter's range), ``out_of_range`` beyond 0..1.
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
    if address == f"{prefix}/tempo{NORM_SUFFIX}":
        return SetTempo.from_norm(_osc_fraction(_one_arg(args, address), "tempo/norm"))
    if address == f"{prefix}/freeze":
        return Freeze(_osc_switch(_one_arg(args, address), "freeze"))
    if address == f"{prefix}/learn":
        return Learn(_one_arg(args, address))
    teach = address.removeprefix(f"{prefix}/teach/")
    if teach != address:
        return _teach_from_osc(teach, address, args)
    param = address.removeprefix(f"{prefix}/param/")
    if param != address and param:
        name = param.removesuffix(NORM_SUFFIX)
        if name != param and name:
            return SetParam(name, _osc_fraction(_one_arg(args, address), f"param {param}"),
                            norm=True)
        return SetParam(param, _osc_number(_one_arg(args, address), f"param {param}"))
    voice = address.removeprefix(f"{prefix}/mute/")
    if voice != address and voice:
        return Mute(voice, _osc_switch(_one_arg(args, address), f"mute {voice}"))
    raise CommandError("unknown_address", f"unknown address {address[:80]!r}")


_TEACH_SWITCHES = {"record": ("record", "stop_recording"), "run": ("run", "stop_running")}


def _teach_from_osc(action: str, address: str, args: Sequence[Any]) -> Command:
    """``/teach/record 0|1``, ``/teach/run 0|1`` (no argument: 1), ``/teach/snapshot``,
    ``/teach/train``, ``/teach/clear``, ``/teach/outputs f...``."""
    if action == "outputs":
        if not args:
            raise CommandError("wrong_arity", f"{address} takes one or more numbers")
        return TeachOutputs(tuple(_osc_number(a, f"teach output {i + 1}")
                                  for i, a in enumerate(args)))
    if action in _TEACH_SWITCHES:
        on = True if not args else _osc_switch(_one_arg(args, address), f"teach {action}")
        return Teach(_TEACH_SWITCHES[action][0 if on else 1])
    if action in ("snapshot", "train", "clear"):
        if args:
            raise CommandError("wrong_arity", f"{address} takes no argument, got {len(args)}")
        return Teach(action)
    raise CommandError("unknown_address", f"unknown address {address[:80]!r}; teach takes "
                                          f"record, run, snapshot, train, clear, outputs")


# What JSON can express, in the order an error lists them.
JSON_KINDS: tuple[str, ...] = ("scene", "mute", "freeze", "panic", "tempo", "param", "master",
                               "transpose", "trigger", "learn", "teach")


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
    ``trigger`` ``{"pitch": p, "velocity": v}`` or ``[p, v]``; ``learn`` a target name;
    ``teach`` an action (``record``, ``stop_recording``, ``snapshot``, ``train``, ``run``,
    ``stop_running``, ``clear``).
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
                                  'param needs {"name": NAME, "value": NUMBER} or [NAME, NUMBER] '
                                  '(with "norm": true, NUMBER is 0..1 of its range)')
        norm = _json_flag(arg.get("norm", False), "norm") if isinstance(arg, Mapping) else False
        return SetParam(param, value, norm=norm)  # type: ignore[arg-type]
    if name == "master":
        return SetMaster(arg)  # type: ignore[arg-type]
    if name == "transpose":
        return Transpose(arg)  # type: ignore[arg-type]
    if name == "trigger":
        pitch, velocity = _json_pair(arg, ("pitch", "velocity"), {},
                                     'trigger needs {"pitch": 0..127, "velocity": 1..127} or '
                                     '[PITCH, VELOCITY]')
        return Trigger(pitch, velocity)  # type: ignore[arg-type]
    if name == "teach":
        return Teach(arg)  # type: ignore[arg-type]
    return Learn(arg)  # type: ignore[arg-type]


def to_json(cmd: Command) -> tuple[str, object]:
    """``(name, arg)``, JSON-able, as ``from_json`` reads them (for replies and logs; a status
    reply, a reloaded scene and an extra's argument are shown, not round-tripped)."""
    match cmd:
        case SetScene(name=name):
            return cmd.kind, name
        case SetParam(name=name, value=value, norm=norm):
            return cmd.kind, {"name": name, "value": value, **({"norm": True} if norm else {})}
        case SetTempo(bpm=bpm):
            return cmd.kind, bpm
        case Mute(voice=voice, muted=muted):
            return cmd.kind, {"voice": voice, "muted": muted}
        case Freeze(on=on):
            return cmd.kind, on
        case Learn(param=param):
            return cmd.kind, param
        case Teach(action=action):
            return cmd.kind, action
        case TeachOutputs(values=values):
            return cmd.kind, list(values)
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


