"""The README's examples for slideshows, streams and several sources work as written."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from sonify.cli import build_parser, main
from sonify.config import load_config
from sonify.scene.schema import load_scene

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith("sonify ")]


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", README, re.S)


def test_the_slideshow_and_stream_examples_parse() -> None:
    mine = [line for line in shell_lines() if "--hold" in line or "://" in line]
    assert any(line.startswith("sonify run") and "--hold" in line for line in mine)
    assert any(line.startswith("sonify render") and "--hold" in line for line in mine)
    assert any(line.startswith("sonify run") and "http://" in line for line in mine)
    parser = build_parser()
    for line in mine:
        parser.parse_args(shlex.split(line)[1:])  # exits (SystemExit) on an unknown option


def test_the_render_slideshow_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    line = next(line for line in shell_lines()
                if line.startswith("sonify render") and "--hold" in line)
    args = shlex.split(line)[1:]
    folder = tmp_path / args[1].rstrip("/")
    folder.mkdir()
    for i, level in enumerate((40, 200)):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.full((90, 160, 3), level, np.uint8))
    monkeypatch.chdir(tmp_path)
    assert main(args) == 0
    outputs = [args[i + 1] for i, a in enumerate(args) if a == "-o"]
    assert outputs and all((tmp_path / out).stat().st_size > 0 for out in outputs)


def test_the_several_sources_example_is_a_valid_config_and_scene(tmp_path: Path) -> None:
    config_text = next(b for b in toml_blocks() if "[[source.extra]]" in b)
    path = tmp_path / "two.toml"
    path.write_text(config_text)
    config = load_config(path)
    assert [x.name for x in config.source.extra] == ["cam1"]
    scene_text = next(b for b in toml_blocks() if '"cam1:' in b)
    scene = tmp_path / "scene.toml"
    scene.write_text('name = "two"\n\n[tempo]\nbpm = 100\n\n' + scene_text)
    assert tomllib.loads(scene.read_text())
    assert any(c.feature == "cam1:motion" for c in load_scene(scene).controls)
