"""Shared makings of the learning tests: two demo-like looks and the specs that learn them."""

from __future__ import annotations

import numpy as np

from sonify.learn.examples import ExampleSet
from sonify.learn.learner import Learner
from sonify.learn.spec import DEFAULT_INPUTS, TeachOutput, TeachSpec

# two looks as the camera sees them: a warm, bright, calm sunset and a cool, busy night city
SUNSET = {n: 0.5 for n in DEFAULT_INPUTS} | {
    "brightness": 0.8, "warmth": 0.9, "saturation": 0.7, "motion": 0.1, "edge_density": 0.2,
    "valence": 0.8, "arousal": 0.3, "stars": 0.0}
NIGHT = {n: 0.5 for n in DEFAULT_INPUTS} | {
    "brightness": 0.2, "warmth": 0.2, "saturation": 0.3, "motion": 0.7, "edge_density": 0.6,
    "valence": 0.3, "arousal": 0.8, "stars": 9.0}
# what the artist sets for each look: intensity, tempo, and the scene to play
SUNSET_OUT = {"param:intensity": 0.2, "tempo": 80.0, "scene": 0.0}
NIGHT_OUT = {"param:intensity": 0.9, "tempo": 140.0, "scene": 1.0}

PAIRS = [("knn", "knn"), ("mlp", "mlp"), ("ridge", "logistic")]


def spec(regression: str = "knn", classification: str = "knn", **kw: object) -> TeachSpec:
    return TeachSpec(outputs=[
        TeachOutput(name="param:intensity", lo=0.0, hi=1.0, smoothing_s=0.2),
        TeachOutput(name="tempo", lo=40.0, hi=200.0, smoothing_s=0.2),
        TeachOutput(name="scene", choices=["dawn", "city"]),
    ], regression=regression, classification=classification, **kw)  # type: ignore[arg-type]


def noisy(look: dict[str, float], rng: np.random.Generator, amount: float = 0.02
          ) -> dict[str, float]:
    return {k: v + amount * (16.0 if k == "stars" else 1.0) * float(rng.standard_normal())
            for k, v in look.items()}


def record_two_looks(learner: Learner, seconds: float = 1.0, fps: float = 30.0,
                     seed: int = 0) -> float:
    """Show each look for ``seconds`` while recording, as an artist would; returns the time."""
    rng = np.random.default_rng(seed)
    t = 0.0
    for look, out in ((SUNSET, SUNSET_OUT), (NIGHT, NIGHT_OUT)):
        learner.set_outputs(out)
        learner.command("record")
        for _ in range(int(seconds * fps)):
            learner.step(noisy(look, rng), t)
            t += 1.0 / fps
        learner.command("stop_recording")
    return t


def random_examples(s: TeachSpec, n: int, seed: int = 0) -> ExampleSet:
    rng = np.random.default_rng(seed)
    ex = ExampleSet(s.input_names, s.output_names)
    for i in range(n):
        y = [float(i % len(o.choices)) if o.choices else float(rng.uniform(o.lo or 0, o.hi or 1))
             for o in s.outputs]
        ex.add(rng.random(len(s.inputs)), y, float(i))
    return ex
