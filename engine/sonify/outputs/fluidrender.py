"""FluidSynth renders a piece to a WAV: real General MIDI instruments instead of the built-in synth.

``render_fluid`` writes the events as a MIDI file (``smf.encode_midi_file``, tick 0 at
``start_s``) into a private temporary folder and runs the ``fluidsynth`` program on it in
fast-render mode (``fluidsynth -ni -F piece.raw -T raw -O float -E little -r RATE SF2
piece.mid``: 32-bit float, so nothing clips before the master), under a timeout. FluidSynth
renders until every voice has died away, so the audio is cut (or padded with silence) to
exactly the requested length, then mastered as the built-in synth's is (``mastering.master``:
the scene's integrated loudness, true peak <= -1 dBFS, the last 50 ms faded): a render with
``--soundfont`` is as loud as one without.

``FluidWavRenderer`` is the built-in ``WavRenderer`` with FluidSynth in its place: it collects
the same events and writes the same kind of file at ``close(end_s=...)``/``save()``, so
``sonify render`` and ``sonify run --synth`` (with no sound card) use it where they would use
the built-in synth. When FluidSynth fails (it is gone, the soundfont is unreadable, the
timeout runs out: a note that never ends keeps it rendering for ever), ``strict`` decides:
raise ``WavWriteError`` (``sonify render``: the user asked for FluidSynth), or log it and let
the built-in synth write the file (a live run: the music is not lost).

Determinism: FluidSynth renders the same MIDI file to the same samples; the MIDI file is
made from the events alone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sonify.events import Event
from sonify.outputs.mastering import LOUDNESS_LUFS, PEAK_DBFS, WavWriteError, master, write_wav
from sonify.outputs.smf import encode_midi_file
from sonify.outputs.synth import SAMPLE_RATE, WavRenderer, render_audio

__all__ = ["RENDER_GAIN", "FluidRenderError", "FluidWavRenderer", "render_fluid"]

logger = logging.getLogger(__name__)

RENDER_GAIN = 0.5  # FluidSynth's master gain; float output and the master set the real level
TIMEOUT_BASE_S = 30.0  # fast render runs at 50x real time or more: this is generous
TIMEOUT_PER_S = 0.2  # ... plus this per second of music


class FluidRenderError(RuntimeError):
    """FluidSynth could not render (which program, which soundfont, why)."""


def render_fluid(events: Iterable[Event], duration_s: float, *, soundfont: str | os.PathLike[str],
                 program: str = "fluidsynth", sample_rate: int = SAMPLE_RATE,
                 start_s: float = 0.0, loudness_lufs: float = LOUDNESS_LUFS,
                 peak_dbfs: float = PEAK_DBFS, timeout_s: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``events`` played by FluidSynth with ``soundfont``: (left, right) float32 of exactly
    ``round(duration_s * sample_rate)`` samples, mastered (see the module docstring).
    ``start_s`` is the event time heard at the first sample. FluidRenderError on failure."""
    n = max(0, round(duration_s * sample_rate))
    midi = encode_midi_file(events, start_s=start_s, end_s=start_s + duration_s)
    if timeout_s is None:
        timeout_s = TIMEOUT_BASE_S + TIMEOUT_PER_S * duration_s
    with tempfile.TemporaryDirectory(prefix="sonify-fluid-") as tmp:
        mid, raw = Path(tmp) / "piece.mid", Path(tmp) / "piece.raw"
        mid.write_bytes(midi)
        cmd = [program, "-n", "-i", "-q", "-g", f"{RENDER_GAIN:g}", "-r", str(sample_rate),
               "-T", "raw", "-O", "float", "-E", "little", "-F", str(raw), str(soundfont),
               str(mid)]
        try:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise FluidRenderError(f"{program} did not finish rendering {duration_s:.1f} s "
                                   f"within {timeout_s:.0f} s (a note that never ends keeps it "
                                   f"rendering)") from None
        except OSError as exc:
            raise FluidRenderError(f"cannot run {program}: {exc.strerror or exc}") from None
        if done.returncode != 0 or not raw.exists():
            raise FluidRenderError(f"{program} failed (exit status {done.returncode}) with "
                                   f"{soundfont}: {_last_line(done.stderr)}")
        data = np.fromfile(raw, dtype="<f4")
    frames = data[:len(data) // 2 * 2].reshape(-1, 2)
    left = np.zeros(n, dtype=np.float32)
    right = np.zeros(n, dtype=np.float32)
    m = min(n, len(frames))
    left[:m] = frames[:m, 0]
    right[:m] = frames[:m, 1]
    if not (np.all(np.isfinite(left)) and np.all(np.isfinite(right))):
        raise FluidRenderError(f"{program} rendered samples that are not numbers")
    master(left, right, sample_rate, loudness_lufs, peak_dbfs)
    return left, right


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


class FluidWavRenderer(WavRenderer):
    """A ``WavRenderer`` whose audio FluidSynth plays with ``soundfont`` (``program`` is the
    ``fluidsynth`` executable). ``strict``: a FluidSynth failure raises ``WavWriteError`` from
    ``save()`` instead of falling back to the built-in synth (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, soundfont: str | os.PathLike[str],
                 program: str = "fluidsynth", strict: bool = False,
                 sample_rate: int = SAMPLE_RATE, start_s: float | None = None,
                 duration_s: float | None = None, tail_s: float = 1.5,
                 loudness_lufs: float = LOUDNESS_LUFS, peak_dbfs: float = PEAK_DBFS) -> None:
        super().__init__(path, sample_rate=sample_rate, start_s=start_s, duration_s=duration_s,
                         tail_s=tail_s, loudness_lufs=loudness_lufs, peak_dbfs=peak_dbfs)
        self.soundfont = Path(soundfont)
        self.program = program
        self.strict = strict
        self.fell_back: str | None = None  # why the built-in synth wrote the file, if it did
        self.name = f"fluidsynth-wav:{self.path.name}"

    def _lr(self, length_s: float) -> tuple[np.ndarray, np.ndarray]:
        try:
            return render_fluid(self.events, length_s, soundfont=self.soundfont,
                                program=self.program, sample_rate=self.sample_rate,
                                start_s=self.start_s or 0.0, loudness_lufs=self.loudness_lufs,
                                peak_dbfs=self.peak_dbfs)
        except FluidRenderError as exc:
            if self.strict:
                raise WavWriteError(f"cannot render {self.path} with FluidSynth: {exc}") from None
            self.fell_back = str(exc)
            logger.warning("%s: %s; the built-in synth renders the file instead", self.name, exc)
        audio = render_audio(self.events, length_s, self.sample_rate, start_s=self.start_s or 0.0,
                             loudness_lufs=self.loudness_lufs, peak_dbfs=self.peak_dbfs)
        return np.ascontiguousarray(audio[:, 0]), np.ascontiguousarray(audio[:, 1])

    def render(self, end_s: float | None = None) -> np.ndarray:
        left, right = self._lr(self.length_s(end_s))
        return np.stack([left, right], axis=1)

    def _write(self, end_s: float | None) -> Path:
        length_s = self.length_s(end_s)
        if self._written == (len(self.events), length_s) and self.path.exists():
            return self.path
        left, right = self._lr(length_s)
        write_wav(self.path, left, right, self.sample_rate)
        self._written = (len(self.events), length_s)
        logger.info("%s: FluidSynth rendered %d events to %.2f s of audio in %s", self.name,
                    len(self.events), len(left) / self.sample_rate, self.path)
        return self.path
