"""The one list of every feature: name, range, meaning, default smoothing and scaling.

Scenes, docs, ``sonify features --list`` and OSC feature streaming all read this registry, so a
feature is added here and nowhere else (its computation lives in ``kernels.py`` and
``reference.py``, or in ``analyzer.py`` / ``mood.py`` for the derived ones). Also here: the
onset names (``ONSET_NAMES``), the mood labels (``MOOD_LABELS``) and each scalar's scaling to
0..1 (``fraction``, ``fractions``), which the scenes' default input range, the OSC feature
stream, the health page, the preview and ``sonify features`` all use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, get_args

from sonify.features import constants as C


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One feature. ``shape`` is () for a scalar; ``tau_s`` its default smoothing time constant
    (0 = unsmoothed); ``lo``/``hi`` its range (``hi`` None = unbounded above, a count);
    ``full_scale`` the value of an unbounded scalar that reads as 1 (see ``span``)."""

    name: str
    description: str
    lo: float = 0.0
    hi: float | None = 1.0
    shape: tuple[int, ...] = ()
    tau_s: float = 0.0
    circular: bool = False
    full_scale: float | None = None

    def __post_init__(self) -> None:
        if self.is_scalar and self.hi is None and self.full_scale is None:
            raise ValueError(f"feature {self.name!r} is unbounded: give its full_scale")

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()

    @property
    def span(self) -> tuple[float, float]:
        """The values that read as 0 and 1 (``lo`` and ``hi``, or ``full_scale`` for a count):
        a scene's default input range, and the scale of the stream, the page and the preview."""
        return self.lo, self.hi if self.hi is not None else float(self.full_scale or 0.0)


SCALARS: tuple[FeatureSpec, ...] = (
    FeatureSpec("brightness", "mean luma (BT.601): 0 black, 1 white", tau_s=0.5),
    FeatureSpec("contrast", "luma standard deviation / 127.5: 0 flat, 1 half black half white",
                tau_s=0.5),
    FeatureSpec("saturation", "mean HSV saturation (max-min)/max", tau_s=0.5),
    FeatureSpec("chroma", "mean colour strength (max-min)/255: like saturation, but a dark "
                "colour has little (as Munsell chroma); the mood's saturation", tau_s=0.5),
    FeatureSpec("colorfulness", "Hasler & Suesstrunk (2003) colourfulness, 1 = 'extremely "
                f"colourful' ({C.COLORFULNESS_FULL_SCALE:g} in their units)", tau_s=0.5),
    FeatureSpec("warmth", "red-over-blue balance: 0 all cool (blue), 0.5 neutral, 1 all warm "
                "(red, orange, yellow)", tau_s=0.5),
    FeatureSpec("hue", "dominant hue as a fraction of the colour wheel: 0 red, 0.33 green, "
                "0.67 blue (peak of the chroma-weighted hue histogram)", tau_s=1.0,
                circular=True),
    FeatureSpec("edge_density", "share of edge pixels (Sobel magnitude >= "
                f"{C.EDGE_THRESHOLD}), scaled to a {C.EDGE_REF_WIDTH}-pixel-wide analysis",
                tau_s=0.3),
    FeatureSpec("geometry", "how concentrated edge orientations are, on one direction or on a "
                "right-angled grid (a city skyline high, foliage and noise low)", tau_s=0.5),
    FeatureSpec("texture", "fine-detail energy: mean |8-neighbour Laplacian| / "
                f"{C.TEXTURE_FULL_SCALE:g}", tau_s=0.5),
    FeatureSpec("motion", "frame-difference energy: sqrt of the mean luma change (gated at "
                f"{C.MOTION_NOISE_GATE}, clipped at {C.MOTION_CLIP} levels) over its maximum",
                tau_s=0.15),
    FeatureSpec("motion_x", "horizontal centroid of the motion (0 left, 1 right; 0.5 when still)",
                tau_s=0.2),
    FeatureSpec("motion_y", "vertical centroid of the motion (0 top, 1 bottom; 0.5 when still)",
                tau_s=0.2),
    FeatureSpec("center_x", "horizontal luma centroid (0 left, 1 right)", tau_s=0.3),
    FeatureSpec("center_y", "vertical luma centroid (0 top, 1 bottom)", tau_s=0.3),
    FeatureSpec("stars", "number of bright points (a peak >= "
                f"{C.STAR_MIN_LEVEL}/255 at least {C.STAR_MIN_CONTRAST} levels above the ring "
                f"{C.STAR_RING} pixels out)", hi=None, full_scale=float(C.MAX_STARS)),
    FeatureSpec("scene_cut", "change of the luma and chroma histograms since the previous "
                "frame: 0 same picture, 1 nothing in common"),
    FeatureSpec("motion_onset", "1 on the frame motion rises through its onset threshold "
                "(re-armed when it falls back), else 0"),
    FeatureSpec("cut_onset", "1 on the frame a scene cut is detected (re-armed when the "
                "picture settles), else 0"),
    FeatureSpec("stars_onset", "1 on the frame new bright points appear (the count jumps "
                "above its recent level), else 0"),
    FeatureSpec("valence", "how happy the picture looks (light, colourful, yellow; Valdez & "
                "Mehrabian 1994, Palmer et al. 2013): 0 sad (dark, gray, dark blue), 1 happy "
                "(bright yellow); calibrated on photographs, see mood.py", tau_s=1.5),
    FeatureSpec("arousal", "energy of the picture (colour strength, yellow-red, detail, "
                "contrast, motion; Lindborg & Friberg 2015): 0 calm (plain gray), 1 exciting",
                tau_s=1.0),
)

ARRAYS: tuple[FeatureSpec, ...] = (
    FeatureSpec("hue_hist", "chroma-weighted hue histogram, 30-degree bins from red (sums to 1, "
                "or all 0 for a grey picture)", shape=(C.HUE_BINS,)),
    FeatureSpec("orient_hist", "magnitude-weighted gradient orientation histogram of edge "
                "pixels, 22.5-degree bins from horizontal (sums to 1, or all 0)",
                shape=(C.ORIENT_BINS,)),
    FeatureSpec("grid", f"coarse {C.GRID_ROWS}x{C.GRID_COLS} luma grid, row 0 at the top",
                shape=(C.GRID_ROWS, C.GRID_COLS)),
    FeatureSpec("star_points", f"the {C.MAX_STARS} brightest points as (x, y, level) rows, "
                "brightest first, zero rows when fewer", shape=(C.MAX_STARS, 3)),
    FeatureSpec("luma_hist", f"{C.LUMA_HIST_BINS}-bin luma histogram (sums to 1)",
                shape=(C.LUMA_HIST_BINS,)),
)

MOOD_LABELS: tuple[str, ...] = ("calm", "happy", "energetic", "tense", "sad")
OnsetName = Literal["motion_onset", "cut_onset", "stars_onset"]
ONSET_NAMES: tuple[OnsetName, ...] = get_args(OnsetName)
"""The onset features: 1 on the frame an event starts, else 0 (scene triggers fire on them)."""

# -- people, zones and flow (``features/vision.py``: computed only when a scene reads them) --

MAX_PEOPLE_SLOTS = 4
"""Tracked people with a slot of their own (``person1_*`` .. ``person4_*``)."""
PERSON_SPEED_FULL_SCALE = 0.5
"""A person's speed that reads 1: half the frame (width or height) per second."""
FLOW_FULL_SCALE = 0.1
"""The mean optical-flow speed over the frame that reads 1: a tenth of the frame per second
(the whole picture panning slowly, or a visitor filling a third of it walking briskly)."""
_PERSON_SLOT_FIELDS = (
    ("on", "1 while slot {k} holds a tracked person, else 0", 0.0),
    ("x", "horizontal centre of the person in slot {k} (0 left, 1 right; 0.5 when empty)", 0.1),
    ("y", "vertical centre of the person in slot {k} (0 top, 1 bottom; 0.5 when empty)", 0.1),
    ("size", "height of the person in slot {k} over the frame height: closeness "
             "(0 when empty)", 0.2),
    ("speed", "speed of the person in slot {k}, 1 = {fs:g} frames/s (0 when empty)", 0.3),
)

VISION_SCALARS: tuple[FeatureSpec, ...] = (
    FeatureSpec("presence", "share of the frame in the foreground (background subtraction): "
                "0 an empty room, 1 everything changed", tau_s=0.3),
    FeatureSpec("blobs", "number of foreground blobs (moving or new things, each at least "
                "0.2% of the frame)", hi=None, full_scale=8.0, tau_s=0.2),
    FeatureSpec("people", "number of tracked people (blobs or HOG detections kept across "
                "frames)", hi=None, full_scale=float(MAX_PEOPLE_SLOTS)),
    FeatureSpec("person_x", "horizontal centre of the nearest (tallest) person: 0 left, "
                "1 right; 0.5 when nobody", tau_s=0.2),
    FeatureSpec("person_y", "vertical centre of the nearest (tallest) person: 0 top, "
                "1 bottom; 0.5 when nobody", tau_s=0.2),
    FeatureSpec("person_near", "height of the nearest person over the frame height: 0 nobody "
                "or far away, 1 filling the frame", tau_s=0.3),
    FeatureSpec("person_speed", "mean speed of the tracked people, 1 = "
                f"{PERSON_SPEED_FULL_SCALE:g} frames per second (0 when nobody)", tau_s=0.3),
    FeatureSpec("faces", "number of frontal faces (OpenCV's Haar cascade)", hi=None,
                full_scale=4.0),
    FeatureSpec("face_x", "horizontal centre of the largest face (0.5 when none)", tau_s=0.2),
    FeatureSpec("face_y", "vertical centre of the largest face (0.5 when none)", tau_s=0.2),
    FeatureSpec("enter_onset", "1 on the frame a tracked person appears, else 0"),
    FeatureSpec("leave_onset", "1 on the frame a tracked person is lost, else 0"),
    FeatureSpec("flow", "mean dense optical-flow speed over the frame, 1 = "
                f"{FLOW_FULL_SCALE:g} frames per second", tau_s=0.15),
    FeatureSpec("flow_x", "direction of the moving pixels across: 0 all left, 0.5 none or "
                "balanced, 1 all right", tau_s=0.2),
    FeatureSpec("flow_y", "direction of the moving pixels up and down: 0 all up, 0.5 none or "
                "balanced, 1 all down", tau_s=0.2),
    FeatureSpec("flow_direction", "angle of the mean flow as a fraction of a turn: 0 right, "
                "0.25 down, 0.5 left, 0.75 up (0 when still)", tau_s=0.2, circular=True),
    *(FeatureSpec(f"person{k}_{field}",
                  text.format(k=k, fs=PERSON_SPEED_FULL_SCALE), tau_s=tau)
      for k in range(1, MAX_PEOPLE_SLOTS + 1) for field, text, tau in _PERSON_SLOT_FIELDS),
)
"""Features of people, faces, foreground and optical flow; not in ``SCALARS`` (the kernel's
set): ``vision.Vision`` computes them only when a scene reads one."""
VISION_NAMES: tuple[str, ...] = tuple(f.name for f in VISION_SCALARS)
VISION_ONSET_NAMES: tuple[str, ...] = ("enter_onset", "leave_onset")

ZONE_PREFIX = "zone:"
"""``zone:<zone>:<feature>`` reads a scalar feature (picture or vision) inside a named zone."""


def split_zone(name: str) -> tuple[str, str] | None:
    """``"zone:door:presence"`` -> ``("door", "presence")``; None for a name that is not a
    zone feature (no prefix, or an empty zone or feature part)."""
    if not name.startswith(ZONE_PREFIX):
        return None
    zone, sep, feature = name[len(ZONE_PREFIX):].partition(SOURCE_SEPARATOR)
    return (zone, feature) if sep and zone and feature else None


FEATURES: dict[str, FeatureSpec] = {f.name: f for f in SCALARS + ARRAYS + VISION_SCALARS}
SCALAR_NAMES: tuple[str, ...] = tuple(f.name for f in SCALARS)
ARRAY_NAMES: tuple[str, ...] = tuple(f.name for f in ARRAYS)
assert set(ONSET_NAMES) <= set(SCALAR_NAMES)
assert not set(VISION_NAMES) & set(SCALAR_NAMES + ARRAY_NAMES)


def spec(name: str) -> FeatureSpec:
    """The spec of ``name`` (a zone feature ``zone:<zone>:<feature>`` has its scalar's spec
    under its own name); a KeyError that lists the known names otherwise."""
    try:
        return FEATURES[name]
    except KeyError:
        zoned = split_zone(name)
        base = FEATURES.get(zoned[1]) if zoned else None
        if base is not None and base.is_scalar:
            return replace(base, name=name)
        known = ", ".join(FEATURES)
        raise KeyError(f"unknown feature {name!r}; known features: {known} (and "
                       f"{ZONE_PREFIX}<zone>:<scalar feature>)") from None


def fraction(name: str, value: float) -> float:
    """The scalar feature ``name`` at ``value`` as 0..1 over its ``span``, clipped (so a count
    such as ``stars`` reads ``count / full_scale``, at most 1; NaN reads 0)."""
    known = FEATURES.get(name)
    lo, hi = (known if known is not None else spec(name)).span
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))


def fractions(values: Mapping[str, float], digits: int | None = 4) -> dict[str, float]:
    """Every scalar feature of ``values`` (registry order: the picture's, the vision ones,
    then zone features in the order of ``values``) as ``fraction``, rounded to ``digits``
    (None: not rounded): the OSC feature stream and the health page's bars."""
    out: dict[str, float] = {}
    for name, lo, width in _SPANS:  # every block of a live run: kept cheap
        value = values.get(name)
        if value is not None:
            frac = (value - lo) / width
            frac = 0.0 if not frac > 0.0 else 1.0 if frac > 1.0 else frac  # NaN reads 0
            out[name] = frac if digits is None else round(frac, digits)
    if len(out) < len(values):  # names the registry does not list: zone features
        for name in values:
            if name.startswith(ZONE_PREFIX):
                try:
                    frac = fraction(name, values[name])
                except KeyError:
                    continue  # a zone name over an unknown feature: not a feature
                out[name] = frac if digits is None else round(frac, digits)
    return out


_SPANS: tuple[tuple[str, float, float], ...] = tuple(
    (s.name, s.span[0], s.span[1] - s.span[0]) for s in SCALARS + VISION_SCALARS)


# -- named sources ---------------------------------------------------------------------------

SOURCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
"""The name of an extra source (``[[source.extra]] name``): letters, digits and _, not
starting with a digit. Scenes read its features as ``<name>:<feature>`` (``cam1:motion``);
``param`` is taken (``param:<name>`` reads a live parameter)."""

SOURCE_SEPARATOR = ":"


def split_source(name: str) -> tuple[str | None, str]:
    """``"cam1:motion"`` -> ``("cam1", "motion")``; ``"motion"`` -> ``(None, "motion")``."""
    source, sep, feature = name.partition(SOURCE_SEPARATOR)
    return (source, feature) if sep else (None, name)
