"""The command door: coalescing, rate limits and bounds (a flood cannot make the music late)."""

from __future__ import annotations

from sonify.commands import MAX_WAITING, CommandQueue


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_latest_scene_request_wins_and_a_flood_is_one_command() -> None:
    q = CommandQueue(clock=Clock())
    for i in range(2000):
        q.put("scene", f"scene{i % 7}")
    assert q.waiting() == 1
    assert q.take() == [("scene", f"scene{1999 % 7}")]
    stats = q.stats().kinds["scene"]
    assert (stats.received, stats.coalesced, stats.applied, stats.dropped) == (2000, 1999, 1, 0)


def test_coalescing_keeps_the_order_of_the_latest_requests() -> None:
    q = CommandQueue(clock=Clock())
    q.put("tempo", 100.0)
    q.put("param", ("activity", 0.2))
    q.put("param", ("density", 0.9))
    q.put("tempo", 120.0)  # replaces the first and moves behind the params
    q.put("param", ("activity", 0.7))
    assert q.take() == [("param", ("density", 0.9)), ("tempo", 120.0),
                        ("param", ("activity", 0.7))]


def test_mutes_of_different_voices_are_kept_apart() -> None:
    q = CommandQueue(clock=Clock())
    q.put("mute", ("bass", True))
    q.put("mute", ("lead", True))
    q.put("mute", ("bass", False))
    assert q.take() == [("mute", ("lead", True)), ("mute", ("bass", False))]


def test_a_state_command_over_its_rate_waits_and_the_latest_still_applies() -> None:
    clock = Clock()
    q = CommandQueue({"scene": (2.0, 1.0)}, clock=clock)
    q.put("scene", "a")
    assert q.take() == [("scene", "a")]
    q.put("scene", "b")
    q.put("tempo", 90.0)
    assert q.take() == [("tempo", 90.0)]  # the scene waits for its token
    q.put("scene", "c")  # replaces the waiting one
    clock.t = 0.6
    assert q.take() == [("scene", "c")]
    assert q.stats().kinds["scene"].dropped == 0


def test_an_event_command_over_its_rate_is_dropped_and_counted() -> None:
    clock = Clock()
    q = CommandQueue({"trigger": (10.0, 5.0)}, clock=clock)
    accepted = [q.put("trigger", (60, 100)) for _ in range(20)]
    assert accepted.count(True) == 5
    clock.t = 1.0
    assert q.put("trigger", (62, 100))
    assert len(q.take(100)) == 6
    assert q.stats().kinds["trigger"].dropped == 15


def test_take_hands_out_a_bounded_batch_in_order() -> None:
    q = CommandQueue({}, clock=Clock())
    for i in range(150):
        q.put("trigger", (i, 100))
    first = q.take(64)
    assert [arg for _, arg in first] == [(i, 100) for i in range(64)]
    assert q.waiting() == 86


def test_the_queue_is_bounded_but_panic_always_gets_in() -> None:
    q = CommandQueue({}, clock=Clock())
    for i in range(MAX_WAITING + 100):
        q.put("trigger", (i % 128, 100))
    assert q.waiting() == MAX_WAITING
    assert q.stats().kinds["trigger"].dropped == 100
    assert q.put("panic")
    batch = q.take(10_000)
    assert batch[-1] == ("panic", None)


def test_repeated_panics_are_one_panic_after_the_last_request() -> None:
    q = CommandQueue(clock=Clock())
    q.put("panic")
    q.put("trigger", (60, 100))
    q.put("panic")
    assert q.take() == [("trigger", (60, 100)), ("panic", None)]
