"""The analyzer's nogil post kernel against the Python specification it replaced.

``python_post`` below is the per-frame work after the kernel exactly as ``Analyzer`` did it in
Python (``OnePole``, ``Onset``, ``mood``): the same stats in must give the same values (1e-9),
identical onsets and the same mood labels.
"""

from __future__ import annotations

import numpy as np
import pytest

from sonify.capture import open_source
from sonify.capture.base import Frame
from sonify.features import kernels, mood
from sonify.features.analyzer import KERNEL_SCALARS, Analyzer, AnalyzerConfig
from sonify.features.registry import ONSET_NAMES, SCALAR_NAMES, SCALARS
from sonify.features.smoothing import OnePole, Onset
from tests.features import images


class PythonPost:
    """The analyzer's ``_finish`` as it was written in Python (the specification)."""

    def __init__(self, config: AnalyzerConfig) -> None:
        c = config
        self.smooth = {s.name: OnePole(c.smoothing_s.get(s.name, s.tau_s), s.circular)
                       for s in SCALARS}
        self.motion = Onset(*c.motion_onset, c.onset_min_interval_s)
        self.cut = Onset(*c.cut_onset, c.onset_min_interval_s)
        self.stars = Onset(*c.stars_onset, c.onset_min_interval_s)
        self.stars_level = OnePole(2.0)
        self.prev_hists: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self.prev_hists = None
        for s in self.smooth.values():
            s.reset()
        self.stars_level.reset()

    def __call__(self, stats: dict, t: float, still: bool) -> tuple[dict, dict, str]:
        raw = {name: float(stats[name]) for name in KERNEL_SCALARS}
        hists = (stats["luma_hist"], stats["hue_mass"])
        if self.prev_hists is None or still:
            raw["scene_cut"] = 0.0
        else:
            d_luma = 0.5 * float(np.abs(hists[0] - self.prev_hists[0]).sum())
            d_chroma = 0.5 * float(np.abs(hists[1] - self.prev_hists[1]).sum())
            raw["scene_cut"] = min(1.0, max(d_luma, d_chroma))
        self.prev_hists = hists
        raw["motion_onset"] = float(self.motion.update(raw["motion"], t))
        raw["cut_onset"] = float(self.cut.update(raw["scene_cut"], t))
        before = self.stars_level.value
        rise = 0.0 if before is None else raw["stars"] - before
        raw["stars_onset"] = float(self.stars.update(rise, t))
        self.stars_level.update(raw["stars"], t)
        if raw["cut_onset"]:
            for name, s in self.smooth.items():
                if name not in ("valence", "arousal"):
                    s.reset()
        values = {}
        for name in (*KERNEL_SCALARS, "scene_cut", *ONSET_NAMES):
            values[name] = self.smooth[name].update(raw[name], t)
        raw["valence"], raw["arousal"] = mood.valence_arousal(raw, stats["hue_hist"])
        values["valence"] = self.smooth["valence"].update(raw["valence"], t)
        values["arousal"] = self.smooth["arousal"].update(raw["arousal"], t)
        return values, raw, mood.label(values["valence"], values["arousal"])


def _frames() -> list[tuple[np.ndarray, float, bool]]:
    """A show in small pictures: demo animation (motion), hard cuts, a still stretch, stars
    appearing, a hue sweep across red (the circular smoothing), uneven frame times."""
    out: list[tuple[np.ndarray, float, bool]] = []
    t = 0.0
    for look in ("city", "night", "sunset"):
        with open_source(f"demo:{look}", width=320, height=180, fps=30.0, seed=1) as src:
            it = iter(src)
            for i in range(14):
                t += 1 / 30 if i % 5 else 0.11  # uneven intervals, some past min_interval
                out.append((next(it).image, t, False))
    sky = images.starfield([], w=320, h=180)
    for n in (0, 0, 12, 12, 30, 30, 0):
        t += 0.07
        pts = images.scattered_points(n, 320, 180, spacing=12, seed=n)
        out.append((images.starfield(pts, w=320, h=180) if n else sky, t, False))
    for k in range(20):  # hue sweeping through red: 330 .. 30 degrees
        hue = int((165 + 2 * k) % 180)
        hsv = np.full((90, 160, 3), (hue, 220, 200), np.uint8)
        import cv2

        t += 0.05
        out.append((cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), t, k % 7 == 3))
    for k in range(6):  # a still journey: no cut, no motion
        t += 1 / 30
        out.append((images.gradient(warm=k % 2 == 0), t, True))
    return out


@pytest.mark.parametrize("config", [
    AnalyzerConfig(),
    AnalyzerConfig(smoothing_s={"hue": 0.0, "motion": 2.0, "valence": 0.0},
                   motion_onset=(0.05, 0.01), cut_onset=(0.2, 0.05), onset_min_interval_s=0.0),
], ids=["default", "custom"])
def test_post_kernel_matches_the_python_specification(config: AnalyzerConfig) -> None:
    analyzer = Analyzer(config)
    spec = PythonPost(config)
    prev = None
    fired = dict.fromkeys(ONSET_NAMES, 0)
    labels = set()
    for i, (img, t, still) in enumerate(_frames()):
        if prev is not None and prev.shape != img.shape[:2]:
            prev = None  # a new size: both forget, as ``analyze`` does
            spec.reset()
            analyzer.reset()
        stats, prev = kernels.frame_stats(img, None if still else prev)
        want_values, want_raw, want_label = spec(stats, t, still)
        # the analyzer's own post step on the very same stats
        analyzer._prev = prev
        got = analyzer._finish(Frame(i, t, img, still=still), stats, (1, 1), 0.0)
        assert list(got.values) == list(SCALAR_NAMES) == list(got.raw)
        for name in SCALAR_NAMES:
            assert got.raw[name] == pytest.approx(want_raw[name], abs=1e-9), (i, name)
            assert got.values[name] == pytest.approx(want_values[name], abs=1e-9), (i, name)
        for name in ONSET_NAMES:
            assert got.raw[name] == want_raw[name], (i, name)  # identical, not close
            fired[name] += int(got.raw[name])
        assert got.mood == want_label
        labels.add(got.mood)
    # the show exercised what it is meant to
    assert all(fired.values()), fired
    assert len(labels) >= 2


def test_reset_forgets_smoothing_and_the_previous_picture() -> None:
    analyzer = Analyzer()
    # 97 and 102 share a luma-histogram bin: no scene cut, so brightness glides
    dim, light = images.solid((97, 97, 97)), images.solid((102, 102, 102))
    analyzer.analyze(Frame(0, 0.0, dim))
    glide = analyzer.analyze(Frame(1, 0.01, light))
    assert glide.raw["scene_cut"] == 0.0
    assert glide.values["brightness"] < glide.raw["brightness"] - 0.015
    analyzer.reset()
    jumped = analyzer.analyze(Frame(2, 0.02, light))
    assert jumped.values["brightness"] == pytest.approx(jumped.raw["brightness"])
    assert jumped.raw["scene_cut"] == 0.0


def test_negative_smoothing_and_inverted_onset_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="hue"):
        Analyzer(AnalyzerConfig(smoothing_s={"hue": -1.0}))
    with pytest.raises(ValueError, match="motion_onset needs low < high"):
        Analyzer(AnalyzerConfig(motion_onset=(0.1, 0.2)))
