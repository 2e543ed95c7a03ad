"""Valence and arousal span their range on real photographs and drawn colour fields, and the
`gallery` scene's scale follows: bright, warm, colourful pictures major or lydian; dark blue and
gray ones minor (the calibration is documented in engine/sonify/features/mood.py)."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from sonify.capture.convert import read_image
from sonify.capture.travel import TravelSource
from sonify.features.analyzer import Analyzer, Features
from sonify.scene import load_scene
from sonify.scene.mapping import Chooser
from tests.features import images

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
FIELDS = {
    "yellow": images.solid((0, 220, 255), 320, 200),
    "light yellow": images.solid((150, 240, 255), 320, 200),
    "dark blue": images.solid((90, 30, 10), 320, 200),
    "gray": images.solid((128, 128, 128), 320, 200),
    "dark gray": images.solid((60, 60, 60), 320, 200),
    "sunset": images.gradient(320, 200, warm=True),
    "night": images.gradient(320, 200, warm=False),
    "pale pink": images.solid((200, 170, 255), 320, 200),
    "white": images.solid((255, 255, 255), 320, 200),
}


@cache
def journey(name: str) -> tuple[Features, ...]:
    """The analysed frames of a 30 s travel over a photograph or a drawn field."""
    if name in FIELDS:
        picture = FIELDS[name]
    else:
        read = read_image(str(PHOTOS / name))
        assert read is not None, name
        picture = read
    analyzer = Analyzer()
    return tuple(analyzer.analyze(f) for f in TravelSource(picture, duration_s=30.0, fps=5.0))


def mean(name: str, feature: str) -> float:
    return float(np.mean([f.values[feature] for f in journey(name)]))


def gallery_scale(name: str) -> str:
    """The scale `gallery` plays most of the time over the picture (its own choice table)."""
    chooser = Chooser(load_scene("gallery").key.scale)
    return Counter(chooser(f, f.t) for f in journey(name)).most_common(1)[0][0]


def test_yellow_and_light_pictures_are_happier_than_gray_and_dark_blue_ones() -> None:
    assert mean("yellow", "valence") > mean("light yellow", "valence") - 0.05
    assert min(mean("yellow", "valence"), mean("sunset", "valence")) > 0.9
    assert mean("gray", "valence") < 0.3
    assert mean("dark blue", "valence") < mean("dark gray", "valence") + 0.05
    assert mean("dark blue", "valence") < 0.1


def test_valence_spans_its_range_on_real_photographs() -> None:
    photos = ["hubble_deep_field.jpg", "brick.jpg", "gravel.jpg", "rocket.jpg",
              "astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
    valence = {p: mean(p, "valence") for p in photos}
    assert max(valence.values()) > 0.7 and min(valence.values()) < 0.1, valence
    # the colourful, warm photographs are clearly happier than the gray ones
    assert min(valence[p] for p in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")) > 0.5
    assert max(valence[p] for p in ("brick.jpg", "gravel.jpg")) < 0.3


def test_texture_edges_and_colour_raise_arousal() -> None:
    assert mean("gravel.jpg", "arousal") > mean("gray", "arousal") + 0.2  # detail
    assert mean("yellow", "arousal") > mean("gray", "arousal") + 0.5  # colour strength
    assert mean("dark blue", "arousal") < mean("yellow", "arousal") - 0.4  # dark blue: slow
    assert mean("coffee.jpg", "arousal") > mean("brick.jpg", "arousal") + 0.4


@pytest.mark.parametrize("name", ["astronaut.jpg", "coffee.jpg", "yellow", "sunset"])
def test_a_bright_warm_colourful_picture_plays_major_or_lydian_in_gallery(name: str) -> None:
    assert gallery_scale(name) in ("major", "lydian")


@pytest.mark.parametrize("name", ["dark blue", "gray", "dark gray", "brick.jpg", "gravel.jpg",
                                  "hubble_deep_field.jpg"])
def test_a_dark_blue_or_gray_picture_plays_minor_in_gallery(name: str) -> None:
    assert gallery_scale(name) == "minor"


def test_the_mood_labels_spread_over_the_pictures() -> None:
    names = [*FIELDS, "astronaut.jpg", "brick.jpg", "chelsea.jpg", "coffee.jpg", "grass.jpg",
             "hubble_deep_field.jpg", "rocket.jpg"]
    labels = Counter(Counter(f.mood for f in journey(n)).most_common(1)[0][0] for n in names)
    assert len(labels) == 5, labels
    assert max(labels.values()) <= len(names) // 2, labels
