"""People, zones and flow: synthetic rooms with figures drawn by OpenCV, and real photos."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from sonify.capture.base import Frame
from sonify.capture.visitors import draw_figure
from sonify.features.analyzer import Features
from sonify.features.people import hog_people
from sonify.features.registry import VISION_NAMES
from sonify.features.vision import NEUTRAL, Vision, VisionConfig, vision_names
from sonify.features.zones import Zone

PHOTOS = Path(__file__).parent.parent / "data" / "photos"
W, H = 640, 360
FPS = 30.0


def room() -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[: int(0.62 * H)] = (180, 190, 200)
    img[int(0.62 * H):] = (90, 105, 120)
    return img


def empty_features(index: int, t: float) -> Features:
    """What the picture analysis hands on; Vision only adds to it."""
    return Features(index, t, {"brightness": 0.5}, {"brightness": 0.5}, {}, "calm")


def walk(xs_per_figure: list[list[float]], feet: list[float], heights: list[float]
         ) -> list[np.ndarray]:
    """Frames of figures walking: figure k at x ``xs_per_figure[k][i]`` on frame i (None-free;
    an x far outside the frame leaves it out)."""
    frames = []
    colours = [((60, 60, 170), (90, 50, 40)), ((60, 150, 60), (30, 30, 90))]
    for i in range(len(xs_per_figure[0])):
        img = room()
        for k, xs in enumerate(xs_per_figure):
            top, trousers = colours[k % 2]
            draw_figure(img, xs[i], feet[k], heights[k], top=top, trousers=trousers,
                        phase=xs[i] / 25.0)
        frames.append(img)
    return frames


def run(vision: Vision, images: list[np.ndarray], wanted: frozenset[str]
        ) -> list[Features]:
    out = []
    for i, image in enumerate(images):
        out.append(vision.analyze(Frame(i, i / FPS, image), empty_features(i, i / FPS), wanted))
    return out


def still_room(n: int) -> list[np.ndarray]:
    return [room() for _ in range(n)]


def test_a_scene_that_reads_no_vision_feature_pays_nothing() -> None:
    vision = Vision([Zone.rect("door", 0, 0, 0.2, 1)])
    features = empty_features(0, 0.0)
    assert vision.analyze(Frame(0, 0.0, room()), features, frozenset()) is features
    # names Vision does not compute (the picture's own) cost nothing either
    assert vision.analyze(Frame(1, 0.1, room()), features, frozenset({"motion"})) is features
    assert vision._foreground is None and vision._flow is None and vision._faces is None
    assert vision.part_ms == {} and vision.tracks == []


def test_flow_alone_runs_no_background_model_and_no_people_detector() -> None:
    vision = Vision()
    run(vision, still_room(3), frozenset({"flow", "flow_x"}))
    assert vision._foreground is None and vision._faces is None
    assert set(vision.part_ms) == {"downscale", "flow", "total"}


def test_a_walking_figure_enters_once_leaves_once_and_flows_right() -> None:
    xs = [-60.0] * 4 + list(np.arange(-50.0, W + 60.0, 8.0)) + [W + 100.0] * 20
    images = still_room(5) + walk([xs], [330.0], [190.0])
    wanted = frozenset({"people", "enter_onset", "leave_onset", "flow_x", "person_x",
                        "presence", "person_speed"})
    out = run(Vision(), images, wanted)
    enters = [i for i, f in enumerate(out) if f.raw["enter_onset"]]
    leaves = [i for i, f in enumerate(out) if f.raw["leave_onset"]]
    assert len(enters) == 1 and len(leaves) == 1 and enters[0] < leaves[0]
    middle = out[len(out) // 2]
    assert middle.raw["people"] == 1.0 and middle.raw["presence"] > 0.01
    assert middle.raw["flow_x"] > 0.8  # nearly every moving pixel goes right
    assert middle.values["person_speed"] > 0.2  # 8 px/frame of 640 at 30 fps: 0.375 widths/s
    xs_seen = [f.raw["person_x"] for f in out if f.raw["people"] == 1.0]
    assert xs_seen[-1] - xs_seen[0] > 0.8  # followed left to right, across the room,
    assert min(np.diff(xs_seen)) > -0.02  # never back by more than the swing of a leg
    assert out[-1].raw["people"] == 0.0 and out[-1].raw["person_x"] == 0.5


def test_flow_of_a_figure_walking_left_reads_left() -> None:
    xs = list(np.arange(W - 100.0, 100.0, -6.0))
    out = run(Vision(), walk([xs], [330.0], [190.0]), frozenset({"flow", "flow_x",
                                                                 "flow_direction"}))
    last = out[-1].raw
    assert last["flow_x"] < 0.2 and last["flow"] > 0.05
    assert abs(last["flow_direction"] - 0.5) < 0.1  # half a turn: left


def test_two_figures_crossing_keep_their_identities() -> None:
    n = 70
    right = list(np.linspace(60.0, W - 60.0, n))
    left = list(np.linspace(W - 60.0, 60.0, n))
    images = still_room(4) + walk([right, left], [335.0, 300.0], [200.0, 150.0])
    vision = Vision()
    paths: dict[int, list[float]] = {}
    for i, image in enumerate(images):
        vision.analyze(Frame(i, i / FPS, image), empty_features(i, i / FPS),
                       frozenset({"people"}))
        for tr in vision.tracks:
            paths.setdefault(tr.id, []).append(tr.centre[0])
    assert sorted(paths) == [1, 2]  # nobody lost and found again under a new id
    moves = sorted(path[-1] - path[0] for path in paths.values())
    assert moves[0] < -0.6 and moves[1] > 0.6  # one crossed to the left, the other right


def test_a_figure_in_a_zone_drives_that_zone_not_the_other() -> None:
    zones = [Zone.rect("left", 0, 0, 0.5, 1), Zone.rect("right", 0.5, 0, 1, 1)]
    xs = list(np.linspace(40.0, 220.0, 40))
    images = still_room(4) + walk([xs], [330.0], [190.0])
    wanted = frozenset(f"zone:{z}:{f}" for z in ("left", "right")
                       for f in ("presence", "people", "flow", "enter_onset", "person_x"))
    out = run(Vision(zones), images, wanted)
    last = out[-1].raw
    assert last["zone:left:presence"] > 0.02 and last["zone:right:presence"] == 0.0
    assert last["zone:left:people"] == 1.0 and last["zone:right:people"] == 0.0
    # flow spreads a little past the figure (DIS's patches at 160 px wide), presence does not
    assert last["zone:left:flow"] > 0.05 and last["zone:right:flow"] < last["zone:left:flow"] / 4
    assert sum(f.raw["zone:left:enter_onset"] for f in out) == 1.0
    assert sum(f.raw["zone:right:enter_onset"] for f in out) == 0.0
    assert 0.6 < last["zone:left:person_x"] < 0.8  # 220 px of the zone's 320: across it


def test_zone_picture_features_come_from_the_zone() -> None:
    image = room()
    image[:, W // 2:] = (255, 255, 255)
    zones = [Zone.rect("left", 0, 0, 0.5, 1), Zone.rect("right", 0.5, 0, 1, 1)]
    wanted = frozenset({"zone:left:brightness", "zone:right:brightness"})
    out = run(Vision(zones), [image], wanted)[0]
    assert out.values["zone:right:brightness"] == pytest.approx(1.0)
    assert out.values["zone:left:brightness"] < 0.7


def test_haar_finds_the_astronauts_face() -> None:
    image = cv2.imread(str(PHOTOS / "astronaut.jpg"))
    vision = Vision(config=VisionConfig(face_width=400, faces_every=1))
    out = run(vision, [image], frozenset({"faces", "face_x", "face_y"}))[0]
    assert out.raw["faces"] == 1.0
    # her face: about x 138-213, y 52-127 of the 400 x 400 photo
    assert 0.35 < out.raw["face_x"] < 0.55 and 0.1 < out.raw["face_y"] < 0.35


def test_hog_detects_a_drawn_person_and_the_tracker_counts_them() -> None:
    image = room()
    draw_figure(image, 320, 340, 160, phase=0.6)  # feet near the bottom edge: padded for
    found = hog_people(image)
    assert found and any(d.box[0] < 0.5 < d.box[2] for d in found)
    assert hog_people(room()) == []
    config = VisionConfig(detector="hog", hog_width=W, hog_every=2, min_hits=2)
    out = run(Vision(config=config), [image] * 5, frozenset({"people", "person_near"}))
    assert [f.raw["people"] for f in out] == [0, 0, 1, 1, 1]  # confirmed on the 2nd HOG run
    assert 0.45 < out[-1].raw["person_near"] < 0.8  # the box around a 160 px figure


def test_the_demo_visitors_as_a_video_file(tmp_path: Path) -> None:
    from sonify.capture import open_source

    path = tmp_path / "visitors.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    source = open_source("demo:visitors", width=W, height=H, fps=FPS, seed=0)
    with source:
        for k, frame in enumerate(source):
            if k >= 20 * FPS:
                break
            writer.write(frame.image)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    vision = Vision([Zone.rect("left", 0, 0, 0.5, 1)])
    wanted = frozenset({"people", "enter_onset", "leave_onset", "zone:left:people"})
    counts, enters, leaves = [], 0, 0
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        f = vision.analyze(Frame(index, index / FPS, image), empty_features(index, 0), wanted)
        counts.append(f.raw["people"])
        enters += int(f.raw["enter_onset"])
        leaves += int(f.raw["leave_onset"])
        index += 1
    assert index == 20 * FPS
    assert max(counts) == 3 and enters >= 3 and leaves >= 1  # seed 0: three in by 12 s


def test_same_frames_same_values() -> None:
    xs = list(np.linspace(40.0, 600.0, 30))
    images = still_room(3) + walk([xs], [330.0], [190.0])
    wanted = frozenset(VISION_NAMES) - {"faces", "face_x", "face_y"}
    a = [f.values for f in run(Vision(), images, wanted)]
    b = [f.values for f in run(Vision(), images, wanted)]
    assert a == b


def test_reset_forgets_the_room_without_leave_onsets() -> None:
    xs = list(np.linspace(40.0, 300.0, 20))
    vision = Vision()
    run(vision, still_room(3) + walk([xs], [330.0], [190.0]), frozenset({"people"}))
    assert len(vision.tracks) == 1
    vision.reset()
    assert vision.tracks == [] and vision._foreground is None
    f = vision.analyze(Frame(0, 10.0, room()), empty_features(0, 10.0),
                       frozenset({"people", "leave_onset", "presence"}))
    assert f.raw == {"brightness": 0.5, "people": 0.0, "leave_onset": 0.0, "presence": 0.0}


def test_vision_names_and_neutral_values() -> None:
    names = ["motion", "presence", "person3_speed", "zone:door:brightness",
             "zone:door:people", "zone:door:bogus", "cam1:motion"]
    assert vision_names(names) == {"presence", "person3_speed", "zone:door:brightness",
                                   "zone:door:people"}
    neutral = Vision().neutral(names)
    assert neutral == {"presence": 0.0, "person3_speed": 0.0, "zone:door:brightness": 0.0,
                       "zone:door:people": 0.0}
    assert NEUTRAL["person_x"] == NEUTRAL["flow_y"] == 0.5 == NEUTRAL["person2_y"]


def test_an_unknown_zone_reads_nobody_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    vision = Vision([Zone.rect("door", 0, 0, 0.2, 1)])
    with caplog.at_level(logging.WARNING):
        out = run(vision, still_room(3), frozenset({"zone:stage:people", "zone:stage:flow_x"}))
    assert out[-1].raw == {"brightness": 0.5, "zone:stage:people": 0.0,
                           "zone:stage:flow_x": 0.5}
    assert sum("zone:stage:people" in r.message for r in caplog.records) == 1


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ValueError, match="detector 'yolo'"):
        VisionConfig(detector="yolo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_people must be 1..4"):
        VisionConfig(max_people=9)
    with pytest.raises(ValueError, match="defined twice"):
        Vision([Zone.rect("a", 0, 0, 1, 1), Zone.rect("a", 0, 0, 0.5, 0.5)])


def test_the_readme_example_runs() -> None:
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text()
    section = readme.split("### People, zones and flow", 1)[1].split("\n### ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert scope["features"].raw["people"] >= 2
    assert {"zone:door:presence", "flow_x", "person1_x"} <= set(scope["features"].values)
