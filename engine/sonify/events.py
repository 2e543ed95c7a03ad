"""Events: what the scene decides, as immutable records with a time on the engine clock.

The scene emits Events; the scheduler dispatches each at its time ``t`` (engine-clock seconds,
the same clock as ``Frame.t``); only outputs turn them into bytes. A ``Note`` is the scene's
whole note (pitch, velocity, length): the scheduler splits it into ``NoteOn`` and ``NoteOff``
and keeps the note-off ledger, so no output ever sees a note-on without its note-off.

MIDI numbers are raw: channel 0..15, pitch/control/value/velocity/program 0..127, bend
-8192..8191. Constructors validate, so a bad event fails where it is made, not in an output.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _check(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be {lo}..{hi}, got {value}")


@dataclass(frozen=True, slots=True)
class Note:
    """A whole note from the scene: on at ``t``, off ``duration_s`` later."""

    t: float
    channel: int
    pitch: int
    velocity: int
    duration_s: float
    voice: str = ""

    def __post_init__(self) -> None:
        _check("channel", self.channel, 0, 15)
        _check("pitch", self.pitch, 0, 127)
        _check("velocity", self.velocity, 1, 127)
        if not self.duration_s > 0:
            raise ValueError(f"note duration must be > 0 s, got {self.duration_s}")


@dataclass(frozen=True, slots=True)
class NoteOn:
    t: float
    channel: int
    pitch: int
    velocity: int
    voice: str = ""
    note_id: int = 0  # the ledger's id, matching the NoteOff that ends this note
    duration_s: float = 0.0  # the Note's length as scheduled (0: unknown), for OSC receivers

    def __post_init__(self) -> None:
        _check("channel", self.channel, 0, 15)
        _check("pitch", self.pitch, 0, 127)
        _check("velocity", self.velocity, 1, 127)


@dataclass(frozen=True, slots=True)
class NoteOff:
    t: float
    channel: int
    pitch: int
    voice: str = ""
    note_id: int = 0

    def __post_init__(self) -> None:
        _check("channel", self.channel, 0, 15)
        _check("pitch", self.pitch, 0, 127)


@dataclass(frozen=True, slots=True)
class ControlChange:
    t: float
    channel: int
    control: int
    value: int
    voice: str = ""

    def __post_init__(self) -> None:
        _check("channel", self.channel, 0, 15)
        _check("control", self.control, 0, 127)
        _check("value", self.value, 0, 127)


@dataclass(frozen=True, slots=True)
class PitchBend:
    t: float
    channel: int
    value: int  # -8192..8191, 0 = centre
    voice: str = ""

    def __post_init__(self) -> None:
        _check("channel", self.channel, 0, 15)
        _check("pitch bend", self.value, -8192, 8191)


@dataclass(frozen=True, slots=True)
class ProgramChange:
    t: float
    channel: int
    program: int
    voice: str = ""

    def __post_init__(self) -> None:
        _check("channel", self.channel, 0, 15)
        _check("program", self.program, 0, 127)


@dataclass(frozen=True, slots=True)
class OscMessage:
    """An OSC message; ``address`` is relative to the output's prefix unless it starts with
    the prefix already. Args are int, float, str or bool."""

    t: float
    address: str
    args: tuple[int | float | str | bool, ...] = field(default=())
    voice: str = ""

    def __post_init__(self) -> None:
        if not self.address.startswith("/"):
            raise ValueError(f"OSC address must start with '/', got {self.address!r}")


@dataclass(frozen=True, slots=True)
class Tempo:
    """The tempo from ``t`` on (recorded into MIDI files; outputs may ignore it)."""

    t: float
    bpm: float


MARKER_KINDS: tuple[str, ...] = ("key", "chord", "section", "phrase", "cadence", "motif")
"""What a ``Marker`` may say (see ``Marker``)."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A label on the music's time line: the harmony's key, chord, section, phrase and cadence,
    the melody's motif. ``text`` is space-separated ``key=value`` pairs whose values hold no
    spaces (``root=D scale=major pcs=2,4,6,7,9,11,1``). MIDI files write it as a Marker meta
    event (FF 06) ``sonify:<kind> <text>`` on the tempo track; render's JSON lists it; MIDI
    ports, OSC and synths ignore it."""

    t: float
    kind: str
    text: str = ""

    def __post_init__(self) -> None:
        if self.kind not in MARKER_KINDS:
            raise ValueError(f"marker kind must be one of {', '.join(MARKER_KINDS)}, "
                             f"got {self.kind!r}")
        if "\n" in self.text or "\r" in self.text:
            raise ValueError(f"marker text must be one line, got {self.text!r}")

    def fields(self) -> dict[str, str]:
        """``text`` as a dict (``"name=V7 root=9"`` -> ``{"name": "V7", "root": "9"}``)."""
        return dict(part.split("=", 1) for part in self.text.split() if "=" in part)


# MIDI system real-time and common messages (status bytes) that MidiSystem carries
CLOCK = 0xF8  # timing clock: 24 per quarter note
START = 0xFA  # play from song position 0; the next CLOCK is its first beat
CONTINUE = 0xFB  # play from the current song position, at the next CLOCK
STOP = 0xFC
SONG_POSITION = 0xF2  # song position pointer: 14-bit value, in sixteenth notes (6 clocks)
SYSTEM_STATUSES = {CLOCK: "clock", START: "start", CONTINUE: "continue", STOP: "stop",
                   SONG_POSITION: "song position"}


@dataclass(frozen=True, slots=True)
class MidiSystem:
    """A MIDI system message for clock sync (channel-less): ``status`` is CLOCK, START,
    CONTINUE, STOP or SONG_POSITION; ``value`` is the song position in sixteenth notes
    (0..16383, SONG_POSITION only). MIDI ports send it; files, synths and OSC ignore it."""

    t: float
    status: int
    value: int = 0

    def __post_init__(self) -> None:
        if self.status not in SYSTEM_STATUSES:
            raise ValueError(f"MIDI system status must be one of "
                             f"{', '.join(f'0x{s:02X} ({n})' for s, n in SYSTEM_STATUSES.items())}"
                             f", got 0x{self.status:02X}")
        _check("song position", self.value, 0, 0x3FFF if self.status == SONG_POSITION else 0)


MidiEvent = NoteOn | NoteOff | ControlChange | PitchBend | ProgramChange
Event = (Note | NoteOn | NoteOff | ControlChange | PitchBend | ProgramChange | OscMessage
         | Tempo | MidiSystem | Marker)
MIDI_EVENTS = (NoteOn, NoteOff, ControlChange, PitchBend, ProgramChange)
