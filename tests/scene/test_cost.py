"""A scene's cost is bounded at load, with a message that says what is over and by how much."""

from __future__ import annotations

import pytest

from sonify.scene.cost import MAX_NOTES_PER_S, MAX_VOICES, peak_notes_per_s
from sonify.scene.schema import SceneError, available_scenes, load_scene, parse_scene


def voices(n: int, rhythm: str = "", kind: str = "notes") -> str:
    return "\n".join(f'[[voices]]\nname = "v{i}"\nkind = "{kind}"\nchannel = {i % 16 + 1}\n'
                     f"{rhythm}\n" for i in range(n))


def test_every_shipped_scene_is_well_within_the_limits() -> None:
    for name in available_scenes():
        assert peak_notes_per_s(load_scene(name)) < MAX_NOTES_PER_S / 10, name


def test_two_hundred_voices_are_refused_with_the_limit() -> None:
    with pytest.raises(SceneError, match=rf"200 voices \(at most {MAX_VOICES}\)"):
        parse_scene('name = "big"\n' + voices(200, kind="sparkle"), "big.toml")


def test_a_scene_too_fast_at_its_fastest_tempo_is_refused() -> None:
    text = ('name = "fast"\n[tempo]\nbpm = { feature = "motion", out = [60, 200] }\n'
            + voices(8, 'rhythm = { steps = "x", step_beats = 0.015625 }'))
    with pytest.raises(SceneError, match=r"up to 1707 notes a second at its fastest tempo"):
        parse_scene(text, "fast.toml")


def test_the_estimate_counts_only_the_steps_that_may_play() -> None:
    # 4 voices, 2 hits in 8 sixteenths, at 120 BPM: 4 x (2/8) x 4 steps a beat x 2 beats a s
    scene = parse_scene('name = "sparse"\n[tempo]\nbpm = 120\n'
                        + voices(4, 'rhythm = { steps = "x...x...", step_beats = 0.25 }'))
    assert peak_notes_per_s(scene) == pytest.approx(8.0)


def test_thirty_two_busy_voices_still_load() -> None:
    scene = parse_scene('name = "busy"\n[tempo]\nbpm = 120\n'
                        + voices(32, 'rhythm = { steps = "xxxx", step_beats = 0.25 }'))
    assert len(scene.voices) == 32 and peak_notes_per_s(scene) == pytest.approx(256.0)
