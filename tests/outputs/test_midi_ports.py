"""The port layer's own rules, without a MIDI system: the JACK ring guard and a watched system
that goes away and comes back (the ALSA sequencer's device, faked)."""

from __future__ import annotations

import time

import pytest

from sonify.midi import ports
from sonify.midi import watch as midi_watch
from sonify.midi.ports import (
    RING_CHECK_BYTES,
    RING_LIMIT_BYTES,
    RING_OVERHEAD_BYTES,
    AlsaSequencerWatch,
    RingGuard,
)

MESSAGE = 3 + RING_OVERHEAD_BYTES  # what a three-byte message takes in rtmidi's ring


def test_the_ring_guard_stops_before_rtmidis_ring_is_full_while_jack_does_not_move() -> None:
    guard = RingGuard()
    frame = 1000
    accepted = 0
    for _ in range(5000):  # far more than the 16 KB ring holds
        if not guard.admit(3, lambda: frame):
            break
        accepted += 1
    assert accepted * MESSAGE <= RING_CHECK_BYTES + RING_LIMIT_BYTES + MESSAGE
    assert accepted * MESSAGE > RING_LIMIT_BYTES  # and not much earlier
    assert not guard.admit(3, lambda: frame)  # still stuck: still no
    frame += 1024  # a process cycle ran: rtmidi emptied its ring
    assert guard.admit(3, lambda: frame)
    assert guard.unconfirmed == MESSAGE


def test_the_ring_guard_never_refuses_while_jack_keeps_cycling() -> None:
    guard = RingGuard()
    frames = iter(range(0, 10**9, 1024))
    assert all(guard.admit(3, lambda: next(frames)) for _ in range(20000))


def test_without_a_frame_to_go_by_the_ring_guard_lets_everything_through() -> None:
    guard = RingGuard()
    assert all(guard.admit(3, lambda: None) for _ in range(10000))


class FakePort:
    """What the watch looks at in a port: its client and that client's generation."""

    def __init__(self, generation: int) -> None:
        self.midi: object | None = object()
        self.generation = generation


def test_a_sequencer_that_goes_away_is_back_only_once_every_old_client_is_deleted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"yes": True}
    monkeypatch.setattr(ports.os.path, "exists",
                        lambda path: present["yes"] if path == ports.ALSA_SEQ_DEVICE else False)
    watch = AlsaSequencerWatch()
    port = FakePort(watch.generation)
    watch.attach(port)  # type: ignore[arg-type]
    watch.check()
    assert not watch.gone and watch.problem() is None

    present["yes"] = False
    watch.check()
    assert watch.gone and watch.generation == 1
    assert watch.problem() == "the ALSA sequencer is gone; waiting for it to return"

    present["yes"] = True
    watch.check(force=True)
    assert watch.gone, "back while a client of the old sequencer is still open"
    port.midi = None  # the port's poll deleted it
    watch.check(force=True)
    assert not watch.gone and watch.problem() is None
    port.midi, port.generation = object(), watch.generation  # a new client
    watch.check(force=True)
    assert not watch.gone
    watch.detach(port)  # type: ignore[arg-type]


def test_open_client_refuses_a_system_that_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    watch = AlsaSequencerWatch()
    watch.gone = True
    stale = FakePort(watch.generation - 1)
    watch.attach(stale)  # type: ignore[arg-type]
    monkeypatch.setitem(midi_watch._watches, "alsa", watch)
    monkeypatch.setattr(ports, "_candidates", lambda api: ["alsa"])
    with pytest.raises(ports.MidiPortError, match="ALSA sequencer is gone"):
        ports.open_client(ports.rtmidi.MidiOut, "alsa", "sonify-test")


class _Cycles:
    """A watch whose process-cycle frame moves at the times given (monotonic seconds)."""

    def __init__(self, moves_at: list[float], period: int = 1024) -> None:
        self.moves_at = moves_at
        self.period = period
        self.reads = 0

    def frame(self) -> int | None:
        self.reads += 1
        now = time.monotonic()
        return self.period * sum(1 for t in self.moves_at if t <= now)


class _Drained:
    """The two attributes of MidiPort that wait_cycles reads."""

    def __init__(self, watch: object | None) -> None:
        self.watch = watch
        self.live = True


def test_wait_cycles_returns_after_two_cycles_of_the_server() -> None:
    from sonify.midi.ports import MidiPort

    start = time.monotonic()
    watch = _Cycles([start + 0.05, start + 0.10, start + 0.15])
    assert MidiPort.wait_cycles(_Drained(watch), 2, 2.0) is True  # type: ignore[arg-type]
    took = time.monotonic() - start
    assert 0.09 <= took < 1.0  # two moves after the call: the second at 0.10 s


def test_wait_cycles_gives_up_on_a_server_that_runs_none() -> None:
    from sonify.midi.ports import MidiPort

    start = time.monotonic()
    assert MidiPort.wait_cycles(_Drained(_Cycles([])), 2, 0.2) is False  # type: ignore[arg-type]
    assert 0.2 <= time.monotonic() - start < 1.5


def test_wait_cycles_does_not_wait_where_there_are_no_cycles() -> None:
    from sonify.midi.ports import MidiPort

    class NoFrames:
        def frame(self) -> None:
            return None

    start = time.monotonic()
    assert MidiPort.wait_cycles(_Drained(None)) is True  # type: ignore[arg-type]
    assert MidiPort.wait_cycles(_Drained(NoFrames())) is True  # type: ignore[arg-type]
    assert time.monotonic() - start < 0.1
