"""Live performance in the runtime: quantised scene changes with a crossfade of controls, live
parameters, transpose and trigger, hot reload and auto mode (wall clock, short runs with the
demo source; what is checked is structure and order, never tight timing)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from sonify.commands import Extra, SetParam, SetScene, Transpose, Trigger
from sonify.commands import Status as StatusRequest
from sonify.config import AutoConfig, Config
from sonify.events import ControlChange, NoteOff, NoteOn
from sonify.live.runtime import Runtime
from sonify.outputs.recording import RecordingOutput
from sonify.performance.core import AutoScene, ControlFade, quantize_beat
from tests.conftest import wait_until
from tests.runtime.test_runtime import unmatched

SCENES = Path(__file__).resolve().parents[2] / "scenes"


def config(scene: str = "energize", **scene_opts: object) -> Config:
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 640, 360
    c.scene.name = scene
    c.control.port = 0
    c.http.port = 0
    c.scene.watch = False
    for k, v in scene_opts.items():
        setattr(c.scene, k, v)
    return c


def on_bar(beat: float, beats_per_bar: int = 4) -> bool:
    return abs(beat - round(beat)) < 1e-6 and round(beat) % beats_per_bar == 0


def at(delay_s: float, fn: object, *args: object) -> threading.Timer:
    timer = threading.Timer(delay_s, fn, args=args)  # type: ignore[arg-type]
    timer.daemon = True
    timer.start()
    return timer


# -- pure pieces ----------------------------------------------------------------------------------

def test_quantize_beat_rounds_up_to_the_grid() -> None:
    assert quantize_beat(5.2, "now", 4, 4) == 5.2
    assert quantize_beat(5.2, "beat", 4, 4) == 6
    assert quantize_beat(5.2, "bar", 4, 4) == 8
    assert quantize_beat(8.0, "bar", 4, 4) == 8  # already on a bar: that bar
    assert quantize_beat(5.2, "bar", 3, 4) == 6
    assert quantize_beat(5.2, "phrase", 4, 4) == 16


def test_control_fade_glides_from_the_old_value() -> None:
    fade = ControlFade(10.0, 2.0, {("cc", 0, 74): 20})
    assert fade.apply(ControlChange(9.9, 0, 74, 100)).value == 100  # before the change
    assert fade.apply(ControlChange(10.0, 0, 74, 100)).value == 20
    assert fade.apply(ControlChange(11.0, 0, 74, 100)).value == 60
    assert fade.apply(ControlChange(12.0, 0, 74, 100)).value == 100  # the fade is over
    assert fade.apply(ControlChange(11.0, 0, 7, 100)).value == 100  # no old value: as sent


def test_auto_mode_needs_the_mood_to_hold_and_the_scene_to_dwell() -> None:
    auto = AutoScene(AutoConfig(enabled=True, scenes={"calm": "calm", "energetic": "energize"},
                                 hold_s=5.0, dwell_s=20.0))
    assert auto.choose("energetic", 0.0, "calm", 0.0) is None  # a new mood starts its hold
    assert auto.choose("energetic", 4.0, "calm", 0.0) is None  # not held long enough
    assert auto.choose("calm", 4.5, "calm", 0.0) is None  # flickers back: starts again
    assert auto.choose("energetic", 5.0, "calm", 0.0) is None
    assert auto.choose("energetic", 10.1, "calm", 0.0) is None  # held, but dwell not over
    assert auto.choose("energetic", 20.5, "calm", 0.0) == "energize"
    assert auto.choose("energetic", 30.0, "energize", 21.0) is None  # already playing it
    assert auto.choose("happy", 60.0, "energize", 21.0) is None  # a mood without a scene


# -- the runtime ----------------------------------------------------------------------------------

def test_a_scene_change_waits_for_the_next_bar_and_ends_the_old_notes_there() -> None:
    out = RecordingOutput()
    rt = Runtime(config("energize", quantize="bar", crossfade_s=0.0), [out])
    at(1.2, rt.command, SetScene("city"))
    status = rt.run(4.0)
    assert status.scene == "city"
    [(at_s, beat, name, why)] = rt.scene_changes
    assert name == "city" and why == "requested"
    assert beat > 0 and on_bar(beat)
    old = {v.name for v in rt.performance.load_scene("energize").voices}
    new = {v.name for v in rt.scene.voices}
    ons = [e for e in out.events if isinstance(e, NoteOn)]
    offs = {e.note_id: e.t for e in out.events if isinstance(e, NoteOff)}
    assert old - new == {"arp"}
    assert [e for e in ons if e.voice == "arp" and e.t >= at_s - 1e-9] == []
    # every note of the old scene has ended by the bar line
    assert all(offs[e.note_id] <= at_s + 1e-9 for e in ons if e.t < at_s - 1e-9)
    assert any(e.t >= at_s - 1e-9 for e in ons), "city never played"
    assert unmatched(out) == []
    assert len(out.panics) == 2  # only at start and stop: the change itself is not a panic


def test_controls_crossfade_into_the_new_scene() -> None:
    out = RecordingOutput()
    rt = Runtime(config("calm", quantize="beat", crossfade_s=1.5), [out])
    at(1.0, rt.command, SetScene("gallery"))
    rt.run(4.0)
    [(at_s, _, _, _)] = rt.scene_changes
    ccs = [e for e in out.events if isinstance(e, ControlChange) and e.control == 74
           and e.channel == 0]
    before = [e.value for e in ccs if e.t < at_s]
    after = [e for e in ccs if at_s <= e.t < at_s + 1.5]
    assert before and after, "CC 74 on channel 1 is in both scenes"
    # the first value after the change starts where the old scene left off
    assert abs(after[0].value - before[-1]) <= 3


def test_a_live_param_changes_what_plays() -> None:
    out = RecordingOutput()
    c = config("gallery", quantize="now")
    rt = Runtime(c, [out])
    assert rt.params_snapshot == {"activity": (0.0, 1.0)}
    at(0.2, rt.command, SetParam("activity", 0.0))
    replies: list[dict] = []
    at(2.0, rt.command, StatusRequest(replies.append))
    rt.run(2.5)
    assert replies and replies[0]["params"] == {"activity": 0.0}


def test_param_density_is_heard(tmp_path: Path) -> None:
    """The same scene with the activity param at 0 and at 1: far fewer melody notes at 0."""
    counts = []
    for value in (0.0, 1.0):
        out = RecordingOutput()
        rt = Runtime(config("gallery"), [out])
        rt.player.set_param("activity", value)
        rt.run(3.0)
        counts.append(sum(1 for e in out.events if isinstance(e, NoteOn)
                          and e.voice == "melody"))
    assert counts[0] < counts[1]


def test_transpose_and_trigger_commands() -> None:
    out = RecordingOutput()
    rt = Runtime(config("energize"), [out])
    at(0.1, rt.command, Transpose(12))
    at(1.0, rt.command, Trigger(72, 100))
    rt.run(2.0)
    assert rt.transpose == 12
    triggered = [e for e in out.events if isinstance(e, NoteOn) and e.voice == "trigger"]
    assert [(e.pitch, e.velocity, e.channel) for e in triggered] == [(72, 100, 0)]
    assert unmatched(out) == []


def test_unknown_command_and_bad_param_do_not_stop_the_show() -> None:
    out = RecordingOutput()
    rt = Runtime(config("gallery"), [out])
    at(0.3, rt.command, SetParam("no_such", 1.0))
    at(0.4, rt.command, Extra("warp", 9))
    status = rt.run(1.5)
    assert status.scene == "gallery" and out.notes_on


def _copy_scene(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    shutil.copy(SCENES / f"{name}.toml", path)
    return path


def test_hot_reload_applies_a_valid_edit_at_the_next_bar(tmp_path: Path) -> None:
    path = _copy_scene(tmp_path, "energize")
    c = config(str(path))
    c.scene.watch = True
    out = RecordingOutput()
    rt = Runtime(c, [out])

    def edit() -> None:
        text = path.read_text().replace('name = "energize"', 'name = "energize-edited"', 1)
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(text)
        tmp.replace(path)  # as editors save: write aside, rename over

    at(1.0, edit)
    threading.Timer(3.5, rt.stop).start()
    status = rt.run(6.0)
    assert status.scene == "energize-edited"
    [(_, beat, name, why)] = rt.scene_changes
    assert why == "reloaded" and on_bar(beat)
    assert unmatched(out) == []


def test_hot_reload_of_a_broken_edit_keeps_the_scene_and_says_why(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _copy_scene(tmp_path, "energize")
    c = config(str(path))
    c.scene.watch = True
    out = RecordingOutput()
    rt = Runtime(c, [out])

    def edit() -> None:
        path.write_text(path.read_text().replace("[[voices]]", "[[voices]]\nloudness = 11", 1))

    at(1.0, edit)
    done = threading.Event()
    reported = []

    def stop_when_reported() -> None:
        wait_until(lambda: rt.reloader is not None and rt.reloader.errors > 0, 5.0)
        reported.append(time.perf_counter())
        time.sleep(1.0)
        done.set()
        rt.stop()

    threading.Thread(target=stop_when_reported, daemon=True).start()
    status = rt.run(8.0)
    assert done.is_set()
    assert status.scene == "energize" and rt.scene_changes == []
    assert rt.reloader is not None and "voices[0].loudness" in rt.reloader.last_error
    assert str(path) in rt.reloader.last_error
    assert "keeps playing" in caplog.text
    late = [e for e in out.events if isinstance(e, NoteOn) and e.t > reported[0] + 0.2]
    assert late, "the running scene went on playing"


def test_auto_mode_switches_scene_by_mood() -> None:
    out = RecordingOutput()
    c = config("calm", quantize="beat")
    c.auto = AutoConfig(enabled=True, scenes={m: "city" for m in
                                              ("calm", "happy", "energetic", "tense", "sad")},
                        hold_s=0.3, dwell_s=0.5)
    rt = Runtime(c, [out])
    status = rt.run(3.0)
    assert status.scene == "city"
    assert rt.scene_changes and rt.scene_changes[0][3].startswith("chosen by the mood")
    assert unmatched(out) == []


def test_quick_successive_changes_leave_no_note_hanging() -> None:
    """Several quick changes in a row (each supersedes the one pending): no note hangs."""
    out = RecordingOutput()
    rt = Runtime(config("energize", quantize="beat"), [out])
    for i, name in enumerate(["calm", "city", "starry", "energize", "gallery"]):
        at(0.4 + 0.35 * i, rt.command, SetScene(name))
    status = rt.run(4.0)
    assert unmatched(out) == []
    assert status.scene == rt.scene_changes[-1][2]


# -- a camera that goes away ----------------------------------------------------------------------

def test_a_lost_camera_plays_the_idle_scene_and_the_music_returns_with_it() -> None:
    from tests.capture.test_recovery import ScriptedCamera, recovering_camera

    device = ScriptedCamera(period_s=0.03)
    out = RecordingOutput()
    c = config("energize", quantize="beat")
    c.source.idle = "calm"
    rt = Runtime(c, [out], source=recovering_camera(device))
    at(1.5, setattr, device, "mode", "fail")
    at(4.5, setattr, device, "mode", "live")
    health: list[dict] = []
    at(3.8, lambda: health.append(rt.health()))
    status = rt.run(8.0)
    whys = [(name, why) for _, _, name, why in rt.scene_changes]
    assert whys == [("calm", "idle (camera lost)"), ("energize", "camera back")]
    lost_at = next(t for t, _, _, why in rt.scene_changes if why.startswith("idle"))
    assert lost_at - out.notes_on[0].t < 4.0  # noticed within 2 s of 1.5 s (+ a beat)
    assert status.scene == "energize"
    assert health and health[0]["source"]["idle"] is True and health[0]["ok"] is False
    assert unmatched(out) == []


def test_a_camera_missing_at_start_is_waited_for_when_configured() -> None:
    from tests.capture.test_recovery import ScriptedCamera, recovering_camera

    device = ScriptedCamera(period_s=0.03)
    device.mode = "gone"
    out = RecordingOutput()
    c = config("energize")
    c.source.wait_for_camera = True
    rt = Runtime(c, [out], source=recovering_camera(device))
    at(2.0, setattr, device, "mode", "live")
    rt.run(5.0)
    assert rt.capture.opened and rt.capture.latest.frames > 10
    assert out.notes_on, "no music once the camera came"
    assert unmatched(out) == []


def test_a_camera_missing_at_start_is_an_error_by_default() -> None:
    from sonify.capture import SourceError
    from tests.capture.test_recovery import ScriptedCamera, recovering_camera

    device = ScriptedCamera()
    device.mode = "gone"
    rt = Runtime(config("energize"), [RecordingOutput()], source=recovering_camera(device))
    with pytest.raises(SourceError):
        rt.run(2.0)
