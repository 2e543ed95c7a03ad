"""The live runtime with the demo source and a recording output (wall clock, short runs)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from sonify.commands import Freeze, Mute, SetScene, SetTempo
from sonify.commands import Status as StatusRequest
from sonify.config import Config
from sonify.events import NoteOff, NoteOn
from sonify.live.runtime import Runtime, build_outputs, resolve_source_spec
from sonify.outputs.recording import RecordingOutput


def config(scene: str = "energize") -> Config:
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 640, 360
    c.scene.name = scene
    c.control.port = 0  # tests that want the control server or the page pick a free port
    c.http.port = 0
    c.scene.watch = False
    return c


def unmatched(out: RecordingOutput) -> list[tuple[int, int]]:
    held: dict[tuple[int, int], int] = {}
    for ev in out.events:
        if isinstance(ev, NoteOn):
            held[(ev.channel, ev.pitch)] = held.get((ev.channel, ev.pitch), 0) + 1
        elif isinstance(ev, NoteOff) and held.get((ev.channel, ev.pitch)):
            held[(ev.channel, ev.pitch)] -= 1
    return [k for k, v in held.items() if v]


def test_run_plays_and_ends_every_note() -> None:
    out = RecordingOutput()
    rt = Runtime(config(), [out])
    status = rt.run(2.5)
    assert status.fps > 10 and status.scene == "energize"
    assert out.notes_on, "no notes in 2.5 s of energize"
    assert unmatched(out) == []
    # a panic at start (before any note) and one at the end
    assert len(out.panics) == 2
    assert out.panics[0] <= out.notes_on[0].t


def test_scene_change_through_the_command_queue_leaves_no_note_hanging() -> None:
    out = RecordingOutput()
    c = config("energize")
    c.scene.quantize = "now"  # at once: drop what is queued and panic
    rt = Runtime(c, [out])
    timer = threading.Timer(1.5, rt.command, args=(SetScene("calm"),))
    timer.start()
    try:
        status = rt.run(3.0)
    finally:
        timer.cancel()
    assert status.scene == "calm"
    assert len(out.panics) == 3  # start, scene change, stop
    assert unmatched(out) == []


def test_a_bad_scene_change_keeps_the_running_scene() -> None:
    out = RecordingOutput()
    rt = Runtime(config("city"), [out])
    threading.Timer(0.5, rt.command, args=(SetScene("no-such-scene"),)).start()
    status = rt.run(1.5)
    assert status.scene == "city"


def test_a_scene_that_raises_is_logged_and_the_show_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    out = RecordingOutput()
    rt = Runtime(config("energize"), [out])
    real = rt.player.render_controls
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> list:
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("scene bug")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    rt.player.render_controls = flaky  # type: ignore[method-assign]
    rt.run(2.0)
    assert "failed to render" in caplog.text
    assert out.notes_on and unmatched(out) == []


def test_stop_from_another_thread_ends_the_run() -> None:
    out = RecordingOutput()
    rt = Runtime(config(), [out])
    threading.Timer(0.8, rt.stop).start()
    rt.run(None)
    assert unmatched(out) == [] and len(out.panics) == 2


def test_auto_source_is_the_demo_without_a_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sonify.live.wiring.find_cameras", lambda: [])
    assert resolve_source_spec("auto")[0] == "demo"
    monkeypatch.setattr("sonify.live.wiring.find_cameras", lambda: ["/dev/video2"])
    assert resolve_source_spec("auto")[0] == "/dev/video2"


def test_no_midi_system_falls_back_to_a_recording(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from sonify.outputs import midi

    def no_midi(*args: object, **kwargs: object) -> None:
        raise midi.MidiPortError("no MIDI system works here")

    monkeypatch.setattr(midi, "MidiOutput", no_midi)
    c = Config()
    c.record.fallback_midi_file = str(tmp_path / "fallback.mid")
    outputs, notes = build_outputs(c)
    assert [type(o).__name__ for o in outputs] == ["MidiFileRecorder"]
    assert any("recording" in n for n in notes)
    for o in outputs:
        o.close()


def test_preview_draws_the_features_over_the_frame() -> None:
    from sonify.capture import open_source
    from sonify.features.analyzer import Analyzer
    from sonify.live.preview import draw_preview

    with open_source("demo:night", width=640, height=360) as src:
        frame = next(iter(src))
    canvas = draw_preview(frame.image, Analyzer().analyze(frame), "starry")
    assert canvas.shape == (540, 960, 3) and canvas.dtype == np.uint8
    assert not np.array_equal(canvas[:40, :300], np.zeros_like(canvas[:40, :300]))


def test_preview_draws_the_zones_and_the_people_followed() -> None:
    from sonify.capture import open_source
    from sonify.features.analyzer import Analyzer
    from sonify.features.zones import Zone
    from sonify.live.preview import PERSON_COLOUR, ZONE_COLOUR, draw_preview

    with open_source("demo:night", width=640, height=360) as src:
        frame = next(iter(src))
    feats = Analyzer().analyze(frame)
    canvas = draw_preview(frame.image, feats, "visitors", zones=[Zone.rect("door", 0.5, 0.5,
                                                                           0.9, 0.9)],
                          people=[(1, 1, (0.1, 0.4, 0.3, 0.95))])
    assert (canvas[486, 600:800] == ZONE_COLOUR).all(axis=1).sum() > 100  # the zone's bottom
    assert (canvas[300:500, 96] == PERSON_COLOUR).all(axis=1).sum() > 100  # a person's side
    plain = draw_preview(frame.image, feats, "visitors")
    assert not (plain[486, 600:800] == ZONE_COLOUR).all(axis=1).any()


def test_preview_without_a_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from sonify.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["run", "--preview", "--duration", "1", "--no-midi"]) == 2


def test_tempo_mute_freeze_and_status_commands() -> None:
    out = RecordingOutput()
    rt = Runtime(config("energize"), [out])
    replies: list[dict] = []
    threading.Timer(0.6, rt.command, args=(SetTempo(100.0),)).start()
    threading.Timer(0.6, rt.command, args=(Freeze(True),)).start()
    threading.Timer(0.8, rt.command, args=(Mute("arp", True),)).start()
    threading.Timer(1.6, rt.command, args=(StatusRequest(replies.append),)).start()
    rt.run(2.0)
    assert replies, "no status reply"
    state = replies[0]
    assert state["tempo_bpm"] == 100.0 and state["frozen"] is True and state["muted"] == ["arp"]
    assert state["scene"] == "energize" and "arp" in state["voices"]
    late_arp = [n for n in out.notes_on if n.voice == "arp" and n.t > out.notes_on[0].t + 1.2]
    assert late_arp == []
    assert unmatched(out) == []


def test_feature_stream_sends_every_feature_at_the_configured_rate() -> None:
    from sonify.events import OscMessage
    from sonify.features.registry import SCALAR_NAMES

    out = RecordingOutput()
    c = config("calm")
    c.osc.stream_features_hz = 20.0
    Runtime(c, [out]).run(2.0)
    msgs = [e for e in out.events if isinstance(e, OscMessage) and e.voice == "stream"]
    brightness = [m for m in msgs if m.address == "/feature/brightness"]
    assert 20 <= len(brightness) <= 45  # about 20 a second once frames flow
    assert {f"/feature/{n}" for n in SCALAR_NAMES} <= {m.address for m in msgs}
    scalars = {f"/feature/{n}" for n in SCALAR_NAMES}
    assert all(0.0 <= m.args[0] <= 1.0 for m in msgs if m.address in scalars)
    assert {type(m.args[0]) for m in msgs if m.address == "/feature/mood"} == {int}
