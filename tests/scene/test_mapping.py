"""The mapping primitives: range, curve, invert, smoothing, hysteresis; choices with hysteresis."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sonify.features.analyzer import Features
from sonify.features.registry import SCALAR_NAMES
from sonify.scene.mapping import (
    CURVES,
    Chooser,
    Mapper,
    Mapping,
    ScaleChoice,
    apply_curve,
)


def feats(t: float = 0.0, **values: float) -> Features:
    base = {name: 0.0 for name in SCALAR_NAMES}
    base.update(values)
    return Features(0, t, base, dict(base), {"grid": np.zeros((8, 8))}, "calm")


def mapper(**table: object) -> Mapper:
    return Mapper(Mapping.model_validate(table))


def test_a_number_is_a_constant() -> None:
    m = Mapper(Mapping.model_validate(64))
    assert m(feats(warmth=0.9), 0.0) == 64
    assert m.rest() == 64


def test_linear_mapping_scales_and_clips_the_input_range() -> None:
    m = mapper(feature="warmth", **{"in": [0.25, 0.75]}, out=[48, 84])
    assert m(feats(warmth=0.25), 0) == 48
    assert m(feats(warmth=0.5), 0) == 66
    assert m(feats(warmth=0.75), 0) == 84
    assert m(feats(warmth=0.0), 0) == 48
    assert m(feats(warmth=1.0), 0) == 84
    assert m.rest() == 66


def test_input_range_defaults_to_the_registry() -> None:
    assert mapper(feature="stars", out=[0, 16])(feats(stars=8), 0) == 8
    assert mapper(feature="brightness", out=[0, 10])(feats(brightness=0.3), 0) == pytest.approx(3)


def test_invert_and_reversed_out_both_flip() -> None:
    a = mapper(feature="brightness", out=[0, 100], invert=True)
    b = mapper(feature="brightness", out=[100, 0])
    assert a(feats(brightness=0.2), 0) == pytest.approx(80)
    assert b(feats(brightness=0.2), 0) == pytest.approx(80)


@pytest.mark.parametrize("curve", CURVES)
def test_every_curve_runs_from_zero_to_one_monotonically(curve: str) -> None:
    us = np.linspace(0, 1, 101)
    ys = [apply_curve(curve, float(u)) for u in us]
    assert ys[0] == pytest.approx(0) and ys[-1] == pytest.approx(1)
    assert all(b >= a for a, b in zip(ys, ys[1:], strict=False))


def test_curves_bend_the_way_their_names_say() -> None:
    assert apply_curve("exp", 0.5) < 0.5 < apply_curve("log", 0.5)
    assert apply_curve("s-curve", 0.25) < 0.25 and apply_curve("s-curve", 0.75) > 0.75


def test_smoothing_follows_the_time_it_is_asked_at() -> None:
    m = mapper(feature="brightness", out=[0, 1], smoothing_s=1.0)
    assert m(feats(brightness=0.0), 0.0) == 0.0
    assert m(feats(brightness=1.0), 1.0) == pytest.approx(1 - np.exp(-1))
    assert m(feats(brightness=1.0), 1.0) == pytest.approx(1 - np.exp(-1))  # no time, no change
    assert m(feats(brightness=1.0), 11.0) == pytest.approx(1.0, abs=1e-4)


def test_hysteresis_holds_until_the_input_moves_far_enough() -> None:
    m = mapper(feature="brightness", out=[0, 100], hysteresis=0.1)
    assert m(feats(brightness=0.5), 0) == 50
    assert m(feats(brightness=0.58), 0) == 50
    assert m(feats(brightness=0.45), 0) == 50
    assert m(feats(brightness=0.62), 0) == pytest.approx(62)
    assert m(feats(brightness=1.0), 0) == 100  # the ends are always reached
    assert m(feats(brightness=0.95), 0) == 100


def test_each_mapper_keeps_its_own_state() -> None:
    spec = Mapping.model_validate({"feature": "brightness", "smoothing_s": 1.0})
    a, b = Mapper(spec), Mapper(spec)
    a(feats(brightness=0.0), 0.0)
    a(feats(brightness=1.0), 1.0)
    assert b(feats(brightness=1.0), 1.0) == 1.0


def test_a_choice_splits_the_input_into_bands() -> None:
    c = Chooser(ScaleChoice.model_validate(
        {"feature": "valence", "choices": ["minor", "dorian", "major", "lydian"],
         "hysteresis": 0.0}))
    picks = [c(feats(valence=v), 0) for v in (0.0, 0.24, 0.26, 0.6, 0.99, 1.0)]
    assert picks == ["minor", "minor", "dorian", "major", "lydian", "lydian"]


def test_a_choice_with_hysteresis_does_not_flicker_at_a_border() -> None:
    c = Chooser(ScaleChoice.model_validate(
        {"feature": "valence", "choices": ["minor", "major"], "hysteresis": 0.05}))
    wobble = [0.49, 0.51, 0.48, 0.53, 0.5, 0.54]
    assert [c(feats(valence=v), 0) for v in wobble] == ["minor"] * len(wobble)
    assert c(feats(valence=0.56), 0) == "major"
    assert [c(feats(valence=v), 0) for v in (0.47, 0.46)] == ["major", "major"]
    assert c(feats(valence=0.44), 0) == "minor"


def test_a_fixed_choice_and_the_rest_value() -> None:
    c = Chooser(ScaleChoice.model_validate("dorian"))
    assert c(None, 0) == "dorian"
    assert c(feats(), 0) == "dorian"


def test_hue_smoothing_goes_the_short_way_round() -> None:
    m = mapper(feature="hue", out=[0, 1], smoothing_s=1.0)
    m(feats(hue=0.95), 0.0)
    v = m(feats(hue=0.05), 1.0)
    assert v > 0.95 or v < 0.05  # through red, not through green and blue


def test_features_are_read_smoothed() -> None:
    f = feats(brightness=0.2)
    f = dataclasses.replace(f, raw={**f.raw, "brightness": 0.9})
    assert mapper(feature="brightness", out=[0, 1])(f, 0) == pytest.approx(0.2)
