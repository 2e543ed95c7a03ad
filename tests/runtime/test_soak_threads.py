"""The installation box with every real thread: three hours of music in about a minute.

``test_soak.py`` plays twelve virtual hours of the music logic on one thread. This soak runs
what a box runs: ``Runtime.run`` with its capture thread (the demo source, analysed for real),
music loop and dispatch thread, the streaming MIDI file recorder, OSC out to a real receiver
(liblo's ``oscdump``), the OSC control server fed by a client in another thread, the health
page and OSCQuery polled over HTTP. Time is ``ScaledTime``: the engine clock runs ``FACTOR``
times faster than the wall clock, so every loop, lookahead and note plays that much faster
(the picture still moves at its own pace). Health limits are scaled the same way.

Measured and checked: RSS from the end of hour 1 (warm) through hour 2 to the end; the
recording holds every note the scheduler played, each ended; the OSC receiver heard the
stream all along; the health page answered every poll and never reported a recording or an
output problem. (At this speed a hiccup of 5 ms of wall time is a second of engine time, so
health's lateness verdicts are printed, not asserted.) Run with ``-s`` to see the numbers.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido
import pytest
from pythonosc.udp_client import SimpleUDPClient

from sonify.config import Config
from sonify.live.runtime import Runtime
from sonify.outputs.midifile import MidiFileRecorder
from sonify.outputs.osc import OscOutput
from sonify.timing.clock import ScaledTime
from tests.conftest import OscDump, free_udp_port, wait_until

FACTOR = 200.0  # engine seconds per wall second
HOURS = 3.0
RSS_GROWTH_MAX_MB = 20.0  # from the end of hour 1 to the end


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


class Performer(threading.Thread):
    """A control surface on the network: a valid command every 0.25 s (wall)."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(name="performer", daemon=True)
        self.client = SimpleUDPClient("127.0.0.1", port)
        self.stop_event = stop
        self.sent = 0

    def run(self) -> None:
        rng = random.Random(3)
        scenes = ["gallery", "calm", "starry", "scan", "city", "energize"]
        while not self.stop_event.wait(0.25):
            roll = rng.random()
            if roll < 0.1:
                self.client.send_message("/sonify/scene", rng.choice(scenes))
            elif roll < 0.3:
                self.client.send_message("/sonify/tempo", float(rng.randint(70, 150)))
            elif roll < 0.45:
                self.client.send_message("/sonify/freeze", rng.randint(0, 1))
            elif roll < 0.6:
                self.client.send_message("/sonify/status", [])
            elif roll < 0.62:
                self.client.send_message("/sonify/panic", [])
            else:
                self.client.send_message("/sonify/mute/pad", rng.randint(0, 1))
            self.sent += 1


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[OscDump]:
    dump = OscDump(free_udp_port(), tmp_path / "oscdump.txt").start()
    try:
        yield dump
    finally:
        dump.stop()


def test_hours_with_every_thread_keep_memory_flat_and_lose_nothing(
        tmp_path: Path, receiver: OscDump) -> None:
    c = Config()
    c.source.input = "demo"
    c.source.width, c.source.height = 320, 180
    c.source.fps = 10.0
    c.scene.name = "gallery"
    c.scene.watch = False
    c.scene.quantize = "bar"
    c.music.block_s = 0.4  # engine seconds: a block every 2 ms of wall time
    c.music.lookahead_s = 0.8
    c.control.port = free_udp_port()
    c.control.oscquery_port = free_tcp_port()
    c.http.port = free_tcp_port()
    c.osc.stream_features_hz = 0.05  # every 20 engine seconds: 10 streams a wall second
    c.status.interval_s = 60.0
    c.health.window_s = 5.0 * FACTOR
    c.health.max_lateness_ms = 50.0 * FACTOR
    c.health.music_stall_s = 2.0 * FACTOR
    record = tmp_path / "box.mid"
    recorder = MidiFileRecorder(record)
    osc = OscOutput([("127.0.0.1", receiver.port)], prefix=c.osc.prefix)
    rt = Runtime(c, [recorder, osc], time_source=ScaledTime(FACTOR))
    duration_s = HOURS * 3600.0
    runner = threading.Thread(target=rt.run, args=(duration_s,), name="soak-run", daemon=True)
    stop = threading.Event()
    performer = Performer(c.control.port, stop)
    base = f"http://127.0.0.1:{c.http.port}"
    rss: list[tuple[float, float]] = []
    polls = not_ok = 0
    problems_seen: set[str] = set()
    t0 = time.monotonic()
    runner.start()
    try:
        assert wait_until(lambda: rt.capture.latest.frames > 0 and rt.control_server is not None,
                          30.0), "the engine did not start"
        performer.start()
        start_s = rt.time.now()
        while True:
            runner.join(1.0)
            hours = (rt.time.now() - start_s) / 3600.0
            rss.append((hours, rss_mb()))
            if not runner.is_alive():
                break
            try:
                code, health = get(base + "/health")
                get(f"http://127.0.0.1:{c.control.oscquery_port}/sonify/tempo")
            except OSError:  # the services stop first when the run ends
                assert hours >= HOURS - 0.05, "the health page or OSCQuery went away"
                continue
            polls += 1
            if code != 200:
                not_ok += 1
                problems_seen.update(health["problems"])
            assert time.monotonic() - t0 < duration_s / FACTOR + 120, "the soak overran"
    finally:
        stop.set()
        rt.stop()
        runner.join(30.0)
        performer.join(5.0)

    wall_s = time.monotonic() - t0
    warm = [mb for h, mb in rss if h >= 1.0]
    hour2 = [mb for h, mb in rss if 1.9 <= h <= 2.1]
    growth = max(warm) - warm[0]
    print(f"\nsoak with threads: {HOURS:g} h of music in {wall_s:.0f} s wall; RSS hour 1 "
          f"{warm[0]:.1f} MB, hour 2 {hour2[0] if hour2 else float('nan'):.1f} MB, end "
          f"{rss[-1][1]:.1f} MB, peak {max(mb for _, mb in rss):.1f} MB; "
          f"{rt.scheduler.notes_sent} notes, {performer.sent} commands, {polls} health polls "
          f"({not_ok} not ok: {sorted(problems_seen)[:3]})")
    assert rss[-1][0] >= HOURS - 0.05, "the run ended early"
    assert growth < RSS_GROWTH_MAX_MB, rss

    # nothing lost: the recording holds every note played, each ended
    assert recorder.problem is None and not recorder.failed
    files = recorder.files
    assert files and all(f.exists() for f in files)
    on = off = 0
    held: dict[tuple[int, int], int] = {}
    for f in files:
        mid = mido.MidiFile(f)
        assert mid.length > 0.9 * HOURS * 3600 / len(files) - 60
        for track in mid.tracks:
            for msg in track:
                if msg.type == "note_on" and msg.velocity > 0:
                    on += 1
                    held[(msg.channel, msg.note)] = held.get((msg.channel, msg.note), 0) + 1
                elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
                    off += 1
    assert on == rt.scheduler.notes_sent and on > 5_000
    assert off >= on  # every note ended (a retrigger ends the held one first)
    # the OSC receiver heard the feature stream all along: about one stream every 10 s
    streams = [m for m in receiver.all_messages() if m.address == "/sonify/feature/brightness"]
    assert len(streams) >= 0.8 * HOURS * 180
    assert not any("midifile" in p or "osc" in p for p in problems_seen), problems_seen
    assert performer.sent > 100 and rt.control_server is not None
