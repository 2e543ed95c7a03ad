"""The motif read off the picture: deterministic, picture-dependent, and well-formed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sonify.music.motif import MAX_LEAP, Motif, derive_motif, eye_path, marker_text

PHOTOS = "tests/data/photos"


def _grid(name: str) -> np.ndarray:
    img = cv2.imread(f"{PHOTOS}/{name}.jpg", cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0


def _motif(grid: np.ndarray, **kw: object) -> Motif:
    args: dict = dict(length=16, steps_per_bar=8, notes=6, span=5)
    args.update(kw)
    return derive_motif(grid, **args)


def test_the_same_picture_gives_the_same_motif() -> None:
    g = _grid("coffee")
    assert _motif(g) == _motif(g.copy())


def test_different_pictures_give_different_motifs() -> None:
    motifs = {name: _motif(_grid(name)) for name in ("coffee", "astronaut", "rocket", "camera",
                                                     "chelsea")}
    shapes = {(m.onsets, m.degrees) for m in motifs.values()}
    assert len(shapes) == len(motifs)


def test_colour_fields_differ_by_hue_and_brightness() -> None:
    flat = np.full((8, 8), 0.5)
    red = _motif(flat, tint=(0.0, 0.6))
    blue = _motif(flat, tint=(0.67, 0.6))
    dark_red = _motif(flat, tint=(0.0, 0.05))
    assert red.degrees != blue.degrees
    assert red.degrees != dark_red.degrees


def test_rhythm_starts_on_step_zero_and_fills_the_motif() -> None:
    m = _motif(_grid("astronaut"), notes=5)
    assert m.onsets[0] == 0 and m.notes == 5
    assert sum(m.durations) == m.length
    assert m.degrees[0] == 0


def test_strong_edges_start_notes_and_smooth_stretches_hold() -> None:
    # a picture dark on the left, bright on the right: one strong edge in the middle
    g = np.zeros((8, 8))
    g[:, 4:] = 1.0
    path = eye_path(g, 16)
    profile = [g[c] for c in path]
    jumps = [i for i in range(1, 16) if profile[i] != profile[i - 1]]
    m = _motif(g, notes=4, pattern=())
    assert jumps and set(m.onsets[1:]) <= set(jumps)


def test_leaps_are_bounded_and_filled_back() -> None:
    for name in ("coffee", "astronaut", "rocket", "camera", "chelsea", "brick"):
        m = _motif(_grid(name), notes=8, span=9)
        steps = np.diff(m.degrees)
        assert np.all(np.abs(steps) <= MAX_LEAP)
        for a, b in zip(steps, steps[1:], strict=False):
            if abs(a) >= 2:
                assert np.sign(b) == -np.sign(a) and abs(b) == 1, m.degrees


def test_max_leap_limits_the_steps() -> None:
    m = _motif(_grid("coffee"), notes=12, span=9, max_leap=1)
    assert np.all(np.abs(np.diff(m.degrees)) <= 1)


def test_eye_path_starts_left_and_visits_each_cell_once() -> None:
    g = _grid("chelsea")
    path = eye_path(g, 64)
    assert path[0][1] < 4
    assert len(set(path)) == 64


def test_marker_text() -> None:
    m = Motif(16, (0, 2, 3, 8), (2, 1, 5, 8), (0, 2, 1, -1), (True, False, False, True))
    assert marker_text(m, 0.5) == "steps=0,1,1.5,4 degrees=0,2,1,-1"
    assert marker_text(m, 0.25, voice="arp", ladder="chord") == \
        "steps=0,0.5,0.75,2 degrees=0,2,1,-1 ladder=chord voice=arp"


def test_bad_motifs_are_refused() -> None:
    with pytest.raises(ValueError, match="rise strictly"):
        Motif(8, (0, 0), (1, 1), (0, 0), (False, False))
    with pytest.raises(ValueError, match="2-D"):
        derive_motif(np.zeros(8), length=8, steps_per_bar=8, notes=2)
