"""Integrated loudness of a WAV file (ITU-R BS.1770-4, LUFS), for the figures survey: the
file read back and measured with the same BS.1770 meter the WAV's mastering uses
(``sonify.outputs.mastering.integrated_loudness``)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from sonify.outputs.mastering import integrated_loudness as _stereo_loudness


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples as float in -1..1, shape (n, channels); sample rate) of a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is read, not {8 * w.getsampwidth()}-bit")
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return data.reshape(-1, channels).astype(np.float64) / 32768.0, rate


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """LUFS of ``samples`` (shape (n, channels), mono or stereo); -inf for silence."""
    left = samples[:, 0]
    right = samples[:, 1] if samples.shape[1] > 1 else left
    return _stereo_loudness(left, right, rate)


def wav_loudness(path: str | Path) -> float:
    """LUFS of the WAV file at ``path``."""
    return integrated_loudness(*read_wav(path))
