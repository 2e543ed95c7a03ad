"""Valence, arousal and the mood label (Valdez & Mehrabian 1994, see engine/features/mood.py)."""

from __future__ import annotations

import pytest

from sonify.features import mood
from sonify.features.registry import MOOD_LABELS


def test_formula_matches_the_published_regressions() -> None:
    # pleasure = 0.69 B + 0.22 S, arousal = -0.31 B + 0.60 S, each rescaled to 0..1
    v, a = mood.valence_arousal(brightness=1.0, chroma=0.0, motion=0.0, contrast=0.0)
    assert v == pytest.approx(0.69 / 0.91)
    assert a == pytest.approx(0.60 * 0.0)
    v, a = mood.valence_arousal(brightness=0.0, chroma=1.0, motion=0.0, contrast=0.0)
    assert v == pytest.approx(0.22 / 0.91)
    assert a == pytest.approx(0.60 * 1.0)


def test_bright_pictures_are_more_pleasant_and_saturated_ones_more_arousing() -> None:
    dark = mood.valence_arousal(0.1, 0.3, 0.0, 0.2)
    bright = mood.valence_arousal(0.9, 0.3, 0.0, 0.2)
    assert bright[0] > dark[0] and bright[1] < dark[1]
    dull = mood.valence_arousal(0.5, 0.1, 0.0, 0.2)
    vivid = mood.valence_arousal(0.5, 0.9, 0.0, 0.2)
    assert vivid[0] > dull[0] and vivid[1] > dull[1]


def test_motion_and_contrast_raise_arousal() -> None:
    still = mood.valence_arousal(0.5, 0.5, 0.0, 0.1)
    busy = mood.valence_arousal(0.5, 0.5, 1.0, 0.9)
    assert busy[1] - still[1] == pytest.approx(0.25 + 0.15 * 0.8)


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
