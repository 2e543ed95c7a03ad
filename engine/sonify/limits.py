"""The ranges of the music's controls, defined once: the command validator, the scene schema,
the OSC address space, OSCQuery, the page and MIDI input all read them here."""

from __future__ import annotations

TEMPO_RANGE_BPM: tuple[float, float] = (20.0, 300.0)
MASTER_RANGE: tuple[float, float] = (0.0, 1.0)
TRANSPOSE_RANGE: tuple[int, int] = (-48, 48)  # semitones: four octaves either way
PITCH_RANGE: tuple[int, int] = (0, 127)
VELOCITY_RANGE: tuple[int, int] = (1, 127)  # 0 would be a note-off
# Integrated loudness (ITU-R BS.1770, LUFS) of the built-in WAV: a scene's ``[render]
# loudness_lufs`` lies in this range, and a scene that does not say plays at the default.
LOUDNESS_RANGE_LUFS: tuple[float, float] = (-40.0, -10.0)
LOUDNESS_DEFAULT_LUFS = -20.0
