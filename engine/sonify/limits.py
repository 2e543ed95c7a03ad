"""The ranges of the music's controls, defined once: the command validator, the scene schema,
the OSC address space, OSCQuery, the page and MIDI input all read them here."""

from __future__ import annotations

TEMPO_RANGE_BPM: tuple[float, float] = (20.0, 300.0)
MASTER_RANGE: tuple[float, float] = (0.0, 1.0)
TRANSPOSE_RANGE: tuple[int, int] = (-48, 48)  # semitones: four octaves either way
PITCH_RANGE: tuple[int, int] = (0, 127)
VELOCITY_RANGE: tuple[int, int] = (1, 127)  # 0 would be a note-off
