"""The learner on a virtual clock: record rate, smoothing, the commands' rules."""

from __future__ import annotations

import math

import pytest

from sonify.learn.learner import Learner
from tests.learn.helpers import NIGHT, NIGHT_OUT, SUNSET, SUNSET_OUT, record_two_looks, spec


@pytest.mark.parametrize(("record_hz", "fps", "seconds", "want"),
                         [(10.0, 30.0, 3.0, 30), (7.0, 30.0, 3.0, 21), (10.0, 25.0, 2.0, 20),
                          (30.0, 30.0, 1.0, 30)])
def test_recording_adds_examples_at_record_hz_on_a_virtual_clock(
        record_hz: float, fps: float, seconds: float, want: int) -> None:
    learner = Learner(spec(record_hz=record_hz), None, None)
    learner.command("record")
    for i in range(int(seconds * fps)):
        learner.step(SUNSET, 100.0 + i / fps)
    learner.command("stop_recording")
    assert len(learner.examples) == want
    times = [t for _, _, t in learner.examples.rows]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 1 / record_hz - 1 / fps - 1e-9  # never faster than asked


def test_smoothing_converges_exponentially_with_uneven_frames() -> None:
    learner = Learner(spec(), None, None)
    t = record_two_looks(learner)
    learner.command("train")
    learner.command("run")
    for _ in range(30):
        learner.step(SUNSET, t)
        t += 1 / 30
    # switch to the night look; frames come unevenly; after time T the output has moved by
    # 1 - exp(-T / smoothing_s) of the way (smoothing_s = 0.2)
    start = SUNSET_OUT["tempo"]
    last_sunset_t = t - 1 / 30
    for dt in [0.01, 0.05, 0.02, 0.04, 0.03, 0.05]:
        t += dt
        out = learner.step(NIGHT, t)
        assert out is not None
    moved = (out["tempo"] - start) / (NIGHT_OUT["tempo"] - start)
    assert moved == pytest.approx(1 - math.exp(-(t - last_sunset_t) / 0.2), abs=1e-9)
    for _ in range(60):
        t += 1 / 30
        out = learner.step(NIGHT, t)
    assert out is not None and out["tempo"] == pytest.approx(NIGHT_OUT["tempo"], abs=1e-3)
    assert out["scene"] == 1.0  # a choice jumps: no smoothing between choices


def test_recording_and_running_exclude_each_other() -> None:
    learner = Learner(spec(), None, None)
    assert learner.command("run") == "no model yet: record examples and train first"
    record_two_looks(learner)
    learner.command("train")
    learner.command("run")
    assert learner.running and not learner.recording
    learner.command("record")
    assert learner.recording and not learner.running
    assert learner.step(SUNSET, 50.0) is None  # recording: the knobs play, not the model
    learner.command("stop_recording")
    assert learner.command("stop_running") == "stopped running the model"


def test_snapshot_needs_features_and_every_input() -> None:
    learner = Learner(spec(), None, None)
    assert learner.command("snapshot") == "no features yet: nothing recorded"
    learner.step({"brightness": 0.5}, 0.0)
    assert learner.command("snapshot").startswith("example not recorded: no value for contrast")
    learner.step(SUNSET, 0.1)
    assert learner.command("snapshot") == "example 1 recorded"


def test_set_outputs_clips_to_ranges_and_refuses_unknown_names() -> None:
    learner = Learner(spec(), None, None)
    learner.set_outputs({"tempo": 500.0, "scene": 7.0})
    learner.step(SUNSET, 0.0)
    learner.command("snapshot")
    assert learner.examples.rows[0][1] == (0.5, 200.0, 1.0)  # intensity untouched: mid-range
    with pytest.raises(ValueError, match="'volume' is not a \\[teach\\] output"):
        learner.set_outputs({"volume": 1.0})


def test_status_reports_the_model() -> None:
    learner = Learner(spec(), None, None)
    record_two_looks(learner)
    learner.command("train")
    learner.command("run")
    learner.step(NIGHT, 10.0)
    status = learner.status()
    assert status["examples"] == 20 and status["running"] and not status["recording"]
    assert status["model"]["algorithm"] == "knn/knn" and status["model"]["examples"] == 20
    assert status["last"]["scene"] == 1.0 and status["error"] is None
