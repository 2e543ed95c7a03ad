"""The built-in WAV's master: each scene at its own loudness, no peak above the ceiling, and the
file written atomically.

Loudness carries energy: a calm piece should sound quieter than an energetic one, so the mix is
not normalised to one level for every piece. ``master`` scales it to a target *integrated
loudness* (ITU-R BS.1770-4, LUFS: K-weighted, gated at -70 LUFS absolute and -10 LU relative,
measured as pyloudnorm does: ``dsp.integrated_loudness``), the scene's ``[render]
loudness_lufs`` (``calm`` about -26, ``energize`` about -16, -20 when a scene does not say). A
peak limiter then keeps every sample ``SAMPLE_MARGIN_DB`` under the ceiling (``peak_dbfs``,
-1 dBFS); where the true peak (BS.1770 Annex 2: the signal 4x oversampled, here by 12-tap
windowed-sinc interpolators) still pokes above the ceiling, the limiter runs again that much
lower. The limiter takes a little loudness, so scaling and limiting repeat (at most
``LOUDNESS_PASSES`` times) until the piece is within ``LOUDNESS_TOLERANCE_LU`` of its target.
Last, should the true peak still be over (a pathological signal), the whole piece comes down by
the excess: no file ever clips.
Measured on 30-60 s renders of photographs: every scene within 0.2 LU of its target, true
peak at most -1.0 dBFS.

The limiter looks ahead: the gain each sample needs (ceiling / |peak|, at most 1) is taken as
the minimum over ``HOLD_S`` either side, then averaged over ``SMOOTH_S`` either side; since
``SMOOTH_S <= HOLD_S`` every averaged gain is at most the gain its sample needs, so the
ceiling holds, and the gain glides down before a peak and back after it instead of clicking.
Before all this the last ``FADE_OUT_S`` of the file fades to silence, so it can be laid under
a video of that length. A piece with no notes is silence of the right length.

Determinism: the same samples give the same master, bit for bit (no randomness, no threads).
"""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sonify.limits import LOUDNESS_DEFAULT_LUFS, LOUDNESS_RANGE_LUFS
from sonify.outputs.dsp import integrated_loudness as _bs1770
from sonify.outputs.dsp import peak_oversampled, running_mean, running_min
from sonify.util.atomicio import atomic_write

LOUDNESS_LUFS = LOUDNESS_DEFAULT_LUFS  # a scene's WAV unless its [render] says otherwise
PEAK_DBFS = -1.0  # no true peak above this
FADE_OUT_S = 0.05  # the end of the file fades to silence over this
HOLD_S = 0.06  # the limiter's look-ahead and hold, either side of a peak
SMOOTH_S = 0.04  # the limiter's gain glide, either side (<= HOLD_S keeps the ceiling exact)
SAMPLE_MARGIN_DB = 0.3  # the limiter aims this far under the ceiling: room for inter-sample peaks
OVERSAMPLE = 4  # BS.1770 true peak: 4x oversampling
INTERP_TAPS = 12  # taps of each interpolating phase
LOUDNESS_PASSES = 3  # scale and limit at most this often to land on the target
LOUDNESS_TOLERANCE_LU = 0.1
_BLOCK_S = 0.4  # BS.1770's gating block: shorter audio is measured padded with silence


class WavWriteError(OSError):
    """The WAV file could not be written (which file, why, what to do)."""


def check_levels(loudness_lufs: float, peak_dbfs: float) -> None:
    """A ValueError naming the bad level and the allowed range."""
    lo, hi = LOUDNESS_RANGE_LUFS
    if not peak_dbfs < 0.0:
        raise ValueError(f"peak_dbfs must be below 0 dBFS (full scale), got {peak_dbfs}")
    if not lo <= loudness_lufs <= hi:
        raise ValueError(f"loudness_lufs must be {lo:g}..{hi:g} LUFS, got {loudness_lufs}")


def integrated_loudness(left: np.ndarray, right: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness of a stereo signal in LUFS (-inf for silence)."""
    block = int(math.ceil(_BLOCK_S * sample_rate)) + 1
    if len(left) < block:
        left = np.concatenate([left, np.zeros(block - len(left), left.dtype)])
        right = np.concatenate([right, np.zeros(block - len(right), right.dtype)])
    if not (np.any(left) or np.any(right)):
        return -math.inf
    return _bs1770(left, right, sample_rate)


def _interpolators() -> list[np.ndarray]:
    """For each point between samples at 1/4, 2/4, 3/4: a Hann-windowed sinc of
    ``INTERP_TAPS`` taps that reads the signal there (BS.1770 Annex 2 uses such a 4-phase
    polyphase filter of 12 taps a phase)."""
    half = INTERP_TAPS // 2
    k = np.arange(-half + 1, half + 1, dtype=np.float64)
    out = []
    for phase in range(1, OVERSAMPLE):
        x = k - phase / OVERSAMPLE
        out.append(np.sinc(x) * (0.5 + 0.5 * np.cos(np.pi * x / (half + 0.5))))
    return out


_INTERPOLATORS = np.stack(_interpolators())


def true_peak_dbfs(left: np.ndarray, right: np.ndarray) -> float:
    """The highest absolute value of the signal 4x oversampled (BS.1770 Annex 2: the samples
    and the points a quarter, half and three quarters between them), in dBFS."""
    peak = max(peak_oversampled(left, _INTERPOLATORS), peak_oversampled(right, _INTERPOLATORS))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def limit(left: np.ndarray, right: np.ndarray, sample_rate: int, ceiling: float) -> bool:
    """Bring every sample at or under ``ceiling`` (linear), in place, with a look-ahead gain that
    glides (see the module docstring); a signal already under it is left untouched (False)."""
    env = np.maximum(np.abs(left), np.abs(right))
    if not len(env) or float(env.max()) <= ceiling:
        return False
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12)).astype(np.float64)
    hold = max(1, int(HOLD_S * sample_rate))
    smooth = max(1, min(hold, int(SMOOTH_S * sample_rate)))
    gain = running_min(need, hold)  # scipy's minimum_filter1d(need, 2 * hold + 1, "nearest")
    gain = running_mean(gain, smooth)  # and uniform_filter1d
    gain = np.minimum(gain, need)  # float rounding in the average must not cross the ceiling
    left *= gain.astype(np.float32)
    right *= gain.astype(np.float32)
    return True


def _fade_end(left: np.ndarray, right: np.ndarray, sample_rate: int) -> None:
    n = len(left)
    fade = min(n, int(round(FADE_OUT_S * sample_rate)))
    if fade:
        ramp = np.linspace(1.0, 0.0, fade + 1, dtype=np.float32)[1:]
        left[n - fade:] *= ramp
        right[n - fade:] *= ramp


def master(left: np.ndarray, right: np.ndarray, sample_rate: int,
           loudness_lufs: float = LOUDNESS_LUFS, peak_dbfs: float = PEAK_DBFS) -> float:
    """Fade the end, scale to ``loudness_lufs`` and limit to ``peak_dbfs``, in place; returns
    the gain applied besides the limiter's (0 for silence, which stays silence)."""
    check_levels(loudness_lufs, peak_dbfs)
    _fade_end(left, right, sample_rate)
    loudness = integrated_loudness(left, right, sample_rate)
    peak = max(float(np.max(np.abs(left), initial=0.0)),
               float(np.max(np.abs(right), initial=0.0)))
    if not (math.isfinite(loudness) and math.isfinite(peak) and peak > 1e-9):
        left[:] = 0.0
        right[:] = 0.0
        return 0.0
    total = 1.0
    ceiling_db = peak_dbfs - SAMPLE_MARGIN_DB
    for _ in range(LOUDNESS_PASSES):  # the limiter takes a little loudness: make it up
        gain = 10 ** ((loudness_lufs - loudness) / 20)
        left *= np.float32(gain)
        right *= np.float32(gain)
        total *= gain
        if not limit(left, right, sample_rate, 10 ** (ceiling_db / 20)):
            break
        over = true_peak_dbfs(left, right) - peak_dbfs
        if over > 0:  # inter-sample peaks: limit the samples lower, not the whole piece
            ceiling_db -= over + 0.05
            limit(left, right, sample_rate, 10 ** (ceiling_db / 20))
        loudness = integrated_loudness(left, right, sample_rate)
        if abs(loudness - loudness_lufs) <= LOUDNESS_TOLERANCE_LU:
            break
    excess = true_peak_dbfs(left, right) - peak_dbfs
    if excess > 0:  # still over (a pathological signal): the whole piece comes down
        down = np.float32(10 ** (-(excess + 0.01) / 20))
        left *= down
        right *= down
    return total


def _pcm16(left: np.ndarray, right: np.ndarray) -> bytes:
    frames = np.empty((len(left), 2), dtype="<i2")
    np.rint(np.clip(left, -1.0, 1.0) * 32767.0, out=frames[:, 0], casting="unsafe")
    np.rint(np.clip(right, -1.0, 1.0) * 32767.0, out=frames[:, 1], casting="unsafe")
    return frames.tobytes()


def write_wav(path: str | os.PathLike[str], left: np.ndarray, right: np.ndarray,
              sample_rate: int) -> Path:
    """Write 16-bit stereo PCM atomically (``atomicio``: a temp file beside ``path``, fsync,
    rename): ``path`` is either the old file or the whole new one, never half written. Inside
    ``atomicio.staged()`` the rename waits for the batch's commit."""
    target = Path(path)

    def write(f: BinaryIO) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.setnframes(len(left))
            chunk = 1 << 16  # convert a piece at a time: no second copy of the whole piece
            for i in range(0, len(left), chunk):
                w.writeframesraw(_pcm16(left[i:i + chunk], right[i:i + chunk]))

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, write)
    except OSError as exc:
        raise WavWriteError(f"cannot write the WAV file {target}: {exc.strerror or exc} "
                            f"(choose a writable directory with free space)") from exc
    return target
