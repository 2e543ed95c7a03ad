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

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numba.core.registry import CPUDispatcher as Dispatcher

from sonify.features import kernels, kernels_band, reference
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
    kernels.warmup_parallel()
    jitted = [kernels._frame_stats, kernels._frame_stats_parallel, kernels._read_pass,
              kernels._normalise_stars, kernels._band_outputs, kernels._add_into]
    jitted += [getattr(kernels_band, name) for name in dir(kernels_band)
               if isinstance(getattr(kernels_band, name), Dispatcher)]
    assert len(jitted) >= 12
    for fn in jitted:
        assert fn.targetoptions["nogil"] is True, fn
        assert fn._cache is not None and fn._cache.__class__.__name__ != "NullCache", fn
    assert kernels._frame_stats_parallel.targetoptions["parallel"] is True
    # numba refuses to cache some functions (dynamic globals such as set_num_threads) with a
    # warning, not an error: the entry points were compiled or loaded above, so their index
    # files must exist now
    for fn in (kernels._frame_stats, kernels._frame_stats_parallel, kernels._read_pass):
        assert os.path.exists(fn._cache._cache_file._index_path), fn


def test_read_floor_reads_every_word() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    assert kernels.read_floor(img) == 0
    img[1, 1, 1] = 7
    assert kernels.read_floor(img) != 0


def _raw(image: np.ndarray, prev: np.ndarray | None, bands: int,
         workers: int = 2) -> list[np.ndarray]:
    """Every output of the kernel itself: serial for bands == 0, else the parallel variant
    with ``bands`` bands taken from its queue by ``workers`` workers."""
    h, w = image.shape[:2]
    outs = [np.zeros(kernels.N_ACC, np.int64), np.zeros(12, np.int64), np.zeros(8, np.int64),
            np.zeros(32, np.int64), np.zeros((8, 8), np.int64), np.zeros((16, 3)),
            np.zeros((8, 8))]
    lum = np.empty((h, w), np.uint8)
    args = (image.reshape(h, 3 * w), lum if prev is None else prev, prev is not None, lum)
    if bands == 0:
        kernels._frame_stats(*args, *outs)
    else:
        kernels._frame_stats_parallel(*args, *outs, bands, workers)
    return [lum, *outs]


def _frames_for_bands() -> list[tuple[np.ndarray, np.ndarray]]:
    stars = images.starfield(images.scattered_points(40, 480, 270, 8, seed=3), radius=1)
    noisy = images.noise(seed=7)
    # points on and beside the band edges of 2 and 3 bands (rows 135; 90 and 180)
    edges = images.starfield([(20 + 30 * i, y) for i, y in enumerate(
        (86, 88, 89, 90, 91, 92, 131, 133, 134, 135, 136, 137, 178, 180, 182))], radius=0)
    pairs = [(stars, np.ascontiguousarray(stars[::-1])), (noisy, images.noise(seed=8)),
             (edges, stars)]
    rng = np.random.default_rng(5)
    for h, w in ((3, 3), (4, 5), (5, 17), (7, 9), (11, 31), (37, 23), (101, 64)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img[rng.random((h, w)) < 0.05] = 255  # bright points, some of them at band edges
        pairs.append((img, rng.integers(0, 256, (h, w), dtype=np.uint8)))
    return pairs


@pytest.mark.parametrize(("bands", "workers"), [(1, 2), (2, 2), (3, 2), (5, 2), (7, 2),
                                                (8, 2), (8, 1), (2, 3), (1, 3)])
def test_bands_are_identical_to_one_thread(bands: int, workers: int) -> None:
    """Any split into row bands (heights not divisible by it, bands of one row), taken from the
    queue by any number of workers (fewer or more than the bands), gives the same integers,
    luma and bright points as the serial kernel, bit for bit."""
    for image, prev in _frames_for_bands():
        if bands > image.shape[0]:
            continue
        for p in (None, reference.luma(prev) if prev.ndim == 3 else prev):
            want = _raw(image, p, 0)
            got = _raw(image, p, bands, workers)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)


def test_band_count_gives_each_thread_several_bands_of_enough_rows() -> None:
    assert kernels.band_count(2160, 2) == 2 * kernels.BANDS_PER_THREAD
    assert kernels.band_count(1080, 4) == 4 * kernels.BANDS_PER_THREAD
    assert kernels.band_count(160, 2) == 160 // kernels.MIN_BAND_ROWS < 8  # short: fewer
    assert kernels.band_count(40, 2) == 2  # never fewer bands than threads
    assert kernels.band_count(3, 3) == 3


def test_two_threads_give_the_same_features_as_one() -> None:
    stars = images.starfield(images.scattered_points(40, 480, 270, 8, seed=3), radius=1)
    assert kernels.frame_stats(stars, None)[0]["stars"] >= 30  # the bands meet bright points
    edges = _frames_for_bands()[2][0]
    assert kernels.frame_stats(edges, None)[0]["stars"] == 15
    for image, prev in _frames_for_bands():
        prev_luma = reference.luma(prev) if prev.ndim == 3 else prev
        one, lum1 = kernels.frame_stats(image, prev_luma)
        two, lum2 = kernels.frame_stats(image, prev_luma, threads=2)
        np.testing.assert_array_equal(lum1, lum2)
        assert one.keys() == two.keys()
        for name in one:
            np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_threads_setting_is_checked_and_restored() -> None:
    import numba

    image = images.noise(seed=1)
    before = numba.get_num_threads()
    kernels.frame_stats(image, None, threads=64)  # capped at numba's pool, not an error
    assert numba.get_num_threads() == before
    # idle OpenMP workers sleep rather than spin (unless the environment says otherwise)
    assert os.environ.get("OMP_WAIT_POLICY", "").upper() in ("PASSIVE", "ACTIVE")
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="threads"):
            kernels.frame_stats(image, None, threads=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="luma_out"):
        kernels.frame_stats(image, None, np.empty((5, 5), np.uint8))


def test_readme_threads_example_runs(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).parents[2]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
              if "threads=2" in b and "kernels.frame_stats" in b]
    assert len(blocks) == 1
    monkeypatch.chdir(root)  # the example's photo path is relative to the repository
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "True"
