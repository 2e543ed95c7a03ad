"""Drive a ScenePlayer through virtual time with real Features from drawn or demo pictures."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sonify.capture.base import Frame
from sonify.capture.demo import DemoSource
from sonify.events import Event, Note
from sonify.features.analyzer import Analyzer, Features
from sonify.scene import ScenePlayer, load_scene
from sonify.scene.schema import Scene
from sonify.timing.clock import TempoClock

FPS = 30.0
WINDOW_S = 0.02


def analyse(pictures: Sequence[np.ndarray], fps: float = FPS) -> list[Features]:
    """Features of each picture in turn, as a camera at ``fps`` would deliver them."""
    analyzer = Analyzer()
    return [analyzer.analyze(Frame(i, i / fps, img)) for i, img in enumerate(pictures)]


def settled(picture: np.ndarray, frames: int = 90) -> list[Features]:
    """A still picture held for ``frames`` frames (the smoothed features settle on it)."""
    return analyse([picture] * frames)


def demo_frames(look: str, n: int, width: int = 480, height: int = 270) -> list[np.ndarray]:
    src = DemoSource(look, width=width, height=height, max_frames=n)
    src.open()
    try:
        return [f.image for f in src]
    finally:
        src.close()


def play(
    scene: Scene | str,
    features: Sequence[Features] | Callable[[float], Features | None],
    seconds: float = 16.0,
    window_s: float = WINDOW_S,
    seed: int = 0,
    onsets: Callable[[int], Sequence[str]] = lambda i: (),
    follow_tempo: bool = True,
) -> tuple[list[Event], ScenePlayer, TempoClock]:
    """Render ``seconds`` of ``scene`` in windows of ``window_s`` as the runtime does: the latest
    features at each window's start (the frame list plays at FPS and then holds its last frame),
    the scene's tempo applied at window boundaries. Checks every event is inside its window."""
    sc = load_scene(scene) if isinstance(scene, str) else scene
    player = ScenePlayer(sc, seed=seed)
    tempo = TempoClock(player.tempo_bpm(None))
    events: list[Event] = []
    n = int(round(seconds / window_s))
    for i in range(n):
        t_from, t_to = i * window_s, (i + 1) * window_s
        if callable(features):
            feats = features(t_from)
        else:
            feats = features[min(int(t_from * FPS), len(features) - 1)]
        if follow_tempo:
            bpm = player.tempo_bpm(feats)
            if abs(bpm - tempo.bpm) > 1e-9:
                tempo.set_tempo(bpm, t_from)
        got = player.render(feats, tempo, t_from, t_to, onsets(i))
        assert all(t_from <= e.t < t_to for e in got), (t_from, t_to, got)
        assert [e.t for e in got] == sorted(e.t for e in got)
        events.extend(got)
    return events, player, tempo


def notes(events: Sequence[Event], voice: str | None = None) -> list[Note]:
    return [e for e in events if isinstance(e, Note) and (voice is None or e.voice == voice)]
