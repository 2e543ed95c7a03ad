"""What the features say about pictures the tests draw, through the default analyzer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sonify.capture.base import Frame
from sonify.features.analyzer import Analyzer, AnalyzerConfig, Features
from tests.features import images


def analyse(*pictures: np.ndarray, fps: float = 30.0, width: int | None = None) -> list[Features]:
    config = AnalyzerConfig() if width is None else AnalyzerConfig(width=width)
    analyzer = Analyzer(config)
    return [analyzer.analyze(Frame(i, i / fps, img)) for i, img in enumerate(pictures)]


def one(picture: np.ndarray) -> Features:
    return analyse(picture)[0]


def test_warm_image_has_higher_warmth_than_cool_image() -> None:
    warm = one(images.gradient(warm=True)).raw["warmth"]
    cool = one(images.gradient(warm=False)).raw["warmth"]
    assert warm > 0.8 > 0.2 > cool


def test_grey_image_is_neutral() -> None:
    assert one(images.solid((128, 128, 128))).raw["warmth"] == pytest.approx(0.5)


@pytest.mark.parametrize("n", [1, 7, 30, 80])
def test_drawn_starfield_counts_every_star(n: int) -> None:
    sky = images.starfield(images.scattered_points(n, 480, 270, spacing=10, seed=n))
    assert one(sky).raw["stars"] == n


def test_stars_survive_the_default_downscale() -> None:
    # a 1920x1080 sky with 3-pixel-radius stars is analysed at 480x270 (4x smaller)
    points = images.scattered_points(40, 1920, 1080, spacing=48, seed=3)
    sky = images.starfield(points, w=1920, h=1080, radius=3)
    feats = one(sky)
    assert feats.size == (480, 270)
    assert feats.raw["stars"] == 40
    brightest = feats.arrays["star_points"]
    assert brightest.shape == (16, 3) and (brightest[:, 2] > 0.5).all()


def test_blank_sky_and_big_bright_areas_have_no_stars() -> None:
    assert one(images.solid((20, 10, 5))).raw["stars"] == 0
    assert one(images.solid((255, 255, 255))).raw["stars"] == 0
    assert one(images.block(200, 100, size=60)).raw["stars"] == 0


def test_identical_frames_have_no_motion() -> None:
    city = images.block(100, 100)
    for feats in analyse(city, city.copy(), city.copy()):
        assert feats.raw["motion"] == 0.0
        assert (feats.raw["motion_x"], feats.raw["motion_y"]) == (0.5, 0.5)


def test_moving_block_makes_motion_on_its_side() -> None:
    left = analyse(images.block(40, 100), images.block(60, 100))[1]
    right = analyse(images.block(380, 100), images.block(400, 100))[1]
    assert left.raw["motion"] > 0.05 and right.raw["motion"] > 0.05
    assert left.raw["motion_x"] < 0.3 and right.raw["motion_x"] > 0.7
    assert left.raw["motion_y"] == pytest.approx(right.raw["motion_y"], abs=0.01)


def test_checkerboard_has_more_geometry_than_noise() -> None:
    board = one(images.checkerboard()).raw["geometry"]
    noise = one(images.noise()).raw["geometry"]
    assert board > 0.8 and noise < 0.1


def test_noise_has_more_texture_than_a_gradient() -> None:
    assert one(images.noise()).raw["texture"] > 0.5 > 0.05 > one(images.gradient()).raw["texture"]


def test_black_is_brightness_0_and_white_is_1() -> None:
    assert one(images.solid((0, 0, 0))).raw["brightness"] == 0.0
    assert one(images.solid((255, 255, 255))).raw["brightness"] == 1.0
    assert one(images.solid((0, 0, 0))).raw["contrast"] == 0.0
    assert one(images.checkerboard()).raw["contrast"] == pytest.approx(1.0, abs=0.01)


def test_dominant_hue_follows_the_colour() -> None:
    red, green, blue = (one(images.solid(c)).raw["hue"] for c in
                        ((0, 0, 255), (0, 255, 0), (255, 0, 0)))
    assert min(red, 1 - red) < 0.02
    assert green == pytest.approx(1 / 3, abs=0.02)
    assert blue == pytest.approx(2 / 3, abs=0.02)


def test_luma_centroid_finds_the_light() -> None:
    feats = one(images.block(400, 200, size=60, bg=0))
    assert feats.raw["center_x"] > 0.8 and feats.raw["center_y"] > 0.7


def test_edge_density_does_not_depend_on_the_analysis_size() -> None:
    drawing = np.full((540, 960, 3), 255, np.uint8)
    for k in range(12):
        cv2.line(drawing, (40 + 70 * k, 40), (40 + 70 * k, 500), (0, 0, 0), 4)
    at_480 = analyse(drawing, width=480)[0].raw["edge_density"]
    at_960 = analyse(drawing, width=960)[0].raw["edge_density"]
    assert at_480 > 0.02
    assert at_960 == pytest.approx(at_480, rel=0.25)


def test_scene_cut_fires_once_on_a_new_picture() -> None:
    a, b = images.gradient(480, 270, warm=True), images.checkerboard()
    feats = analyse(a, a, a, b, b, b)
    cuts = [f.raw["cut_onset"] for f in feats]
    assert cuts == [0, 0, 0, 1, 0, 0]
    assert feats[3].raw["scene_cut"] > 0.5
    assert feats[1].raw["scene_cut"] == 0.0
    # the slow features jump to the new picture rather than glide from the old one
    assert feats[3].values["brightness"] == pytest.approx(feats[3].raw["brightness"])


def test_motion_onset_has_hysteresis() -> None:
    still = images.block(100, 100)
    moved = images.noise()
    # still, big change, big change, still, still, big change
    feats = analyse(still, still, moved, still, still, still, moved, fps=10)
    onsets = [f.raw["motion_onset"] for f in feats]
    assert onsets == [0, 0, 1, 0, 0, 0, 1]


def test_smoothing_follows_a_step_with_its_time_constant() -> None:
    dark, light = images.solid((0, 0, 0)), images.solid((255, 255, 255))
    # (cut detection off: a cut would rightly make the value jump instead)
    config = AnalyzerConfig(smoothing_s={"brightness": 1.0}, cut_onset=(2.0, 1.0))
    analyzer = Analyzer(config)
    analyzer.analyze(Frame(0, 0.0, dark))
    after_tau = analyzer.analyze(Frame(1, 1.0, light)).values["brightness"]
    assert after_tau == pytest.approx(1 - np.exp(-1), abs=1e-6)


def test_unknown_smoothing_feature_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="brightnes"):
        Analyzer(AnalyzerConfig(smoothing_s={"brightnes": 1.0}))


def test_frame_size_change_resets_motion() -> None:
    feats = analyse(images.noise(480, 270), images.noise(320, 180, seed=2))
    assert feats[1].raw["motion"] == 0.0


def test_features_read_by_name_and_serialise() -> None:
    feats = one(images.gradient())
    assert feats["warmth"] == feats.values["warmth"]
    assert feats["grid"].shape == (8, 8)
    d = feats.to_dict()
    assert d["mood"] == feats.mood and len(d["hue_hist"]) == 12
