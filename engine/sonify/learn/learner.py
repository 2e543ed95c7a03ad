"""The learner the performance core drives on the music thread: record, train, run.

Wekinator's loop, in one object with no threads of its own:

- ``set_outputs(values)``: the output values the next examples pair with (the scene's params
  and tempo as the artist sets them, or Wekinator's outputs message); an output never set
  holds the middle of its range (the first choice);
- ``step(inputs, t)`` once a frame: keeps the latest inputs; while recording adds an example
  at ``record_hz`` (on a grid of the engine clock ``t``, so a virtual clock records exactly as
  a real one); while running with a model predicts, smooths each continuous output (a one-pole
  low-pass of ``smoothing_s``, exact for uneven frame intervals), clips it to its range and
  returns ``{output: value}`` (a discrete output: the choice's index, unsmoothed);
- ``command(action)``: one of ``TEACH_ACTIONS``, answered with a line for the log and the page.
  Recording and running exclude each other (the model would fight the knobs being recorded).

Files: the examples are saved beside the scene after ``snapshot``, ``stop_recording`` and
``clear``, the model after ``train``; both load at start. A file that cannot be read is
logged with its reason and left alone (never overwritten: an unreadable examples file stops
the saving of new examples until it is fixed or deleted); the scene plays on without it.
Training that cannot work (no examples, one choice only) keeps the old model and says why.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sonify.learn.errors import ExamplesError, LearnError, ModelError
from sonify.learn.examples import ExampleSet
from sonify.learn.model import Model
from sonify.learn.spec import TeachSpec

logger = logging.getLogger(__name__)


class Learner:
    """Mapping by example for one scene's ``[teach]`` (see the module doc)."""

    def __init__(self, spec: TeachSpec, examples_path: Path | None,
                 model_path: Path | None) -> None:
        self.spec = spec
        self.examples_path = examples_path
        self.model_path = model_path
        self.examples = ExampleSet(spec.input_names, spec.output_names)
        self.model: Model | None = None
        self.recording = False
        self.running = False
        self.error: str | None = None
        self._save_examples = examples_path is not None
        self._values = [o.default_value() for o in spec.outputs]
        self._index = {o.name: i for i, o in enumerate(spec.outputs)}
        self._x: np.ndarray | None = None
        self._next_record_t: float | None = None
        self._smoothed: list[float] | None = None
        self._last_t: float | None = None
        self._last: dict[str, float] | None = None
        self._load()

    def _load(self) -> None:
        if self.examples_path is not None and self.examples_path.exists():
            try:
                self.examples = ExampleSet.load(self.examples_path, self.spec.input_names,
                                                self.spec.output_names)
            except ExamplesError as exc:
                self._save_examples = False
                self._fail(f"{exc} (new examples are not saved until it is fixed or deleted)")
        if self.model_path is not None and self.model_path.exists():
            try:
                self.model = Model.load(self.model_path, self.spec)
            except ModelError as exc:
                self._fail(f"{exc}; playing without the model")

    def _fail(self, message: str) -> str:
        self.error = message
        logger.error("%s", message)
        return message

    # -- commands ----------------------------------------------------------------------------

    def command(self, action: str) -> str:
        """Do one of ``TEACH_ACTIONS`` and say what happened in one line."""
        match action:
            case "record":
                self.recording, self.running = True, False
                self._next_record_t = None
                return f"recording examples at {self.spec.record_hz:g}/s"
            case "stop_recording":
                was = self.recording
                self.recording = False
                saved = self._store_examples()
                return (f"recording stopped: {len(self.examples)} examples{saved}" if was
                        else "not recording")
            case "snapshot":
                if self._x is None:
                    return "no features yet: nothing recorded"
                if not self._add(self._x, self._last_t or 0.0):
                    return self.error or "example not recorded"
                return f"example {len(self.examples)} recorded{self._store_examples()}"
            case "train":
                return self._train()
            case "run":
                if self.model is None:
                    return "no model yet: record examples and train first"
                self.running, self.recording = True, False
                self._smoothed = None
                return f"running the {self._algorithms()} model"
            case "stop_running":
                self.running = False
                self._last = None
                return "stopped running the model"
            case "clear":
                n = len(self.examples)
                self.examples.clear()
                return f"deleted {n} examples (the model stays){self._store_examples()}"
        raise ValueError(f"unknown teach action {action!r}")

    def _algorithms(self) -> str:
        discrete = any(o.discrete for o in self.spec.outputs)
        continuous = not all(o.discrete for o in self.spec.outputs)
        return "/".join(([self.spec.regression] if continuous else [])
                        + ([self.spec.classification] if discrete else []))

    def _train(self) -> str:
        from sonify.learn.train import train  # scikit-learn: loaded on the first training

        try:
            model = train(self.spec, self.examples)
        except LearnError as exc:
            kept = "the old model stays" if self.model is not None else "no model yet"
            return self._fail(f"cannot train: {exc} ({kept})")
        self.model = model
        self.error = None
        saved = ""
        if self.model_path is not None:
            try:
                model.save(self.model_path)
                saved = f", saved to {self.model_path.name}"
            except OSError as exc:
                self._fail(f"{self.model_path}: cannot save the model: {exc}")
                saved = " (not saved)"
        return (f"trained {self._algorithms()} on {model.examples} examples in "
                f"{model.train_ms:.0f} ms{saved}")

    def _store_examples(self) -> str:
        if self.examples_path is None:
            return ""
        if not self._save_examples:
            return " (not saved: the examples file could not be read)"
        try:
            self.examples.save(self.examples_path)
        except OSError as exc:
            self._fail(f"{self.examples_path}: cannot save the examples: {exc}")
            return " (not saved)"
        return ""

    # -- the frame loop ----------------------------------------------------------------------

    def set_outputs(self, values: Mapping[str, float]) -> None:
        """The current values of some outputs (names from the spec; others: ValueError)."""
        for name, value in values.items():
            i = self._index.get(name)
            if i is None:
                raise ValueError(f"{name!r} is not a [teach] output (outputs: "
                                 f"{', '.join(self._index)})")
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(f"teach output {name!r}: {value!r} is not a finite number")
            self._values[i] = self.spec.outputs[i].clip(v)

    def _add(self, x: np.ndarray, t: float) -> bool:
        if np.isnan(x).any():
            missing = [n for n, v in zip(self.spec.inputs, x, strict=True) if math.isnan(v)]
            self.error = f"example not recorded: no value for {', '.join(missing)}"
            return False
        self.examples.add(x, self._values, t)
        return True

    def step(self, inputs: Mapping[str, float], t: float) -> dict[str, float] | None:
        """One frame: record and/or predict (see the module doc)."""
        x = np.array([inputs.get(n, math.nan) for n in self.spec.inputs], dtype=np.float64)
        dt = None if self._last_t is None else t - self._last_t
        self._x, self._last_t = x, t
        if self.recording:
            period = 1.0 / self.spec.record_hz
            due = self._next_record_t
            if due is None or t >= due - 1e-9:
                self._add(x, t)
                # the next grid point; after a stall, restart the grid rather than catch up
                nxt = (t if due is None else due) + period
                self._next_record_t = nxt if nxt > t else t + period
        if not self.running or self.model is None:
            return None
        y = self.model.predict(x)
        smoothed = self._smooth(y, dt)
        self._last = {o.name: o.clip(v)
                      for o, v in zip(self.spec.outputs, smoothed, strict=True)}
        return self._last

    def _smooth(self, y: np.ndarray, dt: float | None) -> list[float]:
        prev = self._smoothed
        out = [float(v) for v in y]
        if prev is not None and dt is not None and dt > 0:
            for i, o in enumerate(self.spec.outputs):
                if not o.discrete and o.smoothing_s > 0:
                    a = 1.0 - math.exp(-dt / o.smoothing_s)
                    out[i] = prev[i] + a * (out[i] - prev[i])
        self._smoothed = out
        return out

    def status(self) -> dict[str, Any]:
        """What the page and ``/sonify/status`` show."""
        model: dict[str, Any] | None = None
        if self.model is not None:
            model = {"algorithm": self._algorithms(), "examples": self.model.examples,
                     "trained_at": time.strftime("%Y-%m-%d %H:%M:%S",
                                                 time.localtime(self.model.trained_at)),
                     "train_ms": self.model.train_ms}
        return {"examples": len(self.examples), "recording": self.recording,
                "running": self.running, "model": model, "last": self._last,
                "error": self.error}
