"""MIDI clock out on the virtual clock: the 24-per-beat grid, transport, and the scene driver
sending it; the driver following an external tempo (a fake ExternalTempo)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from sonify.events import (
    CLOCK,
    CONTINUE,
    SONG_POSITION,
    START,
    STOP,
    Event,
    MidiSystem,
    Tempo,
)
from sonify.features.analyzer import Features
from sonify.outputs.midi import encode
from sonify.outputs.midifile import MidiFileRecorder
from sonify.outputs.osc import OscOutput
from sonify.outputs.recording import RecordingOutput
from sonify.outputs.synth import WavRenderer
from sonify.performance.driver import SceneDriver
from sonify.scene.player import ScenePlayer
from sonify.scene.schema import Scene, parse_scene
from sonify.timing.clock import ManualTime, TempoClock
from sonify.timing.midiclock import PPQN, MidiClockOut
from sonify.timing.scheduler import Scheduler
from sonify.timing.sync import Timeline
from tests.scene.helpers import settled

PULSE = """
name = "pulse"
[tempo]
bpm = 120
[[voices]]
name = "kick"
kind = "drums"
channel = 10
[[voices.parts]]
sound = "kick"
rhythm = { steps = "x", step_beats = 0.5 }
velocity = 100
"""


def pulse_scene() -> Scene:
    """A kick on every half beat, nothing else: the grid made audible."""
    return parse_scene(PULSE)


_FEATURES: list[Features] = []


def grey() -> Features:
    if not _FEATURES:
        _FEATURES.append(settled(np.full((90, 160, 3), 128, np.uint8), 3)[-1])
    return _FEATURES[0]


def clocks(events: list[Event]) -> list[MidiSystem]:
    return [e for e in events if isinstance(e, MidiSystem) and e.status == CLOCK]


# -- the event and its bytes ----------------------------------------------------------------------

def test_system_messages_encode_as_their_status_bytes_and_song_position_as_14_bits() -> None:
    assert encode(MidiSystem(0.0, CLOCK)) == [0xF8]
    assert encode(MidiSystem(0.0, START)) == [0xFA]
    assert encode(MidiSystem(0.0, CONTINUE)) == [0xFB]
    assert encode(MidiSystem(0.0, STOP)) == [0xFC]
    assert encode(MidiSystem(0.0, SONG_POSITION, 0)) == [0xF2, 0, 0]
    assert encode(MidiSystem(0.0, SONG_POSITION, 300)) == [0xF2, 300 & 0x7F, 300 >> 7]
    assert encode(MidiSystem(0.0, SONG_POSITION, 0x3FFF)) == [0xF2, 0x7F, 0x7F]


def test_bad_system_messages_fail_where_they_are_made() -> None:
    with pytest.raises(ValueError, match="0xF8"):
        MidiSystem(0.0, 0xF9)
    with pytest.raises(ValueError, match="song position"):
        MidiSystem(0.0, SONG_POSITION, 0x4000)
    with pytest.raises(ValueError, match="song position"):
        MidiSystem(0.0, CLOCK, 1)  # only a song position carries a value


def test_only_midi_ports_want_clock(tmp_path: Path) -> None:
    ev = MidiSystem(0.0, CLOCK)
    osc = OscOutput("127.0.0.1:9", midi_as_osc=True)
    try:
        assert not osc.wants(ev)
    finally:
        osc.close()
    assert not MidiFileRecorder(tmp_path / "x.mid").wants(ev)
    assert not WavRenderer(tmp_path / "x.wav").wants(ev)
    assert not RecordingOutput(midi_only=True).wants(ev)  # channel messages only


# -- the grid -------------------------------------------------------------------------------------

def test_clock_out_sends_exactly_24_clocks_per_beat_on_the_tempo_grid() -> None:
    tempo = TempoClock(120.0, origin_s=10.0)
    gen = MidiClockOut()
    start = gen.start(tempo, 10.0)
    assert [(e.t, e.status, e.value) for e in start] == [(10.0, SONG_POSITION, 0),
                                                         (10.0, START, 0)]
    rng = random.Random(1)
    t, got = 10.0, []
    while t < 20.0:  # windows of uneven length, as a busy music thread makes them
        t_next = min(20.0, t + rng.uniform(0.0005, 0.05))
        window = gen.ticks(tempo, t, t_next)
        assert all(t <= e.t < t_next for e in window)
        got += window
        t = t_next
    # 10 s at 120 BPM: 20 beats, 480 clocks, each exactly at time_at(k / 24), none repeated
    assert len(got) == 20 * PPQN == gen.clocks_sent
    assert [e.t for e in got] == [tempo.time_at(k / PPQN) for k in range(480)]
    assert np.allclose(np.diff([e.t for e in got]), 0.5 / PPQN, atol=1e-12)


def test_a_tempo_change_at_a_window_start_moves_only_the_clocks_not_sent() -> None:
    tempo = TempoClock(120.0)
    gen = MidiClockOut()
    gen.start(tempo, 0.0)
    first = gen.ticks(tempo, 0.0, 1.01)  # 2.02 beats at 120: clocks 0..48
    tempo.set_tempo(60.0, 1.01)
    second = gen.ticks(tempo, 1.01, 3.01)  # 2 beats at 60: clocks 49..96
    ts = [e.t for e in first + second]
    assert len(first) == 49 and len(second) == 48
    assert ts == sorted(set(ts))  # none repeated, none out of order
    assert ts[48] == pytest.approx(1.0)
    assert ts[49] == tempo.time_at(49 / 24) == pytest.approx(1.01 + (49 / 24 - 2.02) * 1.0)
    assert np.allclose(np.diff(ts[49:]), 1.0 / PPQN)


def test_stop_and_start_again_continue_from_the_next_sixteenth() -> None:
    tempo = TempoClock(120.0)
    gen = MidiClockOut()
    gen.start(tempo, 0.0)
    gen.ticks(tempo, 0.0, 1.1)
    assert [(e.t, e.status) for e in gen.stop(1.1)] == [(1.1, STOP)]
    assert gen.stop(1.2) == [] and gen.ticks(tempo, 1.2, 2.0) == []  # stopped: silent
    resumed = gen.start(tempo, 2.0)  # beat 4.0: sixteenth 16
    assert [(e.status, e.value) for e in resumed] == [(SONG_POSITION, 16), (CONTINUE, 0)]
    assert gen.ticks(tempo, 2.0, 2.001)[0].t == 2.0
    later = gen.start(tempo, 2.01)  # beat 4.02 -> the next sixteenth, 4.25 (sixteenth 17)
    assert later[0].value == 17 and later[1].t == pytest.approx(tempo.time_at(4.25))


def test_a_small_jump_forward_catches_up_and_a_large_one_restarts_the_count() -> None:
    tempo = TempoClock(120.0)
    gen = MidiClockOut()
    gen.start(tempo, 0.0)
    assert len(gen.ticks(tempo, 0.0, 1.0)) == 48
    tempo.align(120.0, 2.25, 1.0)  # a quarter beat ahead: 6 clocks late, sent at once
    caught = gen.ticks(tempo, 1.0, 1.5)
    assert [e.t for e in caught[:7]] == [1.0] * 7 and len(caught) == 6 + 24
    tempo.align(120.0, 10.0, 1.5)  # 7.25 beats ahead: too far, restart at the new place
    jumped = gen.ticks(tempo, 1.5, 2.0)
    assert [(e.status, e.value) for e in jumped[:3]] == [(STOP, 0), (SONG_POSITION, 40),
                                                          (CONTINUE, 0)]
    assert len(clocks(jumped)) == 24


# -- the driver sending clock ---------------------------------------------------------------------

def drive(driver: SceneDriver, scheduler: Scheduler, clock: ManualTime, until_s: float,
          step_s: float = 0.01, lookahead_s: float = 0.1) -> None:
    """The runtime's loop on the virtual clock: render ``lookahead_s`` ahead, dispatch."""
    while clock.now() < until_s - 1e-9:
        now = clock.now()
        driver.advance(grey(), (), now + lookahead_s, now + step_s)
        scheduler.run_until(now + step_s)


def test_the_driver_starts_clocks_and_stops_midi_clock_around_the_notes() -> None:
    clock = ManualTime(5.0)
    out = RecordingOutput(clock.now)
    scheduler = Scheduler([out], clock)
    driver = SceneDriver(ScenePlayer(pulse_scene()), scheduler, 5.1, clock_out=True)
    drive(driver, scheduler, clock, 7.15)
    sent = driver.stop(clock.now())
    assert [e.status for e in sent] == [STOP]
    system = out.of_type(MidiSystem)
    assert [(e.status, e.value) for e in system[:3]] == [(SONG_POSITION, 0), (START, 0),
                                                         (CLOCK, 0)]
    assert system[-1].status == STOP and out.sent[-1][0] == pytest.approx(7.15)  # at once
    ticks = clocks(out.events)
    assert len(ticks) == 99  # 2.05 s at 120 BPM from 5.1: 4.1 beats, clocks 0..98
    assert [t for t, e in out.sent if isinstance(e, MidiSystem) and e.status == CLOCK] == \
        [pytest.approx(5.1 + k * 0.5 / 24, abs=1e-12) for k in range(len(ticks))]
    kicks = [e.t for e in out.notes_on]
    assert kicks[:4] == pytest.approx([5.1, 5.35, 5.6, 5.85])  # beat 0 is the first clock


def test_without_clock_out_the_driver_sends_no_system_messages() -> None:
    clock = ManualTime()
    out = RecordingOutput(clock.now)
    scheduler = Scheduler([out], clock)
    driver = SceneDriver(ScenePlayer(pulse_scene()), scheduler, 0.0)
    drive(driver, scheduler, clock, 1.0)
    assert driver.stop(1.0) == [] and out.of_type(MidiSystem) == []


# -- the driver following an external tempo -------------------------------------------------------

class FakeTempo:
    """An ExternalTempo driven by the test: lines ``beat = beat0 + (t - t0) * bpm / 60``, each
    from its ``t0`` on (``set`` starts a new one)."""

    name = "fake"

    def __init__(self, bpm: float, beat0: float = 0.0, t0: float = 0.0) -> None:
        self.lines = [(t0, beat0, bpm)]
        self.playing = True
        self.locked = True
        self.proposed: list[tuple[float, float]] = []
        self.asked: list[float] = []

    @property
    def bpm(self) -> float:
        return self.lines[-1][2]

    def set(self, bpm: float, beat0: float, t0: float) -> None:
        self.lines.append((t0, beat0, bpm))

    def beat(self, t: float) -> float:
        """The beat at ``t`` on the line in force at ``t`` (the last one for later times)."""
        t0, beat0, bpm = self.lines[0]
        for line in self.lines:
            if line[0] <= t:
                t0, beat0, bpm = line
        return beat0 + (t - t0) * bpm / 60.0

    def timeline(self, t: float) -> Timeline | None:
        self.asked.append(t)
        if not self.locked:
            return None
        return Timeline(self.bpm, self.beat(t), self.playing)

    def propose_tempo(self, bpm: float, t: float) -> None:
        self.proposed.append((bpm, t))

    def close(self) -> None:
        pass


def synced(sync: FakeTempo, *, clock_out: bool = False, start_s: float = 0.0
           ) -> tuple[ManualTime, RecordingOutput, Scheduler, SceneDriver]:
    clock = ManualTime(start_s)
    out = RecordingOutput(clock.now)
    scheduler = Scheduler([out], clock)
    driver = SceneDriver(ScenePlayer(pulse_scene()), scheduler, start_s, sync=sync,
                         clock_out=clock_out)
    return clock, out, scheduler, driver


def kick_beats(out: RecordingOutput, sync: FakeTempo) -> list[float]:
    return [sync.beat(e.t) for e in out.notes_on]


def test_notes_land_on_the_external_beat_and_take_its_tempo() -> None:
    sync = FakeTempo(97.0, beat0=13.3, t0=0.0)  # a master already playing, off our grid
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 4.0)
    assert driver.synced and driver.tempo.bpm == 97.0
    beats = kick_beats(out, sync)
    assert len(beats) == 13  # 4 s at 97 BPM: beats 13.3..19.77, a kick every half beat
    assert np.allclose(np.array(beats) * 2, np.round(np.array(beats) * 2), atol=1e-9)
    assert beats[0] == pytest.approx(13.5)
    assert driver.tempo.beat_at(3.0) == pytest.approx(sync.beat(3.0))
    assert [e.bpm for e in out.of_type(Tempo)] == [97.0]


def test_the_driver_asks_at_every_note_window_start() -> None:
    sync = FakeTempo(120.0)
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 0.05)
    assert sync.asked == pytest.approx([0.0, 0.0, 0.1, 0.11, 0.12, 0.13])


def test_drift_of_the_master_is_followed_without_duplicates_or_holes() -> None:
    sync = FakeTempo(120.0)
    clock, out, scheduler, driver = synced(sync)
    rng = random.Random(3)
    t = 0.0
    while t < 20.0:  # the master's phase wobbles by up to +-20 ms and its tempo by 1 %
        drive(driver, scheduler, clock, t + 0.5)
        t = clock.now()
        bpm = 120.0 * rng.uniform(0.99, 1.01)
        sync.set(bpm, sync.beat(t) + rng.uniform(-0.04, 0.04), t)
    beats = kick_beats(out, sync)
    halves = [round(b * 2) for b in beats]
    assert halves == list(range(halves[0], halves[0] + len(halves)))  # every step once
    assert max(abs(b * 2 - h) for b, h in zip(beats, halves, strict=True)) < 0.1
    assert driver.phase_jumps == 0


def test_a_stopped_transport_renders_no_new_notes_and_a_restart_plays_from_beat_zero() -> None:
    sync = FakeTempo(120.0)
    clock, out, scheduler, driver = synced(sync, clock_out=True)
    drive(driver, scheduler, clock, 2.0)
    sync.playing = False
    drive(driver, scheduler, clock, 4.0)
    stopped_at = clock.now()
    notes_when_stopped = len(out.notes_on)
    last_note = out.notes_on[-1].t
    assert not driver.playing and last_note < 2.0 + 0.1 + 1e-9  # only the lookahead's notes
    assert not out.held()  # the notes already sounding ended as planned
    sync.playing = True
    now = clock.now()
    sync.set(120.0, (now - 4.5) * 2.0, now)  # a start: beat 0 at 4.5 s, far back from beat 8
    drive(driver, scheduler, clock, 6.0)
    new = [e.t for e in out.notes_on[notes_when_stopped:]]
    # the grid of the new line from the first window after the start (4.09 s: beat -0.82)
    assert new[0] == pytest.approx(4.25) and np.allclose(np.diff(new), 0.25)
    system = [(e.status, e.value) for e in out.of_type(MidiSystem) if e.status != CLOCK]
    assert system == [(SONG_POSITION, 0), (START, 0), (STOP, 0), (SONG_POSITION, 0),
                      (START, 0)]
    restart = [t for t, e in out.sent if isinstance(e, MidiSystem) and e.status == START][-1]
    assert restart == pytest.approx(4.5) and stopped_at < restart


def test_a_large_jump_restarts_the_voices_at_the_new_position() -> None:
    sync = FakeTempo(120.0)
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 2.0)
    before = len(out.notes_on)
    sync.set(120.0, 1.0, 2.0)  # the master jumps back 3 beats
    drive(driver, scheduler, clock, 4.0)
    assert driver.phase_jumps == 1
    new = [e.t for e in out.notes_on[before:]]
    assert np.allclose(np.diff(new), 0.25)  # no gap of three beats, no notes crammed
    assert kick_beats(out, sync)[before:][:2] == pytest.approx([1.5, 2.0], abs=1e-9)


def test_our_own_tempo_changes_are_proposed_and_the_external_tempo_wins() -> None:
    sync = FakeTempo(100.0)
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 0.5)
    assert sync.proposed == []  # nothing proposed while our tempo stays
    driver.fixed_bpm = 140.0  # what /sonify/tempo does
    drive(driver, scheduler, clock, 1.0)
    assert sync.proposed == [(140.0, pytest.approx(0.59))]  # the next note window's start
    assert driver.tempo.bpm == 100.0  # the master did not take it


def test_losing_the_external_tempo_keeps_the_beat_and_goes_back_to_our_own_tempo() -> None:
    sync = FakeTempo(100.0, beat0=0.3)
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 1.0)
    sync.locked = False
    let_go = driver.notes_to
    beat = driver.tempo.beat_at(let_go)
    drive(driver, scheduler, clock, 2.0)
    assert not driver.synced and driver.tempo.bpm == 120.0  # the scene's tempo
    assert driver.tempo.beat_at(let_go) == pytest.approx(beat)  # no jump when letting go
    assert [e.bpm for e in out.of_type(Tempo)] == [100.0, 120.0]


def test_a_sync_source_that_raises_does_not_stop_the_show() -> None:
    class Broken(FakeTempo):
        def timeline(self, t: float) -> Timeline | None:
            raise RuntimeError("link died")

    sync = Broken(100.0)
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 1.0)
    assert not driver.synced and len(out.notes_on) == 5  # 0, 0.25 .. 1.0 s at 120 BPM


def test_every_note_is_whole_when_the_transport_stops_midway() -> None:
    sync = FakeTempo(120.0)
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 1.0)
    sync.playing = False
    drive(driver, scheduler, clock, 2.0)
    assert out.notes_on and len(out.notes_on) == len(out.notes_off) and not out.held()


def test_an_impossible_timeline_is_ignored() -> None:
    sync = FakeTempo(0.0)  # a broken source: tempo 0
    clock, out, scheduler, driver = synced(sync)
    drive(driver, scheduler, clock, 1.0)
    assert not driver.synced and driver.tempo.bpm == 120.0 and len(out.notes_on) == 5
