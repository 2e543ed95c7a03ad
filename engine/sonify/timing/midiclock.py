"""MIDI clock out: the engine's beat grid as MIDI timing clock (24 per quarter note) plus
start, stop, continue and song position, so drum machines and DAWs follow sonify.

Pure: :class:`MidiClockOut` turns a :class:`~sonify.timing.clock.TempoClock` and a window
``[t0, t1)`` on the engine clock into :class:`~sonify.events.MidiSystem` events; the scheduler
sends them like any other event and only ``MidiOutput`` turns them into bytes.

The grid: clock ``k`` sits at beat ``k / 24`` of the tempo clock, at ``tempo.time_at(k / 24)``
(an absolute index, never a running sum of intervals, so nothing drifts). The generator keeps
the index of the next clock to send, so consecutive windows neither repeat nor skip one, and a
tempo change made at a window's start (``TempoClock.set_tempo``) moves exactly the clocks not
sent yet.

A phase jump of the tempo clock (following an external timeline with ``TempoClock.align``)
bends the stream rather than breaking the count: a jump back leaves a gap until the grid
catches up, a jump forward sends the clocks it skipped at the window's start (at most
``MAX_CATCH_UP`` of them; beyond that the clock count restarts with a song position and
continue, as after ``relocate``).

Transport, as the MIDI 1.0 spec has it: after START the next clock is beat 0; after SONG
POSITION ``p`` and CONTINUE the next clock is sixteenth ``p`` (6 clocks each). ``start`` (and
``relocate``) therefore begin on the first sixteenth at or after the given time: SONG POSITION
then START (position 0) or CONTINUE (anywhere else), both at the time of that first clock and
ahead of it in sending order.
"""

from __future__ import annotations

import math

from sonify.events import CLOCK, CONTINUE, SONG_POSITION, START, STOP, MidiSystem
from sonify.timing.clock import TempoClock

PPQN = 24  # MIDI clocks per quarter note (one beat)
CLOCKS_PER_SIXTEENTH = PPQN // 4
SONG_POSITION_LIMIT = 0x4000  # 14 bits of sixteenths: 4096 beats, then the position wraps
MAX_CATCH_UP = PPQN  # late clocks sent at once after a jump forward; more restart the count
_EPS_CLOCKS = 1e-6  # float slack when rounding a beat position to a clock index


def clock_index_at(tempo: TempoClock, t: float) -> int:
    """Index of the first clock at or after ``t``."""
    return math.ceil(tempo.beat_at(t) * PPQN - _EPS_CLOCKS)


def clock_time(tempo: TempoClock, k: int) -> float:
    """Engine time of clock ``k`` (beat ``k / 24``)."""
    return tempo.time_at(k / PPQN)


class MidiClockOut:
    """The MIDI clock stream of one run: ``start`` once, ``ticks`` for every window (windows
    tile time: each starts where the previous ended), ``stop`` at the end."""

    def __init__(self) -> None:
        self._next: int | None = None  # index of the next clock to send; None while stopped
        self.clocks_sent = 0

    @property
    def running(self) -> bool:
        return self._next is not None

    def start(self, tempo: TempoClock, t: float) -> list[MidiSystem]:
        """Start the transport at the first sixteenth at or after ``t``: SONG POSITION 0 and
        START when that is beat 0 (the usual case: the driver starts its clock at beat 0),
        else SONG POSITION p and CONTINUE. A negative beat waits for beat 0."""
        k = max(0, clock_index_at(tempo, t))
        k = -(-k // CLOCKS_PER_SIXTEENTH) * CLOCKS_PER_SIXTEENTH  # round up to a sixteenth
        at = clock_time(tempo, k)
        self._next = k
        sixteenth = (k // CLOCKS_PER_SIXTEENTH) % SONG_POSITION_LIMIT
        return [MidiSystem(at, SONG_POSITION, sixteenth),
                MidiSystem(at, START if k == 0 else CONTINUE)]

    def stop(self, t: float) -> list[MidiSystem]:
        """STOP at ``t`` (nothing when not running); no more clocks until the next start."""
        if self._next is None:
            return []
        self._next = None
        return [MidiSystem(t, STOP)]

    def relocate(self, tempo: TempoClock, t: float) -> list[MidiSystem]:
        """After a large phase jump: STOP at ``t``, then start again from the tempo clock's new
        position (song position and continue on the next sixteenth)."""
        return [*self.stop(t), *self.start(tempo, t)]

    def ticks(self, tempo: TempoClock, t0: float, t1: float) -> list[MidiSystem]:
        """The clocks in ``[t0, t1)``, each at ``tempo.time_at(k / 24)`` (clocks left over
        from a jump forward at ``t0``)."""
        if self._next is None or t1 <= t0:
            return []
        k = self._next
        out: list[MidiSystem] = []
        if clock_time(tempo, k) < t0 and clock_index_at(tempo, t0) - k > MAX_CATCH_UP:
            out += self.relocate(tempo, t0)  # too far behind to catch up: restart the count
            assert self._next is not None
            k = self._next
        while (at := clock_time(tempo, k)) < t1:
            out.append(MidiSystem(max(at, t0), CLOCK))
            k += 1
        self.clocks_sent += k - self._next
        self._next = k
        return out
