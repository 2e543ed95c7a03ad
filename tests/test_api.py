"""The Python API (sonify.api): the README's example runs as written, and each door does what
it says."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import sonify
from sonify.commands import Mute, SetParam
from sonify.events import ControlChange, NoteOn

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    section = README.split("## Python API", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    out = subprocess.run([sys.executable, "-c", block.group(1)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    rendered = re.match(r"(\d+) notes in gallery", lines[0])
    played = re.match(r"(\d+) notes; first pitches \[([\d, ]+)\]", lines[1])
    assert rendered and int(rendered.group(1)) > 0, out.stdout
    assert played and int(played.group(1)) > 0, out.stdout
    assert (tmp_path / "piece.mid").stat().st_size > 100


def test_import_sonify_is_light() -> None:
    code = ("import sys, sonify; print(sonify.__version__); "
            "print(sorted(m for m in ('numpy', 'cv2', 'numba', 'rtmidi', 'mido') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == "[]"


def test_render_is_callable_even_after_its_package_was_imported(tmp_path: Path) -> None:
    import sonify.render.core  # noqa: F401  binds the package to sonify.render

    result = sonify.render("demo", [str(tmp_path / "a.mid")], scene="gallery", duration_s=2)
    assert result.scene == "gallery" and (tmp_path / "a.mid").exists()
    assert sonify.render.render is sonify.render.core.render


def _pitches(engine: sonify.Engine, seconds: float = 8.0) -> list[int]:
    return [e.pitch for e in engine.play(seconds) if isinstance(e, NoteOn)]


def test_fed_features_drive_the_music_and_play_is_deterministic() -> None:
    def warm() -> sonify.Engine:
        e = sonify.Engine("gallery", seed=3)
        e.feed(brightness=0.8, saturation=0.8, warmth=0.95, valence=0.8, arousal=0.6)
        return e

    cold = sonify.Engine("gallery", seed=3)
    cold.feed(brightness=0.2, saturation=0.1, warmth=0.05, valence=0.15, arousal=0.2)
    a, b, c = _pitches(warm()), _pitches(warm()), _pitches(cold)
    assert a and a == b, "the same features and seed play the same notes"
    assert c and a != c
    assert sum(a) / len(a) > sum(c) / len(c), "warm plays higher (gallery's melody follows warmth)"


def test_callbacks_see_every_frame_and_every_block() -> None:
    frames, blocks = [], []
    e = sonify.Engine("gallery", on_features=frames.append, on_events=blocks.append)
    e.feed(brightness=0.6, valence=0.7, mood="happy")
    events = e.play(4.0)
    assert len(frames) >= 4 * 30 - 1 and frames[0].mood == "happy"
    assert abs(frames[-1]["brightness"] - 0.6) < 1e-6
    sent_notes = [ev for ev in events if isinstance(ev, NoteOn)]
    block_notes = [ev for block in blocks for ev in block if type(ev).__name__ == "Note"]
    assert sent_notes and len(block_notes) == len(sent_notes)


def test_a_source_plays_with_callbacks_and_commands_apply() -> None:
    frames = []
    e = sonify.Engine("gallery", source="demo", seed=1, on_features=frames.append)
    e.command(Mute("melody", True))
    events = e.play(4.0)
    assert frames and frames[0].size[0] > 0, "the demo's frames were analysed"
    assert not [ev for ev in events if isinstance(ev, NoteOn) and ev.channel == 1], \
        "the muted melody (channel 2) stays silent"
    assert [ev for ev in events if isinstance(ev, NoteOn)], "the other voices play"


def test_params_and_onsets_fed_from_python() -> None:
    sparse = sonify.Engine("gallery", seed=2)
    sparse.feed(brightness=0.7, valence=0.7)
    sparse.command(SetParam("activity", 0.0))
    full = sonify.Engine("gallery", seed=2)
    full.feed(brightness=0.7, valence=0.7)
    full.command(SetParam("activity", 1.0))
    assert len(_pitches(sparse, 12.0)) < len(_pitches(full, 12.0))
    cymbal = sonify.Engine("gallery")
    cymbal.feed(brightness=0.5, cut_onset=1.0)
    hits = [e for e in cymbal.play(3.0) if isinstance(e, NoteOn) and e.channel == 9]
    assert len(hits) == 1, "a fed onset fires its trigger once"


def test_unknown_feature_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown feature 'brightnes'.*brightness"):
        sonify.Engine().feed(brightnes=0.5)


def test_run_plays_in_real_time_and_stop_ends_it() -> None:
    got: list[object] = []
    e = sonify.Engine("gallery", outputs=[sonify.CallbackOutput(got.append)])
    e.feed(brightness=0.7, saturation=0.6, valence=0.7)
    threading.Timer(1.5, e.feed, kwargs={"brightness": 0.2}).start()
    started = time.perf_counter()
    status = e.run(3.0)
    took = time.perf_counter() - started
    assert 2.5 < took < 30, took  # real time: not a virtual run
    assert status.scene == "gallery"
    assert [ev for ev in got if isinstance(ev, NoteOn)], "notes reached the output"
    assert [ev for ev in got if isinstance(ev, ControlChange)]
