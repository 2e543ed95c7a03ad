"""The mapping primitives: the fixed set of ways a scene turns a feature into a number or a choice.

There are exactly two, and a scene can say nothing else:

**Mapping** (a number): either a constant (``velocity = 90``) or a table

    { feature = "warmth", in = [0, 1], out = [48, 84], curve = "linear", invert = false,
      smoothing_s = 0.0, hysteresis = 0.0 }                          (+ quantise, for pitch)

evaluated in this order:

1. read the feature's smoothed value (a scalar from ``sonify.features.registry``), or with
   ``feature = "param:<name>"`` a live parameter the scene declares under ``[params]``
   (set by OSC ``/sonify/param/<name>`` or a MIDI knob; read as 0..1 over its range);
2. normalise: ``u = (x - in[0]) / (in[1] - in[0])`` clipped to 0..1 (``in`` defaults to the
   feature's registry span: its range, or for ``stars``, an unbounded count, 0..16);
3. ``invert``: ``u = 1 - u``;
4. ``smoothing_s``: a one-pole low-pass on ``u`` with that time constant, timed by the music (the
   moment of the note or control tick that asks), exact for uneven intervals;
5. ``hysteresis`` (a fraction of the input range): ``u`` holds until the input has moved more than
   this from where it last changed (the ends 0 and 1 are always reached);
6. ``curve``: ``linear`` u; ``exp`` (2^(4u) - 1) / 15, slow then fast (good for tempo or
   loudness); ``log`` its inverse log2(1 + 15u) / 4, fast then slow; ``s-curve``
   3u^2 - 2u^3, gentle at both ends;
7. scale to ``out`` (``out[0]`` at u = 0, ``out[1]`` at u = 1; ``out[0] > out[1]`` also inverts).

A pitch mapping adds ``quantise`` = ``scale`` | ``chord`` | ``root`` | ``none`` (snap to the
current scale, to the current chord's tones, to the current chord's root, or round to the
nearest semitone) and accepts note names (``out = ["C3", "C6"]``).

**Choice** (an item of a list): either fixed (``scale = "dorian"``) or a table

    { feature = "valence", in = [0, 1], choices = ["minor", "dorian", "major", "lydian"],
      invert = false, smoothing_s = 0.0, hysteresis = 0.05 }

that splits the normalised input into equal bands, one per choice (lowest input -> first
choice), and keeps the current choice until the input leaves its band by more than
``hysteresis`` (a fraction of the input range), so a value hovering at a border cannot flicker.

State (smoothing, hysteresis) belongs to each evaluator instance: a scene player builds one per
place a mapping is used, so two voices reading the same table smooth independently. Before the
first frame (no features) a mapping rests at the middle of its ``out`` range and a choice at its
first item.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from sonify.features.analyzer import Features
from sonify.features.registry import (
    FEATURES,
    SCALAR_NAMES,
    SOURCE_NAME,
    VISION_NAMES,
    ZONE_PREFIX,
    FeatureSpec,
    split_source,
    split_zone,
)
from sonify.features.smoothing import OnePole
from sonify.limits import PITCH_RANGE, TEMPO_RANGE_BPM, VELOCITY_RANGE
from sonify.music import theory

CURVES: tuple[str, ...] = ("linear", "exp", "log", "s-curve")
Curve = Literal["linear", "exp", "log", "s-curve"]
Quantise = Literal["scale", "chord", "root", "none"]


class SceneModel(BaseModel):
    """Base of every scene model: immutable, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


PARAM_PREFIX = "param:"
"""``feature = "param:<name>"`` reads the scene's live parameter ``<name>`` (see Scene.params),
normalised to 0..1 over its declared range, so the input range is 0..1 by default."""

WEK_PREFIX = "wek:"
"""``feature = "wek:<n>"`` reads the n-th float (1-based) of the latest ``/wek/inputs`` message
(Wekinator's input port, ``[wekinator]`` in the config): 0 until one arrives; its input range
is 0..1 unless the mapping gives ``in``."""
MAX_WEK_INPUTS = 256

_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLAIN_NAMES: tuple[str, ...] = SCALAR_NAMES + VISION_NAMES


def _unknown(name: str, feature: str, prefix: str, names: tuple[str, ...]) -> ValueError:
    close = difflib.get_close_matches(feature, names, n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    return ValueError(f"unknown feature {name!r}{hint}; known features: {', '.join(names)}, "
                      f"\"zone:<zone>:<feature>\" inside a zone, \"<source>:<feature>\" for a "
                      f"named source, \"param:<name>\" for a live parameter, or \"wek:<n>\" for "
                      f"a Wekinator input")


def check_feature(name: str) -> str:
    """A scalar feature of the main source (``motion``; the people, faces and flow features
    such as ``people`` or ``flow_x``), the same inside a zone (``zone:door:presence``), a
    picture feature of a named extra source (``cam1:motion``: ``[[source.extra]]`` in the
    config), a live parameter (``param:intensity``) or a Wekinator input (``wek:1``)."""
    if name.startswith(PARAM_PREFIX):
        if not _PARAM_NAME.match(name[len(PARAM_PREFIX):]):
            raise ValueError(f"{name!r}: a parameter name is letters, digits and _ "
                             f"(e.g. \"param:intensity\")")
        return name
    if name.startswith(WEK_PREFIX):
        n = name[len(WEK_PREFIX):]
        if not n.isdigit() or not 1 <= int(n) <= MAX_WEK_INPUTS:
            raise ValueError(f"{name!r}: a Wekinator input is \"wek:<n>\", n = 1.."
                             f"{MAX_WEK_INPUTS} (the n-th float of /wek/inputs)")
        return name
    if name.startswith(ZONE_PREFIX):
        zoned = split_zone(name)
        if zoned is None or not SOURCE_NAME.match(zoned[0]):
            raise ValueError(f"{name!r}: a zone feature is \"zone:<zone>:<feature>\", the zone "
                             f"named in letters, digits and _ (e.g. \"zone:door:presence\")")
        if zoned[1] not in _PLAIN_NAMES:
            raise _unknown(name, zoned[1], f"zone:{zoned[0]}:", _PLAIN_NAMES)
        return name
    source, feature = split_source(name)
    if source is None:
        if feature not in _PLAIN_NAMES:
            raise _unknown(name, feature, "", _PLAIN_NAMES)
        return name
    if not SOURCE_NAME.match(source):
        raise ValueError(f"{name!r}: a source name is letters, digits and _ (e.g. "
                         f"\"cam1:motion\" reads the source named cam1 in the config)")
    if feature in VISION_NAMES:
        raise ValueError(f"{name!r}: people, faces and flow are analysed on the main source "
                         f"only; a named source has the picture features "
                         f"({', '.join(SCALAR_NAMES)})")
    if feature not in SCALAR_NAMES:
        raise _unknown(name, feature, f"{source}:", SCALAR_NAMES)
    return name


FeatureName = Annotated[str, AfterValidator(check_feature)]


def feature_spec(name: str) -> FeatureSpec | None:
    """The registry spec behind a checked feature name (``zone:door:hue`` -> hue's,
    ``cam1:motion`` -> motion's); None for a parameter or a Wekinator input."""
    if name.startswith((PARAM_PREFIX, WEK_PREFIX)):
        return None
    zoned = split_zone(name)
    base = zoned[1] if zoned is not None else split_source(name)[1]
    return FEATURES.get(base)


def feature_range(name: str) -> tuple[float, float]:
    """The registry span of a scalar feature (``FeatureSpec.span``: ``stars``, unbounded, reads
    0..MAX_STARS, as the feature stream does); a live parameter or a Wekinator input reads
    0..1."""
    spec = feature_spec(name)
    return spec.span if spec is not None else (0.0, 1.0)


def _curve_fn(name: str) -> Callable[[float], float]:
    if name == "exp":
        return lambda u: (2.0 ** (4.0 * u) - 1.0) / 15.0
    if name == "log":
        return lambda u: math.log2(1.0 + 15.0 * u) / 4.0
    if name == "s-curve":
        return lambda u: u * u * (3.0 - 2.0 * u)
    return lambda u: u


def apply_curve(curve: str, u: float) -> float:
    """``curve`` (one of CURVES) at ``u`` in 0..1; 0 -> 0 and 1 -> 1 for every curve."""
    if curve not in CURVES:
        raise ValueError(f"unknown curve {curve!r}: one of {', '.join(CURVES)}")
    return _curve_fn(curve)(u)


# -- models ---------------------------------------------------------------------------------------

class Mapping(SceneModel):
    """A number from a feature (see the module docstring). Subclasses set the allowed range."""

    BOUNDS: ClassVar[tuple[float, float]] = (-1e9, 1e9)
    WHAT: ClassVar[str] = "value"

    value: float | None = None
    feature: FeatureName | None = None
    in_: tuple[float, float] | None = Field(default=None, alias="in")
    out: tuple[float, float] | None = None
    curve: Curve = "linear"
    invert: bool = False
    smoothing_s: Annotated[float, Field(ge=0.0, le=600.0)] = 0.0
    hysteresis: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _number_is_constant(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError(f"expected a number or a mapping table, got {data!r}")
        if isinstance(data, (int, float, str)) and not isinstance(data, bool):
            return {"value": cls._number(data)}
        if isinstance(data, dict):
            data = dict(data)
            if "value" in data:
                data["value"] = cls._number(data["value"])
            if isinstance(data.get("out"), (list, tuple)):
                data["out"] = [cls._number(v) for v in data["out"]]
            return data
        if isinstance(data, BaseModel):
            return data
        raise ValueError("expected a number or a table such as "
                         "{ feature = \"brightness\", in = [0, 1], out = [0, 127] }")

    @classmethod
    def _number(cls, v: Any) -> Any:
        """Hook for subclasses that accept other spellings (note names for pitch)."""
        if isinstance(v, str):
            raise ValueError(f"expected a number, got the text {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        if (self.value is None) == (self.feature is None):
            raise ValueError("give either a constant 'value' (or a plain number) or a "
                             "'feature' to map")
        if self.in_ is not None and self.in_[0] == self.in_[1]:
            raise ValueError(f"'in' needs two different values, got {list(self.in_)}")
        lo, hi = self.BOUNDS
        for v in ([self.value] if self.value is not None else []) + list(self.out or ()):
            if not lo <= v <= hi:
                raise ValueError(f"{self.WHAT} {v:g} is outside {lo:g}..{hi:g}")
        return self

    def input_range(self) -> tuple[float, float]:
        if self.in_ is not None:
            return self.in_
        assert self.feature is not None
        return feature_range(self.feature)


class PitchMapping(Mapping):
    """A pitch (MIDI number or note name) plus how to snap it."""

    BOUNDS: ClassVar[tuple[float, float]] = PITCH_RANGE
    WHAT: ClassVar[str] = "pitch"

    quantise: Quantise = "scale"

    @classmethod
    def _number(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return theory.parse_note(v)
            except theory.TheoryError as exc:
                raise ValueError(str(exc)) from None
        return v


class VelocityMapping(Mapping):
    BOUNDS: ClassVar[tuple[float, float]] = VELOCITY_RANGE
    WHAT: ClassVar[str] = "velocity"


class UnitMapping(Mapping):
    """A probability or share, 0..1 (density)."""

    BOUNDS: ClassVar[tuple[float, float]] = (0, 1)
    WHAT: ClassVar[str] = "density"


class LengthMapping(Mapping):
    BOUNDS: ClassVar[tuple[float, float]] = (0.01, 64)
    WHAT: ClassVar[str] = "length in beats"


class TempoMapping(Mapping):
    BOUNDS: ClassVar[tuple[float, float]] = TEMPO_RANGE_BPM
    WHAT: ClassVar[str] = "tempo in BPM"


class StepsMapping(Mapping):
    """A whole number of steps (Euclidean pulses, melodic spread), rounded when used."""

    BOUNDS: ClassVar[tuple[float, float]] = (0, 64)
    WHAT: ClassVar[str] = "number of steps"


class Choice(SceneModel):
    """An item of a list chosen by a feature (see the module docstring)."""

    ITEM: ClassVar[str] = "item"

    choices: list[str] = Field(min_length=1)
    feature: FeatureName | None = None
    in_: tuple[float, float] | None = Field(default=None, alias="in")
    invert: bool = False
    smoothing_s: Annotated[float, Field(ge=0.0, le=600.0)] = 0.0
    hysteresis: Annotated[float, Field(ge=0.0, le=0.5)] = 0.05

    @model_validator(mode="before")
    @classmethod
    def _plain_is_fixed(cls, data: Any) -> Any:
        if isinstance(data, (str, int)) and not isinstance(data, bool):
            return {"choices": [str(data)]}
        if isinstance(data, dict) and isinstance(data.get("choices"), list):
            data = dict(data)
            data["choices"] = [str(c) if isinstance(c, int) and not isinstance(c, bool) else c
                               for c in data["choices"]]
            return data
        if isinstance(data, (dict, BaseModel)):
            return data
        raise ValueError(f"expected a {cls.ITEM} or a table such as "
                         "{ feature = \"valence\", choices = [...] }")

    @model_validator(mode="after")
    def _check(self) -> Choice:
        if self.feature is None and len(self.choices) != 1:
            raise ValueError(f"several choices need a 'feature' to choose by; got "
                             f"{self.choices}")
        if self.in_ is not None and self.in_[0] == self.in_[1]:
            raise ValueError(f"'in' needs two different values, got {list(self.in_)}")
        bad = [c for c in self.choices if not self._valid(c)]
        if bad:
            raise ValueError(f"{', '.join(repr(b) for b in bad)}: not a {self.ITEM}; "
                             f"{self._allowed()}")
        return self

    def _valid(self, item: str) -> bool:
        return True

    def _allowed(self) -> str:
        return ""


class ScaleChoice(Choice):
    ITEM: ClassVar[str] = "scale"

    def _valid(self, item: str) -> bool:
        try:
            theory.scale_intervals(item)
        except theory.TheoryError:
            return False
        return True

    def _allowed(self) -> str:
        return "scales: " + ", ".join(theory.SCALES)


class RootChoice(Choice):
    ITEM: ClassVar[str] = "key root"

    def _valid(self, item: str) -> bool:
        try:
            theory.parse_pitch_class(int(item) if item.isdigit() else item)
        except theory.TheoryError:
            return False
        return True

    def _allowed(self) -> str:
        return "use a note name without octave (C, F#, Bb) or a pitch class 0..11"


# -- evaluators -----------------------------------------------------------------------------------

def _smoother(feature: str | None, in_: tuple[float, float] | None,
              smoothing_s: float) -> OnePole | None:
    if smoothing_s <= 0 or not feature:
        return None
    spec = feature_spec(feature)
    return OnePole(smoothing_s, circular=spec is not None and spec.circular and in_ is None)


class Mapper:
    """Evaluates one Mapping; holds its own smoothing and hysteresis state."""

    __slots__ = ("constant", "feature", "_lo", "_span", "_invert", "_smooth", "_hyst", "_held",
                 "_curve", "_out0", "_out_span")

    def __init__(self, spec: Mapping, default_out: tuple[float, float] = (0.0, 1.0)) -> None:
        self.constant = spec.value
        self.feature = spec.feature or ""
        lo, hi = spec.input_range() if spec.feature else (0.0, 1.0)
        self._lo, self._span = lo, hi - lo
        self._invert = spec.invert
        self._smooth = _smoother(spec.feature, spec.in_, spec.smoothing_s)
        self._hyst = spec.hysteresis
        self._held: float | None = None
        self._curve = _curve_fn(spec.curve)
        out = spec.out if spec.out is not None else default_out
        self._out0, self._out_span = out[0], out[1] - out[0]

    def __call__(self, features: Features, t: float) -> float:
        """The value now; ``t`` (engine seconds) times the smoothing."""
        if self.constant is not None:
            return self.constant
        u = (features.values[self.feature] - self._lo) / self._span
        u = 0.0 if u < 0.0 else 1.0 if u > 1.0 else u
        if self._invert:
            u = 1.0 - u
        if self._smooth is not None:
            u = self._smooth.update(u, t)
        if self._hyst > 0.0:
            held = self._held
            if held is None or abs(u - held) > self._hyst or (u != held and u in (0.0, 1.0)):
                self._held = held = u
            u = held
        return self._out0 + self._out_span * self._curve(u)

    def rest(self) -> float:
        """The value before any frame: the constant, or the middle of ``out``."""
        if self.constant is not None:
            return self.constant
        return self._out0 + 0.5 * self._out_span


class Chooser:
    """Evaluates one Choice; holds its own smoothing and hysteresis state."""

    __slots__ = ("choices", "feature", "_lo", "_span", "_invert", "_smooth", "_hyst", "_index")

    def __init__(self, spec: Choice) -> None:
        self.choices = tuple(spec.choices)
        self.feature = spec.feature or ""
        lo, hi = (spec.in_ or feature_range(spec.feature)) if spec.feature else (0.0, 1.0)
        self._lo, self._span = lo, hi - lo
        self._invert = spec.invert
        self._smooth = _smoother(spec.feature, spec.in_, spec.smoothing_s)
        self._hyst = spec.hysteresis
        self._index: int | None = None

    def index(self, features: Features, t: float) -> int:
        n = len(self.choices)
        if n == 1 or not self.feature:
            return 0
        u = (features.values[self.feature] - self._lo) / self._span
        u = 0.0 if u < 0.0 else 1.0 if u > 1.0 else u
        if self._invert:
            u = 1.0 - u
        if self._smooth is not None:
            u = self._smooth.update(u, t)
        i = min(n - 1, int(u * n))
        cur = self._index
        if cur is not None and i != cur and cur / n - self._hyst <= u <= (cur + 1) / n + self._hyst:
            i = cur
        self._index = i
        return i

    def __call__(self, features: Features | None, t: float) -> str:
        if features is None:
            return self.choices[0 if self._index is None else self._index]
        return self.choices[self.index(features, t)]
