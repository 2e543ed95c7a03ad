"""Loudness carries energy: each scene's built-in WAV at its own integrated loudness (ITU-R
BS.1770, measured with pyloudnorm), true peak at most -1 dBFS, never clipping."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from sonify.outputs import mastering
from sonify.render.core import render
from sonify.scene import load_scene
from sonify.scene.schema import SceneError, parse_scene

SR = 44100
PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"


def read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return frames.reshape(-1, 2) / 32768.0


def lufs(audio: np.ndarray) -> float:
    return float(pyloudnorm.Meter(SR).integrated_loudness(audio.astype(np.float64)))


def true_peak_db(audio: np.ndarray) -> float:
    """An independent meter: scipy's polyphase 4x oversampling, as BS.1770 Annex 2 asks."""
    up = resample_poly(audio.astype(np.float64), 4, 1, axis=0)
    return 20 * math.log10(float(max(np.abs(up).max(), np.abs(audio).max())))


@pytest.fixture(scope="module")
def scene_wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("loudness")
    out = {}
    for scene in ("calm", "energize", "city"):
        path = folder / f"{scene}.wav"
        render(str(PHOTOS / "coffee.jpg"), [str(path)], scene=scene, duration_s=12.0)
        out[scene] = read(path)
    return out


def test_calm_renders_at_least_8_lu_quieter_than_energize(
        scene_wavs: dict[str, np.ndarray]) -> None:
    calm, energize = lufs(scene_wavs["calm"]), lufs(scene_wavs["energize"])
    assert energize - calm >= 8.0, (calm, energize)


@pytest.mark.parametrize("scene", ["calm", "energize", "city"])
def test_each_scene_sits_at_its_own_target_and_under_the_peak_ceiling(
        scene: str, scene_wavs: dict[str, np.ndarray]) -> None:
    target = load_scene(scene).render.loudness_lufs
    audio = scene_wavs[scene]
    assert lufs(audio) == pytest.approx(target, abs=0.5)
    assert true_peak_db(audio) <= -1.0 + 0.1  # 16-bit rounding and the meters' own filters


def test_the_scenes_say_their_loudness_and_a_scene_that_does_not_gets_the_default() -> None:
    assert load_scene("calm").render.loudness_lufs == pytest.approx(-26.0)
    assert load_scene("energize").render.loudness_lufs == pytest.approx(-16.0)
    plain = parse_scene('name = "plain"\n', "plain.toml")
    assert plain.render.loudness_lufs == pytest.approx(-20.0)


def test_a_loudness_out_of_range_is_an_error_naming_the_key() -> None:
    with pytest.raises(SceneError, match="loudness_lufs"):
        parse_scene('name = "x"\n[render]\nloudness_lufs = 3\n', "x.toml")


def peaky(seconds: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """A quiet tone with loud, sharp clicks: its peaks are far above its loudness."""
    t = np.arange(int(seconds * SR)) / SR
    y = 0.05 * np.sin(2 * np.pi * 220 * t)
    y[:: SR // 4] = 0.9  # four hard clicks a second
    return y.astype(np.float32), (0.8 * y).astype(np.float32)


def test_a_peaky_signal_reaches_a_loud_target_and_never_passes_the_ceiling() -> None:
    left, right = peaky()
    mastering.master(left, right, SR, loudness_lufs=-14.0, peak_dbfs=-1.0)
    audio = np.stack([left, right], axis=1)
    assert lufs(audio) == pytest.approx(-14.0, abs=0.3)
    assert true_peak_db(audio) <= -1.0 + 0.05


def test_the_same_samples_master_to_the_same_samples() -> None:
    a, b = peaky(), peaky()
    for left, right in (a, b):
        mastering.master(left, right, SR, loudness_lufs=-18.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_silence_stays_silent_and_a_very_short_piece_is_measured() -> None:
    left, right = np.zeros(SR, np.float32), np.zeros(SR, np.float32)
    assert mastering.master(left, right, SR) == 0.0 and not left.any()
    t = np.arange(int(0.1 * SR)) / SR  # shorter than one 0.4 s gating block
    left = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    right = left.copy()
    assert mastering.master(left, right, SR, loudness_lufs=-20.0) > 0.0
    assert np.abs(left).max() <= 10 ** (-1 / 20)


@pytest.mark.parametrize(("lufs_", "peak", "message"), [
    (-5.0, -1.0, "loudness_lufs must be -40..-10 LUFS"),
    (-20.0, 0.0, "peak_dbfs must be below 0 dBFS"),
])
def test_levels_out_of_range_are_refused(lufs_: float, peak: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mastering.check_levels(lufs_, peak)
