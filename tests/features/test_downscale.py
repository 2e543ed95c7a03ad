"""The analysis downscale against OpenCV's INTER_AREA, the area average it stands in for."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sonify.features.downscale import Downscaler, analysis_size, area_weights, downscale
from tests.features import images


def _photo_like(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields with hard edges and fine noise: every kind of block an average
    meets (flat, edge, texture)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (0, 0), 1)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)
    noise = rng.integers(-20, 21, (h, w, 3))
    return np.clip(img.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def _inter_area(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("w,h", [(1920, 1080), (3840, 544), (960, 540), (1440, 810),
                                 (7680, 432)])  # factors 4, 8, 2, 3, 16 (short frames: fast)
def test_integer_factors_are_the_exact_box_average(w: int, h: int) -> None:
    img = _photo_like(w, h)
    out = Downscaler(480)(img)
    s = w // 480
    assert out.shape == (h // s, 480, 3) and out.flags.c_contiguous
    sums = img.reshape(h // s, s, 480, s, 3).astype(np.int64).sum(axis=(1, 3))
    exact = (sums + s * s // 2) // (s * s)  # rounding half up
    assert np.array_equal(out, exact)
    # OpenCV rounds ties to even: at most one level apart, on ties only
    diff = np.abs(out.astype(np.int64) - _inter_area(img, (480, h // s)))
    assert diff.max() <= 1
    ties = (sums % (s * s)) == s * s // 2
    assert not diff[~ties].any()


@pytest.mark.parametrize("w,h", [(1280, 720), (854, 480), (2560, 1440), (641, 359), (5000, 20)])
def test_other_factors_are_within_one_level_of_inter_area(w: int, h: int) -> None:
    img = _photo_like(w, h, seed=w)
    out = Downscaler(480)(img)
    size = analysis_size(w, h, 480)
    assert out.shape == (size[1], size[0], 3)
    ref = _inter_area(img, size)
    diff = np.abs(out.astype(np.int64) - ref)
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.05  # float rounding at the half: a few pixels, not a bias


def test_weights_cover_every_source_pixel_once() -> None:
    first, weights = area_weights(1280, 480)
    per_source = np.zeros(1280)
    for o in range(480):
        for k in range(weights.shape[1]):
            per_source[first[o] + k] += weights[o, k]
    # each output's weights sum to 1, and each source pixel is shared out whole
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    assert np.allclose(per_source, 480 / 1280, atol=1e-6)


def test_small_frames_pass_through_and_buffers_are_reused() -> None:
    small = images.gradient(w=320, h=180)
    assert Downscaler(480)(small) is small
    assert Downscaler(0)(_photo_like(1920, 1080)).shape == (1080, 1920, 3)
    scaler = Downscaler(480)
    a = scaler(_photo_like(1920, 1080, seed=1))
    b = scaler(_photo_like(1920, 1080, seed=2))
    assert a is b  # one buffer per size: a stream of frames allocates nothing
    c = scaler(_photo_like(1280, 720))
    assert c.shape == (270, 480, 3)


def test_a_view_that_is_not_contiguous_is_averaged_like_a_copy() -> None:
    img = _photo_like(2000, 1100)
    view = img[10:1090, 40:1960]
    assert np.array_equal(downscale(view, 480), downscale(np.ascontiguousarray(view), 480))


def test_analysis_size_keeps_the_aspect() -> None:
    assert analysis_size(3840, 2160, 480) == (480, 270)
    assert analysis_size(640, 480, 480) == (480, 360)
    assert analysis_size(480, 270, 480) == (480, 270)
    assert analysis_size(4000, 2, 480) == (480, 3)
