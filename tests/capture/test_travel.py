"""The travelling eye is not motion: a still picture's journey reads no motion and no cut, and
`city` keeps its tempo on it; a moving picture keeps its real motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sonify.capture.base import Frame
from sonify.capture.convert import read_image
from sonify.capture.travel import TravelSource
from sonify.events import NoteOn, OscMessage, Tempo
from sonify.features.analyzer import Analyzer
from sonify.performance.form import Form
from sonify.render.core import render
from tests.features import images

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
CRASH = 49  # city's motion-onset trigger: a crash cymbal on channel 10
DRUMS = 9


def photo(name: str) -> np.ndarray:
    image = read_image(str(PHOTOS / name))
    assert image is not None, name
    return image


def test_a_journey_over_a_still_marks_every_frame_still() -> None:
    frames = list(TravelSource(photo("brick.jpg"), duration_s=4.0, fps=5.0))
    assert frames and all(f.still for f in frames)
    # the window does move: consecutive frames differ, which is why the flag is needed
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(frames, frames[1:],
                                                                       strict=False))


@pytest.mark.parametrize("name", ["brick.jpg", "grass.jpg", "coffee.jpg", "astronaut.jpg"])
def test_the_travelling_eye_reads_no_motion_and_no_cut(name: str) -> None:
    analyzer = Analyzer()
    feats = [analyzer.analyze(f) for f in TravelSource(photo(name), duration_s=60.0, fps=5.0)]
    for key in ("motion", "scene_cut", "motion_onset", "cut_onset"):
        assert max(f.raw[key] for f in feats) == 0.0, key
    # what the window passes over still moves the picture's own features
    assert sum(np.ptp([f.raw[k] for f in feats])
               for k in ("brightness", "texture", "edge_density")) > 0.01


def test_a_moving_picture_keeps_its_motion_and_its_onsets() -> None:
    # a video-like source (frames not marked still): a block that jumps across a dark field
    analyzer = Analyzer()
    xs = [20] * 5 + [300] * 5 + [20] * 5
    feats = [analyzer.analyze(Frame(i, i / 15, images.block(x, 50, size=160)))
             for i, x in enumerate(xs)]
    assert max(f.raw["motion"] for f in feats) > 0.1
    assert sum(f.raw["motion_onset"] for f in feats) >= 1
    # the same pictures marked still (as if a window showed them) read no motion
    analyzer = Analyzer()
    still = [analyzer.analyze(Frame(i, i / 15, images.block(x, 50, size=160), still=True))
             for i, x in enumerate(xs)]
    assert max(f.raw["motion"] for f in still) == 0.0


@pytest.mark.parametrize("name", ["brick.jpg", "coffee.jpg"])
def test_city_keeps_a_steady_tempo_and_crashes_at_most_once_on_a_still(name: str,
                                                                         tmp_path: Path) -> None:
    duration = 60.0
    result = render(str(PHOTOS / name), [str(tmp_path / "city.mid")], scene="city",
                    duration_s=duration)
    # the piece's own ending (the form's ritardando) is a composed slowing, not the eye
    ending = (1 - Form(duration_s=duration, arc=True).opening) * duration
    tempos = [e for e in result.events if isinstance(e, Tempo) and e.t < ending]
    if len(tempos) > 1 and tempos[1].t == tempos[0].t:
        tempos = tempos[1:]  # the tempo before the first frame, replaced at the same instant
    bpms = [e.bpm for e in tempos]
    assert max(bpms) - min(bpms) <= 4.0, sorted({round(b, 1) for b in bpms})
    crashes = [e.t for e in result.events
               if isinstance(e, NoteOn) and e.channel == DRUMS and e.pitch == CRASH]
    cuts = [e.t for e in result.events if isinstance(e, OscMessage) and e.address == "/city/cut"]
    assert len(crashes) <= 1 and len(cuts) <= 1, (crashes, cuts)
