"""The whole pipeline on a virtual clock: deterministic and faster than real time."""

from __future__ import annotations

import time

from sonify.capture import open_source
from sonify.events import NoteOff, NoteOn
from sonify.offline import play_offline
from sonify.outputs.recording import RecordingOutput
from sonify.scene import ScenePlayer, load_scene


def run(scene: str, seconds: float, seed: int = 0) -> RecordingOutput:
    out = RecordingOutput()
    src = open_source("demo", seed=seed, width=640, height=360)
    play_offline(src, ScenePlayer(load_scene(scene), seed=seed), [out], duration_s=seconds)
    return out


def test_same_input_and_seed_give_the_same_events() -> None:
    a, b = run("city", 5.0), run("city", 5.0)
    assert [e for e in a.events] == [e for e in b.events]
    assert any(isinstance(e, NoteOn) for e in a.events)


def test_virtual_clock_runs_faster_than_real_time() -> None:
    start = time.perf_counter()
    run("gallery", 20.0)
    assert time.perf_counter() - start < 20.0


def test_every_note_on_has_its_note_off_at_the_end() -> None:
    out = run("energize", 8.0)
    ons = [(e.channel, e.pitch, e.note_id) for e in out.events if isinstance(e, NoteOn)]
    offs = {(e.channel, e.pitch, e.note_id) for e in out.events if isinstance(e, NoteOff)}
    assert ons and all(key in offs for key in ons)
