"""The feature registry: one definition of the onsets, the moods and each feature's 0..1 scale."""

from __future__ import annotations

import math
import typing

import pytest

from sonify.config import AutoConfig
from sonify.features import registry
from sonify.features.constants import MAX_STARS
from sonify.features.registry import (
    FEATURES,
    MOOD_LABELS,
    ONSET_NAMES,
    SCALAR_NAMES,
    SCALARS,
    VISION_ONSET_NAMES,
    FeatureSpec,
    fraction,
    fractions,
)
from sonify.scene.mapping import feature_range
from sonify.scene.schema import ALL_ONSETS, TriggerSpec


def test_stars_read_on_one_scale_for_scenes_stream_page_and_preview() -> None:
    assert FEATURES["stars"].span == (0.0, float(MAX_STARS)) == (0.0, 16.0)
    assert feature_range("stars") == FEATURES["stars"].span  # a scene's default input range
    assert fraction("stars", 8) == 0.5  # the stream, the page, the preview, `sonify features`
    assert fraction("stars", 40) == 1.0 and fraction("stars", -1) == 0.0


def test_bounded_features_read_over_their_range() -> None:
    assert fraction("brightness", 0.25) == 0.25
    assert fraction("hue", 0.9) == 0.9
    assert fraction("brightness", math.nan) == 0.0
    for spec in SCALARS:
        assert feature_range(spec.name) == spec.span
        assert spec.span[0] < spec.span[1], spec.name


def test_fractions_cover_every_scalar_in_registry_order_rounded() -> None:
    values = {name: 1 / 3 for name in SCALAR_NAMES} | {"stars": 3.0, "not_a_feature": 9.0}
    out = fractions(values)
    assert list(out) == list(SCALAR_NAMES)
    assert out["brightness"] == 0.3333 and out["stars"] == round(3 / 16, 4)
    assert fractions({"stars": 3.0}, digits=None) == {"stars": 3 / 16}


def test_an_unbounded_feature_must_say_its_full_scale() -> None:
    with pytest.raises(ValueError, match="full_scale"):
        FeatureSpec("crowd", "number of people", hi=None)


def test_onsets_are_named_once() -> None:
    assert ONSET_NAMES == ("motion_onset", "cut_onset", "stars_onset")
    assert set(ONSET_NAMES) <= set(SCALAR_NAMES)
    assert typing.get_args(registry.OnsetName) == ONSET_NAMES
    # a scene trigger accepts exactly these, the people's, and either inside a zone
    assert ALL_ONSETS == ONSET_NAMES + VISION_ONSET_NAMES
    for name in (*ALL_ONSETS, "zone:door:enter_onset", "zone:door:motion_onset"):
        assert TriggerSpec(on=name, osc={"address": "/x"}).on == name
    for name in ("motion", "people", "zone:door:presence", "cam1:motion_onset"):
        with pytest.raises(ValueError, match="is not an onset"):
            TriggerSpec(on=name, osc={"address": "/x"})


def test_auto_mode_knows_the_registry_moods() -> None:
    assert set(AutoConfig().scenes) <= set(MOOD_LABELS)
    with pytest.raises(ValueError, match="moods are calm, happy, energetic, tense, sad"):
        AutoConfig(scenes={"gloomy": "calm"})
