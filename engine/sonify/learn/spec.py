"""A scene's ``[teach]`` table: which features a learned mapping reads and what it plays.

    [teach]
    inputs = ["brightness", "warmth", "motion", "center_x"]    # default: DEFAULT_INPUTS
    regression = "knn"          # knn | mlp | ridge: continuous outputs
    classification = "knn"      # knn | mlp | logistic: discrete outputs
    k = 3                       # neighbours (knn)
    degree = 2                  # polynomial degree (ridge)
    hidden = 16                 # hidden units (mlp)
    record_hz = 10              # examples a second while recording

    [[teach.outputs]]
    name = "param:intensity"    # a continuous output in its own units, clipped to lo..hi
    lo = 0.0
    hi = 1.0
    smoothing_s = 0.15

    [[teach.outputs]]
    name = "scene"              # a discrete output: the model picks one of the choices
    choices = ["dawn", "city"]

The names are plain strings here: this layer sits below the scene and the features, so the
scene schema checks that every input is a feature and every output something the scene can
set; this module checks the shape (unique names, a continuous output or a choice, sane sizes).

``model_hash`` fingerprints what a trained model depends on (inputs, outputs and their choices,
the algorithms and their sizes) and not what only shapes playing (ranges, smoothing, record
rate), so editing a range keeps the model and changing an input asks for a new one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_INPUTS: tuple[str, ...] = (
    "brightness", "contrast", "saturation", "chroma", "colorfulness", "warmth", "hue",
    "edge_density", "geometry", "texture", "motion", "motion_x", "motion_y", "center_x",
    "center_y", "stars", "valence", "arousal",
)
"""The camera's slowly varying scalar features: everything but the onsets and the scene cut,
which are momentary and would teach the model a click."""

Regression = Literal["knn", "mlp", "ridge"]
Classification = Literal["knn", "mlp", "logistic"]
MAX_INPUTS = 256
MAX_OUTPUTS = 128


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeachOutput(_Model):
    """One thing the model sets: continuous (optionally within ``lo``..``hi``) or one of
    ``choices`` (classification; its value is the choice's index)."""

    name: str = Field(min_length=1)
    lo: float | None = None
    hi: float | None = None
    choices: list[str] | None = None
    smoothing_s: float = Field(default=0.15, ge=0.0, le=60.0)

    @model_validator(mode="after")
    def _shape(self) -> TeachOutput:
        if self.choices is not None:
            if self.lo is not None or self.hi is not None:
                raise ValueError(f"output {self.name!r}: a discrete output (choices) has no "
                                 f"lo/hi range")
            if len(self.choices) < 2:
                raise ValueError(f"output {self.name!r}: choices need two or more items, got "
                                 f"{self.choices!r}")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"output {self.name!r}: choices repeat an item: "
                                 f"{self.choices!r}")
        elif (self.lo is None) != (self.hi is None):
            raise ValueError(f"output {self.name!r}: give both lo and hi, or neither")
        elif self.lo is not None and self.hi is not None and not self.lo < self.hi:
            raise ValueError(f"output {self.name!r}: lo ({self.lo}) must be below hi "
                             f"({self.hi})")
        return self

    @property
    def discrete(self) -> bool:
        return self.choices is not None

    def default_value(self) -> float:
        """What the output holds before anyone sets it: the middle of its range, 0 without
        one, the first choice."""
        if self.lo is not None and self.hi is not None:
            return (self.lo + self.hi) / 2.0
        return 0.0

    def clip(self, value: float) -> float:
        """``value`` kept within the output's range (a discrete one: a valid index)."""
        if self.choices is not None:
            return float(min(max(round(value), 0), len(self.choices) - 1))
        if self.lo is not None and self.hi is not None:
            return min(max(value, self.lo), self.hi)
        return value


class TeachSpec(_Model):
    """A scene's ``[teach]`` table (see the module doc)."""

    inputs: list[str] = Field(default_factory=lambda: list(DEFAULT_INPUTS), min_length=1,
                              max_length=MAX_INPUTS)
    outputs: list[TeachOutput] = Field(min_length=1, max_length=MAX_OUTPUTS)
    regression: Regression = "knn"
    classification: Classification = "knn"
    k: int = Field(default=3, ge=1, le=64)
    degree: int = Field(default=2, ge=1, le=3)
    hidden: int = Field(default=16, ge=1, le=256)
    record_hz: float = Field(default=10.0, gt=0.0, le=120.0)

    @model_validator(mode="after")
    def _unique(self) -> TeachSpec:
        for what, names in (("inputs", self.inputs),
                            ("outputs", [o.name for o in self.outputs])):
            seen: set[str] = set()
            for n in names:
                if not n:
                    raise ValueError(f"{what}: an empty name")
                if n in seen:
                    raise ValueError(f"{what}: {n!r} is listed twice")
                seen.add(n)
        return self

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    def model_hash(self) -> str:
        """A fingerprint of what a trained model depends on (see the module doc)."""
        key = {
            "inputs": self.inputs,
            "outputs": [[o.name, o.choices] for o in self.outputs],
            "regression": self.regression, "classification": self.classification,
            "k": self.k, "degree": self.degree, "hidden": self.hidden,
        }
        blob = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
