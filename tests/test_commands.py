"""The commands: their types, one validator, the parsers, and the door (coalescing, rate limits
and bounds: a flood cannot make the music late)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from sonify.commands import (
    KINDS,
    MASTER_RANGE,
    MAX_WAITING,
    PITCH_RANGE,
    REJECT_REASONS,
    TEMPO_RANGE_BPM,
    TRANSPOSE_RANGE,
    VELOCITY_RANGE,
    Command,
    CommandContext,
    CommandError,
    CommandQueue,
    Extra,
    Freeze,
    Learn,
    Mute,
    Panic,
    Reload,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Status,
    Stop,
    Transpose,
    Trigger,
    check,
    from_json,
    from_osc,
    to_json,
)
from sonify.scene.schema import load_scene


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_latest_scene_request_wins_and_a_flood_is_one_command() -> None:
    q = CommandQueue(clock=Clock())
    for i in range(2000):
        q.put(SetScene(f"scene{i % 7}"))
    assert q.waiting() == 1
    assert q.take() == [SetScene(f"scene{1999 % 7}")]
    stats = q.stats().kinds["scene"]
    assert (stats.received, stats.coalesced, stats.applied, stats.dropped) == (2000, 1999, 1, 0)


def test_coalescing_keeps_the_order_of_the_latest_requests() -> None:
    q = CommandQueue(clock=Clock())
    q.put(SetTempo(100.0))
    q.put(SetParam("activity", 0.2))
    q.put(SetParam("density", 0.9))
    q.put(SetTempo(120.0))  # replaces the first and moves behind the params
    q.put(SetParam("activity", 0.7))
    assert q.take() == [SetParam("density", 0.9), SetTempo(120.0), SetParam("activity", 0.7)]


def test_mutes_of_different_voices_are_kept_apart() -> None:
    q = CommandQueue(clock=Clock())
    q.put(Mute("bass", True))
    q.put(Mute("lead", True))
    q.put(Mute("bass", False))
    assert q.take() == [Mute("lead", True), Mute("bass", False)]


def test_a_state_command_over_its_rate_waits_and_the_latest_still_applies() -> None:
    clock = Clock()
    q = CommandQueue({"scene": (2.0, 1.0)}, clock=clock)
    q.put(SetScene("a"))
    assert q.take() == [SetScene("a")]
    q.put(SetScene("b"))
    q.put(SetTempo(90.0))
    assert q.take() == [SetTempo(90.0)]  # the scene waits for its token
    q.put(SetScene("c"))  # replaces the waiting one
    clock.t = 0.6
    assert q.take() == [SetScene("c")]
    assert q.stats().kinds["scene"].dropped == 0


def test_an_event_command_over_its_rate_is_dropped_and_counted() -> None:
    clock = Clock()
    q = CommandQueue({"trigger": (10.0, 5.0)}, clock=clock)
    accepted = [q.put(Trigger(60, 100)) for _ in range(20)]
    assert accepted.count(True) == 5
    clock.t = 1.0
    assert q.put(Trigger(62, 100))
    assert len(q.take(100)) == 6
    assert q.stats().kinds["trigger"].dropped == 15


def test_take_hands_out_a_bounded_batch_in_order() -> None:
    q = CommandQueue({}, clock=Clock())
    for i in range(150):
        q.put(Trigger(i, 100))
    first = q.take(64)
    assert first == [Trigger(i, 100) for i in range(64)]
    assert q.waiting() == 86


def test_the_queue_is_bounded_but_panic_always_gets_in() -> None:
    q = CommandQueue({}, clock=Clock())
    for i in range(MAX_WAITING + 100):
        q.put(Trigger(i % 128, 100))
    assert q.waiting() == MAX_WAITING
    assert q.stats().kinds["trigger"].dropped == 100
    assert q.put(Panic())
    batch = q.take(10_000)
    assert batch[-1] == Panic()


def test_repeated_panics_are_one_panic_after_the_last_request() -> None:
    q = CommandQueue(clock=Clock())
    q.put(Panic())
    q.put(Trigger(60, 100))
    q.put(Panic())
    assert q.take() == [Trigger(60, 100), Panic()]


def test_an_extra_command_is_counted_under_its_own_name_and_never_coalesced() -> None:
    q = CommandQueue(clock=Clock())
    q.put(Extra("auto", True))
    q.put(Extra("auto", False))
    q.put(Stop())
    q.put(Stop())
    assert q.take() == [Extra("auto", True), Extra("auto", False), Stop()]
    kinds = q.stats().kinds
    assert (kinds["auto"].applied, kinds["stop"].coalesced) == (2, 1)


def test_stop_gets_into_a_full_queue() -> None:
    q = CommandQueue({}, max_waiting=3, clock=Clock())
    for i in range(3):
        q.put(Trigger(i, 100))
    assert not q.put(SetTempo(100.0))  # a state command without its slot yet
    assert q.put(Stop()) and q.take()[-1] == Stop()


# -- the types ------------------------------------------------------------------------------------

def test_every_command_has_its_kind_and_is_frozen() -> None:
    replies: list[object] = []
    commands = [SetScene("city"), SetParam("activity", 0.3), SetTempo(120.0), Mute("bass", True),
                Freeze(True), Panic(), Learn("activity"), SetMaster(0.5), Transpose(7),
                Trigger(60, 100), Status(replies.append), Reload(load_scene("calm"),
                                                                 Path("calm.toml")), Stop()]
    assert [c.kind for c in commands] == ["scene", "param", "tempo", "mute", "freeze", "panic",
                                          "learn", "master", "transpose", "trigger", "status",
                                          "reload", "stop"]
    assert {KINDS[c.kind] for c in commands} == {type(c) for c in commands}
    assert Extra("stall", 2.6).kind == "stall"
    with pytest.raises(dataclasses.FrozenInstanceError):
        SetTempo(120.0).bpm = 90.0  # type: ignore[misc]


def test_the_core_can_match_on_the_fields() -> None:
    match SetParam("activity", 0.3):
        case SetParam(name, value):
            assert (name, value) == ("activity", 0.3)
        case _:
            pytest.fail("no match")


# -- the validator ------------------------------------------------------------------------------

CONTEXT = CommandContext.of(scenes=["calm", "city"], voices=frozenset({"lead", "bass"}),
                            params={"activity": (0.0, 1.0), "swing": (-0.5, 0.5)})


@pytest.mark.parametrize("cmd", [
    SetScene("city"), SetParam("activity", 0.0), SetParam("swing", 0.5), SetParam("swing", -1 / 2),
    SetTempo(TEMPO_RANGE_BPM[0]), SetTempo(TEMPO_RANGE_BPM[1]), SetTempo(120), Mute("bass", True),
    Freeze(False), Panic(), Stop(), Learn("activity"), Learn("tempo"), Learn("panic"),
    SetMaster(MASTER_RANGE[0]), SetMaster(MASTER_RANGE[1]), Transpose(TRANSPOSE_RANGE[0]),
    Transpose(TRANSPOSE_RANGE[1]), Transpose(0), Trigger(PITCH_RANGE[0], VELOCITY_RANGE[0]),
    Trigger(PITCH_RANGE[1], VELOCITY_RANGE[1]), Status(print), Extra("stall", 2.6),
    SetParam("activity", np.float64(0.5)), Transpose(np.int64(3)),  # type: ignore[arg-type]
])
def test_valid_commands_pass_the_check_unchanged(cmd: Command) -> None:
    assert check(cmd, CONTEXT) is cmd


def test_the_ranges_are_the_documented_ones() -> None:
    assert TEMPO_RANGE_BPM == (20.0, 300.0)
    assert (MASTER_RANGE, TRANSPOSE_RANGE, PITCH_RANGE, VELOCITY_RANGE) == (
        (0.0, 1.0), (-48, 48), (0, 127), (1, 127))


@pytest.mark.parametrize(("cmd", "reason", "words"), [
    (SetScene("nowhere"), "unknown_scene", "unknown scene 'nowhere'; known: calm, city"),
    (SetScene(3), "wrong_type", "scene name"),  # type: ignore[arg-type]
    (SetScene(""), "wrong_type", "scene name"),
    (SetParam("volume", 0.5), "unknown_param", "known: activity, swing"),
    (SetParam("activity", 1.5), "out_of_range", "param activity must be 0..1, got 1.5"),
    (SetParam("swing", -0.6), "out_of_range", "-0.5..0.5"),
    (SetParam("activity", math.nan), "out_of_range", "finite"),
    (SetParam("volume", math.nan), "out_of_range", "finite"),  # the value is looked at first
    (SetParam("activity", "x"), "wrong_type", "number"),  # type: ignore[arg-type]
    (SetParam("activity", True), "wrong_type", "number"),
    (SetTempo(19.9), "out_of_range", "tempo must be 20..300 bpm, got 19.9"),
    (SetTempo(300.5), "out_of_range", "20..300"),
    (SetTempo(math.inf), "out_of_range", "finite"),
    (SetTempo("fast"), "wrong_type", "number"),  # type: ignore[arg-type]
    (Mute("drums", True), "unknown_voice", "unknown voice 'drums'; known: bass, lead"),
    (Mute("bass", 1), "wrong_type", "true or false"),  # type: ignore[arg-type]
    (Mute(None, True), "wrong_type", "voice"),  # type: ignore[arg-type]
    (Freeze("on"), "wrong_type", "true or false"),  # type: ignore[arg-type]
    (Learn("cutoff"), "unknown_param",
     "tempo, master, freeze, panic, teach_record, teach_run, teach_snapshot, teach_train, "
     "activity, swing"),
    (Learn(""), "wrong_type", "learn target"),
    (SetMaster(1.01), "out_of_range", "0..1"),
    (SetMaster(-0.1), "out_of_range", "0..1"),
    (SetMaster(None), "wrong_type", "number"),  # type: ignore[arg-type]
    (Transpose(49), "out_of_range", "-48..48 semitones"),
    (Transpose(-49), "out_of_range", "-48..48"),
    (Transpose(1.5), "wrong_type", "whole number"),  # type: ignore[arg-type]
    (Trigger(128, 100), "out_of_range", "trigger pitch must be 0..127"),
    (Trigger(60, 0), "out_of_range", "trigger velocity must be 1..127"),
    (Trigger(60, 128), "out_of_range", "1..127"),
    (Trigger(60.0, 100), "wrong_type", "whole number"),  # type: ignore[arg-type]
    (Status("me"), "wrong_type", "callable"),  # type: ignore[arg-type]
    (Reload("calm", Path("calm.toml")), "wrong_type", "Scene"),  # type: ignore[arg-type]
    (Extra("scene", "calm"), "unknown_command", "use SetScene"),
    (Extra("", None), "wrong_type", "name"),
    (("scene", "calm"), "unknown_command", "not a command"),
])
def test_each_refusal_has_its_reason_and_says_why(cmd: object, reason: str, words: str) -> None:
    with pytest.raises(CommandError) as err:
        check(cmd, CONTEXT)
    assert err.value.reason == reason and reason in REJECT_REASONS
    assert words in str(err.value)


def test_names_are_checked_only_against_what_the_context_knows() -> None:
    assert check(SetScene("anything")) == SetScene("anything")
    assert check(SetParam("anything", 1e6), CommandContext.of(scenes=[])) is not None
    with pytest.raises(CommandError, match="tempo"):
        check(SetTempo(1000.0))  # ranges need no context


def test_a_lookup_is_asked_only_by_the_command_that_needs_it() -> None:
    asked: list[str] = []

    def voices() -> list[str]:
        asked.append("voices")
        return ["bass"]

    ctx = CommandContext(voices=voices, scenes=lambda: pytest.fail("scenes asked"))
    check(Panic(), ctx)
    check(SetTempo(90.0), ctx)
    assert asked == []
    check(Mute("bass", False), ctx)
    assert asked == ["voices"]


# -- parsers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "args", "expected"), [
    ("/sonify/scene", ["city"], SetScene("city")),
    ("/sonify/param/activity", [0.25], SetParam("activity", 0.25)),
    ("/sonify/param/activity", [1], SetParam("activity", 1.0)),
    ("/sonify/tempo", [90], SetTempo(90.0)),
    ("/sonify/mute/bass", [1], Mute("bass", True)),
    ("/sonify/mute/bass", [0.0], Mute("bass", False)),
    ("/sonify/freeze", [True], Freeze(True)),
    ("/sonify/learn", ["activity"], Learn("activity")),
    ("/sonify/panic", [], Panic()),
    ("/sonify/panic", [1], Panic()),
    ("/sonify/panic", [0], None),  # a button's release
])
def test_osc_messages_parse_into_commands(address: str, args: list[object],
                                          expected: Command | None) -> None:
    cmd = from_osc(address, args)
    assert cmd == expected and type(cmd) is type(expected)
    if isinstance(cmd, SetTempo | SetParam):
        assert isinstance(getattr(cmd, "bpm", getattr(cmd, "value", None)), float)


@pytest.mark.parametrize(("address", "args", "reason"), [
    ("/sonify/nope", [1], "unknown_address"),
    ("/sonify/param/", [0.5], "unknown_address"),
    ("/sonify/mute/", [1], "unknown_address"),
    ("/sonify/status", [], "unknown_address"),  # the server's own reply, not a command
    ("/sonify/tempo", [], "wrong_arity"),
    ("/sonify/tempo", [120.0, 130.0], "wrong_arity"),
    ("/sonify/panic", [1, 1], "wrong_arity"),
    ("/sonify/tempo", ["fast"], "wrong_type"),
    ("/sonify/tempo", [True], "wrong_type"),
    ("/sonify/mute/bass", ["yes"], "wrong_type"),
    ("/sonify/freeze", [0.5], "out_of_range"),
    ("/sonify/panic", [7], "out_of_range"),
])
def test_osc_messages_that_do_not_parse_say_why(address: str, args: list[object],
                                                reason: str) -> None:
    with pytest.raises(CommandError) as err:
        from_osc(address, args)
    assert err.value.reason == reason


def test_the_osc_prefix_can_change() -> None:
    assert from_osc("/vj/tempo", [100.0], prefix="/vj") == SetTempo(100.0)
    with pytest.raises(CommandError):
        from_osc("/sonify/tempo", [100.0], prefix="/vj")


@pytest.mark.parametrize(("name", "arg", "expected"), [
    ("scene", "city", SetScene("city")),
    ("mute", {"voice": "bass", "muted": False}, Mute("bass", False)),
    ("mute", {"voice": "bass"}, Mute("bass", True)),
    ("mute", ["lead", 1], Mute("lead", True)),
    ("freeze", 0, Freeze(False)),
    ("panic", "whatever", Panic()),
    ("tempo", 120, SetTempo(120.0)),
    ("param", {"name": "activity", "value": 0.3}, SetParam("activity", 0.3)),
    ("param", ["activity", 0.3], SetParam("activity", 0.3)),
    ("master", 0.5, SetMaster(0.5)),
    ("transpose", -12, Transpose(-12)),
    ("trigger", {"pitch": 60, "velocity": 90}, Trigger(60, 90)),
    ("trigger", [60, 90], Trigger(60, 90)),
    ("learn", "activity", Learn("activity")),
])
def test_json_bodies_parse_into_commands_and_back(name: str, arg: object,
                                                  expected: Command) -> None:
    cmd = from_json(name, arg)
    assert cmd == expected
    assert from_json(*to_json(cmd)) == cmd


@pytest.mark.parametrize(("name", "arg", "reason", "words"), [
    ("reboot", None, "unknown_command", "use one of scene, mute, freeze, panic, tempo"),
    (None, None, "unknown_command", "unknown command None"),
    ("scene", 3, "wrong_type", "scene name"),
    ("mute", "bass", "wrong_type", '{"voice": NAME'),
    ("mute", ["bass", "yes"], "wrong_type", "true or false"),
    ("freeze", "please", "wrong_type", "true or false"),
    ("tempo", True, "wrong_type", "number"),
    ("param", 0.3, "wrong_type", '{"name": NAME'),
    ("trigger", 60, "wrong_type", "[PITCH, VELOCITY]"),
])
def test_json_bodies_that_do_not_parse_say_why(name: object, arg: object, reason: str,
                                               words: str) -> None:
    with pytest.raises(CommandError) as err:
        from_json(name, arg)
    assert err.value.reason == reason and words in str(err.value)


def test_a_json_door_can_accept_fewer_commands() -> None:
    with pytest.raises(CommandError, match="use one of scene, panic$") as err:
        from_json("tempo", 120, kinds=("scene", "panic"))
    assert err.value.reason == "unknown_command"


def test_clamped_constructors_make_valid_commands() -> None:
    assert SetTempo.clamped(1000.0) == SetTempo(300.0) and SetTempo.clamped(5) == SetTempo(20.0)
    assert SetMaster.clamped(1.2) == SetMaster(1.0)
    assert Transpose.clamped(-60) == Transpose(-48) and Transpose.clamped(7) == Transpose(7)
    assert Trigger.clamped(60, 0) == Trigger(60, 1)
    for cmd in (SetTempo.clamped(-1.0), SetMaster.clamped(-3), Transpose.clamped(99),
                Trigger.clamped(200, 300)):
        assert check(cmd) is cmd
