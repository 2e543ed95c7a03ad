"""The port layer's own rules, without a MIDI system: the JACK ring guard and a watched system
that goes away and comes back (the ALSA sequencer's device, faked)."""

from __future__ import annotations

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
