"""Scene files: TOML validated into immutable models, with errors that say file, key and fix.

A scene is data, never code: ``tomllib`` reads it, pydantic checks it (unknown keys are errors,
every error is reported at once), and nothing in it is evaluated. ``load_scene("gallery")`` finds
a scene by name; ``load_scene("my/scene.toml")`` reads a file. See ``scenes/README.md`` for the
format, and ``sonify.scene.mapping`` for the mapping primitives.

Names are looked up in order in: ``$SONIFY_SCENES`` (one or more folders, ``os.pathsep``
separated) and the shipped ``scenes/`` folder (``sonify.resources.shipped``).

Size (about 590 lines, over the 500 we aim for): this module is the scene format's reference,
every model of a scene file in the order the file reads, next to its loader; what a scene may
cost is ``scene/cost.py`` and its error messages ``scene/messages.py``.
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)

from sonify.features.registry import (
    ARRAY_NAMES,
    MOOD_LABELS,
    ONSET_NAMES,
    SCALAR_NAMES,
    VISION_ONSET_NAMES,
    split_zone,
)
from sonify.features.zones import Zone
from sonify.learn.spec import TeachSpec
from sonify.limits import LOUDNESS_DEFAULT_LUFS, LOUDNESS_RANGE_LUFS
from sonify.music import rhythm as rh
from sonify.music import theory
from sonify.resources import shipped
from sonify.scene.cost import check_cost
from sonify.scene.mapping import (
    PARAM_PREFIX,
    FeatureName,
    LengthMapping,
    Mapping,
    PitchMapping,
    RootChoice,
    ScaleChoice,
    SceneModel,
    StepsMapping,
    TempoMapping,
    UnitMapping,
    VelocityMapping,
    check_feature,
)
from sonify.scene.messages import LocatedError, describe_errors
from sonify.util import tomlfile

SCENES_ENV = "SONIFY_SCENES"
VOICE_KINDS: tuple[str, ...] = ("notes", "chords", "sparkle", "scan", "drums")

GM_DRUMS: dict[str, int] = {
    "kick": 36, "kick2": 35, "rim": 37, "snare": 38, "clap": 39, "snare2": 40,
    "tom_low": 45, "hat": 42, "pedal_hat": 44, "tom_mid": 47, "open_hat": 46, "crash": 49,
    "tom_high": 50, "ride": 51, "ride_bell": 53, "tambourine": 54, "cowbell": 56,
    "shaker": 70, "claves": 75, "wood_block": 76, "triangle": 81,
}
"""General MIDI percussion (channel 10) by name."""


class SceneError(Exception):
    """A scene that cannot be loaded: the message names the file, each bad key and the fix."""


# -- field types ----------------------------------------------------------------------------------

def _pitch(v: Any) -> Any:
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        try:
            return theory.parse_note(v)
        except theory.TheoryError as exc:
            raise ValueError(str(exc)) from None
    return v


def _osc_address(v: str) -> str:
    if not v.startswith("/") or any(c in v for c in " #*,?[]{}"):
        raise ValueError(f"not an OSC address: {v!r} (start with '/', e.g. \"/sonify/lead\"; "
                         "no spaces or # * , ? [ ] { })")
    return v


def _steps(v: str) -> str:
    try:
        rh.parse_steps(v)
    except rh.RhythmError as exc:
        raise ValueError(str(exc)) from None
    return v


def _numeral(v: str) -> str:
    try:
        return theory.check_numeral(v)
    except theory.TheoryError as exc:
        raise ValueError(str(exc)) from None


def _root_name(v: str) -> str:
    try:
        theory.parse_pitch_class(int(v) if v.isdigit() else v)
    except theory.TheoryError as exc:
        raise ValueError(str(exc)) from None
    return v


def _drum(v: Any) -> Any:
    if isinstance(v, str):
        if v in GM_DRUMS:
            return GM_DRUMS[v]
        raise ValueError(f"unknown drum {v!r}: one of {', '.join(GM_DRUMS)}, or a MIDI note "
                         "number 0..127")
    return v


Channel = Annotated[int, Field(ge=1, le=16)]
Pitch = Annotated[int, BeforeValidator(_pitch), Field(ge=0, le=127)]
Program = Annotated[int, Field(ge=1, le=128)]
OscAddress = Annotated[str, AfterValidator(_osc_address)]
StepPattern = Annotated[str, AfterValidator(_steps)]
Numeral = Annotated[str, AfterValidator(_numeral)]
RootName = Annotated[str, AfterValidator(_root_name)]
DrumSound = Annotated[int, BeforeValidator(_drum), Field(ge=0, le=127)]
Velocity = Annotated[int, Field(ge=1, le=127)]


def _m(cls: type[Mapping], data: Any) -> Any:
    return cls.model_validate(data)


# -- tempo, key, harmony --------------------------------------------------------------------------

class TempoSpec(SceneModel):
    """``bpm``: a number or a mapping (e.g. motion -> 90..140 with smoothing); the tempo moves in
    steps of ``step_bpm`` so a slowly drifting feature does not re-time the grid every block."""

    bpm: TempoMapping = _m(TempoMapping, 96)
    step_bpm: Annotated[float, Field(ge=0.0, le=20.0)] = 0.5


class RenderSpec(SceneModel):
    """How the scene sounds offline: ``loudness_lufs`` is the integrated loudness (ITU-R BS.1770)
    of the built-in WAV, so a calm scene renders quieter than an energetic one; true peaks
    stay at or below -1 dBFS whatever the target."""

    loudness_lufs: Annotated[float, Field(ge=LOUDNESS_RANGE_LUFS[0], le=LOUDNESS_RANGE_LUFS[1])
                             ] = LOUDNESS_DEFAULT_LUFS


class KeySpec(SceneModel):
    """``root``: a note name (C, F#, Bb) or a choice by feature; ``scale``: a scale name or a
    choice by feature (``sonify.music.theory.SCALES``). A new key takes effect at the next
    chord change, so a chord never changes key half-way."""

    root: RootChoice = RootChoice.model_validate("C")
    scale: ScaleChoice = ScaleChoice.model_validate("major")
    # a gray picture has no hue: below this chroma a root chosen by a feature is ``default``
    # (else the first choice); see sonify.scene.harmony
    default: RootName | None = None
    gray_below: Annotated[float, Field(ge=0.0, le=1.0)] = 0.04


class HarmonySpec(SceneModel):
    """Chord progressions as roman numerals, one per mood label (``default`` for the others);
    a chord lasts ``bars_per_chord`` bars of ``beats_per_bar`` beats. The plan around them
    (``sonify.scene.harmony``): phrases of ``phrase_bars`` bars with a half cadence in the
    middle and an authentic (or ``cadence = "plagal"``) one at the end; sections A B A' where
    B plays ``contrast`` (in the parallel mode with ``contrast_mode = "parallel"``); chords as
    triads, sevenths or ninths (``colour``), body chords in inversion with ``inversions``."""

    progressions: dict[str, list[Numeral]] = {"default": ["I"]}
    beats_per_bar: Annotated[int, Field(ge=1, le=16)] = 4
    bars_per_chord: Annotated[int, Field(ge=1, le=16)] = 1
    # the plan (sonify.scene.harmony): phrases with cadences, sections A B A'
    phrase_bars: Annotated[int, Field(ge=2, le=32)] = 8
    section_phrases: Annotated[int, Field(ge=1, le=16)] = 2  # live: phrases per section
    cadence: Literal["authentic", "plagal"] = "authentic"
    contrast: list[Numeral] | None = None  # section B's loop (default: see harmony.py)
    contrast_mode: Literal["same", "parallel"] = "same"
    colour: Literal["triads", "sevenths", "ninths"] = "triads"
    inversions: bool = False
    # a piece of known length slows to (1 - ritardando) of its tempo through its ending; beat
    # scenes end in tempo (0)
    ritardando: Annotated[float, Field(ge=0.0, le=0.5)] = 0.2

    @model_validator(mode="after")
    def _check(self) -> HarmonySpec:
        allowed = (*MOOD_LABELS, "default")
        bad = [k for k in self.progressions if k not in allowed]
        if bad:
            raise ValueError(f"progressions for {', '.join(repr(b) for b in bad)}: the keys must "
                             f"be mood labels or default: {', '.join(allowed)}")
        empty = [k for k, v in self.progressions.items() if not v]
        if empty:
            raise ValueError(f"empty progression for {', '.join(empty)}")
        if not self.progressions:
            raise ValueError("give at least one progression, e.g. default = [\"I\", \"IV\"]")
        return self


# -- rhythm ---------------------------------------------------------------------------------------

class EuclidSpec(SceneModel):
    """E(pulses, steps) rotated ``rotate`` steps later; ``pulses`` may follow a feature."""

    pulses: StepsMapping
    steps: Annotated[int, Field(ge=1, le=64)] = 16
    rotate: int = 0


class Rhythm(SceneModel):
    """When a voice plays: ``steps`` (a pattern such as "x..x..x.", X accented) or ``euclid``,
    one step every ``step_beats`` beats, looping, aligned to beat 0."""

    steps: StepPattern | None = None
    euclid: EuclidSpec | None = None
    step_beats: Annotated[float, Field(ge=1 / 64, le=64)] = 0.25

    @model_validator(mode="after")
    def _check(self) -> Rhythm:
        if (self.steps is None) == (self.euclid is None):
            raise ValueError("give either 'steps' (e.g. \"x..x..x.\") or 'euclid' (e.g. "
                             "{ pulses = 3, steps = 8 })")
        return self


# -- voices ---------------------------------------------------------------------------------------

class VoiceBase(SceneModel):
    name: Annotated[str, Field(min_length=1)]
    channel: Channel | None = None
    osc: OscAddress | None = None
    rhythm: Rhythm | None = None
    swing: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    humanise_ms: Annotated[float, Field(ge=0.0, le=50.0)] = 0.0
    humanise_velocity: Annotated[int, Field(ge=0, le=40)] = 0
    velocity: VelocityMapping = _m(VelocityMapping, 80)
    accent: Annotated[int, Field(ge=0, le=64)] = 20
    length_beats: LengthMapping | None = None
    density: UnitMapping = _m(UnitMapping, 1.0)
    register_: tuple[Pitch, Pitch] = Field(default=(36, 96), alias="register")
    program: Program | None = None
    mute: bool = False

    @model_validator(mode="after")
    def _check_base(self) -> VoiceBase:
        if self.channel is None and self.osc is None:
            raise ValueError("give a MIDI 'channel' (1..16), an 'osc' address, or both")
        if self.register_[1] - self.register_[0] < 12:
            raise ValueError(f"register {list(self.register_)} must span at least an octave "
                             "(low, high as MIDI numbers or names such as \"C3\")")
        if self.program is not None and self.channel is None:
            raise ValueError("'program' needs a MIDI 'channel'")
        return self


def _motif_flag(v: Any) -> Any:
    if isinstance(v, bool):
        return {} if v else None
    return v


class MotifSpec(SceneModel):
    """A melody made of a motif read off the picture (``music/motif.py``) and developed in
    phrases (``music/phrase.py``; ``scene/melody.py`` plays it): ``bars`` the motif's length,
    ``min_notes`` its fewest notes (the voice's rhythm and density set how many more), ``span``
    the scale steps from its lowest note to its highest, ``max_leap`` its largest step between
    notes (in rungs of the voice's ladder: scale or chord), ``phrase_bars`` the phrase length
    when the harmony does not set one. ``motif = true`` takes the defaults."""

    bars: Literal[1, 2] = 2
    min_notes: Annotated[int, Field(ge=1, le=32)] = 3
    span: Annotated[int, Field(ge=1, le=12)] = 5
    max_leap: Annotated[int, Field(ge=1, le=7)] = 4
    phrase_bars: Annotated[int, Field(ge=1, le=32)] = 8


class NotesVoice(VoiceBase):
    """A melodic line: ``pitch`` gives its centre (default: warmth -> register, so warm colours
    play higher), and it wanders up to ``spread_steps`` scale steps around it; with ``motif``,
    it plays phrases built from a motif of the picture instead (``MotifSpec``)."""

    kind: Literal["notes"]
    pitch: PitchMapping = _m(PitchMapping, {"feature": "warmth", "out": [48, 84]})
    spread_steps: StepsMapping = _m(StepsMapping, 2)
    motif: Annotated[MotifSpec | None, BeforeValidator(_motif_flag)] = None


class ChordsVoice(VoiceBase):
    """The current chord of the harmony, voiced near ``pitch`` with smooth voice leading;
    without a ``rhythm``, one chord per chord change, held."""

    kind: Literal["chords"]
    pitch: PitchMapping = _m(PitchMapping, 60)
    register_: tuple[Pitch, Pitch] = Field(default=(48, 79), alias="register")


class SparkleVoice(VoiceBase):
    """Bright points (``star_points``) as short notes: the more stars, the more notes per step
    (up to ``max_notes``); a point's x sets when it plays within the step, its height the pitch
    (from ``pitch`` at the bottom of the picture to ``span_semitones`` above at the top), its
    level the velocity."""

    kind: Literal["sparkle"]
    pitch: PitchMapping = _m(PitchMapping, 72)
    span_semitones: Annotated[int, Field(ge=1, le=60)] = 24
    max_notes: Annotated[int, Field(ge=1, le=16)] = 4
    register_: tuple[Pitch, Pitch] = Field(default=(60, 108), alias="register")


class ScanVoice(VoiceBase):
    """The coarse luma grid, one column per step from left to right: each row whose cell is at
    least ``threshold`` bright plays (bottom row at ``pitch``, each row up one scale step
    higher), brighter cells louder; dark cells are silent."""

    kind: Literal["scan"]
    pitch: PitchMapping = _m(PitchMapping, 48)
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    max_notes: Annotated[int, Field(ge=1, le=8)] = 8


class DrumPart(SceneModel):
    """One drum sound (a GM name such as kick, snare, hat, or a note number) on its own rhythm."""

    sound: DrumSound
    rhythm: Rhythm
    velocity: VelocityMapping = _m(VelocityMapping, 100)
    density: UnitMapping = _m(UnitMapping, 1.0)


class DrumsVoice(VoiceBase):
    """Percussion: several parts on one channel (10, General MIDI drums, by default); the
    voice's ``density`` scales every part's, and its ``velocity`` every part's velocity
    (127, the default, plays them as written)."""

    kind: Literal["drums"]
    channel: Channel | None = 10
    velocity: VelocityMapping = _m(VelocityMapping, 127)
    parts: list[DrumPart] = Field(min_length=1, max_length=32)


Voice = Annotated[
    NotesVoice | ChordsVoice | SparkleVoice | ScanVoice | DrumsVoice,
    Field(discriminator="kind"),
]


# -- controls, triggers, streams ------------------------------------------------------------------

class ControlSpec(Mapping):
    """A continuous control: the mapping keys inline plus a target (``cc``, ``pitch_bend`` or
    ``osc``), sent ``rate_hz`` times a second and only when its value changes. ``out`` defaults
    to the target's full range (0..127, -8192..8191, 0..1)."""

    name: Annotated[str, Field(min_length=1)]
    cc: Annotated[int, Field(ge=0, le=119)] | None = None
    pitch_bend: bool = False
    osc: OscAddress | None = None
    channel: Channel | None = None
    rate_hz: Annotated[float, Field(ge=1.0, le=200.0)] = 60.0

    @model_validator(mode="after")
    def _check_target(self) -> ControlSpec:
        targets = [t for t, on in (("cc", self.cc is not None), ("pitch_bend", self.pitch_bend),
                                   ("osc", self.osc is not None)) if on]
        if len(targets) != 1:
            raise ValueError("give exactly one target: cc = <0..119>, pitch_bend = true or "
                             f"osc = \"/address\" (got {', '.join(targets) or 'none'})")
        if targets[0] != "osc" and self.channel is None:
            raise ValueError(f"a {targets[0]} control needs a MIDI 'channel' (1..16)")
        lo, hi = {"cc": (0, 127), "pitch_bend": (-8192, 8191), "osc": (-1e9, 1e9)}[targets[0]]
        for v in ([self.value] if self.value is not None else []) + list(self.out or ()):
            if not lo <= v <= hi:
                raise ValueError(f"{targets[0]} value {v:g} is outside {lo:g}..{hi:g}")
        return self


class TriggerNote(SceneModel):
    """The note a trigger plays; ``program`` (GM 1..128) is sent on its channel when the
    scene starts, as a voice's is (a bell needs its own sound)."""

    channel: Channel
    pitch: Pitch
    velocity: Velocity = 100
    length_beats: Annotated[float, Field(ge=0.01, le=64)] = 1.0
    program: Program | None = None


class TriggerCC(SceneModel):
    channel: Channel
    cc: Annotated[int, Field(ge=0, le=127)]
    value: Annotated[int, Field(ge=0, le=127)]


class TriggerOsc(SceneModel):
    address: OscAddress
    args: list[int | float | str | bool] = []


ALL_ONSETS: tuple[str, ...] = ONSET_NAMES + VISION_ONSET_NAMES


def check_onset(name: str) -> str:
    """An onset feature (``motion_onset``, ``enter_onset`` ...) or one inside a zone
    (``zone:door:enter_onset``)."""
    zoned = split_zone(name)
    base = zoned[1] if zoned is not None else name
    if base not in ALL_ONSETS:
        raise ValueError(f"{name!r} is not an onset; use one of {', '.join(ALL_ONSETS)}, or "
                         f"\"zone:<zone>:<onset>\" for one inside a zone")
    return check_feature(name)


OnsetFeature = Annotated[str, AfterValidator(check_onset)]


class TriggerSpec(SceneModel):
    """On an onset (``on``), play a note, send a CC and/or an OSC message, at once."""

    on: OnsetFeature
    note: TriggerNote | None = None
    cc: TriggerCC | None = None
    osc: TriggerOsc | None = None

    @model_validator(mode="after")
    def _check(self) -> TriggerSpec:
        if self.note is None and self.cc is None and self.osc is None:
            raise ValueError("give what to send: note = {...}, cc = {...} and/or osc = {...}")
        return self


class StreamSpec(SceneModel):
    """Every scalar feature (or those listed) streamed as it is, normalised to 0..1 by its
    registry range, ``rate_hz`` times a second (``sonify.scene.stream``): as OSC floats at
    ``<osc_prefix>/<name>`` every tick (``changes_only``: only when it changes), the ``arrays``
    at ``<osc_prefix>/<array>`` (floats), the mood at ``mood_osc`` (its number; one-hot at
    ``<mood_osc>/<label>``, its name at ``<mood_osc>/label``; default ``<osc_prefix>/mood``,
    "" for none); and/or as CCs ``cc_first``, ``cc_first + 1``, ... on ``cc_channel`` in
    registry order, each only when it changes."""

    features: list[FeatureName] | None = None
    osc_prefix: str = "/feature"
    cc_channel: Channel | None = None
    cc_first: Annotated[int, Field(ge=0, le=119)] = 20
    rate_hz: Annotated[float, Field(ge=1.0, le=200.0)] = 60.0
    mood_osc: str | None = None
    changes_only: bool = False
    arrays: list[str] = ["grid", "star_points"]  # of the registry's arrays

    @model_validator(mode="after")
    def _check(self) -> StreamSpec:
        if self.osc_prefix:
            _osc_address(self.osc_prefix)
        if self.mood_osc:
            _osc_address(self.mood_osc)
        unknown = [a for a in self.arrays if a not in ARRAY_NAMES]
        if unknown:
            raise ValueError(f"'arrays' {unknown} are not array features; use any of "
                             f"{', '.join(ARRAY_NAMES)}")
        n = len(self.names())
        if self.cc_channel is not None and self.cc_first + n - 1 > 119:
            raise ValueError(f"{n} features from CC {self.cc_first} run past CC 119: start at "
                             f"{120 - n} or lower")
        return self

    def names(self) -> tuple[str, ...]:
        return tuple(self.features) if self.features is not None else SCALAR_NAMES


# -- live parameters ------------------------------------------------------------------------------

class ParamSpec(SceneModel):
    """A live parameter: ``[params.intensity] min = 0, max = 1, value = 0.5``. A performer sets it
    (``/sonify/param/intensity 0.8``, a MIDI knob); mappings read it as
    ``feature = "param:intensity"``, normalised to 0..1 over ``min``..``max``."""

    # finite: an infinite bound has no middle to start at and nothing to normalise over
    min: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    max: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None  # default: the middle
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        if not math.isfinite(self.max - self.min):
            raise ValueError(f"'min' ({self.min:g}) and 'max' ({self.max:g}) are too far apart "
                             "to scale between: keep the range within ±1e300")
        if not self.min < self.max:
            raise ValueError(f"'min' ({self.min:g}) must be below 'max' ({self.max:g})")
        if self.value is not None and not self.min <= self.value <= self.max:
            raise ValueError(f"'value' {self.value:g} is outside {self.min:g}..{self.max:g}")
        return self

    @property
    def start(self) -> float:
        return self.value if self.value is not None else 0.5 * (self.min + self.max)

    def normalise(self, value: float) -> float:
        u = (value - self.min) / (self.max - self.min)
        return 0.0 if u < 0.0 else 1.0 if u > 1.0 else u


def _param_refs(node: Any) -> set[str]:
    """Every ``param:<name>`` a scene's mappings and choices read."""
    found: set[str] = set()
    if isinstance(node, BaseModel):
        feature = getattr(node, "feature", None)
        if isinstance(feature, str) and feature.startswith(PARAM_PREFIX):
            found.add(feature[len(PARAM_PREFIX):])
        for name in type(node).model_fields:
            found |= _param_refs(getattr(node, name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            found |= _param_refs(item)
    elif isinstance(node, dict):
        for item in node.values():
            found |= _param_refs(item)
    return found


def feature_names(scene: Scene) -> frozenset[str]:
    """Every feature name a scene's mappings, choices, stream, triggers and ``[teach]`` inputs
    read (``motion``, ``cam1:motion``, ``zone:door:presence``, ``param:x``, ``wek:1``)."""
    return frozenset(_feature_names(scene))


def _zone_refs(scene: Scene) -> set[str]:
    """The zones a scene's mappings, choices, stream, triggers and teach inputs read."""
    names: set[str] = set()
    for feature in _feature_names(scene):
        zoned = split_zone(feature)
        if zoned is not None:
            names.add(zoned[0])
    return names


def _feature_names(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, StreamSpec):
        found.update(node.features or ())
    elif isinstance(node, TriggerSpec):
        found.add(node.on)
    elif isinstance(node, TeachSpec):
        found.update(node.inputs)
    elif isinstance(node, BaseModel):
        feature = getattr(node, "feature", None)
        if isinstance(feature, str):
            found.add(feature)
        for name in type(node).model_fields:
            found |= _feature_names(getattr(node, name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            found |= _feature_names(item)
    elif isinstance(node, dict):
        for item in node.values():
            found |= _feature_names(item)
    return found


class ZoneSpec(SceneModel):
    """A named part of the frame (``[[zones]]``) that features can be read inside
    (``zone:<name>:<feature>``): ``rect = [x0, y0, x1, y1]`` or ``polygon = [[x, y], ...]`` in
    fractions of the frame (0..1, x to the right, y down). A config's ``[[analysis.zones]]``
    of the same name moves it (the room's geometry belongs to the installation)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    rect: tuple[float, float, float, float] | None = None
    polygon: list[tuple[float, float]] | None = None

    @model_validator(mode="after")
    def _check(self) -> ZoneSpec:
        if (self.rect is None) == (self.polygon is None):
            raise ValueError(f"zone {self.name!r}: give rect = [x0, y0, x1, y1] or polygon = "
                             f"[[x, y], ...] (fractions of the frame), one of them")
        self.zone()  # the geometry's own checks (inside the frame, an area)
        return self

    def zone(self) -> Zone:
        if self.rect is not None:
            return Zone.rect(self.name, *self.rect)
        return Zone(self.name, tuple(self.polygon or ()))


TEACH_OUTPUTS = ("tempo", "master", "transpose", "scene")
"""What a ``[teach]`` output may set besides ``param:<name>`` and ``mute:<voice>``."""


def _check_teach(scene: Scene, teach: TeachSpec) -> None:
    for name in teach.inputs:
        try:
            check_feature(name)
        except ValueError as exc:
            raise LocatedError("teach.inputs", str(exc)) from None
    voices = {v.name for v in scene.voices}
    for i, out in enumerate(teach.outputs):
        where = f"teach.outputs[{i}]"
        kind, _, arg = out.name.partition(":")
        if out.name in TEACH_OUTPUTS:
            if out.name == "scene" and out.choices is None:
                raise LocatedError(where, "output 'scene' picks a scene: give choices = "
                                          "[\"<scene>\", ...]")
        elif kind == "param" and arg:
            if arg not in scene.params:
                raise LocatedError(where, f"output {out.name!r}: the scene declares no "
                                          f"parameter {arg!r} (it has "
                                          f"{', '.join(scene.params) or 'none'})")
        elif kind == "mute" and arg:
            if arg not in voices:
                raise LocatedError(where, f"output {out.name!r}: the scene has no voice "
                                          f"{arg!r} (it has {', '.join(sorted(voices)) or 'none'})")
        else:
            raise LocatedError(where, f"output {out.name!r}: use param:<name>, mute:<voice>, "
                                      f"{', '.join(TEACH_OUTPUTS)}")


# -- the scene ------------------------------------------------------------------------------------

class Scene(SceneModel):
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    tempo: TempoSpec = TempoSpec()
    key: KeySpec = KeySpec()
    harmony: HarmonySpec = HarmonySpec()
    render: RenderSpec = RenderSpec()
    voices: list[Voice] = []
    controls: list[ControlSpec] = []
    triggers: list[TriggerSpec] = []
    stream: StreamSpec | None = None
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], ParamSpec] = {}
    zones: list[ZoneSpec] = []
    teach: TeachSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> Scene:
        zones = [z.name for z in self.zones]
        unknown = sorted(_zone_refs(self) - set(zones))
        if unknown:
            raise ValueError(f"features read zones {', '.join(unknown)} that the scene does not "
                             f"declare: add [[zones]] name = \"{unknown[0]}\" with rect = "
                             f"[x0, y0, x1, y1] (fractions of the frame)")
        if self.teach is not None:
            _check_teach(self, self.teach)
        missing = sorted(_param_refs(self) - set(self.params))
        if missing:
            raise ValueError(f"mappings read undeclared parameters {', '.join(missing)}: declare "
                             f"each under [params.<name>] with min, max and value")
        for what, names in (("voice", [v.name for v in self.voices]),
                            ("control", [c.name for c in self.controls]), ("zone", zones)):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{what} names must be unique: {', '.join(dup)} repeated")
        check_cost(self)
        return self


# -- loading --------------------------------------------------------------------------------------

def scene_dirs() -> list[Path]:
    """Where scene names are looked up, in order."""
    dirs = [Path(p) for p in os.environ.get(SCENES_ENV, "").split(os.pathsep) if p]
    dirs.append(shipped("scenes"))
    return dirs


def available_scenes() -> dict[str, Path]:
    """Scene name -> file, the first found in ``scene_dirs()`` winning."""
    found: dict[str, Path] = {}
    for d in scene_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                found.setdefault(p.stem, p)
    return dict(sorted(found.items()))


def resolve_scene(path_or_name: str | Path) -> Path:
    """The file for a scene path or name; SceneError listing the available scenes otherwise."""
    text = str(path_or_name)
    looks_like_path = (isinstance(path_or_name, Path) or text.endswith(".toml")
                       or "/" in text or os.sep in text)
    if looks_like_path:
        p = Path(text).expanduser()
        if p.is_file():
            return p
        raise SceneError(f"scene file {p} not found")
    scenes = available_scenes()
    if text in scenes:
        return scenes[text]
    where = ", ".join(str(d) for d in scene_dirs())
    names = ", ".join(scenes) or "none"
    raise SceneError(f"unknown scene {text!r}: available scenes are {names} (looked in {where}; "
                     f"or give a path to a .toml file)")


def load_scene(path_or_name: str | Path) -> Scene:
    """Read and check a scene by name (see ``scene_dirs``) or path."""
    path = resolve_scene(path_or_name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(f"scene file {path}: cannot read it: {exc}") from None
    return parse_scene(text, str(path))


def parse_scene(text: str, source: str = "<scene>") -> Scene:
    """Check the TOML ``text`` of a scene; ``source`` names it in errors."""
    try:
        data = tomlfile.loads(text)  # tomllib, without RecursionError on deep nesting
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(f"scene file {source}: TOML syntax error: {exc}") from None
    except tomlfile.TomlContentError as exc:
        raise SceneError(f"scene file {source}: {exc}") from None
    try:
        return Scene.model_validate(data)
    except ValidationError as exc:
        lines = describe_errors(exc, data, Scene, VOICE_KINDS)
        n = len(lines)
        if n == 1:  # one error, one line (the CLI prints it as it is)
            raise SceneError(f"scene file {source}: {lines[0].strip()}") from None
        head = f"scene file {source}: {n} errors:"
        raise SceneError("\n  ".join([head, *lines])) from None
