"""Mapping by example against its targets (issue 14): training time, prediction time, and the
dispatch jitter a running model causes, each beside the analysis measured in the same run.

- ``analysis_ms``: ``Analyzer().analyze`` on a 480-wide demo frame (the live analysis size);
- ``train_ms``: 10 and 50 examples of 30 inputs -> 16 outputs, per algorithm (regression on 16
  continuous outputs; classification on 12 continuous (k-NN) + 4 discrete of 4 choices), the
  median of ``rounds``; target < 200 ms;
- ``predict_us``: ``Model.predict`` on one frame, 50 examples; target < 500 us;
- every figure also as a ratio to ``analysis_ms`` (the machine's speed cancels out);
- ``jitter``: the scheduler's lateness p99 on a 1 ms grid with nothing else running, and while
  another thread runs the slowest predictor in a tight loop (the GIL switch interval at 1 ms,
  as the live runtime sets it). The loop is the worst case: live, a model predicts once a frame.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sonify.capture import open_source
from sonify.capture.base import Frame
from sonify.features.analyzer import Analyzer
from sonify.learn.examples import ExampleSet
from sonify.learn.model import Model
from sonify.learn.spec import TeachOutput, TeachSpec
from sonify.learn.train import preload, train
from sonify.timing.clock import RealTime
from sonify.timing.scheduler import Scheduler
from sonify.tools.loadbench import NullOutput, _grid

N_INPUTS, N_OUTPUTS = 30, 16
REGRESSION = ("knn", "mlp", "ridge")
CLASSIFICATION = ("knn", "mlp", "logistic")
GIL_SWITCH_S = 0.001  # as the live runtime sets it


def _spec(regression: str = "knn", classification: str = "knn", discrete: int = 0) -> TeachSpec:
    outs = [TeachOutput(name=f"out{i}", lo=0.0, hi=1.0) for i in range(N_OUTPUTS - discrete)]
    outs += [TeachOutput(name=f"choice{i}", choices=["a", "b", "c", "d"])
             for i in range(discrete)]
    return TeachSpec(inputs=[f"in{i}" for i in range(N_INPUTS)], outputs=outs,
                     regression=regression, classification=classification)  # type: ignore[arg-type]


def _examples(spec: TeachSpec, n: int, seed: int = 0) -> ExampleSet:
    rng = np.random.default_rng(seed)
    ex = ExampleSet(spec.input_names, spec.output_names)
    for i in range(n):
        y = [float(i % 4) if o.discrete else float(rng.random()) for o in spec.outputs]
        ex.add(rng.random(N_INPUTS), y, float(i))
    return ex


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _analysis_ms(rounds: int) -> float:
    with open_source("demo:city", width=480, height=270, seed=0) as src:
        it = iter(src)
        frames = [next(it).image for _ in range(4)]
    analyzer = Analyzer()
    for i, f in enumerate(frames):
        analyzer.analyze(Frame(i, i / 30, f))  # warm up (numba, caches)
    n = [len(frames)]

    def one() -> None:
        analyzer.analyze(Frame(n[0], n[0] / 30, frames[n[0] % len(frames)]))
        n[0] += 1

    return _median_ms(one, rounds * 5)


def _predict_us(model: Model, rounds: int) -> float:
    x = np.random.default_rng(1).random(N_INPUTS)
    model.predict(x)
    return statistics.median(_median_ms(lambda: model.predict(x), 50) for _ in range(rounds)) * 1e3


def _lateness_p99(seconds: float, busy: Callable[[], object] | None,
                  period_s: float = 0.0) -> tuple[float, int]:
    """Scheduler p99 lateness (ms) over a 1 ms grid; ``busy`` runs on another thread
    meanwhile, every ``period_s`` (0: in a loop, as fast as it goes). Returns (p99, calls of
    ``busy``)."""
    sched = Scheduler([NullOutput()], RealTime())
    sched.start()
    stop = threading.Event()
    calls = [0]

    def loop() -> None:
        while not stop.is_set():
            assert busy is not None
            busy()
            calls[0] += 1
            if period_s > 0:
                stop.wait(period_s)

    worker = threading.Thread(target=loop, daemon=True) if busy is not None else None
    try:
        if worker is not None:
            worker.start()
        sched.schedule(_grid(time.perf_counter() + 0.05, seconds))
        time.sleep(seconds + 0.1)
    finally:
        stop.set()
        if worker is not None:
            worker.join()
        lat = sched.lateness()
        sched.stop(panic=False)
    return lat.p99_ms, calls[0]


def _trainer(spec: TeachSpec, examples: ExampleSet) -> Callable[[], object]:
    return lambda: train(spec, examples)


def run_learn_bench(rounds: int = 5, jitter_s: float = 2.0,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The figures of the module doc, as one JSON-ready dict."""
    preload()
    rows: list[dict[str, Any]] = []
    slowest: tuple[float, Model | None] = (0.0, None)
    jobs = [("regression", r, _spec(r, "knn")) for r in REGRESSION]
    jobs += [("classification", c, _spec("knn", c, discrete=4)) for c in CLASSIFICATION]
    analysis_ms = _analysis_ms(rounds)
    for kind, name, spec in jobs:
        if progress:
            progress(f"training {kind} {name}")
        row: dict[str, Any] = {"kind": kind, "algorithm": name}
        for n in (10, 50):
            ex = _examples(spec, n)
            train(spec, ex)  # warm up
            row[f"train_ms_{n}"] = round(_median_ms(_trainer(spec, ex), rounds), 2)
        model = train(spec, _examples(spec, 50))
        row["predict_us"] = round(_predict_us(model, rounds), 1)
        if row["predict_us"] > slowest[0]:
            slowest = (row["predict_us"], model)
        rows.append(row)
    analysis_now = _analysis_ms(rounds)  # again after: the ratio uses both (drift)
    analysis = (analysis_ms + analysis_now) / 2
    for row in rows:
        for key in ("train_ms_10", "train_ms_50"):
            row[key.replace("_ms", "_x_analysis")] = round(row[key] / analysis, 2)
        row["predict_x_analysis"] = round(row["predict_us"] / 1e3 / analysis, 4)
    if progress:
        progress("scheduler jitter with and without a model")
    switch = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        busy = slowest[1]
        assert busy is not None
        x = np.random.default_rng(2).random(N_INPUTS)
        # interleaved: alone, with the model once a frame (live: 60 frames a second at
        # most), with the model in a loop (a stress test: thousands a second)
        alone, framed, loaded, calls = [], [], [], 0
        for _ in range(2):
            alone.append(_lateness_p99(jitter_s / 2, None)[0])
            framed.append(_lateness_p99(jitter_s / 2, lambda: busy.predict(x), 1 / 60)[0])
            p99, n = _lateness_p99(jitter_s / 2, lambda: busy.predict(x))
            loaded.append(p99)
            calls += n
    finally:
        sys.setswitchinterval(switch)
    return {
        "analysis_ms": round(analysis, 3), "inputs": N_INPUTS, "outputs": N_OUTPUTS,
        "algorithms": rows,
        "jitter": {"p99_ms_alone": round(max(alone), 3),
                   "p99_ms_model_each_frame": round(max(framed), 3),
                   "p99_ms_with_model": round(max(loaded), 3),
                   "predictions_per_s": round(calls / jitter_s), "model_predict_us": slowest[0]},
        "targets": {"train_ms": 200.0, "predict_us": 500.0},
    }


def format_learn(result: dict[str, Any]) -> str:
    lines = [f"mapping by example: {result['inputs']} inputs -> {result['outputs']} outputs; "
             f"analysis of a 480-wide frame {result['analysis_ms']:.2f} ms",
             f"  {'kind':<15}{'algorithm':<10}{'train 10':>10}{'train 50':>10}{'predict':>11}"
             f"{'x analysis':>12}"]
    for r in result["algorithms"]:
        lines.append(f"  {r['kind']:<15}{r['algorithm']:<10}{r['train_ms_10']:>8.1f}ms"
                     f"{r['train_ms_50']:>8.1f}ms{r['predict_us']:>9.1f}us"
                     f"{r['predict_x_analysis']:>12.3f}")
    j = result["jitter"]
    lines.append(f"  dispatch p99 on a 1 ms grid: {j['p99_ms_alone']:.3f} ms alone, "
                 f"{j['p99_ms_model_each_frame']:.3f} ms beside a model predicting 60 times a "
                 f"second (live), {j['p99_ms_with_model']:.3f} ms beside one predicting in a "
                 f"loop ({j['predictions_per_s']}/s, a stress test)")
    lines.append("  targets: training < 200 ms, prediction < 500 us a frame")
    return "\n".join(lines)
