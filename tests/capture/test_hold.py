"""A folder or glob as a slideshow: each image held ``--hold`` seconds, dissolving into the
next, on ``sonify run`` and ``sonify render`` (whose piece then lasts images x hold)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sonify.capture import SequenceSource, SourceError, open_source
from sonify.cli import main
from sonify.render import RenderError, render

RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)  # BGR


def slides(folder: Path, colours: list[tuple[int, int, int]],
           size: tuple[int, int] = (48, 64)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, colour in enumerate(colours):
        assert cv2.imwrite(str(folder / f"slide{i + 1}.png"), np.full((*size, 3), colour,
                                                                    np.uint8))
    return folder


def test_each_image_is_held_then_dissolves_into_the_next(tmp_path: Path) -> None:
    folder = slides(tmp_path / "show", [RED, GREEN, BLUE])
    with SequenceSource(folder, fps=10, hold_s=1.0, crossfade_s=0.3) as source:
        frames = list(source)
    assert len(frames) == 30  # three images, ten frames each
    assert [f.t for f in frames] == [i / 10 for i in range(30)]
    assert all(f.still for f in frames)  # a dissolve is no motion and no cut
    red = [int(f.image[0, 0, 2]) for f in frames]
    green = [int(f.image[0, 0, 1]) for f in frames]
    assert red[:7] == [255] * 7 and green[:7] == [0] * 7  # red held
    fade = red[7:10]
    assert 255 > fade[0] > fade[1] > fade[2] > 0  # the dissolve: red goes ...
    assert 0 < green[7] < green[8] < green[9] < 255  # ... as green comes
    assert red[10] == 0 and green[10] == 255  # green from its first frame
    blue = [int(f.image[0, 0, 0]) for f in frames[20:]]
    assert blue == [255] * 10  # the last image holds to its end: no dissolve into nothing


def test_a_looping_slideshow_dissolves_back_into_the_first_image(tmp_path: Path) -> None:
    folder = slides(tmp_path / "show", [RED, BLUE])
    with SequenceSource(folder, fps=10, hold_s=0.5, crossfade_s=0.2, loop=True,
                        max_frames=12) as source:
        frames = list(source)
    red = [int(f.image[0, 0, 2]) for f in frames]
    assert red[:3] == [255] * 3 and red[5:8] == [0] * 3
    assert 0 < red[8] < red[9] < 255 and red[10] == 255  # blue -> red again


def test_images_of_another_size_dissolve_at_the_held_size(tmp_path: Path) -> None:
    folder = tmp_path / "show"
    slides(folder, [RED])
    assert cv2.imwrite(str(folder / "slide2.png"), np.full((30, 40, 3), GREEN, np.uint8))
    with SequenceSource(folder, fps=4, hold_s=1.0, crossfade_s=0.5) as source:
        shapes = [f.image.shape for f in source]
    assert shapes == [(48, 64, 3)] * 4 + [(30, 40, 3)] * 4


def test_hold_is_for_folders_and_globs_only(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="folder or glob"):
        open_source("demo:night", hold_s=2.0)
    held = open_source(str(slides(tmp_path / "a", [RED])), hold_s=2.0)
    assert isinstance(held, SequenceSource) and held.frames_per_image == 60
    with pytest.raises(SourceError, match="positive"):
        SequenceSource(tmp_path / "a", hold_s=0.0)


def test_render_of_a_folder_lasts_images_times_hold(tmp_path: Path) -> None:
    folder = slides(tmp_path / "show", [RED, GREEN, BLUE])
    result = render(str(folder), [str(tmp_path / "piece.json")], scene="gallery", hold_s=4.0)
    assert result.duration_s == pytest.approx(12.0)
    assert max(n["t"] for n in result.notes) > 8.0  # the music reaches the third image
    warmth = {round(t): values["warmth"] for t, values, _ in result.timeline}
    assert warmth[2] > warmth[10]  # red is warm, blue is cool: the features follow the slides


def test_render_of_a_folder_without_hold_is_a_slideshow_too(tmp_path: Path) -> None:
    folder = slides(tmp_path / "show", [RED, BLUE])
    plain = render(str(folder), [str(tmp_path / "a.json")], scene="calm")
    assert plain.duration_s == pytest.approx(10.0)  # 2 images x 5 s: not 2 frames of music
    shared = render(str(folder), [str(tmp_path / "b.json")], scene="calm", duration_s=6.0)
    assert shared.duration_s == pytest.approx(6.0)
    warmth = {round(t, 1): values["warmth"] for t, values, _ in shared.timeline}
    assert warmth[1.0] > warmth[5.0]  # 3 s per image: red, then blue


def test_hold_on_a_picture_or_a_video_is_refused(tmp_path: Path) -> None:
    folder = slides(tmp_path / "show", [RED, BLUE])
    with pytest.raises(RenderError, match="--hold is for a folder"):
        render(str(folder / "slide1.png"), [str(tmp_path / "x.json")], hold_s=3.0)
    with pytest.raises(RenderError, match="longer than a render can be"):
        render(str(folder), [str(tmp_path / "x.json")], hold_s=3000.0)


def test_render_cli_with_hold_makes_the_output_folder(tmp_path: Path) -> None:
    folder = slides(tmp_path / "show", [RED, GREEN])
    out = tmp_path / "out" / "deeper" / "show.json"
    assert main(["render", str(folder), "-o", str(out), "--hold", "2", "--scene",
                 "calm"]) == 0
    assert json.loads(out.read_text())["duration_s"] == pytest.approx(4.0)


def test_render_refuses_an_output_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(RenderError, match="is a file, not a folder"):
        render("demo", [str(tmp_path / "taken" / "x.mid")], duration_s=1.0)
    assert (tmp_path / "taken").read_text() == "a file, not a folder"
