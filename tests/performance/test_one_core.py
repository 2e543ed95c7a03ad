"""One performance core for live, render and soak: the same source, scene, seed and control
script give the same events whichever path plays them; and the core on its own is
deterministic, faster than real time and leaves no note hanging."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sonify.capture import open_source
from sonify.commands import Freeze, Mute, Panic, SetParam, SetScene, SetTempo, Transpose
from sonify.config import Config
from sonify.events import Event, NoteOff, NoteOn
from sonify.features.analyzer import Analyzer
from sonify.live.runtime import Runtime
from sonify.outputs.recording import RecordingOutput
from sonify.performance import Form, Performance, play
from sonify.render import render
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler

SCRIPT = [(1.5, SetTempo(132.0)), (2.5, Mute("bass", True)), (3.0, SetParam("stabs", 0.2)),
          (4.0, SetScene("energize")), (5.5, Transpose(3)), (6.0, Freeze(True)),
          (7.0, Panic()), (7.5, Freeze(False))]


def play_core(scene: str, seconds: float, seed: int = 0) -> RecordingOutput:
    out = RecordingOutput()
    clock = ManualTime(0.0)
    config = Config()
    config.scene.name = scene
    perf = Performance(config, Scheduler([out], clock), seed=seed)
    perf.start(0.0)
    analyzer = Analyzer()
    with open_source("demo", seed=seed, width=640, height=360) as src:
        play(iter(src), perf, clock, analyze=analyzer.analyze, start_s=0.0,
             duration_s=seconds, block_s=0.01, lookahead_s=0.05)
    perf.scheduler.stop(panic=True)
    return out


def test_same_input_and_seed_give_the_same_events() -> None:
    a, b = play_core("city", 5.0), play_core("city", 5.0)
    assert a.events == b.events
    assert any(isinstance(e, NoteOn) for e in a.events)


def test_a_virtual_clock_runs_faster_than_real_time() -> None:
    start = time.perf_counter()
    play_core("gallery", 20.0)
    assert time.perf_counter() - start < 20.0


def test_every_note_on_has_its_note_off_at_the_end() -> None:
    out = play_core("energize", 8.0)
    ons = [(e.channel, e.pitch, e.note_id) for e in out.events if isinstance(e, NoteOn)]
    offs = {(e.channel, e.pitch, e.note_id) for e in out.events if isinstance(e, NoteOff)}
    assert ons and all(key in offs for key in ons)


def live_on_a_manual_clock(spec: str, seconds: float, *, form: Form) -> list[Event]:
    """The live runtime's own path (``Runtime.run_virtual``), as a soak test drives it."""
    config = Config()
    config.scene.name = "city"
    config.scene.watch = False
    config.control.port = 0
    config.http.port = 0
    config.music.block_s = config.music.lookahead_s = 0.01  # render's block and lookahead
    out = RecordingOutput()
    source = open_source(spec, realtime=False, loop=False, seed=0)
    rt = Runtime(config, [out], source=source, time_source=ManualTime(0.0), form=form,
                 strict=True)
    rt.run_virtual(seconds, script=SCRIPT)
    return out.events


def rendered(spec: str, seconds: float, tmp_path: Path) -> list[Event]:
    result = render(spec, [str(tmp_path / "piece.json")], scene="city", duration_s=seconds,
                    script=SCRIPT)
    return result.events


@pytest.mark.parametrize("spec", ["demo:city", "demo"])
def test_live_on_a_manual_clock_and_render_give_the_same_events(spec: str,
                                                                tmp_path: Path) -> None:
    seconds = 9.0
    live = live_on_a_manual_clock(spec, seconds, form=Form(sections_at_cuts=True,
                                                           duration_s=seconds, ending=True))
    offline = rendered(spec, seconds, tmp_path)
    assert len(live) > 200
    assert live == offline
    # the script was heard: the scene changed, the tempo moved, a panic came
    names = {getattr(e, "voice", "") for e in live if isinstance(e, NoteOn)}
    assert "arp" in names  # energize's
