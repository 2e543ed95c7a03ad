"""The fused numba kernel against the plain OpenCV/NumPy reference.

Tolerances: every feature built from integer sums is exact to float rounding (1e-7: OpenCV's
meanStdDev of a flat picture is 2e-9, not 0); the orientation histogram is exact too (the
kernel's float32 tan comparisons were checked against atan2 for every integer gradient). Two
come from floating point on one side or the other and are allowed a stated slack:
- saturation: the kernel sums it in 1/1024 fixed point per pixel (error <= 1/2048);
- hue histogram: OpenCV's float HSV may round a hue lying exactly on a bin edge to the other
  side (L1 <= 0.01; the dominant hue is then compared only where its peak is clear).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sonify.features import kernels, reference
from tests.features import images

EXACT = ("brightness", "contrast", "colorfulness", "warmth", "edge_density", "texture",
         "motion", "motion_x", "motion_y", "center_x", "center_y", "stars")
EXACT_ARRAYS = ("star_points", "grid", "luma_hist")


def compare(image: np.ndarray, prev: np.ndarray | None = None, strict_hue: bool = False) -> None:
    prev_luma = None if prev is None else reference.luma(prev)
    got, got_luma = kernels.frame_stats(image, prev_luma)
    want, want_luma = reference.frame_stats(image, prev_luma)
    np.testing.assert_array_equal(got_luma, want_luma)
    for name in EXACT:
        assert got[name] == pytest.approx(want[name], abs=1e-7), name
    for name in EXACT_ARRAYS:
        np.testing.assert_allclose(got[name], want[name], atol=1e-9, err_msg=name)
    assert got["saturation"] == pytest.approx(want["saturation"], abs=1 / 2048)
    assert np.abs(got["hue_hist"] - want["hue_hist"]).sum() <= 0.01
    assert np.abs(got["hue_mass"] - want["hue_mass"]).sum() <= 0.01
    np.testing.assert_allclose(got["orient_hist"], want["orient_hist"], atol=1e-9)
    assert got["geometry"] == pytest.approx(want["geometry"], abs=1e-9)
    if strict_hue:
        diff = abs(got["hue"] - want["hue"])
        assert min(diff, 1 - diff) <= 0.01


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(3, 48), st.integers(3, 64), st.just(3))),
    st.booleans(),
)
def test_random_images_match_reference(image: np.ndarray, with_prev: bool) -> None:
    image = np.ascontiguousarray(image)
    prev = np.ascontiguousarray(image[::-1]) if with_prev else None
    compare(image, prev)


@pytest.mark.parametrize("seed", range(3))
def test_random_noise_matches_reference(seed: int) -> None:
    compare(images.noise(seed=seed), images.noise(seed=seed + 10))


STRUCTURED = {
    "black": images.solid((0, 0, 0)),
    "white": images.solid((255, 255, 255)),
    "red": images.solid((0, 0, 255)),
    "sunset": images.gradient(warm=True),
    "night": images.gradient(warm=False),
    "checkerboard": images.checkerboard(),
    "stars": images.starfield(images.scattered_points(25, 480, 270, 12), radius=1),
    "block": images.block(100, 50),
    "blurred": cv2.GaussianBlur(images.noise(seed=4), (0, 0), 2),
}


@pytest.mark.parametrize("name", list(STRUCTURED))
def test_structured_images_match_reference(name: str) -> None:
    image = STRUCTURED[name]
    h, w = image.shape[:2]
    prev = cv2.resize(images.block(300, 150), (w, h), interpolation=cv2.INTER_NEAREST)
    compare(image, prev, strict_hue=name in ("red", "sunset", "night"))


def test_full_hd_frame_matches_reference() -> None:
    big = cv2.resize(STRUCTURED["blurred"], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    compare(big, np.ascontiguousarray(big[:, ::-1]))


def test_kernel_rejects_bad_input_clearly() -> None:
    with pytest.raises(ValueError, match="uint8"):
        kernels.frame_stats(np.zeros((10, 10, 3), np.float32), None)
    with pytest.raises(ValueError, match="contiguous"):
        kernels.frame_stats(np.zeros((10, 20, 3), np.uint8)[:, ::2], None)
    with pytest.raises(ValueError, match="does not match"):
        kernels.frame_stats(np.zeros((10, 10, 3), np.uint8), np.zeros((5, 5), np.uint8))


def test_kernels_are_nogil_and_cached() -> None:
    for fn in (kernels._frame_stats, kernels._keep_brightest, kernels._read_pass):
        assert fn.targetoptions["nogil"] is True
        assert fn._cache is not None and fn._cache.__class__.__name__ != "NullCache"


def test_read_floor_reads_every_word() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    assert kernels.read_floor(img) == 0
    img[1, 1, 1] = 7
    assert kernels.read_floor(img) != 0
