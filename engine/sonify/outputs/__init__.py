"""Outputs: where Events become bytes (MIDI port, OSC targets, MIDI file) — and the recording
fake the tests use.

``base.Output`` is the contract; ``midi.MidiOutput`` (python-rtmidi), ``osc.OscOutput``
(python-osc over UDP), ``midifile.MidiFileRecorder`` (mido) and ``recording.RecordingOutput``
implement it. The real outputs are imported from their modules so that importing this package
never loads a MIDI library.
"""

from sonify.outputs.base import Output, OutputStats
from sonify.outputs.recording import RecordingOutput

__all__ = ["Output", "OutputStats", "RecordingOutput"]
