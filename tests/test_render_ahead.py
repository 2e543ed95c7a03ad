"""A render analyses its frames on a worker thread, ahead of the music, and the music does not
change: the same features, frame by frame, and the same MIDI file, byte for byte, as analysing
each frame when the loop asks for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import sonify.render.core as core
from sonify.capture.base import Frame
from sonify.features.analyzer import Analyzer, Features
from sonify.render import render
from sonify.render.ahead import AnalysisAhead
from tests.features import images
from tests.test_render import cut_video, two_sided_picture


def _frames(n: int) -> list[Frame]:
    return [Frame(i, i / 15, images.gradient(96, 64, warm=i % 2 == 0)) for i in range(n)]


def test_the_features_ahead_are_those_of_analysing_in_turn() -> None:
    frames = _frames(12)
    direct = Analyzer()
    expected = [direct.analyze(f) for f in frames]
    with AnalysisAhead(frames, Analyzer().analyze, depth=2) as ahead:
        got = [ahead.analyze(f) for f in ahead]
    assert [(f.index, f.t, f.values, f.mood) for f in got] == \
        [(f.index, f.t, f.values, f.mood) for f in expected]


def test_reading_and_analysis_run_on_worker_threads_in_order() -> None:
    seen: list[tuple[int, str]] = []
    read: list[str] = []

    def analyze(frame: Frame) -> Features:
        seen.append((frame.index, threading.current_thread().name))
        return Features(frame.index, frame.t, {}, {}, {}, "calm")

    def frames() -> Iterator[Frame]:
        for frame in _frames(6):
            read.append(threading.current_thread().name)
            yield frame

    with AnalysisAhead(frames(), analyze) as ahead:
        for frame in ahead:
            ahead.analyze(frame)
    assert [i for i, _ in seen] == list(range(6))
    assert {name for _, name in seen} == {"sonify-render-analysis"}
    assert set(read) == {"sonify-render-read"}


def test_a_frame_it_did_not_give_is_refused() -> None:
    frames = _frames(3)
    with AnalysisAhead(frames, Analyzer().analyze) as ahead:
        with pytest.raises(RuntimeError, match="was not given"):
            ahead.analyze(frames[0])
        it = iter(ahead)
        next(it)
        with pytest.raises(RuntimeError, match="frame 2 at .* asked for, but frame 0"):
            ahead.analyze(frames[2])


def test_an_error_while_reading_is_raised_where_the_frame_was_wanted() -> None:
    def failing() -> Iterator[Frame]:
        yield from _frames(2)
        raise OSError("the video broke off")

    with AnalysisAhead(failing(), Analyzer().analyze) as ahead:
        got = []
        with pytest.raises(OSError, match="broke off"):
            for frame in ahead:
                got.append(ahead.analyze(frame).index)
    assert got == [0, 1]


def test_stopping_early_stops_the_worker() -> None:
    read: list[int] = []

    def endless() -> Iterator[Frame]:
        i = 0
        while True:
            read.append(i)
            yield Frame(i, i / 15, np.zeros((8, 8, 3), np.uint8))
            i += 1

    ahead = AnalysisAhead(endless(), lambda f: Features(f.index, f.t, {}, {}, {}, "calm"),
                          depth=3)
    it = iter(ahead)
    assert [next(it).index for _ in range(5)] == list(range(5))
    ahead.close()
    count = len(read)
    assert count <= 5 + 2 * (3 + 1)  # taken, then queued and in hand at each stage: no more
    assert not ahead._read.thread.is_alive() and not ahead._analysis.thread.is_alive()
    assert len(read) == count


class _InTurn:
    """What render did before: each frame analysed when the loop asks for it."""

    def __init__(self, frames: Iterator[Frame], analyze: object) -> None:
        self.frames, self.fn = frames, analyze

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def analyze(self, frame: Frame) -> Features:
        return self.fn(frame)  # type: ignore[operator, no-any-return]

    def __enter__(self) -> _InTurn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.parametrize("kind", ["still", "video"])
def test_the_midi_is_byte_identical_to_analysing_in_turn(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "still":
        source, duration = two_sided_picture(tmp_path / "pic.png"), 12.0
    else:
        source, duration = cut_video(tmp_path / "cut.avi"), None
    outs = {}
    for how in ("ahead", "in_turn"):
        if how == "in_turn":
            monkeypatch.setattr(core, "AnalysisAhead", _InTurn)
        files = [str(tmp_path / f"{how}.mid"), str(tmp_path / f"{how}.json")]
        render(str(source), files, scene="gallery", duration_s=duration, seed=5)
        outs[how] = [Path(f).read_bytes() for f in files]
    assert outs["ahead"] == outs["in_turn"]
