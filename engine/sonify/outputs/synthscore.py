"""The built-in synthesiser's score: MIDI events in, the notes to play out, each with what it
starts with (instrument, left/right gains, frequency, brightness) and when it is released.

Instruments (one per note, chosen when it starts):

- the channel's last ProgramChange picks a GM family (0-7 piano -> ``piano``; 8-15 chromatic
  percussion -> ``bell``; 16-23 organ; 24-31 guitar -> ``piano``; 32-39 bass; 40-55 strings and
  ensemble -> ``pad``; 56-79 brass, reed, pipe -> ``lead``; 80-87 lead (80 square, the rest
  saw); 88-103 pad and synth effects -> ``pad``; 104-111 ethnic -> ``piano``; 112-119
  percussive -> ``bell``; 120-127 sound effects -> ``pad``);
- with no ProgramChange, the voice name (``drum``/``kick``/``perc`` -> drums, ``bass``,
  ``pad``/``string``/``drone``, ``arp`` (square) / ``lead``/``stab``/``synth`` (saw),
  ``sparkle``/``bell``/``star``/``vibe``/``chime`` -> bell, ``organ``,
  ``melody``/``piano``/``key``/``pluck`` -> piano);
- else GM's default, program 0 (piano). MIDI channel 10 (index 9) is always the drum kit, by GM
  pitch (``drumkit.py``).

Controls: CC 7 (volume) and CC 11 (expression) scale as GM's 40·log10 curve, CC 10 (pan) places
the note, CC 74 (brightness) sets how many harmonics the table instruments carry, pitch bend
(+-2 semitones) retunes; each is read when a note starts and held for that note (a preview
does not sweep a sounding note). Without CC 10, bass and the kick, snare and clap sit in the
centre, other voices are spread by a stable hash of their name (of their channel if unnamed),
cymbals and toms across the kit. Velocity sets amplitude. CC 120/123 end every note on the
channel.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from sonify.events import (
    ControlChange,
    Event,
    Note,
    NoteOff,
    NoteOn,
    PitchBend,
    ProgramChange,
)
from sonify.outputs.drumkit import TOMS

DRUM_CHANNEL = 9  # MIDI channel 10
BEND_RANGE_SEMITONES = 2.0
INSTRUMENTS = ("piano", "bell", "organ", "bass", "pad", "lead", "square", "drums")

# -- choosing an instrument and a place --------------------------------------------------------

# GM program // 8 -> instrument
_FAMILIES = ("piano", "bell", "organ", "piano", "bass", "pad", "pad", "lead",
             "lead", "lead", "lead", "pad", "pad", "piano", "bell", "pad")
# voice-name keywords, first match wins (so "bass drum" is a drum and "arp pad" a square lead)
_NAME_HINTS = (
    (("drum", "kick", "snare", "hat", "perc"), "drums"),
    (("bass",), "bass"),
    (("arp",), "square"),
    (("pad", "string", "drone", "choir", "ambient", "wash"), "pad"),
    (("sparkle", "bell", "star", "vibe", "chime", "glock", "twinkle", "music box"), "bell"),
    (("organ",), "organ"),
    (("lead", "stab", "synth", "saw"), "lead"),
    (("melody", "piano", "key", "pluck", "guitar"), "piano"),
)


def instrument_for(channel: int, program: int | None, voice: str) -> str:
    """The instrument a note plays: drums on channel 10, else the GM family of the channel's
    program, else a hint in the voice name, else piano (GM's program 0)."""
    if channel == DRUM_CHANNEL:
        return "drums"
    if program is not None:
        if program in (80,):  # GM Lead 1 (square)
            return "square"
        return _FAMILIES[program // 8]
    name = voice.lower()
    for words, instrument in _NAME_HINTS:
        if any(w in name for w in words):
            return instrument
    return "piano"


def default_pan(instrument: str, voice: str, channel: int) -> float:
    """Where a voice sits without CC 10, -1 (left) .. 1 (right): bass in the centre, the rest
    spread by a stable hash of the voice name (of the channel when unnamed)."""
    if instrument == "bass":
        return 0.0
    key = voice if voice else f"channel {channel}"
    h = zlib.crc32(key.encode("utf-8")) % 1001
    return (h / 500.0 - 1.0) * 0.6


def drum_pan(pitch: int) -> float:
    if pitch in (35, 36, 37, 38, 39, 40):  # kick, snare, clap: centre
        return 0.0
    if pitch in (42, 44, 46):
        return 0.3
    if pitch in (49, 52, 55, 57):
        return -0.4 if pitch != 57 else 0.45
    if pitch in (51, 53, 59):
        return 0.45
    if pitch in TOMS:
        return -0.45 + 0.9 * TOMS.index(pitch) / (len(TOMS) - 1)
    return (zlib.crc32(f"drum {pitch}".encode()) % 1001 / 500.0 - 1.0) * 0.5


def _cc_pan(value: int) -> float:
    return max(-1.0, (value - 64) / (64.0 if value <= 64 else 63.0))


def _pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan law: both sides at -3 dB in the centre."""
    angle = (min(1.0, max(-1.0, pan)) + 1.0) * math.pi / 4.0
    return math.cos(angle), math.sin(angle)

# -- the score ---------------------------------------------------------------------------------

@dataclass
class _Channel:
    program: int | None = None
    volume: int = 100  # CC 7, GM default
    expression: int = 127  # CC 11
    pan: int | None = None  # CC 10, None until sent
    brightness: int = 64  # CC 74
    bend: int = 0


@dataclass
class ScoreNote:
    on_s: float
    channel: int
    pitch: int
    velocity: int
    voice: str
    note_id: int
    instrument: str
    gain_l: float
    gain_r: float
    freq: float
    brightness: float
    off_s: float | None = None


def score(events: Iterable[Event], end_s: float) -> list[ScoreNote]:
    """Notes with what they start with (instrument, gains, pitch), from events in time order
    (stable: at one time, the order they were sent); notes still held end at ``end_s``."""
    channels = [_Channel() for _ in range(16)]
    held: dict[tuple[int, int], list[ScoreNote]] = {}
    notes: list[ScoreNote] = []
    flat: list[Event] = []
    for ev in events:
        if isinstance(ev, Note):  # a whole note, as the scene makes it: on and off
            flat.append(NoteOn(ev.t, ev.channel, ev.pitch, ev.velocity, ev.voice))
            flat.append(NoteOff(ev.t + ev.duration_s, ev.channel, ev.pitch, ev.voice))
        else:
            flat.append(ev)
    for ev in sorted(flat, key=lambda e: e.t):
        if not math.isfinite(ev.t):
            continue
        if isinstance(ev, NoteOn):
            ch = channels[ev.channel]
            instrument = instrument_for(ev.channel, ch.program, ev.voice)
            if ch.pan is not None:
                pan = _cc_pan(ch.pan)
            elif instrument == "drums":
                pan = drum_pan(ev.pitch)
            else:
                pan = default_pan(instrument, ev.voice, ev.channel)
            # GM: 40·log10(value/127) dB for CC 7 and CC 11; velocity a little gentler
            level = ((ch.volume / 127) ** 2 * (ch.expression / 127) ** 2
                     * (ev.velocity / 127) ** 1.5)
            gl, gr = _pan_gains(pan)
            semitones = ev.pitch - 69 + BEND_RANGE_SEMITONES * ch.bend / 8192
            note = ScoreNote(ev.t, ev.channel, ev.pitch, ev.velocity, ev.voice, ev.note_id,
                          instrument, gl * level, gr * level, 440.0 * 2 ** (semitones / 12),
                          ch.brightness / 127)
            notes.append(note)
            held.setdefault((ev.channel, ev.pitch), []).append(note)
        elif isinstance(ev, NoteOff):
            stack = held.get((ev.channel, ev.pitch))
            if not stack:
                continue
            index = 0
            if ev.note_id:
                index = next((i for i, n in enumerate(stack) if n.note_id == ev.note_id), 0)
            stack.pop(index).off_s = ev.t
        elif isinstance(ev, ControlChange):
            ch = channels[ev.channel]
            if ev.control == 7:
                ch.volume = ev.value
            elif ev.control == 11:
                ch.expression = ev.value
            elif ev.control == 10:
                ch.pan = ev.value
            elif ev.control == 74:
                ch.brightness = ev.value
            elif ev.control == 121:  # reset all controllers (GM keeps volume and pan)
                ch.expression, ch.bend = 127, 0
            elif ev.control in (120, 123):  # all sound off, all notes off
                for (c, _), stack in held.items():
                    if c == ev.channel:
                        for n in stack:
                            n.off_s = ev.t
                        stack.clear()
        elif isinstance(ev, PitchBend):
            channels[ev.channel].bend = ev.value
        elif isinstance(ev, ProgramChange):
            channels[ev.channel].program = ev.program
    for stack in held.values():
        for n in stack:
            n.off_s = end_s
    return notes
