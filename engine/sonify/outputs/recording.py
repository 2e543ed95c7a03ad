"""A fake output that remembers what it was sent (for scheduler, scene and runtime tests).

Like isobar's DummyOutputDevice: nothing is transmitted; every event is kept with the time it
was sent (by the given clock, else the event's own ``t``), so a test can ask what went out, when,
and which notes are still sounding.
"""

from __future__ import annotations

from collections.abc import Callable

from sonify.events import MIDI_EVENTS, Event, NoteOff, NoteOn
from sonify.outputs.base import Output


class RecordingOutput(Output):
    """Records ``(t_sent, event)`` in ``sent``; ``panics`` holds the time of each panic.

    ``clock`` (e.g. ``ManualTime().now``) stamps each send; without it the event's ``t`` is used.
    ``midi_only`` makes it want MIDI events only, like a MIDI port. ``fail`` makes every send
    raise inside ``_send`` (to test that outputs never raise into the scheduler).
    """

    def __init__(self, clock: Callable[[], float] | None = None, *, midi_only: bool = False,
                 name: str = "recording", fail: bool = False) -> None:
        super().__init__()
        self.clock = clock
        self.midi_only = midi_only
        self.name = name
        self.fail = fail
        self.sent: list[tuple[float, Event]] = []
        self.panics: list[float] = []

    def wants(self, event: Event) -> bool:
        return not self.midi_only or isinstance(event, MIDI_EVENTS)

    def _now(self, event: Event | None = None) -> float:
        if self.clock is not None:
            return self.clock()
        return event.t if event is not None else (self.sent[-1][0] if self.sent else 0.0)

    def _send(self, event: Event) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name}: failing on purpose")
        self.sent.append((self._now(event), event))

    def _panic(self) -> None:
        self.panics.append(self._now())

    # -- what tests ask ---------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        return [ev for _, ev in self.sent]

    @property
    def notes_on(self) -> list[NoteOn]:
        return [ev for ev in self.events if isinstance(ev, NoteOn)]

    @property
    def notes_off(self) -> list[NoteOff]:
        return [ev for ev in self.events if isinstance(ev, NoteOff)]

    def of_type(self, kind: type) -> list[Event]:
        return [ev for ev in self.events if isinstance(ev, kind)]

    def held(self) -> set[tuple[int, int]]:
        """(channel, pitch) of the notes sounding now: switched on and not yet off by an
        explicit note-off (a panic does not count: the scheduler must send the note-offs)."""
        sounding: set[tuple[int, int]] = set()
        for ev in self.events:
            if isinstance(ev, NoteOn):
                sounding.add((ev.channel, ev.pitch))
            elif isinstance(ev, NoteOff):
                sounding.discard((ev.channel, ev.pitch))
        return sounding

    def clear(self) -> None:
        self.sent.clear()
        self.panics.clear()

    def simulate_reconnect(self) -> None:
        """Act as a real output that just got its peer back: call ``on_reconnect``."""
        self.stats.reconnects += 1
        if self.on_reconnect is not None:
            self.on_reconnect(self)
