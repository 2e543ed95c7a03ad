"""Valence, arousal and the mood label (Valdez & Mehrabian 1994, Palmer et al. 2013, Lindborg &
Friberg 2015; the model and its calibration are in engine/sonify/features/mood.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sonify.features import mood
from sonify.features.constants import HUE_BINS
from sonify.features.registry import MOOD_LABELS

GRAY = {"brightness": 0.5, "chroma": 0.0, "colorfulness": 0.0, "edge_density": 0.0,
        "texture": 0.0, "contrast": 0.0, "motion": 0.0}
NO_HUE = np.zeros(HUE_BINS)


def hue_at(degrees: float) -> np.ndarray:
    hist = np.zeros(HUE_BINS)
    hist[round(degrees / 30) % HUE_BINS] = 1.0
    return hist


def va(hist: np.ndarray = NO_HUE, **values: float) -> tuple[float, float]:
    return mood.valence_arousal({**GRAY, **values}, hist)


def test_the_model_is_the_documented_formula() -> None:
    # valence_raw = 0.50 L + 0.35 C + 0.15 Y, stretched from 0.10..0.80
    v, a = va(hue_at(60), brightness=0.6, chroma=0.3, colorfulness=0.3)
    colour = 0.3 / 0.6
    assert v == pytest.approx((0.50 * 0.6 + 0.35 * colour + 0.15 * 1.0 - 0.10) / 0.70)
    # arousal_raw = 0.40 C + 0.10 max(0, Y) + 0.10 (L - 0.5) + 0.25 E + 0.10 contrast + 0.25 motion
    assert a == pytest.approx((0.40 * colour + 0.10 + 0.10 * 0.1) / 0.55)


def test_brighter_more_colourful_and_yellower_is_happier() -> None:
    assert va(brightness=0.8)[0] > va(brightness=0.3)[0]
    assert va(chroma=0.4, colorfulness=0.4)[0] > va()[0]
    yellow = va(hue_at(60), chroma=0.4, colorfulness=0.4)
    blue = va(hue_at(240), chroma=0.4, colorfulness=0.4)
    assert yellow[0] > blue[0] + 0.1 and yellow[1] > blue[1]


def test_gray_has_no_hue_lean_and_a_faint_tint_counts_little() -> None:
    assert mood.yellowness(NO_HUE, 0.0) == 0.0
    assert mood.yellowness(hue_at(60), 0.02) == pytest.approx(0.02 / mood.YELLOW_CHROMA)
    assert mood.yellowness(hue_at(240), 0.5) == pytest.approx(-1.0)


def test_detail_contrast_and_motion_raise_arousal() -> None:
    plain = va()[1]
    assert va(edge_density=0.3, texture=0.16)[1] == pytest.approx(plain + 0.25 / 0.55)
    assert va(contrast=0.5)[1] > plain
    assert va(motion=1.0)[1] == pytest.approx(plain + 0.25 / 0.55)


def test_valence_and_arousal_stay_in_0_1() -> None:
    for values in ({"brightness": 1.0, "chroma": 1.0, "colorfulness": 1.0, "edge_density": 1.0,
                    "texture": 1.0, "contrast": 1.0, "motion": 1.0},
                   {"brightness": 0.0}):
        v, a = va(hue_at(60), **values)
        assert 0.0 <= v <= 1.0 and 0.0 <= a <= 1.0


@pytest.mark.parametrize(
    ("valence", "arousal", "label"),
    [(0.7, 0.2, "calm"), (0.85, 0.5, "happy"), (0.6, 0.9, "energetic"), (0.2, 0.8, "tense"),
     (0.2, 0.2, "sad")],
)
def test_labels_sit_on_the_circumplex(valence: float, arousal: float, label: str) -> None:
    assert mood.label(valence, arousal) == label


def test_every_label_is_reachable_and_registered() -> None:
    assert set(mood.PROTOTYPES) == set(MOOD_LABELS)
    for name, (v, a) in mood.PROTOTYPES.items():
        assert mood.label(v, a) == name
