"""A scene's continuous controls (CC, pitch bend, OSC, the feature stream) and its triggers.

A control is sent at a fixed rate, only when its value changes. The scene's ``[stream]`` is
sent by the conventions of ``sonify.scene.stream``: its OSC part every tick (a receiver that
connects late hears the picture at once; ``changes_only = true`` for the old way), its CCs
only when they change (a MIDI cable has no room for more).
"""

from __future__ import annotations

import math

from sonify.events import (
    ControlChange,
    Event,
    Note,
    OscMessage,
    PitchBend,
)
from sonify.scene.mapping import Mapper, Mapping
from sonify.scene.schema import (
    Scene,
    StreamSpec,
    TriggerSpec,
)
from sonify.scene.stream import ChangesOnly, frame
from sonify.scene.voices import LATE_DROP_S, Window

_CONTROL_RANK = 1_000_000
TRIGGER_RANK = 2_000_000


def first_tick(t: float, rate_hz: float) -> int:
    """The first tick ``n`` (at ``n / rate_hz`` seconds) at or after ``t``."""
    n = math.ceil(t * rate_hz)
    while n / rate_hz < t:
        n += 1
    while (n - 1) / rate_hz >= t:
        n -= 1
    return n


class Control:
    """A value sent at a fixed rate, only when it changes (CC: integer; bend: 14-bit; OSC: float
    rounded to 1e-3)."""

    __slots__ = ("rank", "name", "mapper", "target", "channel", "number", "address",
                 "rate_hz", "_tick", "_last")

    def __init__(self, rank: int, name: str, mapper: Mapper, target: str, *,
                 channel: int | None = None, number: int = 0, address: str = "",
                 rate_hz: float = 20.0) -> None:
        self.rank = rank
        self.name = name
        self.mapper = mapper
        self.target = target  # "cc" | "bend" | "osc"
        self.channel = 0 if channel is None else channel - 1
        self.number = number
        self.address = address
        self.rate_hz = rate_hz
        self._tick: int | None = None
        self._last: object = None

    def render(self, w: Window) -> None:
        n = self._tick
        if n is None or n / self.rate_hz < w.t_from - LATE_DROP_S:
            n = first_tick(w.t_from, self.rate_hz)
        f = w.features
        while (t := n / self.rate_hz) < w.t_to:
            n += 1
            event: Event
            v = self.mapper(f, t)
            if self.target == "cc":
                value: int | float = max(0, min(127, int(round(v))))
                event = ControlChange(t, self.channel, self.number, int(value), self.name)
            elif self.target == "bend":
                value = max(-8192, min(8191, int(round(v))))
                event = PitchBend(t, self.channel, int(value), self.name)
            else:
                value = round(v, 3)
                event = OscMessage(t, self.address, (value,), self.name)
            if value != self._last:
                self._last = value
                w.emit(self.rank, event)
        self._tick = n


class StreamControl:
    """The OSC part of a scene's ``[stream]``: a ``stream.frame`` (scalars, the mood as a number
    and one-hot, the arrays) every tick, or with ``changes_only`` each address only when its
    value changes."""

    __slots__ = ("rank", "spec", "rate_hz", "_names", "_tick", "_changes")

    def __init__(self, rank: int, spec: StreamSpec) -> None:
        self.rank = rank
        self.spec = spec
        self.rate_hz = spec.rate_hz
        self._names = spec.names()
        self._tick: int | None = None
        self._changes = ChangesOnly() if spec.changes_only else None

    def render(self, w: Window) -> None:
        n = self._tick
        if n is None or n / self.rate_hz < w.t_from - LATE_DROP_S:
            n = first_tick(w.t_from, self.rate_hz)
        s = self.spec
        while (t := n / self.rate_hz) < w.t_to:
            n += 1
            messages = frame(w.features, t, s.osc_prefix, names=self._names,
                             mood_address=s.mood_osc, arrays=s.arrays)
            if self._changes is not None:
                messages = self._changes(messages)
            for m in messages:
                w.emit(self.rank, m)
        self._tick = n


def build_controls(scene: Scene) -> list[Control | StreamControl]:
    controls: list[Control | StreamControl] = []
    for i, c in enumerate(scene.controls):
        rank = _CONTROL_RANK + i
        if c.cc is not None:
            controls.append(Control(rank, c.name, Mapper(c, (0.0, 127.0)), "cc",
                                     channel=c.channel, number=c.cc, rate_hz=c.rate_hz))
        elif c.pitch_bend:
            controls.append(Control(rank, c.name, Mapper(c, (-8192.0, 8191.0)), "bend",
                                     channel=c.channel, rate_hz=c.rate_hz))
        else:
            assert c.osc is not None
            controls.append(Control(rank, c.name, Mapper(c, (0.0, 1.0)), "osc",
                                     address=c.osc, rate_hz=c.rate_hz))
    s = scene.stream
    if s is not None:
        rank = _CONTROL_RANK + len(controls)
        if s.osc_prefix or s.mood_osc:
            controls.append(StreamControl(rank, s))
            rank += 1
        if s.cc_channel is not None:
            for i, name in enumerate(s.names()):
                spec = Mapping.model_validate({"feature": name})
                controls.append(Control(rank, name, Mapper(spec, (0.0, 127.0)), "cc",
                                         channel=s.cc_channel, number=s.cc_first + i,
                                         rate_hz=s.rate_hz))
                rank += 1
    return controls


def trigger_events(trigger: TriggerSpec, t: float, beat_s: float) -> list[Event]:
    name = f"trigger:{trigger.on}"
    events: list[Event] = []
    if trigger.note is not None:
        n = trigger.note
        events.append(Note(t, n.channel - 1, n.pitch, n.velocity, n.length_beats * beat_s, name))
    if trigger.cc is not None:
        events.append(ControlChange(t, trigger.cc.channel - 1, trigger.cc.cc, trigger.cc.value,
                                    name))
    if trigger.osc is not None:
        events.append(OscMessage(t, trigger.osc.address, tuple(trigger.osc.args), name))
    return events
