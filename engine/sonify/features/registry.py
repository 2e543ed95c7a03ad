"""The one list of every feature: name, range, meaning and default smoothing.

Scenes, docs, ``sonify features --list`` and OSC feature streaming all read this registry, so a
feature is added here and nowhere else (its computation lives in ``kernels.py`` and
``reference.py``, or in ``analyzer.py`` / ``mood.py`` for the derived ones).
"""

from __future__ import annotations

from dataclasses import dataclass

from sonify.features import constants as C


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One feature. ``shape`` is () for a scalar; ``tau_s`` its default smoothing time constant
    (0 = unsmoothed); ``lo``/``hi`` its range (``hi`` None = unbounded above)."""

    name: str
    description: str
    lo: float = 0.0
    hi: float | None = 1.0
    shape: tuple[int, ...] = ()
    tau_s: float = 0.0
    circular: bool = False

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()


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
                f"{C.STAR_RING} pixels out)", hi=None),
    FeatureSpec("scene_cut", "change of the luma and chroma histograms since the previous "
                "frame: 0 same picture, 1 nothing in common"),
    FeatureSpec("motion_onset", "1 on the frame motion rises through its onset threshold "
                "(re-armed when it falls back), else 0"),
    FeatureSpec("cut_onset", "1 on the frame a scene cut is detected (re-armed when the "
                "picture settles), else 0"),
    FeatureSpec("stars_onset", "1 on the frame new bright points appear (the count jumps "
                "above its recent level), else 0"),
    FeatureSpec("valence", "pleasure of the picture's colours (Valdez & Mehrabian 1994): "
                "0 unpleasant, 1 pleasant", tau_s=1.5),
    FeatureSpec("arousal", "energy of the picture (Valdez & Mehrabian 1994, plus motion and "
                "contrast): 0 calm, 1 exciting", tau_s=1.0),
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

FEATURES: dict[str, FeatureSpec] = {f.name: f for f in SCALARS + ARRAYS}
SCALAR_NAMES: tuple[str, ...] = tuple(f.name for f in SCALARS)
ARRAY_NAMES: tuple[str, ...] = tuple(f.name for f in ARRAYS)


def spec(name: str) -> FeatureSpec:
    """The spec of ``name``; a KeyError that lists the known names otherwise."""
    try:
        return FEATURES[name]
    except KeyError:
        known = ", ".join(FEATURES)
        raise KeyError(f"unknown feature {name!r}; known features: {known}") from None
