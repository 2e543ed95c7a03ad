"""The live pipeline on a virtual clock: source -> analyzer -> scene -> scheduler -> outputs,
in one thread, deterministic, as fast as the machine goes.

Live and offline share every part but the clock and the source's pacing: a frame is analysed
when the virtual clock reaches its capture time (``Frame.t``, on the source's own timeline from
0), and the scene renders in the same blocks the live runtime uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from sonify.capture.base import Source
from sonify.driver import SceneDriver
from sonify.features.analyzer import Analyzer, Features
from sonify.outputs.base import Output
from sonify.scene.player import ScenePlayer
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler

ONSETS = ("motion_onset", "cut_onset", "stars_onset")


def play_offline(source: Source, player: ScenePlayer, outputs: Sequence[Output], *,
                 duration_s: float, block_s: float = 0.01,
                 analyzer: Analyzer | None = None) -> Scheduler:
    """Play ``duration_s`` seconds of ``source`` through ``player`` into ``outputs``.

    The source must not pace itself (``realtime=False``). Ends with a panic, so every note-on
    has its note-off; the outputs are left open (the caller closes them). Returns the
    scheduler, for its counters.
    """
    clock = ManualTime(0.0)
    scheduler = Scheduler(outputs, clock)
    analyzer = analyzer or Analyzer()
    driver = SceneDriver(player, scheduler, 0.0)
    features: Features | None = None
    onsets: set[str] = set()
    with source:
        frames = iter(source)
        frame = next(frames, None)
        t = 0.0
        while t < duration_s:
            while frame is not None and frame.t <= t:
                features = analyzer.analyze(frame)
                onsets.update(name for name in ONSETS if features.raw[name])
                frame = next(frames, None)
            t_next = min(t + block_s, duration_s)
            driver.advance(features, sorted(onsets), t_next, t_next)
            onsets.clear()
            scheduler.run_until(t_next)
            t = t_next
    scheduler.stop(panic=True)
    return scheduler
