"""The installation box: twelve hours of performance on a virtual clock, in a few minutes.

``Runtime.run_virtual`` plays the live loop's own block body (commands, freeze, auto mode,
quantised scene changes with control fades, the scene, the feature stream, status and metrics)
on a ManualTime, with the demo source read synchronously and the scheduler dispatching each
block. A scripted performer drives it through the command queue (``status_cb`` runs once a
virtual second on the music thread, like a control surface would send): every scene in turn
every 10 minutes, params, mutes, freezes, tempo, transpose, triggers, reloads, panics, and auto
mode for the last 20 minutes of each hour.

Settings and why they are enough: a 160x90 demo frame (the ``cycle`` look: sunset, night and
city, each 20 s) analysed at 96 px, one frame every 0.25 s of virtual time (4 fps: every
feature and onset still moves; drawing and analysing frames is about a third of the wall
time), and 0.1 s blocks with a 0.1 s lookahead (the per-block Python work of the scene and the
scheduler dominates; notes are timed by the scheduler, not by the block). RSS, Python's
allocated blocks and gc objects are sampled every virtual hour; tracemalloc (which slows Python
about 4x) traces the last hour only. About 100 s on two cores. Run with ``-s`` to see the
numbers per virtual hour.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
import tracemalloc
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from sonify.capture.demo import DemoSource
from sonify.commands import (
    Command,
    Extra,
    Freeze,
    Mute,
    Panic,
    Reload,
    SetParam,
    SetScene,
    SetTempo,
    Transpose,
    Trigger,
)
from sonify.commands import Status as StatusRequest
from sonify.config import Config
from sonify.events import Event, NoteOff, NoteOn
from sonify.live.runtime import Runtime, Status
from sonify.outputs.base import Output
from sonify.scene.schema import available_scenes, load_scene
from sonify.timing.clock import ManualTime

HOURS = max(3, int(os.environ.get("SONIFY_SOAK_HOURS", "12")))  # 12 unless told
BLOCK_S = 0.1
FRAME_EVERY_S = 0.25
SCENES = sorted(available_scenes())
SCENE_EVERY_S = 600  # a requested scene change every 10 minutes (outside auto mode)

RSS_GROWTH_MAX_MB = 20.0  # hour 2 -> hour 12
BLOCKS_GROWTH_MAX = 20_000  # Python memory blocks allocated, hour 2 -> hour 12 (about 1 MB)
TRACED_MAX_MB = 1.0  # allocated during the last hour and still alive at its end
PENDING_MAX = 500  # events in the scheduler's queue at any virtual second (peak seen: ~70)
HELD_MAX = 64  # notes sounding at once: 4 voices x 16 (the schema's largest max_notes)
OLDEST_NOTE_MAX_S = 60.0  # a note sounding longer than this is hanging
CONTAINER_GROWTH_MAX = 64  # entries any container reachable from the runtime may gain 2 -> 12
# one entry per scene change: ~100 in 12 h, kept (the runtime shows the performance's list)
GROWS_BY_DESIGN = {"rt.scene_changes", "rt.performance.scene_changes"}


class CountingOutput(Output):
    """Counts what it is sent and tracks the sounding notes, keeping no event (12 hours of
    events would be the leak we are looking for)."""

    name = "counting"

    def __init__(self, clock: ManualTime) -> None:
        super().__init__()
        self.clock = clock
        self.on = self.off = self.panic_offs = self.others = self.panics = 0
        self.held: dict[tuple[int, int], float] = {}  # (channel, pitch) -> since
        self.held_peak = 0

    def _send(self, event: Event) -> None:
        if isinstance(event, NoteOn):
            self.on += 1
            self.held[(event.channel, event.pitch)] = self.clock.now()
            self.held_peak = max(self.held_peak, len(self.held))
        elif isinstance(event, NoteOff):
            self.off += 1
            if not event.voice:  # the scheduler's panic ends held notes with voice ""
                self.panic_offs += 1
            self.held.pop((event.channel, event.pitch), None)
        else:
            self.others += 1

    def _panic(self) -> None:
        self.panics += 1

    def oldest_s(self) -> float:
        now = self.clock.now()
        return max((now - since for since in self.held.values()), default=0.0)


class Performer:
    """A scripted visitor at the control surface: everything through ``rt.command``."""

    def __init__(self, rt: Runtime, seed: int = 7) -> None:
        self.rt = rt
        self.rng = random.Random(seed)
        self.second = -1
        self.scene_i = 0
        self.muted: list[str] = []
        self.replies = 0  # status replies received (counted, not kept: 12 h of them would grow)
        self.pending_peak = 0
        self.sent: dict[str, int] = {}
        perf = rt.performance
        auto = perf.auto
        assert auto is not None, "the soak config enables auto mode"
        # auto mode on for part of each hour: a test-only command (no such control exists)
        rt.extra_commands["auto"] = lambda on: setattr(perf, "auto", auto if on else None)
        # the live "tempo" command fixes the tempo for good; let the scene's tempo back
        rt.extra_commands["free_tempo"] = lambda _: setattr(rt.driver, "fixed_bpm", None)

    def reply(self, state: dict[str, object]) -> None:
        assert state["scene"] == self.rt.scene.name
        self.replies += 1

    def send(self, name: str, arg: object = None) -> None:
        self.sent[name] = self.sent.get(name, 0) + 1
        self.rt.command(typed(name, arg))

    def tick(self, status: Status) -> None:
        rt, rng = self.rt, self.rng
        self.pending_peak = max(self.pending_peak, rt.scheduler.pending())
        s = int(rt.time.now())
        if s == self.second:
            return
        self.second = s
        minute_of_hour = (s % 3600) // 60
        if s % 3600 == 2400:
            self.send("auto", True)
        if s % 3600 == 0:
            self.send("auto", False)
        if s % SCENE_EVERY_S == 5 and minute_of_hour < 40:
            self.scene_i += 1
            self.send("scene", SCENES[self.scene_i % len(SCENES)])
        if s % 37 == 0 and rt.params_snapshot:
            name = rng.choice(sorted(rt.params_snapshot))
            lo, hi = rt.params_snapshot[name]
            self.send("param", (name, rng.uniform(lo, hi)))
        if s % 53 == 0:
            if self.muted:
                self.send("mute", (self.muted.pop(), False))
            elif rt.voices_snapshot:
                voice = rng.choice(sorted(rt.voices_snapshot))
                self.muted.append(voice)
                self.send("mute", (voice, True))
        if s % 420 == 100:
            self.send("freeze", True)
        if s % 420 == 130:
            self.send("freeze", False)
        if s % 660 == 200:
            self.send("tempo", rng.uniform(70.0, 150.0))
        if s % 660 == 320:
            self.send("free_tempo")
        if s % 300 == 50:
            self.send("transpose", rng.randint(-12, 12))
        if s % 97 == 0:
            self.send("trigger", (rng.randint(36, 84), rng.randint(1, 127)))
        if s % 1741 == 1000:
            self.send("panic")
        if s % 3600 == 1500 and rt.scene_path is not None:  # what the file watcher sends
            self.send("reload", (load_scene(rt.scene_path), rt.scene_path))
        if s % 3600 == 1800:
            self.send("status", self.reply)


def typed(name: str, arg: object) -> Command:
    """The performer's command as the control paths deliver it."""
    a: Any = arg
    match name:
        case "scene":
            return SetScene(a)
        case "param":
            return SetParam(*a)
        case "mute":
            return Mute(*a)
        case "freeze":
            return Freeze(a)
        case "tempo":
            return SetTempo(a)
        case "transpose":
            return Transpose(a)
        case "trigger":
            return Trigger(*a)
        case "panic":
            return Panic()
        case "reload":
            return Reload(*a)
        case "status":
            return StatusRequest(a)
    return Extra(name, arg)


def soak_config() -> Config:
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 160, 90
    c.analysis.width = 96
    c.scene.name = SCENES[0]
    c.scene.watch = False
    c.control.port = 0
    c.http.port = 0
    c.music.block_s = BLOCK_S
    c.music.lookahead_s = BLOCK_S
    c.osc.stream_features_hz = 2.0
    c.auto.enabled = True
    c.auto.hold_s, c.auto.dwell_s = 10.0, 120.0
    return c


def rss_mb() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def container_sizes(root: object, name: str = "rt", depth: int = 5) -> dict[str, int]:
    """len() of every list, dict, set and deque reachable from ``root`` through attributes and
    containers (up to ``depth`` steps), by path: how a per-block leak shows itself."""
    sizes: dict[str, int] = {}
    seen: set[int] = set()

    def walk(obj: object, path: str, left: int) -> None:
        if id(obj) in seen or left < 0:
            return
        seen.add(id(obj))
        if isinstance(obj, (list, dict, set, deque, tuple)):
            if not isinstance(obj, tuple):
                sizes[path] = len(obj)
            items = list(obj.values()) if isinstance(obj, dict) else list(obj)
            for i, item in enumerate(items[:8]):  # the shape, not every element
                walk(item, f"{path}[{i}]", left - 1)
            return
        if isinstance(obj, (str, bytes, int, float, bool, type(None), type)) or callable(obj):
            return
        fields: dict[str, Any] = {}
        if hasattr(obj, "__dict__"):
            fields.update(vars(obj))
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                fields[slot] = getattr(obj, slot)
        for key, value in fields.items():
            walk(value, f"{path}.{key}", left - 1)

    walk(root, name, depth)
    return sizes


def test_twelve_hours_play_in_flat_memory_with_no_hanging_note_and_no_growing_queue() -> None:
    clock = ManualTime(0.0)
    out = CountingOutput(clock)
    source = DemoSource("cycle", width=160, height=90, fps=1 / FRAME_EVERY_S, realtime=False)
    rt = Runtime(soak_config(), [out], source=source, time_source=clock, strict=True,
                 status_cb=lambda status: performer.tick(status))
    performer = Performer(rt)

    hours: list[dict[str, Any]] = []
    containers: dict[int, dict[str, int]] = {}
    snapshots: list[tracemalloc.Snapshot] = []

    def on_hour(hour: int) -> None:
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else 0.0
        if hour == HOURS:
            snapshots.append(tracemalloc.take_snapshot())
        if hour == HOURS - 1:  # tracemalloc slows Python ~4x: trace the last hour only
            tracemalloc.start(1)
        sample = {"hour": hour, "wall_s": time.perf_counter() - wall0, "rss_mb": rss_mb(),
                  "blocks": sys.getallocatedblocks(), "traced_mb": traced,
                  "pending": rt.scheduler.pending(), "ledger": len(rt.scheduler.held_notes()),
                  "sounding": len(out.held), "oldest_s": out.oldest_s(),
                  "notes": out.on, "scene": rt.scene.name, "changes": len(rt.scene_changes),
                  "objects": len(gc.get_objects())}
        hours.append(sample)
        if hour in (2, HOURS):
            containers[hour] = container_sizes(rt)
        print("  ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in sample.items()), flush=True)

    wall0 = time.perf_counter()
    try:
        rt.run_virtual(HOURS * 3600.0, block_s=BLOCK_S,
                       on_hour=on_hour)
    finally:
        tracemalloc.stop()
    wall_s = time.perf_counter() - wall0
    print(f"wall {wall_s:.0f} s for {HOURS} h; notes {out.on} on / {out.off} off "
          f"({out.panic_offs} by panic), other events {out.others}, panics {out.panics}, "
          f"peak sounding {out.held_peak}, peak pending {performer.pending_peak}, "
          f"scene changes {len(rt.scene_changes)}, commands {performer.sent}")

    assert len(hours) == HOURS
    by_hour = {h["hour"]: h for h in hours}
    # memory stays flat once warm (hour 1 includes numba, caches, first scenes)
    assert by_hour[HOURS]["rss_mb"] - by_hour[2]["rss_mb"] < RSS_GROWTH_MAX_MB
    assert by_hour[HOURS]["blocks"] - by_hour[2]["blocks"] < BLOCKS_GROWTH_MAX
    # what the last hour allocated and still holds: its working set plus a leak of one hour
    traced = by_hour[HOURS]["traced_mb"]
    top = snapshots[0].statistics("lineno")[:6]
    print(f"allocated in hour {HOURS} and alive at its end: {traced * 1024:.0f} KiB; top:",
          *top, sep="\n  ")
    assert traced < TRACED_MAX_MB, "\n".join(map(str, top))
    # no queue grows: bounded at every virtual second, and the same order at the end
    assert performer.pending_peak <= PENDING_MAX
    assert by_hour[HOURS]["pending"] <= max(4 * by_hour[1]["pending"], 200)
    # the ledger and the sounding notes stay bounded, and no note hangs
    assert all(h["ledger"] <= HELD_MAX for h in hours)
    assert out.held_peak <= HELD_MAX
    assert all(h["oldest_s"] <= OLDEST_NOTE_MAX_S for h in hours), hours
    assert out.held == {}, f"notes left sounding after the run: {sorted(out.held)}"
    assert out.off >= out.on
    # every internal container bounded (scene_changes grows by one per change, by design)
    changed = sorted(((size - containers[2].get(path, 0), path)
                      for path, size in containers[HOURS].items()), reverse=True)[:5]
    print(f"containers that grew most, hour 2 -> {HOURS}:", changed)
    grown = {path: (containers[2].get(path, 0), size)
             for path, size in containers[HOURS].items()
             if size - containers[2].get(path, 0) > CONTAINER_GROWTH_MAX
             and path not in GROWS_BY_DESIGN}
    assert grown == {}, f"containers growing through the run (hour 2, hour {HOURS}): {grown}"
    # the performance did happen: every scene played, auto mode chose some, commands applied
    played = {name for _, _, name, _ in rt.scene_changes}
    assert played == set(SCENES) - {SCENES[0]} or played == set(SCENES)
    assert any(why.startswith("chosen by the mood") for *_, why in rt.scene_changes)
    assert len(rt.scene_changes) >= HOURS * 4
    assert performer.replies and out.on > HOURS * 5000


def test_run_virtual_wants_a_manual_clock_and_blocks_within_the_lookahead() -> None:
    source = DemoSource("night", width=64, height=36, realtime=False)
    with pytest.raises(TypeError, match="ManualTime"):
        Runtime(soak_config(), [], source=source).run_virtual(1.0)
    rt = Runtime(soak_config(), [], source=source, time_source=ManualTime(0.0))
    with pytest.raises(ValueError, match="lookahead"):
        rt.run_virtual(1.0, block_s=2 * BLOCK_S)
