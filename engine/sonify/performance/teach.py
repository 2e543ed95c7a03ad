"""Mapping by example in the performance: the scene's ``[teach]`` learner, on the music thread.

``TeachPart`` keeps a ``sonify.learn.Learner`` for the scene that plays (a new one when the
scene changes; none when the scene has no ``[teach]``) and, once a block:

- tells it the outputs' current values (the scene's parameters, tempo, master, transpose,
  scene and mutes, as the knobs and commands left them), so that recording pairs what the
  camera sees with what the artist set;
- gives it the inputs (the features the ``[teach]`` names: the camera's, the people's, a
  zone's, ``wek:<n>`` from Wekinator's input port) and, while the model runs, applies what it
  predicts as the same commands a knob would send (only when a value changes), and hands the
  values to ``on_outputs`` (Wekinator's ``/wek/outputs``).

``Teach`` commands (OSC ``/sonify/teach/*``, MIDI, the page, Wekinator's control messages)
record, train, run and clear; ``TeachOutputs`` sets the outputs (and so the music) to values
to record. Training runs on a worker thread live (``threaded``), so the music thread never
waits for scikit-learn; in a render it runs in place, so a render stays deterministic.

Files: a scene file of the user's keeps its examples and model beside it
(``<scene>.examples.json``, ``<scene>.model.npz``); a shipped scene keeps them in the user's
data folder (``$XDG_DATA_HOME/sonify/teach``, by default ``~/.local/share/sonify/teach``).
A model found at start plays at once (a box restarted plays what it was taught).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sonify.commands import Command, Mute, SetMaster, SetParam, SetScene, SetTempo, Transpose
from sonify.features.analyzer import Features
from sonify.learn.learner import Learner
from sonify.learn.spec import TeachSpec
from sonify.resources import shipped
from sonify.scene.mapping import WEK_PREFIX
from sonify.scene.schema import Scene

logger = logging.getLogger(__name__)

TEACH_DIR_ENV = "SONIFY_TEACH_DIR"
"""Overrides where every scene's examples and model are kept (tests, a box's data disk)."""


def teach_dir() -> Path:
    """Where a shipped scene's examples and model are kept."""
    if os.environ.get(TEACH_DIR_ENV):
        return Path(os.environ[TEACH_DIR_ENV])
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "sonify" / "teach"


def teach_files(scene: Scene, path: Path | None) -> tuple[Path, Path]:
    """(examples, model) files for ``scene`` read from ``path`` (None: not from a file)."""
    base: Path
    if os.environ.get(TEACH_DIR_ENV) or path is None:
        base = teach_dir() / scene.name
    else:
        resolved = path.resolve()
        if resolved.parent == shipped("scenes").resolve():
            base = teach_dir() / scene.name
        else:
            base = resolved.with_suffix("")
    return base.with_name(base.name + ".examples.json"), base.with_name(base.name + ".model.npz")


def merge_wek(features: Features, values: Mapping[str, float],
              wanted: Sequence[str]) -> Features:
    """``features`` with the ``wek:<n>`` values ``wanted`` reads (0 for one not received)."""
    from dataclasses import replace

    add = {n: float(values.get(n, 0.0)) for n in wanted}
    return replace(features, values={**features.values, **add}, raw={**features.raw, **add})


class TeachPart:
    """The learner of the scene that plays (see the module doc). ``apply(cmd)`` applies a
    command now on the music thread; ``current()`` reads the performance's state for the
    outputs."""

    def __init__(self, apply: Callable[[Command], None],
                 current: Callable[[], Mapping[str, Any]], *, threaded: bool) -> None:
        self._apply = apply
        self._current = current
        self.threaded = threaded
        self.learner: Learner | None = None
        self.spec: TeachSpec | None = None
        self.scene_name = ""
        self.external: Callable[[], Mapping[str, float]] | None = None  # Wekinator's inputs
        self.on_outputs: Callable[[Sequence[float]], object] | None = None  # /wek/outputs
        self.last_message = ""
        self._sent: dict[str, float | str | bool] = {}
        self._training: threading.Thread | None = None
        self._wek: tuple[str, ...] = ()

    # -- the scene ------------------------------------------------------------------------------

    def scene_changed(self, scene: Scene, path: Path | None) -> None:
        """A scene starts: its learner (its examples and model loaded), or none."""
        if self.learner is not None and self.learner.recording:
            self.learner.command("stop_recording")  # keep what was recorded
        if scene.teach is None and self._picks(scene.name):
            self.scene_name = scene.name  # the model chose this scene: it plays on in it
            return
        self.scene_name = scene.name
        self.spec = scene.teach
        self._sent = {}
        if scene.teach is None:
            self.learner = None
            self._wek = ()
            return
        examples, model = teach_files(scene, path)
        self.learner = Learner(scene.teach, examples, model)
        if self.threaded:  # scikit-learn takes a second to import: not at the first Train
            from sonify.learn.train import preload

            threading.Thread(target=preload, name="sonify-teach-preload", daemon=True).start()
        self._wek = tuple(n for n in scene.teach.inputs if n.startswith(WEK_PREFIX))
        if self.learner.model is not None:
            self.say(self.learner.command("run"))

    def _picks(self, name: str) -> bool:
        """Whether the running model has a ``scene`` output that can choose ``name``."""
        learner = self.learner
        return learner is not None and learner.running and any(
            o.name == "scene" and o.choices and name in o.choices for o in learner.spec.outputs)

    def say(self, message: str) -> str:
        self.last_message = message
        logger.info("teach (%s): %s", self.scene_name, message)
        return message

    # -- commands -------------------------------------------------------------------------------

    def command(self, action: str) -> str:
        learner = self.learner
        if learner is None:
            raise ValueError(f"scene {self.scene_name!r} has no [teach] table: nothing to "
                             f"record, train or run (see the README, 'Teach it by example')")
        if action == "train" and self.threaded:
            return self._train_in_background(learner)
        if action in ("record", "snapshot"):
            if self._training is not None:
                return self.say("training: record again when it is done")
            learner.set_outputs(self._outputs_now())  # what the knobs say now
        return self.say(learner.command(action))

    def _train_in_background(self, learner: Learner) -> str:
        if self._training is not None and self._training.is_alive():
            return self.say("already training")
        if learner.recording:
            learner.command("stop_recording")

        def train() -> None:
            self.say(learner.command("train"))
            self._training = None

        self._training = threading.Thread(target=train, name="sonify-teach-train",
                                          daemon=True)
        self._training.start()
        return self.say(f"training on {len(learner.examples)} examples")

    def set_outputs(self, values: Sequence[float]) -> None:
        """``TeachOutputs``: the outputs (in ``[teach] outputs`` order) set to ``values``, as a
        knob would set them, so the next examples record them and the music plays them."""
        if self.spec is None:
            raise ValueError(f"scene {self.scene_name!r} has no [teach] table")
        outs = self.spec.outputs
        if len(values) > len(outs):
            raise ValueError(f"{len(values)} output values for {len(outs)} outputs "
                             f"({', '.join(o.name for o in outs)})")
        for out, value in zip(outs, values, strict=False):
            self._set(out.name, out.choices, float(value), force=True)

    # -- the block ------------------------------------------------------------------------------

    def inputs(self, features: Features | None) -> Features | None:
        """``features`` with the Wekinator inputs the ``[teach]`` reads."""
        if features is None or not self._wek or self.external is None:
            return features
        return merge_wek(features, self.external(), self._wek)

    def step(self, features: Features | None, now: float) -> None:
        learner = self.learner
        if learner is None or features is None:
            return
        if learner.recording:
            learner.set_outputs(self._outputs_now())
        out = learner.step(features.values, now)
        if out is None:
            return
        spec = learner.spec
        for o in spec.outputs:
            self._set(o.name, o.choices, out[o.name])
        if self.on_outputs is not None:
            self.on_outputs([out[o.name] for o in spec.outputs])

    def _outputs_now(self) -> dict[str, float]:
        """The outputs' values as the performance has them now."""
        assert self.spec is not None
        state = self._current()
        values: dict[str, float] = {}
        params = state.get("params", {})
        for o in self.spec.outputs:
            kind, _, arg = o.name.partition(":")
            if kind == "param" and arg in params:
                values[o.name] = float(params[arg])
            elif o.name == "tempo":  # what the knob set, not the tempo gliding towards it
                fixed = state.get("tempo_set_bpm")
                values[o.name] = float(fixed if fixed is not None else state["tempo_bpm"])
            elif o.name == "master":
                values[o.name] = float(state["master"])
            elif o.name == "transpose":
                values[o.name] = float(state["transpose"])
            elif o.name == "scene" and o.choices is not None:
                scene = state["scene"]
                values[o.name] = float(o.choices.index(scene)) if scene in o.choices else 0.0
            elif kind == "mute":
                values[o.name] = 1.0 if arg in state["muted"] else 0.0
        return values

    def _set(self, name: str, choices: list[str] | None, value: float, *,
             force: bool = False) -> None:
        """Apply one output's value as its command, when it differs from the last sent."""
        if not math.isfinite(value):
            return
        kind, _, arg = name.partition(":")
        cmd: Command
        key: float | str | bool
        if kind == "param":
            key = round(value, 6)
            cmd = SetParam(arg, value)
        elif name == "tempo":
            cmd = SetTempo.clamped(value)
            key = round(cmd.bpm, 2)
        elif name == "master":
            cmd = SetMaster.clamped(value)
            key = round(cmd.level, 4)
        elif name == "transpose":
            cmd = Transpose.clamped(round(value))
            key = cmd.semitones
        elif name == "scene" and choices:
            key = choices[min(max(round(value), 0), len(choices) - 1)]
            if not force and key == self.scene_name:
                self._sent[name] = key
                return
            cmd = SetScene(key)
        elif kind == "mute":
            key = value >= 0.5
            cmd = Mute(arg, key)
        else:
            return
        if not force and self._sent.get(name) == key:
            return
        self._sent[name] = key
        self._apply(cmd)

    def status(self) -> dict[str, Any] | None:
        if self.learner is None:
            return None
        status = self.learner.status()
        status["message"] = self.last_message
        status["training"] = self._training is not None
        status["outputs"] = [o.name for o in self.learner.spec.outputs]
        status["inputs"] = list(self.learner.spec.inputs)
        return status
