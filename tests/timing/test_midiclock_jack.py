"""MIDI clock through a real JACK server (dummy driver, 1024-frame periods at 48 kHz: MIDI is
handed over once per period, so every arrival time is quantised by ~21 ms).

1. In: an rtmidi JACK MidiOut plays clock master at 100 BPM (a thread with absolute deadlines);
   MidiClockFollower follows it; a SceneDriver synced to the follower schedules its notes on
   the master's beat.
2. Out: a SceneDriver with clock_out at 120 BPM through Scheduler and MidiOutput into
   jack_midi_dump; the clocks are counted and timed from the dump's frame stamps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from sonify.events import CLOCK, SONG_POSITION, START, STOP, Note
from sonify.outputs.midi import MidiOutput
from sonify.outputs.recording import RecordingOutput
from sonify.performance.driver import SceneDriver
from sonify.scene.player import ScenePlayer
from sonify.timing.clock import RealTime
from sonify.timing.midiclock_in import MidiClockFollower
from sonify.timing.scheduler import Scheduler
from tests.conftest import JACK_PERIOD_FRAMES, parse_midi_dump, unique_name, wait_until
from tests.timing.test_midiclock import grey, pulse_scene

logger = logging.getLogger(__name__)

MASTER_BPM = 100.0
CLOCK_S = 60.0 / (MASTER_BPM * 24)  # 0.025 s
BEAT_S = 60.0 / MASTER_BPM
PERIOD_S = JACK_PERIOD_FRAMES / 48000
# The follower lags the master by the delivery delay: up to a period (0.0213 s), half a period
# on average, plus thread wake-ups. Measured here: -0.016 beats (-10 ms) on average, at most
# -0.022 beats (-13 ms), at 100 BPM; the tempo within 0.3-1.0 BPM while the fit still holds
# only 2-4 beats of clocks (0.1-0.2 BPM once it holds 6).
PHASE_TOLERANCE_BEATS = 0.06  # 36 ms at 100 BPM: a JACK period and a half


class ClockMaster:
    """A MIDI clock master on a JACK port: clocks every ``CLOCK_S`` from the moment it starts,
    on absolute deadlines; ``start()`` slips a START in before the next clock, which is then
    beat 0 (at ``beat0_s``, perf_counter seconds)."""

    def __init__(self) -> None:
        import rtmidi

        self.client = unique_name("master-")
        self.port = f"{self.client}:clock"
        self.midi = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=self.client)
        self.midi.open_virtual_port("clock")
        self._stop = threading.Event()
        self._start_wanted = threading.Event()
        self.beat0_s: float | None = None
        self.sent = 0
        self.origin_s = 0.0
        self._thread = threading.Thread(target=self._run, name="clock-master", daemon=True)

    def run(self) -> ClockMaster:
        self.origin_s = time.perf_counter() + 0.01
        self._thread.start()
        return self

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            deadline = self.origin_s + k * CLOCK_S  # absolute: no drift
            remaining = deadline - time.perf_counter()
            if remaining > 0 and self._stop.wait(remaining):
                break
            if self._start_wanted.is_set() and self.beat0_s is None:
                self.midi.send_message([START])
                self.beat0_s = deadline
            self.midi.send_message([CLOCK])
            self.sent += 1
            k += 1

    def start(self) -> float:
        self._start_wanted.set()
        assert wait_until(lambda: self.beat0_s is not None, 2.0)
        assert self.beat0_s is not None
        return self.beat0_s

    def beat(self, t: float) -> float:
        assert self.beat0_s is not None
        return (t - self.beat0_s) / BEAT_S

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.midi.close_port()
        self.midi.delete()


@pytest.fixture
def master(jack_server: Any) -> Iterator[ClockMaster]:
    m = ClockMaster().run()
    try:
        yield m
    finally:
        m.close()


def test_the_follower_locks_to_a_jack_clock_master_and_the_driver_plays_on_its_beat(
        master: ClockMaster) -> None:
    follower = MidiClockFollower(port=master.port, api="jack",
                                 client_name=unique_name("follow-"))
    try:
        assert follower.connected and follower.target == master.port
        # the clock runs (stopped transport) for two beats; then the master presses play
        assert wait_until(lambda: follower.messages >= 48, 5.0), "no clock came through JACK"
        master.start()
        assert wait_until(lambda: follower.timeline(time.perf_counter()) is not None, 2.0)

        # the runtime's loop on real time: render 0.1 s ahead every 10 ms, synced
        features = grey()
        scheduler = Scheduler([RecordingOutput()], RealTime())  # collects, never dispatches
        start = time.perf_counter()
        driver = SceneDriver(ScenePlayer(pulse_scene()), scheduler, start + 0.1, sync=follower)
        notes: list[Note] = []
        bpm_errors, phase_errors = [], []
        next_block = start
        while (now := time.perf_counter()) < start + 2.5:
            events = driver.advance(features, (), now + 0.1, now + 0.01)
            notes += [e for e in events if isinstance(e, Note)]
            tl = follower.timeline(now)
            assert tl is not None and tl.playing
            bpm_errors.append(tl.bpm - MASTER_BPM)
            phase_errors.append(tl.beat - master.beat(now))
            next_block += 0.01
            time.sleep(max(0.0, next_block - time.perf_counter()))
    finally:
        follower.close()

    assert driver.synced and driver.phase_jumps == 0
    bpm_err, phase_err = np.array(bpm_errors), np.array(phase_errors)
    logger.info("follower: bpm error max %.3f, phase error mean %.4f beats (max |.| %.4f)",
                np.abs(bpm_err).max(), phase_err.mean(), np.abs(phase_err).max())
    assert np.abs(bpm_err).max() < 1.0
    assert np.abs(phase_err).max() < PHASE_TOLERANCE_BEATS
    # the kicks, every half beat of the follower's line, fall on the master's half beats
    assert len(notes) >= 2.4 / (BEAT_S / 2) - 2
    on_master = np.array([master.beat(n.t) for n in notes]) * 2
    note_err = on_master - np.round(on_master)
    logger.info("notes vs master's half beats: mean %.4f, max |.| %.4f half beats",
                note_err.mean(), np.abs(note_err).max())
    assert np.abs(note_err).max() / 2 < PHASE_TOLERANCE_BEATS
    steps = np.round(on_master).astype(int)
    assert list(steps) == list(range(steps[0], steps[0] + len(steps)))  # every step, once


def test_midi_clock_out_through_jack_has_the_engines_tempo_and_transport(
        midi_dump: Any) -> None:
    out = MidiOutput(port=midi_dump.port, api="jack")
    scheduler = Scheduler([out], RealTime())
    scheduler.start()
    features = grey()
    start = time.perf_counter()
    driver = SceneDriver(ScenePlayer(pulse_scene()), scheduler, start + 0.1, tempo_bpm=120.0,
                         clock_out=True)
    try:
        next_block = start
        while (now := time.perf_counter()) < start + 2.6:
            driver.advance(features, (), now + 0.1, now + 0.01)
            next_block += 0.01
            time.sleep(max(0.0, next_block - time.perf_counter()))
        stop_s = time.perf_counter()
        driver.stop(stop_s)
    finally:
        scheduler.stop()
        out.close()
    # the clocks due before the stop (those in the lookahead after it are dropped)
    expected = int((stop_s - (start + 0.1)) * 48) + 1
    midi_dump.wait_for(expected + 3, timeout_s=5.0)
    dumped = [(frame, data) for frame, data in parse_midi_dump(midi_dump.runs[-1].read_text())
              if data != [0xF3, 0x7F]]  # not the fixture's probe
    system = [(frame, data) for frame, data in dumped if data[0] >= 0xF0]
    kinds = [data[0] for _, data in system]
    # song position 0 and START before the first clock, STOP at the end
    assert system[0][1] == [SONG_POSITION, 0, 0] and kinds[1] == START and kinds[2] == CLOCK
    assert kinds[-1] == STOP and kinds.count(STOP) == 1 and kinds.count(START) == 1
    clock_frames = np.array([frame for frame, data in system if data == [CLOCK]], float)
    # every clock due arrived (one more or less: the dispatcher races the stop)
    logger.info("clocks: %d dumped, %d due before the stop", len(clock_frames), expected)
    assert abs(len(clock_frames) - expected) <= 1 and 110 <= expected <= 130
    # the tempo, from the dump's frame stamps (quantised to the period): a line through them
    k = np.arange(len(clock_frames))
    seconds_per_clock = np.polyfit(k, clock_frames / 48000, 1)[0]
    bpm = 60.0 / (seconds_per_clock * 24)
    logger.info("clock out through JACK: %d clocks, %.3f BPM", len(clock_frames), bpm)
    assert bpm == pytest.approx(120.0, abs=1.0)
    # and the kicks sit on the clock: each within a period of its clock (every 12th, from 0)
    kicks = [frame for frame, data in dumped if data[0] == 0x99]
    assert kicks and abs(kicks[0] - clock_frames[0]) <= JACK_PERIOD_FRAMES


def test_a_virtual_clock_input_stamps_with_the_injected_clock(master: ClockMaster,
                                                              jack_server: Any) -> None:
    import subprocess

    client = unique_name("follow-")
    follower = MidiClockFollower(virtual="clock_in", api="jack", client_name=client,
                                 clock=lambda: time.perf_counter() + 1000.0)
    try:
        assert follower.connected
        subprocess.run(["jack_connect", master.port, f"{client}:clock_in"], check=True,
                       env=jack_server.env, timeout=10)
        assert wait_until(lambda: follower.messages >= 30, 5.0)
        now = time.perf_counter()
        tl = follower.timeline(now + 1000.0)  # stamped by a clock 1000 s ahead of ours
        assert tl is not None and tl.bpm == pytest.approx(MASTER_BPM, abs=3.0)
        assert 0.0 < tl.beat < 10.0  # beat 0 at the first clock (no START was sent)
        assert follower.timeline(now + 1002.0) is None  # no clock for 2 s: not locked
        # the callback decodes song position pointers (LSB first)
        follower._on_message(([STOP], 0.0))
        follower._on_message(([SONG_POSITION, 5, 1], 0.0))
        tl = follower.timeline(time.perf_counter() + 1000.0)
        assert tl is not None and not tl.playing and tl.beat == (5 + 128) / 4
        follower.propose_tempo(140.0, 0.0)  # the master decides: nothing happens
    finally:
        follower.close()


def test_a_missing_clock_port_is_an_error_naming_the_ports(master: ClockMaster) -> None:
    from sonify.outputs.midi import MidiPortError

    with pytest.raises(MidiPortError) as err:
        MidiClockFollower(port="no-such-master", api="jack")
    assert "'no-such-master'" in str(err.value) and repr(master.port) in str(err.value)


def _runtime_config(**sync: object) -> Any:
    from sonify.config import Config

    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 320, 180
    c.scene.name = "energize"
    c.scene.watch = False
    c.control.port = 0
    c.http.port = 0
    c.midi.api = "jack"
    for k, v in sync.items():
        setattr(c.sync, k, v)
    return c


def test_sonify_run_follows_a_clock_master_through_the_config(master: ClockMaster) -> None:
    """The runtime wired as `[sync] source = "midi_clock"`: the engine's tempo becomes the
    master's (energize on its own plays 112-150 BPM) and its beat the master's beat. MIDI
    clock has no beat marker: the phase is known from the master's START (or a song position),
    so the master presses play once the engine listens, as a drummer counts in."""
    from sonify.live.runtime import Runtime

    out = RecordingOutput()
    rt = Runtime(_runtime_config(source="midi_clock", clock_in_port=master.port), [out])
    seen: list[tuple[float, float, float]] = []

    def sample() -> None:
        while not stop.is_set():
            driver = getattr(rt, "driver", None)
            now = time.perf_counter()
            if driver is not None and driver.synced and master.beat0_s is not None:
                seen.append((driver.tempo.bpm, driver.tempo.beat_at(now), master.beat(now)))
            stop.wait(0.1)

    stop = threading.Event()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threading.Timer(1.0, master.start).start()
    try:
        rt.run(4.5)
    finally:
        stop.set()
        sampler.join(2.0)
    late = seen[len(seen) // 2:]
    assert late, "the runtime never locked to the clock"
    assert all(abs(bpm - MASTER_BPM) < 1.0 for bpm, _, _ in late)
    phase = np.array([ours - theirs for _, ours, theirs in late])
    phase -= np.round(phase)  # beat numbering may differ by whole beats; the phase may not
    assert np.abs(phase).max() < PHASE_TOLERANCE_BEATS
    assert out.notes_on


def test_sonify_run_sends_clock_at_its_tempo(midi_dump: Any) -> None:
    from sonify.live.runtime import Runtime

    c = _runtime_config(clock_out=True)
    c.scene.name = "calm"
    out = MidiOutput(port=midi_dump.port, api="jack")
    rt = Runtime(c, [out])
    rt.run(3.0)
    bpm = rt.driver.tempo.bpm
    time.sleep(0.5)
    messages = midi_dump.messages()
    clocks = sum(1 for m in messages if m == [CLOCK])
    assert messages.index([START]) < messages.index([CLOCK])
    assert messages.count([STOP]) == 1
    # about 24 clocks a beat for the 3 s played (minus the start's lookahead)
    expected = 3.0 * bpm / 60.0 * 24
    assert expected * 0.85 <= clocks <= expected * 1.05, (clocks, expected)
