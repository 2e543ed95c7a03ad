"""Valence, arousal and a mood label from the picture's features.

Source: Valdez, P. & Mehrabian, A. (1994), "Effects of color on emotions", Journal of
Experimental Psychology: General 123(4), 394-409. Their regressions over colour brightness (B)
and saturation (S) are

    pleasure = 0.69 B + 0.22 S
    arousal  = -0.31 B + 0.60 S

(brighter colours are more pleasant and calmer, saturated colours more pleasant and more
arousing). The study's variables are Munsell value and chroma; we take B = ``brightness`` and
S = ``chroma`` (the mean of (max - min) / 255, both 0..1). Not HSV saturation: a dark navy sky
has an HSV saturation near 1 but little Munsell chroma, and would read as arousing. Each
regression is rescaled to 0..1 over its range on [0, 1]^2:

    valence        = (0.69 B + 0.22 S) / 0.91
    arousal_colour = (-0.31 B + 0.60 S + 0.31) / 0.91

A still picture's energy also shows in movement and in hard light/dark contrast, which the
colour study did not vary, so arousal blends them in:

    arousal = 0.60 arousal_colour + 0.25 motion + 0.15 contrast

The label is the nearest of five prototypes on the valence/arousal plane (Russell's circumplex):
calm (pleasant, low energy), happy (pleasant, moderate), energetic (pleasant to neutral, high),
tense (unpleasant, high) and sad (unpleasant, low).
"""

from __future__ import annotations

from sonify.features.registry import MOOD_LABELS

# (valence, arousal) of each label's prototype, in MOOD_LABELS order. Placed where pictures
# actually fall: valence reaches 0.76 only for pure white and arousal rarely leaves 0.2..0.7,
# so prototypes near the corners of the unit square would make almost everything "sad".
PROTOTYPES: dict[str, tuple[float, float]] = {
    "calm": (0.55, 0.25),
    "happy": (0.65, 0.45),
    "energetic": (0.55, 0.65),
    "tense": (0.25, 0.60),
    "sad": (0.20, 0.25),
}
assert tuple(PROTOTYPES) == MOOD_LABELS


def valence_arousal(brightness: float, chroma: float, motion: float,
                    contrast: float) -> tuple[float, float]:
    """Valence and arousal in 0..1 (see the module docstring for the formula and its source)."""
    valence = (0.69 * brightness + 0.22 * chroma) / 0.91
    arousal_colour = (-0.31 * brightness + 0.60 * chroma + 0.31) / 0.91
    arousal = 0.60 * arousal_colour + 0.25 * motion + 0.15 * contrast
    return _clip01(valence), _clip01(arousal)


def label(valence: float, arousal: float) -> str:
    """The nearest prototype's name."""
    return min(PROTOTYPES, key=lambda k: (PROTOTYPES[k][0] - valence) ** 2
               + (PROTOTYPES[k][1] - arousal) ** 2)


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x
