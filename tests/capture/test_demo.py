"""The demo source: deterministic, distinct looks, honest sizes, paced in real time."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from sonify.capture import DEMO_LOOKS, DemoSource, Frame, SourceError

LOOKS = ("sunset", "night", "city", "visitors")


def frames_of(source: DemoSource, count: int) -> list[Frame]:
    with source:
        return [frame for _, frame in zip(range(count), source, strict=False)]


def edge_density(image: np.ndarray) -> float:
    return float(cv2.Canny(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 50, 150).mean() / 255)


def bright_points(image: np.ndarray) -> int:
    """Small bright spots after the analyser's 4x INTER_AREA downscale (white top-hat)."""
    small = cv2.resize(image, (image.shape[1] // 4, image.shape[0] // 4),
                       interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    tophat = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, np.ones((5, 5), np.uint8))
    count, _ = cv2.connectedComponents((tophat > 40).astype(np.uint8))
    return count - 1


def test_every_look_is_described() -> None:
    assert set(LOOKS) | {"cycle"} == set(DEMO_LOOKS)
    assert all(description.strip() for description in DEMO_LOOKS.values())


@pytest.mark.parametrize("look", [*LOOKS, "cycle"])
def test_same_seed_gives_same_frames_and_another_seed_differs(look: str) -> None:
    def render(seed: int) -> list[np.ndarray]:
        with DemoSource(look, width=320, height=180, seed=seed) as source:
            return [source.render(index) for index in (0, 37, 240, 700)]

    first, again, other = render(1), render(1), render(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_frames_follow_the_index_not_the_wall_clock() -> None:
    with DemoSource("city", width=160, height=90, fps=100.0, realtime=True, max_frames=5) as live:
        delivered = list(live)
        expected = [live.render(frame.index) for frame in delivered]
    assert all(np.array_equal(f.image, e) for f, e in zip(delivered, expected, strict=True))


@pytest.mark.parametrize("look", [*LOOKS, "cycle"])
@pytest.mark.parametrize(("width", "height"), [(320, 180), (333, 111), (16, 16), (180, 320)])
def test_frame_size_is_honoured(look: str, width: int, height: int) -> None:
    for frame in frames_of(DemoSource(look, width=width, height=height), 3):
        assert frame.image.shape == (height, width, 3)
        assert frame.image.dtype == np.uint8 and frame.image.flags.c_contiguous


def test_each_frame_is_a_new_array() -> None:
    frames = frames_of(DemoSource("night", width=160, height=90), 3)
    assert not np.shares_memory(frames[0].image, frames[1].image)
    assert not np.shares_memory(frames[1].image, frames[2].image)


def test_sunset_is_warm_and_night_is_cool() -> None:
    sunset = DemoSource("sunset", width=640, height=360)
    night = DemoSource("night", width=640, height=360)
    with sunset, night:
        for index in (0, 450, 900):  # the sun high, setting, set
            blue, _, red = sunset.render(index).reshape(-1, 3).mean(axis=0)
            assert red > blue + 40
            blue, _, red = night.render(index).reshape(-1, 3).mean(axis=0)
            assert blue > red + 20


def test_night_has_many_separate_stars_that_survive_downscaling() -> None:
    with DemoSource("night") as night, DemoSource("sunset") as sunset:
        stars = bright_points(night.render(0))
        assert stars >= 60
        assert bright_points(night.render(123)) >= 60
        assert bright_points(sunset.render(0)) < stars / 3  # only the sun's glitter


def test_city_has_more_edges_than_the_other_looks() -> None:
    with DemoSource("city") as city, DemoSource("sunset") as sunset, \
            DemoSource("night") as night:
        city_edges = edge_density(city.render(60))
        assert city_edges > 3 * edge_density(sunset.render(60))
        assert city_edges > 3 * edge_density(night.render(60))


def test_city_and_sunset_move() -> None:
    for look in ("city", "sunset"):
        with DemoSource(look, width=320, height=180) as source:
            moved = cv2.absdiff(source.render(0), source.render(15))
            assert moved.max() > 50, look


def test_cycle_cuts_hard_between_looks() -> None:
    with DemoSource("cycle", width=320, height=180, fps=10.0, cycle_s=1.0) as source:
        def change(a: int, b: int) -> float:
            return float(cv2.absdiff(source.render(a), source.render(b)).mean())

        assert change(9, 10) > 10 * max(change(8, 9), 0.5)  # sunset -> night
        assert change(19, 20) > 10 * max(change(18, 19), 0.5)  # night -> city
        with DemoSource("sunset", width=320, height=180, fps=10.0) as sunset:
            assert np.array_equal(source.render(30), sunset.render(30))  # back to the start


def test_realtime_demo_paces_at_fps() -> None:
    started = time.perf_counter()
    frames = frames_of(DemoSource("sunset", width=160, height=90, fps=50.0, realtime=True), 10)
    elapsed_s = time.perf_counter() - started
    assert 0.15 <= elapsed_s < 2.0
    assert frames[-1].t - frames[0].t >= 9 / 50 - 0.01


def test_offline_demo_timeline_is_index_over_fps() -> None:
    frames = frames_of(DemoSource("night", width=64, height=36, fps=24.0), 6)
    assert [frame.t for frame in frames] == [index / 24.0 for index in range(6)]


def test_full_hd_frames_are_cheap() -> None:
    # A loose bound that only catches a gross regression; the real numbers are in the report.
    with DemoSource("cycle", width=1920, height=1080, cycle_s=2.0) as source:
        source.render(0)
        started = time.perf_counter()
        for index in range(0, 180, 3):
            source.render(index)
        assert (time.perf_counter() - started) / 60 < 0.025


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"look": "mars"}, "sunset"),
    ({"width": 8}, "16"),
    ({"fps": 0.0}, "fps"),
])
def test_bad_settings_say_what_is_allowed(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(SourceError, match=needle):
        DemoSource(**kwargs)  # type: ignore[arg-type]
