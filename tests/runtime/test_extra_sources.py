"""Several sources at once: ``[[source.extra]]`` in the config, read by scenes as
``<name>:<feature>``; played here with two demo sources on a virtual clock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sonify.capture import DemoSource
from sonify.config import Config, ConfigError, ExtraSourceConfig, load_config
from sonify.events import ControlChange
from sonify.live.runtime import Runtime
from sonify.outputs.recording import RecordingOutput
from sonify.scene.schema import SceneError, load_scene
from sonify.timing.clock import ManualTime

SCENE = """
name = "two_cameras"
description = "the main source's light on CC 20, cam1's on CC 21"

[tempo]
bpm = 120

[[controls]]
name = "main_light"
cc = 20
channel = 1
feature = "brightness"

[[controls]]
name = "cam1_light"
cc = 21
channel = 1
feature = "cam1:brightness"
"""

CONFIG = """
[source]
input = "demo:sunset"
width = 160
height = 90

[[source.extra]]
name = "cam1"
input = "demo:night"
"""


def scene_file(tmp_path: Path) -> Path:
    path = tmp_path / "two_cameras.toml"
    path.write_text(SCENE)
    return path


def play(tmp_path: Path, extra: bool, seconds: float = 3.0) -> RecordingOutput:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG if extra else CONFIG.split("[[source.extra]]")[0])
    config = load_config(path)
    config.scene.name = str(scene_file(tmp_path))
    config.control.port = config.http.port = 0
    config.scene.watch = False
    out = RecordingOutput()
    main = DemoSource("sunset", width=160, height=90, realtime=False)
    Runtime(config, [out], source=main, time_source=ManualTime(0.0),
            strict=True).run_virtual(seconds)
    return out


def last_cc(out: RecordingOutput, control: int) -> int:
    values = [e.value for e in out.events if isinstance(e, ControlChange)
              and e.control == control]
    assert values, f"no CC {control} sent"
    return values[-1]


def test_a_scene_reads_a_second_source_by_its_name(tmp_path: Path) -> None:
    out = play(tmp_path, extra=True)
    sunset, night = last_cc(out, 20), last_cc(out, 21)
    assert night < sunset - 10, (sunset, night)  # cam1 (a night sky) is darker than the sunset
    # and it is cam1's own picture, not the main one's: a night demo alone reads the same
    alone = DemoSource("night", width=160, height=90, realtime=False)
    config = Config()
    config.scene.name = str(scene_file(tmp_path))
    config.control.port = config.http.port = 0
    config.scene.watch = False
    out_alone = RecordingOutput()
    # the same scene with the night demo as the *main* source: its CC 20 is what cam1 gave
    Runtime(config, [out_alone], source=alone, time_source=ManualTime(0.0),
            strict=True).run_virtual(3.0)
    assert abs(last_cc(out_alone, 20) - night) <= 2


def test_two_sources_play_the_same_events_every_time(tmp_path: Path) -> None:
    first = play(tmp_path, extra=True, seconds=2.0)
    second = play(tmp_path, extra=True, seconds=2.0)
    assert first.events == second.events


def test_a_source_the_config_lacks_reads_as_plain_grey(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = play(tmp_path, extra=False)
    assert 50 <= last_cc(out, 21) <= 78  # a mid-grey picture's brightness, mid-range
    assert "no [[source.extra]] named so" in caplog.text and "'cam1'" in caplog.text


def test_extra_sources_are_checked_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[source.extra]]\nname = "1cam"\ninput = "demo"\n\n'
                    '[[source.extra]]\nname = "b"\ninput = "auto"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "source.extra.0.name" in text and "source.extra.1.input" in text
    with pytest.raises(ValueError, match="two extra sources are named cam1"):
        Config.model_validate({"source": {"extra": [{"name": "cam1", "input": "demo"},
                                                    {"name": "cam1", "input": "demo:city"}]}})
    assert ExtraSourceConfig(name="cam_2", input="rtsp://cam/live").name == "cam_2"


def test_a_misspelt_source_feature_names_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(SCENE.replace('"cam1:brightness"', '"cam1:brigthness"'))
    with pytest.raises(SceneError, match="did you mean 'cam1:brightness'"):
        load_scene(path)
