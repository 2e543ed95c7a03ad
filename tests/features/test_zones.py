"""Zones: named polygons in frame fractions, their masks, and the registry's zone names."""

from __future__ import annotations

import numpy as np
import pytest

from sonify.features.registry import (
    FEATURES,
    SCALAR_NAMES,
    VISION_NAMES,
    fraction,
    fractions,
    spec,
    split_zone,
)
from sonify.features.zones import Zone, zones_from_mapping


def test_a_rectangle_covers_exactly_its_pixels_at_any_size() -> None:
    left = Zone.rect("left", 0.5, 1.0, 0.0, 0.0)  # corners in any order
    assert left.points == ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    for w, h in ((8, 4), (320, 180), (160, 90)):
        mask = left.mask(w, h)
        assert mask[:, : w // 2].all() and not mask[:, w // 2 :].any()
    assert left.box(320, 180) == (0, 0, 160, 180)
    assert left.mask(320, 180) is left.mask(320, 180)  # cached
    assert not left.mask(8, 4).flags.writeable


def test_a_polygon_masks_pixel_centres_inside_it() -> None:
    triangle = Zone("corner", ((0, 0), (1, 0), (0, 1)))
    mask = triangle.mask(8, 8)
    expected = np.add.outer(np.arange(8), np.arange(8)) < 7  # x + y < 1 at pixel centres
    assert (mask == expected).all()
    assert triangle.contains(0.2, 0.2) and not triangle.contains(0.8, 0.8)
    assert triangle.relative(0.25, 0.75) == (0.25, 0.75)


def test_position_inside_a_zone_runs_across_it() -> None:
    door = Zone.rect("door", 0.6, 0.2, 0.8, 1.0)
    assert door.relative(0.7, 0.6) == pytest.approx((0.5, 0.5))
    assert door.relative(0.1, 0.1) == (0.0, 0.0)


@pytest.mark.parametrize(("args", "message"), [
    (("9door", ((0, 0), (1, 0), (0, 1))), "letters, digits and _"),
    (("door", ((0, 0), (1, 0))), "at least 3 points"),
    (("door", ((0, 0), (1.5, 0), (0, 1))), r"point \(1.5, 0\) is outside the frame"),
    (("door", ((0, 0), (0.5, 0.5), (1, 1))), "no area"),
])
def test_bad_zones_say_what_is_wrong(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Zone(*args)
    with pytest.raises(ValueError, match="empty"):
        Zone.rect("line", 0.2, 0.0, 0.2, 1.0)


def test_zones_from_config_data() -> None:
    door, stage = zones_from_mapping({"door": [0.8, 0, 1, 1],
                                      "stage": [[0, 0.5], [1, 0.5], [0.5, 1]]})
    assert door == Zone.rect("door", 0.8, 0, 1, 1) and stage.name == "stage"
    with pytest.raises(ValueError, match=r"zone 'x': give \[x0, y0, x1, y1\]"):
        zones_from_mapping({"x": [0.1, 0.2, 0.3]})


def test_zone_names_read_their_feature_spec_and_scale() -> None:
    assert split_zone("zone:door:presence") == ("door", "presence")
    assert split_zone("presence") is None and split_zone("zone:door") is None
    assert spec("zone:door:people").span == FEATURES["people"].span == (0.0, 4.0)
    assert spec("zone:door:hue").circular and spec("zone:door:hue").name == "zone:door:hue"
    assert fraction("zone:door:people", 2) == 0.5
    with pytest.raises(KeyError, match="unknown feature 'zone:door:bogus'"):
        spec("zone:door:bogus")
    out = fractions({"brightness": 0.5, "people": 1, "zone:a:blobs": 4, "zone:a:bogus": 1})
    assert out == {"brightness": 0.5, "people": 0.25, "zone:a:blobs": 0.5}


def test_vision_features_stay_out_of_the_kernels_set() -> None:
    assert not set(VISION_NAMES) & set(SCALAR_NAMES)
    assert {"presence", "people", "person4_speed", "flow_direction"} <= set(VISION_NAMES)
    assert all(FEATURES[n].is_scalar for n in VISION_NAMES)


def test_someone_standing_on_a_zone_edge_does_not_ring_in_and_out() -> None:
    """Feet wavering across the edge (by less than the margin) keep the person where they
    were; walking well in rings once, walking well out once."""
    from sonify.features import vision as vmod
    from sonify.features.people import Track

    door = Zone.rect("door", 0.0, 0.0, 0.5, 1.0)
    v = vmod.Vision([door])
    parts = vmod._Parts((320, 180), np.zeros((180, 320, 3), np.uint8))

    def at(x: float) -> tuple[float, float]:  # the feet at x (the box 0.1 wide, 0.4 tall)
        v._tracker.tracks = [Track(1, (x - 0.05, 0.55, x + 0.05, 0.95), 0.0, 0.0, hits=5)]
        out = v._people_values(door, parts)
        return out["enter_onset"], out["leave_onset"]

    seen = [at(x) for x in (0.7, 0.505, 0.495, 0.51, 0.49, 0.505)]  # outside, then the edge
    assert v.tracks and v.tracks[0].foot == pytest.approx((0.505, 0.95))
    assert all(e == 0.0 and leave == 0.0 for e, leave in seen)
    assert at(0.45) == (1.0, 0.0)  # well inside: in, once
    assert [at(x) for x in (0.49, 0.51, 0.495, 0.515)] == [(0.0, 0.0)] * 4  # the edge again
    assert at(0.6) == (0.0, 1.0)  # well outside: out, once
