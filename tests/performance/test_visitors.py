"""People in the performance: a scene pays for the vision features only when it reads them,
zones come from the scene (moved by the config), and the `visitors` scene plays a video of
people walking through a room (made here, with OpenCV) as one voice per person, with a bell
for each who comes in."""

from __future__ import annotations

from pathlib import Path

import cv2
import mido
import pytest

from sonify.capture import open_source
from sonify.config import Config
from sonify.features.analyzer import Analyzer
from sonify.outputs.recording import RecordingOutput
from sonify.performance import Performance
from sonify.performance.vision import VisionDemand, VisionStage, with_neutral
from sonify.render import render
from sonify.scene.schema import SceneError, ZoneSpec, load_scene, parse_scene
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler

SECONDS = 24.0


def demand_for(scene: str, config: Config | None = None) -> VisionDemand:
    clock = ManualTime(0.0)
    config = config or Config()
    config.scene.name = scene
    perf = Performance(config, Scheduler([RecordingOutput()], clock))
    return perf.vision


def test_a_scene_that_reads_no_people_asks_for_nothing() -> None:
    for scene in ("gallery", "city", "starry", "vj"):
        assert demand_for(scene).wanted == frozenset()


def test_a_stage_with_nothing_wanted_passes_the_features_untouched() -> None:
    stage = VisionStage(demand_for("gallery"))
    with open_source("demo:visitors", width=320, height=180, seed=0) as src:
        frame = next(iter(src))
    features = Analyzer().analyze(frame)
    assert stage(frame, features) is features
    assert stage.vision is None  # no background model, no detector made


def test_the_visitors_scene_asks_for_its_people_and_its_zone() -> None:
    demand = demand_for("visitors")
    assert {"person1_x", "person4_speed", "people", "presence", "enter_onset", "leave_onset",
            "zone:centre:people"} <= demand.wanted
    assert [z.name for z in demand.zones] == ["centre"]
    assert demand.zones[0].bounds == pytest.approx((0.3, 0.0, 0.7, 1.0))


def test_the_config_moves_a_scene_zone() -> None:
    config = Config()
    config.analysis.zones = [ZoneSpec(name="centre", rect=(0.5, 0.5, 1.0, 1.0))]
    demand = demand_for("visitors", config)
    assert demand.zones[0].bounds == pytest.approx((0.5, 0.5, 1.0, 1.0))


def test_a_feature_in_an_undeclared_zone_is_an_error_that_says_how_to_declare_it() -> None:
    text = ('name = "z"\n[[voices]]\nname = "a"\nkind = "notes"\nchannel = 1\n'
            'velocity = { feature = "zone:door:presence" }\n')
    with pytest.raises(SceneError, match=r"zones door .*\[\[zones\]\] name = \"door\""):
        parse_scene(text, "z.toml")
    ok = text + '[[zones]]\nname = "door"\nrect = [0, 0, 0.25, 1]\n'
    assert parse_scene(ok, "z.toml").zones[0].name == "door"


def test_missing_people_features_read_as_an_empty_room() -> None:
    with open_source("demo:city", width=320, height=180, seed=0) as src:
        features = Analyzer().analyze(next(iter(src)))
    filled = with_neutral(features, frozenset({"people", "person1_x", "zone:door:presence"}))
    assert filled.values["people"] == 0.0 and filled.values["person1_x"] == 0.5
    assert filled.values["zone:door:presence"] == 0.0


@pytest.fixture(scope="module")
def visitors_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """People walking through a room (the demo's figures, drawn with OpenCV), as a video."""
    path = tmp_path_factory.mktemp("visitors") / "room.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (640, 360))
    with open_source("demo:visitors", width=640, height=360, fps=15.0, seed=3) as src:
        for i, frame in enumerate(src):
            if i >= int(SECONDS * 15):
                break
            writer.write(frame.image)
    writer.release()
    return path


def test_the_visitors_scene_plays_each_person_and_rings_for_each_arrival(
        visitors_video: Path, tmp_path: Path) -> None:
    mid = tmp_path / "room.mid"
    render(str(visitors_video), [str(mid)], scene="visitors")
    scene = load_scene("visitors")
    channels = {v.name: v.channel for v in scene.voices}
    bells = scene.triggers[0].note.channel  # type: ignore[union-attr]
    notes: dict[int, int] = {}
    pans: dict[int, set[int]] = {}
    for msg in mido.MidiFile(mid):
        if msg.type == "note_on" and msg.velocity > 0:
            notes[msg.channel + 1] = notes.get(msg.channel + 1, 0) + 1
        elif msg.type == "control_change" and msg.control == 10:
            pans.setdefault(msg.channel + 1, set()).add(msg.value)
    assert notes.get(bells, 0) >= 2, notes  # a bell for people coming in (and leaving)
    playing = [v for v in ("visitor1", "visitor2") if notes.get(channels[v], 0) >= 4]
    assert playing, notes  # the people's own voices
    first = channels["visitor1"]
    assert len(pans.get(first, set())) >= 5  # visitor 1's pan follows them across the room
    assert notes.get(channels["pad"], 0) >= 4  # the room's pad under them
