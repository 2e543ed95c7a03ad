"""The MIDI port layer shared by MIDI out, MIDI control in and MIDI clock in: ``ports``."""
