"""The commands: one frozen type per control command, and the ranges and names they are
checked against (see ``sonify.commands``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeAlias

from sonify.limits import (
    MASTER_RANGE,
    PITCH_RANGE,
    TEMPO_RANGE_BPM,
    TRANSPOSE_RANGE,
    VELOCITY_RANGE,
)
from sonify.scene.schema import Scene

# -- the ranges (defined here and read everywhere else) ------------------------------------------


# What MIDI learn can bind a knob to besides the live scene's parameters, and what it does.
LEARN_TARGETS: dict[str, str] = {
    "tempo": "tempo in bpm over tempo_range_bpm (or lo..hi): SetTempo(bpm)",
    "master": "master level 0..1 (or lo..hi): SetMaster(level)",
    "freeze": "value >= 64 freezes the features, < 64 releases them: Freeze(on)",
    "panic": "a button: all notes off when the value goes from < 64 to >= 64: Panic()",
    "teach_record": "value >= 64 records examples, < 64 stops: Teach(record|stop_recording)",
    "teach_run": "value >= 64 lets the model play, < 64 stops it: Teach(run|stop_running)",
    "teach_snapshot": "a button: record one example on press: Teach(snapshot)",
    "teach_train": "a button: train the model on press: Teach(train)",
}

OSC_PREFIX = "/sonify"
NORM_SUFFIX = "/norm"  # a control's 0..1 variant: /sonify/tempo/norm, /sonify/param/<name>/norm

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
    """Set the live scene's parameter ``name`` to ``value`` (within its declared range), or
    with ``norm`` to ``value`` 0..1 of that range (0 its min, 1 its max: a fader's
    ``/sonify/param/<name>/norm``). A parameter that only the scene about to play has (a change
    waiting for the bar) is kept for it and set when it starts."""

    name: str
    value: float
    norm: bool = False
    kind: ClassVar[str] = "param"

    def scaled(self, lo: float, hi: float) -> float:
        """The value in the parameter's own units, for a parameter ranging ``lo..hi``."""
        return lo + self.value * (hi - lo) if self.norm else self.value


@dataclass(frozen=True, slots=True)
class SetTempo:
    """Fix the tempo at ``bpm`` (within ``TEMPO_RANGE_BPM``)."""

    bpm: float
    kind: ClassVar[str] = "tempo"

    @classmethod
    def clamped(cls, bpm: float) -> SetTempo:
        return cls(float(_clamp(bpm, TEMPO_RANGE_BPM)))

    @classmethod
    def from_norm(cls, fraction: float) -> SetTempo:
        """``fraction`` 0..1 of ``TEMPO_RANGE_BPM``, linearly (0.5 is the middle, 160 bpm)."""
        lo, hi = TEMPO_RANGE_BPM
        return cls(lo + fraction * (hi - lo))


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


TEACH_ACTIONS: tuple[str, ...] = ("record", "stop_recording", "snapshot", "train", "run",
                                   "stop_running", "clear")
"""What ``Teach`` can do (Wekinator's record/train/run): ``record`` adds an example each frame
until ``stop_recording``; ``snapshot`` adds one; ``train`` fits the model on the examples;
``run`` lets the model drive its outputs until ``stop_running``; ``clear`` deletes every
example."""


@dataclass(frozen=True, slots=True)
class Teach:
    """Mapping by example (the scene's ``[teach]``): one of ``TEACH_ACTIONS``."""

    action: str
    kind: ClassVar[str] = "teach"


@dataclass(frozen=True, slots=True)
class TeachOutputs:
    """The output values the next examples pair with the features (Wekinator's
    ``/wekinator/control/outputs``), in the order of the scene's ``[teach] outputs``, each in
    that output's own units (a parameter in its range, tempo in bpm; a discrete output by its
    choice's index). Outputs not given keep their current values."""

    values: tuple[float, ...]
    kind: ClassVar[str] = "teach_outputs"


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
                      | Transpose | Trigger | Status | Reload | Stop | Teach | TeachOutputs
                      | Extra)

COMMAND_TYPES: tuple[type, ...] = (SetScene, SetParam, SetTempo, Mute, Freeze, Panic, Learn,
                                   SetMaster, Transpose, Trigger, Status, Reload, Stop, Teach,
                                   TeachOutputs, Extra)
# kind -> type of every built-in command (an Extra's kind is its own name)
KINDS: dict[str, type] = {
    SetScene.kind: SetScene, SetParam.kind: SetParam, SetTempo.kind: SetTempo, Mute.kind: Mute,
    Freeze.kind: Freeze, Panic.kind: Panic, Learn.kind: Learn, SetMaster.kind: SetMaster,
    Transpose.kind: Transpose, Trigger.kind: Trigger, Status.kind: Status, Reload.kind: Reload,
    Stop.kind: Stop, Teach.kind: Teach, TeachOutputs.kind: TeachOutputs,
}


