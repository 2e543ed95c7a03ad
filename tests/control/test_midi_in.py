"""MIDI control input: messages fed straight to the handler, then a real controller over JACK."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sonify.commands import (
    TEMPO_RANGE_BPM,
    Command,
    Freeze,
    Learn,
    Panic,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Transpose,
    Trigger,
)
from sonify.config import MidiControlConfig
from sonify.control.midi_in import (
    CcBinding,
    MidiControl,
    MidiControlError,
    load_learned,
)
from tests.conftest import JackServer, unique_name, wait_until

SCENES = ["storm", "calm", "dawn"]  # sorted: calm, dawn, storm
PARAMS = {"cutoff": (0.0, 1.0), "swing": (-0.5, 0.5), "density": (1.0, 8.0)}


class Recorder:
    """The runtime's command queue, as seen from the MIDI thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.calls: list[Command] = []
        self.fail_on: str | None = None  # a kind

    def __call__(self, cmd: Command) -> None:
        if cmd.kind == self.fail_on:
            raise RuntimeError(f"runtime refused {cmd.kind}")
        with self._cond:
            self.calls.append(cmd)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout_s: float = 5.0) -> list[Command]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls) >= n, timeout_s)
            assert ok, f"expected {n} command(s) within {timeout_s} s, got {self.calls}"
            return list(self.calls)

    def take(self) -> list[Command]:
        with self._cond:
            calls, self.calls = self.calls, []
            return calls


def cc(channel: int, control: int, value: int) -> list[int]:
    return [0xB0 | (channel - 1), control, value]


def program(channel: int, number: int) -> list[int]:
    return [0xC0 | (channel - 1), number]


def note_on(channel: int, pitch: int, velocity: int) -> list[int]:
    return [0x90 | (channel - 1), pitch, velocity]


def note_off(channel: int, pitch: int) -> list[int]:
    return [0x80 | (channel - 1), pitch, 64]


def make(rec: Recorder, **kw: Any) -> MidiControl:
    kw.setdefault("params", lambda: PARAMS)
    kw.setdefault("scenes", lambda: SCENES)
    return MidiControl(rec, **kw)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


# -- Control Change ------------------------------------------------------------------------------

def test_a_knob_sweeps_the_parameter_over_its_range(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(0, 74, "density")])
    for value in (0, 127, 64):
        ctl.handle(cc(1, 74, value))
    assert rec.take() == [SetParam("density", 1.0), SetParam("density", 8.0),
                          SetParam("density", pytest.approx(1.0 + 7.0 * 64 / 127))]


def test_lo_hi_override_narrows_inverts_and_is_clamped_to_the_parameter(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(1, 1, "cutoff", lo=0.8, hi=0.2),
                              CcBinding(1, 2, "swing", lo=-2.0, hi=2.0)])
    ctl.handle(cc(1, 1, 0))
    ctl.handle(cc(1, 1, 127))
    ctl.handle(cc(1, 2, 0))
    ctl.handle(cc(1, 2, 127))
    assert rec.take() == [SetParam("cutoff", pytest.approx(0.8)),
                          SetParam("cutoff", pytest.approx(0.2)),
                          SetParam("swing", -0.5), SetParam("swing", 0.5)]


def test_only_a_changed_value_is_sent(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(0, 74, "cutoff")])
    for value in (10, 10, 10, 11, 11, 10):
        ctl.handle(cc(1, 74, value))
    assert rec.take() == [SetParam("cutoff", pytest.approx(10 / 127)),
                          SetParam("cutoff", pytest.approx(11 / 127)),
                          SetParam("cutoff", pytest.approx(10 / 127))]
    assert ctl.stats.ignored["unchanged"] == 3
    ctl.reset()  # e.g. after a scene switch: the next value goes out even if equal
    ctl.handle(cc(1, 74, 10))
    assert len(rec.take()) == 1


def test_special_targets_tempo_master_freeze_and_panic(rec: Recorder) -> None:
    ctl = make(rec, tempo_range_bpm=(60.0, 187.0),
               bindings=[CcBinding(0, 20, "tempo"), CcBinding(0, 21, "master"),
                         CcBinding(0, 22, "freeze"), CcBinding(0, 23, "panic"),
                         CcBinding(0, 24, "tempo", lo=100.0, hi=120.0)])
    for msg in (cc(1, 20, 0), cc(1, 20, 127), cc(1, 21, 127), cc(1, 24, 127),
                cc(1, 22, 127), cc(1, 22, 100), cc(1, 22, 0),
                cc(1, 23, 127), cc(1, 23, 127), cc(1, 23, 0), cc(1, 23, 127)):
        ctl.handle(msg)
    assert rec.take() == [SetTempo(60.0), SetTempo(187.0), SetMaster(1.0), SetTempo(120.0),
                          Freeze(True), Freeze(False), Panic(), Panic()]


def test_a_binding_on_one_channel_ignores_the_others(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(2, 7, "cutoff")])
    ctl.handle(cc(3, 7, 127))
    assert rec.take() == []
    assert ctl.stats.ignored == {"wrong_channel": 1}
    ctl.handle(cc(2, 7, 127))
    assert rec.take() == [SetParam("cutoff", 1.0)]


def test_a_channel_binding_wins_over_an_any_channel_binding(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(0, 7, "cutoff"), CcBinding(5, 7, "swing")])
    ctl.handle(cc(5, 7, 127))
    ctl.handle(cc(9, 7, 127))
    assert rec.take() == [SetParam("swing", 0.5), SetParam("cutoff", 1.0)]


def test_an_unbound_cc_is_counted_and_logged_once(rec: Recorder,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    ctl = make(rec)
    with caplog.at_level(logging.WARNING, logger="sonify.control.midi_in"):
        for value in range(20):
            ctl.handle(cc(1, 30, value))
    assert rec.take() == []
    assert ctl.stats.rejected == {"unmapped_cc": 20}
    lines = [r for r in caplog.records if "CC 30 on channel 1 is not bound" in r.getMessage()]
    assert len(lines) == 1


def test_a_binding_to_a_parameter_the_scene_lacks_is_counted(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(0, 1, "resonance")])
    ctl.handle(cc(1, 1, 3))
    assert rec.take() == []
    assert ctl.stats.rejected == {"unknown_param": 1}


def test_channel_mode_messages_are_ignored_unless_bound(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(0, 123, "panic")])
    ctl.handle(cc(1, 120, 0))
    ctl.handle(cc(1, 123, 127))
    assert rec.take() == [Panic()]
    assert ctl.stats.ignored == {"channel_mode": 1}


# -- MIDI learn ----------------------------------------------------------------------------------

def test_learn_binds_the_next_cc_and_persists_it(rec: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "state" / "learned.json"
    ctl = make(rec, learn_file=path)
    ctl.learn("cutoff")
    assert ctl.learning == "cutoff"
    ctl.handle(cc(3, 21, 40))  # consumed by learn: no jump of the parameter
    assert rec.take() == []
    assert ctl.learning is None
    assert ctl.learned_bindings == [CcBinding(3, 21, "cutoff")]
    ctl.handle(cc(3, 21, 127))
    assert rec.take() == [SetParam("cutoff", 1.0)]
    data = json.loads(path.read_text())
    assert data["bindings"] == [{"channel": 3, "cc": 21, "param": "cutoff"}]
    assert [p.name for p in path.parent.iterdir()] == ["learned.json"]  # no temp file left

    again = make(Recorder(), learn_file=path)  # a restart
    assert again.bindings == [CcBinding(3, 21, "cutoff")]
    assert ctl.stats.learned == 1


def test_learn_replaces_the_older_binding_of_that_cc(rec: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    ctl = make(rec, learn_file=path, bindings=[CcBinding(0, 21, "swing")])
    ctl.learn("cutoff")
    ctl.handle(cc(1, 21, 0))
    ctl.learn("density")
    ctl.handle(cc(1, 21, 0))
    ctl.handle(cc(1, 21, 127))
    ctl.handle(cc(2, 21, 127))  # another channel still reaches the configured binding
    assert rec.take() == [SetParam("density", 8.0), SetParam("swing", 0.5)]
    assert load_learned(path) == [CcBinding(1, 21, "density")]
    assert ctl.forget("density") == 1
    assert load_learned(path) == []
    ctl.handle(cc(1, 21, 0))
    assert rec.take() == [SetParam("swing", -0.5)]


def test_learn_accepts_special_targets_and_refuses_unknown_ones(rec: Recorder) -> None:
    ctl = make(rec)
    with pytest.raises(ValueError, match="no parameter 'nope'.*cutoff.*tempo"):
        ctl.learn("nope")
    ctl.learn("tempo")
    ctl.handle(cc(1, 5, 1))
    ctl.handle(cc(1, 5, 127))
    assert rec.take() == [SetTempo(200.0)]


def test_learn_times_out(rec: Recorder) -> None:
    ctl = make(rec)
    ctl.learn("cutoff", timeout_s=0.05)
    time.sleep(0.1)
    ctl.handle(cc(1, 21, 5))
    assert ctl.learned_bindings == []
    assert ctl.stats.rejected == {"unmapped_cc": 1}
    assert ctl.learning is None


def test_learn_does_not_take_a_panic_button_or_other_messages(rec: Recorder) -> None:
    ctl = make(rec)
    ctl.learn("cutoff")
    ctl.handle(cc(1, 123, 0))  # All Notes Off from a keyboard
    ctl.handle(note_on(1, 60, 100))
    ctl.handle(program(1, 0))
    assert ctl.learning == "cutoff"
    ctl.handle(cc(1, 1, 0))
    assert ctl.learned_bindings == [CcBinding(1, 1, "cutoff")]
    ctl.cancel_learn()


def test_an_unreadable_learn_file_is_skipped_then_replaced(
        rec: Recorder, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "learned.json"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        ctl = make(rec, learn_file=path)
    assert ctl.bindings == []
    assert "cannot be read" in caplog.text
    ctl.learn("swing")
    ctl.handle(cc(16, 0, 0))
    assert load_learned(path) == [CcBinding(16, 0, "swing")]


def test_bad_entries_in_a_learn_file_are_skipped(rec: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    path.write_text(json.dumps({"format": "sonify-midi-learn", "version": 1, "bindings": [
        {"channel": 1, "cc": 7, "param": "cutoff"}, {"channel": 1, "cc": 300, "param": "x"},
        {"channel": True, "cc": 7, "param": "x"}, "junk", {"cc": 1}]}))
    assert make(rec, learn_file=path).bindings == [CcBinding(1, 7, "cutoff")]


def test_a_failed_write_keeps_the_old_learn_file(rec: Recorder, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "learned.json"
    ctl = make(rec, learn_file=path)
    ctl.learn("cutoff")
    ctl.handle(cc(1, 1, 0))
    before = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    ctl.learn("swing")
    ctl.handle(cc(1, 2, 0))  # logged, never raised
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["learned.json"]


# -- Program Change and notes -------------------------------------------------------------------

def test_program_change_picks_a_scene_in_sorted_order(rec: Recorder) -> None:
    ctl = make(rec)
    for n in (0, 2, 1, 3, 127):
        ctl.handle(program(1, n))
    assert rec.take() == [SetScene("calm"), SetScene("storm"), SetScene("dawn")]
    assert ctl.stats.rejected == {"unmapped_program": 2}


def test_program_change_follows_the_configured_list(rec: Recorder) -> None:
    ctl = make(rec, program_scenes=["storm", "missing", "calm"])
    for n in (0, 1, 2, 3):
        ctl.handle(program(1, n))
    assert rec.take() == [SetScene("storm"), SetScene("calm")]
    assert ctl.stats.rejected == {"unknown_scene": 1, "unmapped_program": 1}


def test_keys_transpose_around_the_root(rec: Recorder) -> None:
    ctl = make(rec, notes="transpose", transpose_root=48)
    for msg in (note_on(1, 48, 90), note_on(1, 55, 1), note_off(1, 55), note_on(1, 55, 0),
                note_on(1, 36, 127)):
        ctl.handle(msg)
    assert rec.take() == [Transpose(0), Transpose(7), Transpose(-12)]
    assert ctl.stats.ignored == {"note_off": 2}


def test_keys_far_from_the_root_transpose_at_most_the_engine_range(rec: Recorder) -> None:
    ctl = make(rec, notes="transpose", transpose_root=60)
    for pitch in (0, 127, 100):
        ctl.handle(note_on(1, pitch, 90))
    assert rec.take() == [Transpose(-48), Transpose(48), Transpose(40)]
    assert ctl.stats.rejected == {}


def test_a_tempo_knob_beyond_the_engine_range_is_clamped_to_it(rec: Recorder) -> None:
    ctl = make(rec, bindings=[CcBinding(0, 20, "tempo", lo=0.0, hi=1000.0)])
    ctl.handle(cc(1, 20, 0))
    ctl.handle(cc(1, 20, 127))
    assert rec.take() == [SetTempo(TEMPO_RANGE_BPM[0]), SetTempo(TEMPO_RANGE_BPM[1])]


def test_a_tempo_range_outside_the_engine_range_is_refused() -> None:
    with pytest.raises(ValueError, match="within 20..300 bpm"):
        MidiControlConfig(tempo_range_bpm=(10.0, 200.0))


def test_keys_trigger_with_their_velocity(rec: Recorder) -> None:
    ctl = make(rec, notes="trigger")
    ctl.handle(note_on(10, 36, 127))
    ctl.handle(note_off(10, 36))
    assert rec.take() == [Trigger(36, 127)]


def test_keys_do_nothing_by_default(rec: Recorder) -> None:
    ctl = make(rec)
    ctl.handle(note_on(1, 60, 100))
    assert rec.take() == []
    assert ctl.stats.ignored == {"notes_off": 1}


def test_the_channel_setting_filters_programs_and_notes(rec: Recorder) -> None:
    ctl = make(rec, channel=10, notes="trigger", bindings=[CcBinding(0, 1, "cutoff")])
    for msg in (program(1, 0), note_on(1, 60, 1), program(10, 0), note_on(10, 60, 1),
                cc(3, 1, 127)):
        ctl.handle(msg)
    assert rec.take() == [SetScene("calm"), Trigger(60, 1), SetParam("cutoff", 1.0)]
    assert ctl.stats.ignored == {"wrong_channel": 2}


# -- malformed and other traffic -----------------------------------------------------------------

@pytest.mark.parametrize("message", [
    [], [0x40], [0x40, 0x01, 0x02], [0xB0, 74], [0xB0, 74, 1, 2], [0xB0, 0x80, 1],
    [0xC0], [0xC0, 1, 2], [0x90, 60, 200], [256, 0, 0], [-1, 0, 0], ["a", 1, 2],
    [0xB0, 74, 1.5], [True, 1, 1], [0xF2, 0x90, 0],
], ids=repr)
def test_malformed_messages_are_counted_and_never_raise(rec: Recorder,
                                                       message: list[Any]) -> None:
    ctl = make(rec, notes="trigger", bindings=[CcBinding(0, 74, "cutoff")])
    ctl.handle(message)
    assert rec.take() == []
    assert ctl.stats.rejected == {"malformed": 1}


def test_sysex_clock_and_other_messages_are_ignored(rec: Recorder) -> None:
    ctl = make(rec, notes="trigger")
    for msg in ([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], [0xF8], [0xFE], [0xF3, 1],
                [0xE0, 0, 64], [0xD0, 10], [0xA0, 60, 10]):
        ctl.handle(msg)
    assert rec.take() == []
    assert ctl.stats.ignored == {"sysex": 1, "system": 3, "other_channel_message": 3}
    assert ctl.stats.rejected == {}


def test_a_failing_command_is_counted_and_the_next_message_works(rec: Recorder) -> None:
    ctl = make(rec, notes="trigger")
    rec.fail_on = "scene"
    ctl.handle(program(1, 0))
    ctl.handle(note_on(1, 60, 100))
    ctl.handle(None)  # type: ignore[arg-type]
    assert rec.take() == [Trigger(60, 100)]
    assert ctl.stats.rejected == {"handler_error": 2}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(-2, 300), max_size=5), max_size=20))
def test_any_bytes_are_counted_once_each_and_never_raise(messages: list[list[int]]) -> None:
    rec = Recorder()
    ctl = make(rec, notes="transpose", bindings=[CcBinding(0, n, "cutoff") for n in range(64)])
    for message in messages:
        ctl.handle(message)
    s = ctl.stats
    assert s.received == len(messages)
    assert s.received == s.applied + s.rejected_total + sum(s.ignored.values())
    assert len(rec.take()) == s.applied


# -- settings --------------------------------------------------------------------------------------

SUGGESTED_TOML = """
[control.midi]
enabled = true
api = "auto"
port = ""
virtual = "sonify-control"
wait_for_port = false
channel = 0
notes = "transpose"
transpose_root = 60
program_scenes = ["calm", "storm"]
tempo_range_bpm = [40.0, 200.0]
learn_file = "learned.json"
learn_timeout_s = 30.0

[[control.midi.cc]]
cc = 1
param = "cutoff"

[[control.midi.cc]]
channel = 10
cc = 7
param = "tempo"
lo = 80.0
hi = 160.0
"""


def test_the_config_section_builds_a_control(rec: Recorder) -> None:
    section = tomllib.loads(SUGGESTED_TOML)["control"]["midi"]
    config = MidiControlConfig.model_validate(section)
    ctl = MidiControl.from_config(config, rec, params=lambda: PARAMS, scenes=lambda: SCENES)
    assert ctl.virtual == "sonify-control" and ctl.pattern is None
    assert ctl.bindings == [CcBinding(0, 1, "cutoff"), CcBinding(10, 7, "tempo", 80.0, 160.0)]
    ctl.handle(cc(10, 7, 127))
    ctl.handle(program(1, 1))
    ctl.handle(note_on(1, 62, 9))
    assert rec.take() == [SetTempo(160.0), SetScene("storm"), Transpose(2)]
    assert MidiControlConfig().enabled is False


def test_config_errors_name_every_bad_key() -> None:
    with pytest.raises(ValidationError) as info:
        MidiControlConfig.model_validate({
            "notes": "play", "channel": 17, "tempo_range_bpm": [10, 500], "colour": 1,
            "cc": [{"cc": 128, "param": "x"}, {"cc": 1, "param": "x", "lo": 0.0}]})
    locs = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert {"notes", "channel", "tempo_range_bpm", "colour", "cc.0.cc", "cc.1"} <= locs


def test_contradictory_arguments_are_refused(rec: Recorder) -> None:
    with pytest.raises(ValueError, match="not both"):
        make(rec, port="a", virtual="b")
    with pytest.raises(ValueError, match="two bindings"):
        make(rec, bindings=[CcBinding(1, 7, "cutoff"), CcBinding(1, 7, "swing")])
    with pytest.raises(ValueError, match="cc 128"):
        CcBinding(0, 128, "cutoff")
    with pytest.raises(ValueError, match="notes action"):
        make(rec, notes="play")
    with pytest.raises(ValueError, match="tempo range"):
        make(rec, tempo_range_bpm=(10.0, 200.0))


# -- a real controller over JACK -----------------------------------------------------------------

class Controller:
    """A stand-in for a hardware controller: an rtmidi JACK MIDI output."""

    def __init__(self) -> None:
        import rtmidi

        self.client = unique_name("knobs-")
        self.out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=self.client)

    def open_virtual(self, port: str) -> str:
        self.out.open_virtual_port(port)
        return f"{self.client}:{port}"

    def connect_to(self, port_name: str) -> None:
        ports = self.out.get_ports()
        assert port_name in ports, ports
        self.out.open_port(ports.index(port_name), "out")

    def send(self, *messages: list[int]) -> None:
        for m in messages:
            self.out.send_message(m)

    def close(self) -> None:
        time.sleep(0.2)  # JACK delivers on its next cycles: let the last messages go
        if self.out.is_port_open():
            self.out.close_port()
        self.out.delete()


PROBE = [0xF3, 0x01]  # Song Select: ignored by the control ("system"), proves the path is live


def probe(controller: Controller, ctl: MidiControl) -> None:
    """A port registered is not yet a client processing: send until something arrives."""
    before = ctl.stats.ignored.get("system", 0)

    def through() -> bool:
        controller.send(PROBE)
        return ctl.stats.ignored.get("system", 0) > before

    assert wait_until(through, 10.0, 0.1), f"nothing reached {ctl.name}: {ctl.stats}"
    time.sleep(0.3)  # let the probes in flight land before counting anything else


@pytest.fixture
def controller(jack_server: JackServer) -> Iterator[Controller]:
    c = Controller()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def started() -> Iterator[Callable[[MidiControl], MidiControl]]:
    controls: list[MidiControl] = []

    def start(ctl: MidiControl) -> MidiControl:
        controls.append(ctl)
        ctl.start()
        return ctl

    yield start
    for ctl in controls:
        ctl.stop()


def test_a_controller_on_the_virtual_port_drives_the_engine(
        jack_server: JackServer, controller: Controller, rec: Recorder, tmp_path: Path,
        started: Callable[[MidiControl], MidiControl]) -> None:
    learn_file = tmp_path / "learned.json"
    ctl = started(make(rec, api="jack", client_name=unique_name("sonify-ctl-"),
                       virtual="sonify-control", notes="transpose", learn_file=learn_file,
                       bindings=[CcBinding(0, 74, "cutoff")]))
    assert ctl.port_name in jack_server.ports()
    controller.connect_to(str(ctl.port_name))
    probe(controller, ctl)
    controller.send(cc(1, 74, 0), cc(1, 74, 0), cc(1, 74, 127), program(1, 2),
                    note_on(1, 67, 100), note_off(1, 67), [0xF0, 0x01, 0xF7])
    calls = rec.wait_for(4)
    time.sleep(0.2)
    assert rec.take() == [SetParam("cutoff", 0.0), SetParam("cutoff", 1.0),
                          SetScene("storm"), Transpose(7)]
    assert calls  # the commands came from the MIDI thread, in the order sent

    ctl.learn("swing")
    controller.send(cc(2, 16, 0), cc(2, 16, 127))
    assert rec.wait_for(1) == [SetParam("swing", 0.5)]
    # written by the housekeeping thread, not by JACK's process thread
    assert wait_until(lambda: load_learned(learn_file) == [CcBinding(2, 16, "swing")], 5.0)
    assert ctl.stats.rejected == {}


def test_a_named_controller_port_is_found_and_connected(
        jack_server: JackServer, controller: Controller, rec: Recorder,
        started: Callable[[MidiControl], MidiControl]) -> None:
    source = controller.open_virtual("faders")
    ctl = started(make(rec, api="jack", client_name=unique_name("sonify-ctl-"),
                       port=controller.client.upper(),  # a pattern, case ignored
                       bindings=[CcBinding(0, 1, "density")]))
    assert ctl.target == source and ctl.connected
    assert wait_until(lambda: f"{ctl.client_name}:in" in jack_server.connections(), 5.0)
    probe(controller, ctl)
    controller.send(cc(5, 1, 127))
    assert rec.wait_for(1) == [SetParam("density", 8.0)]


def test_a_missing_port_is_a_clear_error_listing_the_inputs(
        jack_server: JackServer, controller: Controller, rec: Recorder) -> None:
    source = controller.open_virtual("pads")
    ctl = make(rec, api="jack", client_name=unique_name("sonify-ctl-"), port="no-such-pad")
    with pytest.raises(MidiControlError, match="no-such-pad") as info:
        ctl.start()
    assert source in str(info.value) and "jack" in str(info.value)
    assert not ctl.running
    ctl.stop()  # harmless


def test_a_controller_plugged_in_later_is_connected_and_reconnected(
        jack_server: JackServer, rec: Recorder,
        started: Callable[[MidiControl], MidiControl]) -> None:
    name = unique_name("late-")
    ctl = started(make(rec, api="jack", client_name=unique_name("sonify-ctl-"), port=name,
                       wait=True, poll_interval_s=0.1, notes="trigger"))
    assert not ctl.connected
    for round_ in range(2):
        controller = Controller()
        try:
            controller.open_virtual(name)
            assert wait_until(lambda: ctl.connected, 5.0), f"round {round_}: not connected"
            probe(controller, ctl)
            controller.send(note_on(1, 40 + round_, 100))
            assert rec.wait_for(1) == [Trigger(40 + round_, 100)]
            rec.take()
        finally:
            controller.close()
        assert wait_until(lambda: not ctl.connected, 5.0), "the loss went unnoticed"
    assert ctl.stats.reconnects == 1


def test_stop_while_a_controller_floods_does_not_hang(
        jack_server: JackServer, controller: Controller, rec: Recorder) -> None:
    ctl = make(rec, api="jack", client_name=unique_name("sonify-ctl-"),
               bindings=[CcBinding(0, 1, "cutoff")])
    ctl.start()
    controller.connect_to(str(ctl.port_name))
    probe(controller, ctl)
    done = threading.Event()

    def flood() -> None:
        n = 0
        while not done.is_set():
            controller.send(cc(1, 1, n % 128))
            n += 1

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        assert wait_until(lambda: ctl.stats.applied > 100, 5.0)
        stopper = threading.Thread(target=ctl.stop, daemon=True)
        stopper.start()
        stopper.join(10.0)
        assert not stopper.is_alive(), "stop() hung while messages arrived"
    finally:
        done.set()
        sender.join(5.0)
    assert not ctl.running


def test_jack_sees_our_port_as_a_midi_input(jack_server: JackServer, rec: Recorder,
                                            started: Callable[[MidiControl], MidiControl]
                                            ) -> None:
    ctl = started(make(rec, api="jack", client_name=unique_name("sonify-ctl-")))
    res = subprocess.run(["jack_lsp", "-t", "-p", str(ctl.port_name)], env=jack_server.env,
                         capture_output=True, text=True, timeout=10)
    assert "midi" in res.stdout and "input" in res.stdout, res.stdout


def test_sonify_run_with_a_controller_from_the_config(jack_server: JackServer,
                                                      controller: Controller) -> None:
    """The runtime wired as `[control.midi]`: a CC bound in the config sets the gallery's live
    parameter, MIDI learn (the /sonify/learn command) binds another knob, a program change
    switches the scene, all through the engine's one command queue."""
    import threading

    from sonify.config import CcBindingConfig, Config
    from sonify.live.runtime import Runtime
    from sonify.outputs.recording import RecordingOutput

    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 320, 180
    c.scene.name = "gallery"
    c.scene.quantize = "beat"
    c.scene.watch = False
    c.control.port = c.http.port = 0
    c.control.midi.enabled = True
    c.control.midi.api = "jack"
    c.control.midi.virtual = "ctl-in"
    c.control.midi.program_scenes = ["gallery", "city"]
    c.control.midi.cc = [CcBindingConfig(channel=1, cc=74, param="activity")]
    rt = Runtime(c, [RecordingOutput()])
    runner = threading.Thread(target=rt.run, args=(30.0,), daemon=True)
    runner.start()
    try:
        assert wait_until(lambda: rt.midi_control is not None and rt.midi_control.connected,
                          15.0, 0.1)
        ctl = rt.midi_control
        assert ctl is not None
        controller.connect_to(str(ctl.port_name))
        probe(controller, ctl)
        controller.send([0xB0, 74, 0])  # the configured knob, all the way down
        assert wait_until(lambda: rt.player.params.get("activity") == 0.0, 5.0, 0.05)
        rt.command(Learn("activity"))
        assert wait_until(lambda: ctl.learning is not None, 5.0, 0.05)
        controller.send([0xB0, 20, 64])  # the learnt knob binds (and is consumed)
        assert wait_until(lambda: ctl.learning is None, 5.0, 0.05)
        controller.send([0xB0, 20, 127])
        assert wait_until(lambda: rt.player.params.get("activity") == 1.0, 5.0, 0.05)
        controller.send([0xC0, 1])  # program 2: city
        assert wait_until(lambda: rt.scene.name == "city", 10.0, 0.05)
    finally:
        rt.stop()
        runner.join(10.0)
