"""A param sent for the scene about to play is kept for it: `/sonify/scene X` then
`/sonify/param/p` right after, while the change waits for the bar, sets X's `p` when X starts
(on a manual clock; and through the real OSC control server). Faders send 0..1 on `/norm`."""

from __future__ import annotations

from pathlib import Path

import pytest
from pythonosc.udp_client import SimpleUDPClient

from sonify.capture import open_source
from sonify.commands import (
    Command,
    CommandContext,
    CommandError,
    SetParam,
    SetScene,
    SetTempo,
    check,
)
from sonify.config import Config
from sonify.control.osc_server import ControlServer
from sonify.features.analyzer import Analyzer
from sonify.outputs.recording import RecordingOutput
from sonify.performance import Performance, play
from sonify.scene.schema import resolve_scene
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler
from tests.conftest import wait_until


def coming_scene(tmp_path: Path) -> Path:
    """gallery, renamed, its ``activity`` ranging 0..4 (so a fraction and a value differ)."""
    text = resolve_scene("gallery").read_text()
    text = text.replace('name = "gallery"', 'name = "coming"', 1)
    text = text.replace("[params.activity]\nmin = 0.0\nmax = 1.0\nvalue = 0.8",
                        "[params.activity]\nmin = 0.0\nmax = 4.0\nvalue = 3.2", 1)
    assert "max = 4.0" in text
    path = tmp_path / "coming.toml"
    path.write_text(text)
    return path


def performance() -> tuple[Performance, ManualTime]:
    clock = ManualTime(0.0)
    config = Config()
    config.scene.name = "city"  # has "stabs", not "activity"
    config.scene.quantize = "bar"
    perf = Performance(config, Scheduler([RecordingOutput()], clock), seed=0, strict=True)
    perf.start(0.0)
    return perf, clock


def run(perf: Performance, clock: ManualTime, seconds: float,
        script: list[tuple[float, Command]] = ()) -> None:  # type: ignore[assignment]
    analyzer = Analyzer()
    with open_source("demo:city", seed=0, width=320, height=180) as src:
        play(iter(src), perf, clock, analyze=analyzer.analyze, start_s=clock.now(),
             duration_s=seconds, block_s=0.01, lookahead_s=0.05, script=script)


def test_a_param_sent_right_after_a_scene_request_is_kept_for_that_scene(
        tmp_path: Path) -> None:
    perf, clock = performance()
    coming = str(coming_scene(tmp_path))
    run(perf, clock, 1.1)  # into the first bar, so the change waits for the next one
    stabs = perf.player.params["stabs"]
    perf.command(SetScene(coming))
    perf.command(SetParam("activity", 2.5))
    run(perf, clock, 0.05)
    assert perf.scene.name == "city" and perf.pending_scene == "coming"  # waiting for the bar
    assert perf.player.params["stabs"] == stabs
    run(perf, clock, 4.0)
    assert perf.scene.name == "coming"
    at_s, beat, _, _ = perf.scene_changes[-1]
    assert at_s > 1.15 and beat / 4 == pytest.approx(round(beat / 4))  # at a bar line
    assert perf.player.params["activity"] == 2.5  # not the scene's own 3.2


def test_a_fraction_for_the_coming_scene_maps_onto_its_range(tmp_path: Path) -> None:
    perf, clock = performance()
    run(perf, clock, 1.1)
    perf.command(SetScene(str(coming_scene(tmp_path))))
    perf.command(SetParam("activity", 0.25, norm=True))
    run(perf, clock, 4.0)
    assert perf.scene.name == "coming"
    assert perf.player.params["activity"] == pytest.approx(1.0)  # 0.25 of 0..4


def test_a_fraction_sets_the_playing_scene_over_its_range() -> None:
    perf, clock = performance()
    run(perf, clock, 0.5, script=[(0.2, SetParam("stabs", 0.5, norm=True)),
                                  (0.3, SetTempo.from_norm(0.5))])
    assert perf.player.params["stabs"] == pytest.approx(0.5)
    assert perf.tempo_bpm() == pytest.approx(160.0)


def test_a_param_that_neither_scene_has_is_still_refused(tmp_path: Path) -> None:
    perf, clock = performance()
    run(perf, clock, 1.1)
    perf.command(SetScene(str(coming_scene(tmp_path))))
    perf.command(SetParam("nonsense", 0.5))
    with pytest.raises(KeyError, match="nonsense"):
        run(perf, clock, 0.05)


def test_the_door_knows_the_coming_scene_params_as_soon_as_it_is_asked_for(
        tmp_path: Path) -> None:
    perf, clock = performance()
    door = CommandContext(params=lambda: perf.params_snapshot)
    with pytest.raises(CommandError) as err:
        check(SetParam("activity", 0.5), door)
    assert err.value.reason == "unknown_param"
    perf.command(SetScene(str(coming_scene(tmp_path))))  # no step yet: the music thread idles
    assert check(SetParam("activity", 3.0), door)  # coming's range, 0..4
    assert check(SetParam("stabs", 0.5), door)  # the playing scene's still pass
    run(perf, clock, 4.0)
    assert set(perf.params_snapshot) == {"activity"}  # coming plays: its own params only


def test_osc_scene_then_param_right_after_sets_the_coming_scene_param() -> None:
    perf, clock = performance()
    run(perf, clock, 1.1)
    server = ControlServer(perf.command, lambda: {}, port=0,
                           known_scenes=lambda: ["city", "gallery"],
                           voices=lambda: perf.voices_snapshot,
                           params=lambda: perf.params_snapshot)
    server.start()
    try:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/sonify/scene", "gallery")
        client.send_message("/sonify/param/activity/norm", 0.25)
        assert wait_until(lambda: server.stats.handled >= 2, 5.0)
    finally:
        server.stop()
    assert server.stats.rejected == {}
    run(perf, clock, 4.0)
    assert perf.scene.name == "gallery"
    assert perf.player.params["activity"] == pytest.approx(0.25)
