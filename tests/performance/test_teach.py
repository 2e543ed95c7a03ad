"""Mapping by example through the performance core: record what two looks of the demo are
paired with, train, run, and the model sets the music back to what each look was taught;
the examples and the model are kept beside the scene and play again at the next start; a
corrupt model is reported and the scene plays without it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sonify.capture import open_source
from sonify.commands import SetParam, SetTempo, Teach, TeachOutputs
from sonify.config import Config
from sonify.events import NoteOn
from sonify.features.analyzer import Analyzer, Features
from sonify.outputs.recording import RecordingOutput
from sonify.performance import Performance
from sonify.scene.schema import load_scene
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler

SCENE = """
name = "taught"

[params.intensity]
min = 0.0
max = 1.0
value = 0.5

[teach]
inputs = ["brightness", "warmth", "saturation", "hue", "edge_density", "texture"]
regression = "{algorithm}"
record_hz = 10

[[teach.outputs]]
name = "param:intensity"
lo = 0.0
hi = 1.0
smoothing_s = 0.1

[[teach.outputs]]
name = "tempo"
lo = 60
hi = 140
smoothing_s = 0.1

[[voices]]
name = "lead"
kind = "notes"
channel = 1
rhythm = {{ steps = "x.x.", step_beats = 0.5 }}
pitch = {{ value = 60, quantise = "scale" }}
velocity = {{ feature = "param:intensity", out = [30, 110] }}
"""

FPS = 10.0


def look_features(look: str, n: int = 20) -> list[Features]:
    analyzer = Analyzer()
    with open_source(f"demo:{look}", width=320, height=180, seed=1) as src:
        it = iter(src)
        return [analyzer.analyze(next(it)) for _ in range(n)]


@pytest.fixture(scope="module")
def looks() -> dict[str, list[Features]]:
    return {look: look_features(look) for look in ("city", "sunset")}


class Rig:
    """A performance on a manual clock that frames are fed to by hand."""

    def __init__(self, scene_path: Path) -> None:
        self.out = RecordingOutput()
        self.clock = ManualTime(0.0)
        self.perf = Performance(Config(), Scheduler([self.out], self.clock),
                                scene=load_scene(scene_path), scene_path=scene_path,
                                strict=True)
        self.perf.start(0.0)
        self.t = 0.0

    def feed(self, frames: list[Features]) -> None:
        for f in frames:
            self.t += 1.0 / FPS
            self.clock.set(self.t)
            self.perf.step(self.t, f, [], lookahead_s=0.1, block_s=1.0 / FPS)
            self.perf.scheduler.run_until(self.t)

    @property
    def intensity(self) -> float:
        return float(self.perf.player.params["intensity"])

    @property
    def bpm(self) -> float:
        return float(self.perf.tempo_bpm())


def scene_file(tmp_path: Path, algorithm: str = "knn") -> Path:
    path = tmp_path / "taught.toml"
    path.write_text(SCENE.format(algorithm=algorithm))
    return path


def teach_two_looks(rig: Rig, looks: dict[str, list[Features]]) -> None:
    for look, intensity, bpm in (("city", 0.2, 70.0), ("sunset", 0.9, 130.0)):
        rig.perf.command(SetParam("intensity", intensity))
        rig.perf.command(SetTempo(bpm))
        rig.feed(looks[look][:1])  # the knobs are set
        rig.perf.command(Teach("record"))
        rig.feed(looks[look])
        rig.perf.command(Teach("stop_recording"))
        rig.feed(looks[look][:1])


@pytest.mark.parametrize("algorithm", ["knn", "mlp", "ridge"])
def test_a_model_taught_two_looks_plays_each_back(tmp_path: Path, algorithm: str,
                                                   looks: dict[str, list[Features]]) -> None:
    rig = Rig(scene_file(tmp_path, algorithm))
    teach_two_looks(rig, looks)
    teach = rig.perf.snapshot()["teach"]
    assert teach["examples"] >= 30 and not teach["recording"]
    rig.perf.command(Teach("train"))
    rig.perf.command(Teach("run"))
    rig.feed(looks["city"])
    assert rig.intensity == pytest.approx(0.2, abs=0.08)
    assert rig.bpm == pytest.approx(70.0, abs=6.0)
    rig.feed(looks["sunset"])
    assert rig.intensity == pytest.approx(0.9, abs=0.08)
    assert rig.bpm == pytest.approx(130.0, abs=6.0)
    # the learned intensity is what the lead's velocity follows
    late = [e.velocity for e in rig.out.events if isinstance(e, NoteOn) and e.t > rig.t - 1]
    assert late and min(late) > 90


def test_examples_and_model_are_kept_beside_the_scene_and_play_at_the_next_start(
        tmp_path: Path, looks: dict[str, list[Features]]) -> None:
    path = scene_file(tmp_path)
    rig = Rig(path)
    teach_two_looks(rig, looks)
    rig.perf.command(Teach("train"))
    rig.feed(looks["city"][:1])
    assert (tmp_path / "taught.examples.json").is_file()
    assert (tmp_path / "taught.model.npz").is_file()
    again = Rig(path)  # a restarted box: the model loads and runs
    status = again.perf.snapshot()["teach"]
    assert status["running"] and status["model"]["examples"] == rig.perf.snapshot()[
        "teach"]["examples"]
    again.feed(looks["sunset"])
    assert again.intensity == pytest.approx(0.9, abs=0.08)


def test_a_corrupt_model_is_reported_and_the_scene_plays_without_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        looks: dict[str, list[Features]]) -> None:
    path = scene_file(tmp_path)
    (tmp_path / "taught.model.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with caplog.at_level(logging.ERROR):
        rig = Rig(path)
    assert "taught.model.npz" in caplog.text
    status = rig.perf.snapshot()["teach"]
    assert status["model"] is None and not status["running"] and status["error"]
    rig.feed(looks["city"])
    assert any(isinstance(e, NoteOn) for e in rig.out.events)


def test_teach_outputs_set_the_music_and_are_what_gets_recorded(
        tmp_path: Path, looks: dict[str, list[Features]]) -> None:
    rig = Rig(scene_file(tmp_path))
    rig.perf.command(TeachOutputs((0.3, 96.0)))
    rig.feed(looks["city"][:2])
    assert rig.intensity == pytest.approx(0.3)
    assert rig.bpm == pytest.approx(96.0)
    rig.perf.command(Teach("snapshot"))
    rig.feed(looks["city"][:1])
    examples = rig.perf.teach.learner.examples  # type: ignore[union-attr]
    assert len(examples) == 1
    assert list(examples.arrays()[1][0]) == pytest.approx([0.3, 96.0])


def test_a_scene_without_teach_refuses_teach_commands_with_a_reason() -> None:
    clock = ManualTime(0.0)
    perf = Performance(Config(), Scheduler([RecordingOutput()], clock), strict=True)
    perf.start(0.0)
    perf.command(Teach("record"))
    with pytest.raises(ValueError, match=r"has no \[teach\] table"):
        perf.step(0.1, None, [], lookahead_s=0.1, block_s=0.1)
