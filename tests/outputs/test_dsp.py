"""The WAV master's own kernels agree with the libraries they replace (pyloudnorm's BS.1770
meter, SciPy's running minimum and mean, NumPy's correlation), and loading the synth no longer
loads those libraries (about 1.3 s of a render process)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pyloudnorm
import pytest
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from sonify.outputs import dsp
from sonify.outputs.mastering import _INTERPOLATORS, integrated_loudness

SR = 44100


def _pyloudnorm(left: np.ndarray, right: np.ndarray, rate: int = SR) -> float:
    data = np.stack([left, right], axis=1).astype(np.float64)
    return float(pyloudnorm.Meter(rate).integrated_loudness(data))


def _signals() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    t = np.arange(5 * SR) / SR
    noise = (0.2 * rng.standard_normal(len(t))).astype(np.float32)
    tone = (0.5 * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    bass = (0.7 * np.sin(2 * np.pi * 40 * t)).astype(np.float32)
    quiet_start = noise.copy()
    quiet_start[: 2 * SR] *= 1e-3  # blocks under the relative gate
    return {"noise/tone": (noise, tone), "bass (K-weighting's high pass)": (bass, bass),
            "gated start": (quiet_start, tone * np.float32(0.1)),
            "one block": (noise[: int(0.45 * SR)], tone[: int(0.45 * SR)])}


@pytest.mark.parametrize("name", list(_signals()))
def test_loudness_agrees_with_pyloudnorm(name: str) -> None:
    left, right = _signals()[name]
    assert dsp.integrated_loudness(left, right, SR) == pytest.approx(
        _pyloudnorm(left, right), abs=1e-9)


def test_loudness_agrees_at_another_rate() -> None:
    rate = 48000
    t = np.arange(3 * rate) / rate
    x = 0.3 * np.sin(2 * np.pi * 3000 * t) + 0.1 * np.sin(2 * np.pi * 100 * t)
    assert dsp.integrated_loudness(x, x, rate) == pytest.approx(_pyloudnorm(x, x, rate),
                                                                abs=1e-9)


def test_silence_and_signals_under_the_gate_read_minus_infinity() -> None:
    silence = np.zeros(SR, np.float32)
    assert integrated_loudness(silence, silence, SR) == -math.inf
    whisper = np.full(SR, 1e-6, np.float32)  # far under -70 LUFS
    assert dsp.integrated_loudness(whisper, whisper, SR) == -math.inf


def test_a_short_signal_is_padded_to_one_block_as_before() -> None:
    tone = (0.5 * np.sin(np.arange(SR // 10) * 0.1)).astype(np.float32)
    padded = np.concatenate([tone, np.zeros(int(math.ceil(0.4 * SR)) + 1 - len(tone),
                                            np.float32)])
    assert integrated_loudness(tone, tone, SR) == pytest.approx(_pyloudnorm(padded, padded),
                                                                abs=1e-9)
    with pytest.raises(ValueError, match="shorter than one 0.4 s block"):
        dsp.integrated_loudness(tone, tone, SR)


@pytest.mark.parametrize("half", [0, 1, 7, 2646])
def test_running_min_is_scipys_minimum_filter(half: int) -> None:
    x = np.random.default_rng(half).random(20000)
    x[5000:9000] = 0.25  # plateaus and ties
    assert np.array_equal(dsp.running_min(x, half),
                          minimum_filter1d(x, 2 * half + 1, mode="nearest"))


@pytest.mark.parametrize("half", [0, 1, 7, 1764])
def test_running_mean_is_scipys_uniform_filter(half: int) -> None:
    x = np.random.default_rng(half).random(20000)
    np.testing.assert_allclose(dsp.running_mean(x, half),
                               uniform_filter1d(x, 2 * half + 1, mode="nearest"),
                               rtol=0, atol=1e-12)


def test_oversampled_peak_is_the_largest_of_the_samples_and_the_interpolations() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000).astype(np.float32)
    x64 = x.astype(np.float64)
    expected = max(float(np.max(np.abs(x64))), *(
        float(np.max(np.abs(np.correlate(x64, h, mode="valid")))) for h in _INTERPOLATORS))
    assert dsp.peak_oversampled(x, _INTERPOLATORS) == pytest.approx(expected, rel=1e-12)
    short = x[:5]
    assert dsp.peak_oversampled(short, _INTERPOLATORS) == float(np.max(np.abs(short)))


def test_the_synth_loads_neither_scipys_filters_nor_pyloudnorm() -> None:
    """(numba itself imports the ``scipy`` package, a few ms, to check its version.)"""
    heavy = ("scipy.signal", "scipy.ndimage", "scipy.stats", "pyloudnorm")
    code = ("import sys, json; import sonify.outputs.synth, sonify.render.loudness; "
            f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert json.loads(out) == []


@pytest.mark.parametrize(("inc", "phase"), [(0, 0), (12_345_678, 0), (4_000_000_000, 77),
                                            (0xFFFFFFFF, 0xFFFFFFFF)])
def test_the_wavetable_reads_the_table_as_numpys_uint32_phase_does(inc: int, phase: int) -> None:
    table = np.sin(np.arange(1 << 16) * (2 * np.pi / (1 << 16))).astype(np.float32)
    n = 30_000
    ph = np.arange(n, dtype=np.uint32) * np.uint32(inc) + np.uint32(phase)
    expected = table[ph >> np.uint32(16)]
    assert np.array_equal(dsp.wavetable(table, inc, phase, n, 16), expected)


def test_the_wavetable_refuses_what_is_not_a_32_bit_phase() -> None:
    table = np.zeros(1 << 16, np.float32)
    with pytest.raises(ValueError, match="32-bit phases"):
        dsp.wavetable(table, 1 << 32, 0, 10, 16)
    with pytest.raises(ValueError, match="top 17 bits"):
        dsp.wavetable(table, 1, 0, 10, 15)


def test_the_oversampled_peak_takes_the_three_phases_of_4x_oversampling() -> None:
    with pytest.raises(ValueError, match="3 filters"):
        dsp.peak_oversampled(np.zeros(100), np.zeros((2, 12)))
