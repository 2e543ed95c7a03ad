"""The score picture shows the form (sections, key, chords, cadences, tempo), and the survey's
loudness meter reads BS.1770 levels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sonify.events import Marker, Tempo
from sonify.render.core import RenderResult
from sonify.render.loudness import integrated_loudness
from sonify.render.score import SECTION_COLOURS, draw_piece


def _result() -> RenderResult:
    r = RenderResult("x.png", "gallery", 0, 40.0, 60.0)
    r.notes = [{"t": 1.0 * i, "duration_s": 0.5, "channel": 2, "pitch": 60 + i % 12,
                "velocity": 80, "voice": "melody"} for i in range(40)]
    r.events = [Tempo(0.0, 60.0), Tempo(30.0, 50.0),
                Marker(0.0, "section", "name=A"), Marker(20.0, "section", "name=B"),
                Marker(0.0, "key", "root=D scale=major pcs=2,4,6,7,9,11,1"),
                Marker(20.0, "key", "root=B scale=minor pcs=11,1,2,4,6,7,9"),
                Marker(0.0, "chord", "name=I root=2 pcs=2,6,9 bass=2"),
                Marker(16.0, "chord", "name=V7 root=9 pcs=9,1,4,7 bass=9"),
                Marker(16.0, "cadence", "type=half"), Marker(0.0, "phrase", "bars=8")]
    return r


def _row_with(img: np.ndarray, colour: tuple[int, int, int]) -> int:
    hits = np.where(np.all(img == np.array(colour, np.uint8), axis=2))
    assert hits[0].size, f"no pixel of {colour}"
    return int(np.median(hits[0]))


def test_the_score_picture_bands_the_sections_and_marks_key_changes_and_tempo() -> None:
    img = draw_piece(_result(), width=1000)
    margin, plot_w = 70, 1000 - 140
    y = _row_with(img, SECTION_COLOURS[0])
    x_b = margin + int(plot_w * 20 / 40)
    assert tuple(img[y, margin + 40]) == SECTION_COLOURS[0]  # section A before 20 s
    assert tuple(img[y, x_b + 40]) == SECTION_COLOURS[1]  # section B after
    key_rows = np.where(np.all(img == np.array((120, 200, 255), np.uint8), axis=2))
    key_xs = set(key_rows[1].tolist())
    assert margin in key_xs and any(abs(x - x_b) <= 1 for x in key_xs)  # each key change
    tempo = np.where(np.all(img == np.array((80, 220, 255), np.uint8), axis=2))
    slow_x = margin + int(plot_w * 35 / 40)
    fast_x = margin + int(plot_w * 10 / 40)
    ys = {x: tempo[0][tempo[1] == x] for x in (fast_x, slow_x)}
    assert ys[fast_x].size and ys[slow_x].size
    assert ys[slow_x].mean() > ys[fast_x].mean()  # a slower tempo is drawn lower


def test_a_piece_without_markers_still_draws() -> None:
    r = _result()
    r.events = []
    r.sections = [0.0, 25.0]
    img = draw_piece(r, width=800)
    assert img.shape[1] == 800 and img.dtype == np.uint8


@pytest.mark.parametrize("amplitude, lufs", [(1.0, 0.0), (0.1, -20.0)])
def test_a_997_hz_sine_in_both_channels_reads_its_bs1770_level(amplitude: float,
                                                               lufs: float) -> None:
    rate = 48000
    t = np.arange(rate * 5) / rate
    tone = amplitude * np.sin(2 * math.pi * 997 * t)
    assert integrated_loudness(np.stack([tone, tone], axis=1), rate) == pytest.approx(lufs,
                                                                                       abs=0.1)


def test_silence_has_no_loudness() -> None:
    assert integrated_loudness(np.zeros((48000, 2)), 48000) == -math.inf
