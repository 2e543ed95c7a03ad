"""Valence, arousal and a mood label from the picture's features, calibrated on photographs.

The model (each term 0..1 before the weights; ``clip`` to 0..1 after the stretch):

    L = brightness                    mean luma
    C = min(1, (chroma + colorfulness) / 2 / 0.6)   colour strength
    Y = yellow-blue axis, -1 .. +1    the chroma-weighted hue histogram projected on yellow
                                      (+1 yellow, +0.5 red and green, -1 blue), faded in
                                      with colour strength: min(1, chroma / 0.25)
    E = (min(1, edge_density / 0.3) + min(1, texture / 0.16)) / 2    detail, busy-ness

    valence_raw = 0.50 L + 0.35 C + 0.15 Y
    arousal_raw = 0.40 C + 0.10 max(0, Y) + 0.10 (L - 0.5) + 0.25 E + 0.10 contrast
                  + 0.25 motion
    valence = (valence_raw - 0.10) / 0.70      arousal = arousal_raw / 0.55

Sources:

- Valdez, P. & Mehrabian, A. (1994), "Effects of color on emotions", J. Exp. Psychol.: General
  123(4), 394-409: brightness and saturation both raise pleasure (pleasure = 0.69 B + 0.22 S);
  saturation raises arousal (0.60 S). Brightness carries most of valence here too, and colour
  strength the rest. We take their saturation as colour strength (``chroma``, like Munsell chroma,
  with ``colorfulness``), not HSV saturation: a dark navy has HSV saturation near 1 and little
  chroma.
- Palmer, S. E., Schloss, K. B., Xu, Z. & Prado-Leon, L. R. (2013), "Music-color associations
  are mediated by emotion", PNAS 110(22), 8836-8841: faster music in major is matched with
  lighter, more saturated, yellower colours; slower music in minor with darker, desaturated,
  bluer ones; the match runs through happy/sad. Hence the yellow-blue term ``Y`` in valence,
  and lightness and yellow/warmth raising arousal (tempo) where Valdez & Mehrabian had
  brightness lowering it: we follow the music study, since arousal drives tempo and loudness.
- Lindborg, P. & Friberg, A. K. (2015), "Colour association with music is mediated by emotion:
  evidence from an experiment using a CIE Lab interface and interviews", PLOS ONE 10(12),
  e0144013: happy music -> yellow, light; sad -> dark, low chroma, blue; energy (activity)
  follows chroma. Hence colour strength as the largest arousal term.
- Detail and movement: arousal also rises with edge density and fine texture (a busy, cluttered
  picture is more arousing than a plain one), with hard light/dark contrast and with motion
  (which on a still picture is 0: see ``analyzer.py``).

Calibration (``sonify`` 60 s travels, frame means; `tests/data/photos/` and drawn fields): real
photographs span valence_raw 0.07 (a star field on black) .. 0.62 (a warm coffee cup) and
arousal_raw 0.09 (a gray brick wall) .. 0.54 (the coffee cup); drawn fields reach 0 (black)
.. 0.90 (saturated yellow). The stretch maps 0.10 .. 0.80 onto valence 0 .. 1 and 0 .. 0.55
onto arousal 0 .. 1, so real pictures cover the whole unit square. Measured valence / arousal:

    star field 0.00 / 0.18    dark blue field 0.00 / 0.23    gray field 0.22 / 0.00
    brick 0.17 / 0.17         gravel 0.21 / 0.35             rocket (blue sky) 0.22 / 0.40
    light gray 0.42 / 0.05    sky blue field 0.46 / 0.47     white 0.57 / 0.09
    astronaut 0.60 / 0.86     ginger cat 0.62 / 0.64         coffee 0.74 / 0.96
    yellow field 1.00 / 0.96  light yellow 1.00 / 0.66

so in ``gallery`` (valence 0.2 .. 0.8 over minor, dorian, major, lydian) gray and dark blue
pictures play minor and bright, warm, colourful ones major or lydian.

The label is the nearest of five prototypes on the valence/arousal plane (Russell's
circumplex): calm (pleasant, low energy), happy (pleasant, moderate), energetic (pleasant to
neutral, high), tense (unpleasant, high) and sad (unpleasant, low). Over the pictures above
they spread as: sad (grays, dark, star field), calm (white, pale colours), happy (cat, green,
light yellow), energetic (coffee, astronaut, yellow), tense (night-blue gradient, gray noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from sonify.features import constants as C
from sonify.features.registry import MOOD_LABELS

# (valence, arousal) of each label's prototype, in MOOD_LABELS order.
PROTOTYPES: dict[str, tuple[float, float]] = {
    "calm": (0.65, 0.20),
    "happy": (0.80, 0.55),
    "energetic": (0.65, 0.90),
    "tense": (0.20, 0.80),
    "sad": (0.20, 0.20),
}
assert tuple(PROTOTYPES) == MOOD_LABELS

COLOUR_FULL = 0.6  # colour strength (chroma + colourfulness) / 2 that reads C = 1
YELLOW_CHROMA = 0.25  # chroma at which the hue's yellow-blue lean counts fully
EDGE_FULL = 0.3  # edge density that reads as full detail (a dense texture)
TEXTURE_FULL = 0.16  # texture that reads as full detail
VALENCE_SPAN = (0.10, 0.80)  # valence_raw stretched onto 0..1
AROUSAL_SPAN = (0.0, 0.55)  # arousal_raw stretched onto 0..1

# cos(hue - 60 degrees) at each hue bin's centre: +1 yellow, -1 blue.
_YELLOW_AXIS = np.cos(np.deg2rad(np.arange(C.HUE_BINS) * (360.0 / C.HUE_BINS) - 60.0))

INPUTS: tuple[str, ...] = ("brightness", "chroma", "colorfulness", "edge_density", "texture",
                           "contrast", "motion")
"""The scalar features ``valence_arousal`` reads (and the hue histogram)."""


def yellowness(hue_hist: np.ndarray, chroma: float) -> float:
    """The picture's lean along the yellow-blue axis, -1 (blue) .. +1 (yellow); 0 for a gray
    picture, faded in with colour strength so sensor tint on a near-gray reads nearly 0."""
    total = float(hue_hist.sum())
    if total <= 0.0:
        return 0.0
    lean = float(np.dot(hue_hist, _YELLOW_AXIS)) / total
    return lean * min(1.0, chroma / YELLOW_CHROMA)


def valence_arousal(values: Mapping[str, float], hue_hist: np.ndarray) -> tuple[float, float]:
    """Valence and arousal in 0..1 from the scalars ``INPUTS`` and the hue histogram (see the
    module docstring for the model, its sources and its calibration)."""
    light = values["brightness"]
    colour = min(1.0, 0.5 * (values["chroma"] + values["colorfulness"]) / COLOUR_FULL)
    yellow = yellowness(hue_hist, values["chroma"])
    detail = 0.5 * (min(1.0, values["edge_density"] / EDGE_FULL)
                    + min(1.0, values["texture"] / TEXTURE_FULL))
    valence_raw = 0.50 * light + 0.35 * colour + 0.15 * yellow
    arousal_raw = (0.40 * colour + 0.10 * max(0.0, yellow) + 0.10 * (light - 0.5)
                   + 0.25 * detail + 0.10 * values["contrast"] + 0.25 * values["motion"])
    return _stretch(valence_raw, VALENCE_SPAN), _stretch(arousal_raw, AROUSAL_SPAN)


def label(valence: float, arousal: float) -> str:
    """The nearest prototype's name."""
    return min(PROTOTYPES, key=lambda k: (PROTOTYPES[k][0] - valence) ** 2
               + (PROTOTYPES[k][1] - arousal) ** 2)


def _stretch(x: float, span: tuple[float, float]) -> float:
    u = (x - span[0]) / (span[1] - span[0])
    if math.isnan(u):
        return 0.0
    return 0.0 if u < 0.0 else 1.0 if u > 1.0 else u
