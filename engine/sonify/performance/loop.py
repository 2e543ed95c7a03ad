"""The loop on a manual clock: ``sonify render``, soak tests and ``Runtime.run_virtual``.

One block at a time, as fast as the machine goes: the frames whose time has come are analysed
(a frame's time on the source's own timeline, from ``start_s``), the control script's commands
whose time has come are issued, the ``Performance`` steps, and the scheduler dispatches up to
the end of the block. The live runtime runs the same ``Performance.step`` on the real clock with
a capture thread; so, given the same source, scene, seed, settings and commands, a piece
rendered here and one played live on a manual clock are the same events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from sonify.capture.base import Frame
from sonify.commands import Command
from sonify.events import Event
from sonify.features.analyzer import Features
from sonify.performance.core import Performance
from sonify.performance.vision import onsets_of
from sonify.timing.clock import ManualTime

Script = Sequence[tuple[float, Command]]  # (seconds from the start, command)


def play(frames: Iterator[Frame] | None, performance: Performance, clock: ManualTime, *,
         analyze: Callable[[Frame], Features], start_s: float, duration_s: float,
         block_s: float, lookahead_s: float, script: Script = (),
         stop: threading.Event | None = None,
         after_block: Callable[[float, list[Event], Features | None], None] | None = None
         ) -> float:
    """Play ``duration_s`` seconds from ``start_s`` (where the clock is). ``analyze(frame)``
    turns a frame (stamped with its engine time) into features; ``script`` issues commands at
    their times; ``after_block(now, events, features)`` runs after each block's step (the
    runtime's status and outputs' upkeep). A source that ends leaves its last features
    playing. Returns the time it ended (``stop`` may end it early)."""
    scheduler = performance.scheduler
    end_s = start_s + duration_s
    pending = sorted(script, key=lambda item: item[0])
    next_cmd = 0
    frame = next(frames, None) if frames is not None else None
    features: Features | None = None
    onsets: set[str] = set()
    k = 0
    now = start_s
    while (now < end_s - 1e-9 and not (stop is not None and stop.is_set())
           and not performance.stop_requested):
        while frame is not None and start_s + frame.t <= now:
            features = analyze(replace(frame, t=start_s + frame.t))
            onsets.update(onsets_of(features))
            frame = next(frames, None)  # type: ignore[arg-type]
        while next_cmd < len(pending) and start_s + pending[next_cmd][0] <= now:
            performance.command(pending[next_cmd][1])
            next_cmd += 1
        block_end = min(start_s + (k + 1) * block_s, end_s)  # absolute: no drift
        this_block = block_end - now
        # notes reach lookahead_s ahead of a whole block (so a short last block ends the piece
        # at its end), controls to the end of the block
        events = performance.step(now, features, sorted(onsets),
                                  lookahead_s=max(lookahead_s - block_s, 0.0) + this_block,
                                  block_s=this_block)
        onsets.clear()
        if after_block is not None:
            after_block(now, events, features)
        k += 1
        scheduler.run_until(block_end)
        now = block_end
    if clock.now() < now:
        clock.set(now)
    return now
