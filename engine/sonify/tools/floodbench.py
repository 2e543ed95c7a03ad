"""``sonify bench --flood``: dispatch lateness while another process floods the OSC control port.

The live runtime plays (the demo, the ``city`` scene, the control server on 127.0.0.1). Two
phases of the same length in one run: ``quiet`` (no control traffic: the baseline) and
``flood`` (a separate process sends valid commands at ``rate_per_s``: scene changes, tempo,
freeze, mutes and status requests, as a misbehaving controller or an attacker on the allow
list would). What is measured is the music's own events: how many went out in each phase and
their dispatch lateness (a music thread held up by commands renders its notes late, which a
denser grid of test events would hide). Reported: p50/p99/max lateness of each phase and their
ratio, the events sent, the messages the server read, what the command queue coalesced and
dropped, and music blocks that missed their deadline.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sonify.tools.loadbench import NullOutput

if TYPE_CHECKING:
    pass

# The sender: pre-built datagrams sent on absolute deadlines (batches every 5 ms), so the rate
# holds even when the machine is busy.
_SENDER = r"""
import socket, sys, time
from pythonosc.osc_message_builder import OscMessageBuilder
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
def msg(address, *args):
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram
cycle = [msg("/sonify/scene", "energize"), msg("/sonify/tempo", 120.0),
         msg("/sonify/scene", "city"), msg("/sonify/freeze", 1),
         msg("/sonify/scene", "gallery"), msg("/sonify/freeze", 0),
         msg("/sonify/scene", "city"), msg("/sonify/tempo", 96.0),
         msg("/sonify/mute/bass", 1), msg("/sonify/mute/bass", 0), msg("/sonify/status")]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.perf_counter(); sent = 0
while True:
    now = time.perf_counter() - start
    if now >= seconds:
        break
    due = int(now * rate)
    while sent < due:
        s.sendto(cycle[sent % len(cycle)], ("127.0.0.1", port)); sent += 1
    time.sleep(0.005)
print(sent)
"""


@dataclass
class FloodBench:
    rate_per_s: float
    seconds: float
    sent: int
    received: int
    quiet_events: int
    quiet_p50_ms: float
    quiet_p99_ms: float
    flood_events: int
    flood_p50_ms: float
    flood_p99_ms: float
    flood_max_ms: float
    p99_ratio: float
    coalesced: int
    dropped: int
    blocks_late: int


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_flood_bench(seconds: float = 5.0, rate_per_s: float = 2000.0) -> FloodBench:
    from sonify.config import Config
    from sonify.live.runtime import Runtime

    c = Config()
    c.source.input = "demo:city"
    c.source.width, c.source.height = 640, 360
    c.scene.name = "city"
    c.scene.watch = False
    c.control.port = _free_udp_port()
    c.control.oscquery_port = 0
    c.http.port = 0
    c.midi.enabled = False
    c.status.interval_s = 0.0
    rt = Runtime(c, [NullOutput()])
    runner = threading.Thread(target=rt.run, args=(3 * seconds + 30.0,), daemon=True)
    runner.start()
    try:
        deadline = time.perf_counter() + 30.0
        while (rt.control_server is None or not rt.control_server.running
               or rt.capture.latest.frames < 5) and time.perf_counter() < deadline:
            time.sleep(0.05)
        if rt.control_server is None or not rt.control_server.running:
            raise RuntimeError("the control server did not start")
        time.sleep(1.0)  # settle: the first frames, the first notes

        t0 = rt.time.now()
        time.sleep(seconds)
        quiet = rt.scheduler.recent_lateness(t0 + 0.1)
        late_before = rt.monitor.blocks_late
        received_before = rt.control_server.stats.received

        t1 = rt.time.now()
        sender = subprocess.run([sys.executable, "-c", _SENDER, str(c.control.port),
                                 str(rate_per_s), str(seconds)],
                                capture_output=True, text=True, timeout=seconds + 60.0)
        if sender.returncode != 0:
            raise RuntimeError(f"the flood sender failed: {sender.stderr.strip()}")
        flood = rt.scheduler.recent_lateness(t1)
        time.sleep(0.3)
        stats = rt.commands.stats()
        received = rt.control_server.stats.received - received_before
        blocks_late = rt.monitor.blocks_late - late_before
    finally:
        rt.stop()
        runner.join(15.0)
    return FloodBench(
        rate_per_s=rate_per_s, seconds=seconds, sent=int(sender.stdout.strip() or 0),
        received=received, quiet_events=quiet.count, quiet_p50_ms=round(quiet.p50_ms, 4),
        quiet_p99_ms=round(quiet.p99_ms, 4), flood_events=flood.count,
        flood_p50_ms=round(flood.p50_ms, 4),
        flood_p99_ms=round(flood.p99_ms, 4), flood_max_ms=round(flood.max_ms, 3),
        p99_ratio=round(flood.p99_ms / quiet.p99_ms, 2) if quiet.p99_ms > 0 else 0.0,
        coalesced=stats.coalesced, dropped=stats.dropped, blocks_late=blocks_late)


def format_flood(b: FloodBench) -> str:
    return "\n".join([
        f"dispatch lateness while {b.rate_per_s:.0f} valid OSC commands a second flood the "
        f"control port ({b.seconds:g} s per phase, the city scene's own events):",
        f"  quiet : {b.quiet_events} events  p50 {b.quiet_p50_ms:.3f} ms  p99 "
        f"{b.quiet_p99_ms:.3f} ms",
        f"  flood : {b.flood_events} events  p50 {b.flood_p50_ms:.3f} ms  p99 "
        f"{b.flood_p99_ms:.3f} ms  max {b.flood_max_ms:.1f} ms  (p99 {b.p99_ratio:.2f}x "
        f"quiet; target p99 < 1 ms)",
        f"  {b.sent} messages sent, {b.received} read by the server; the command queue "
        f"coalesced {b.coalesced} and dropped {b.dropped}; music blocks late: {b.blocks_late}",
    ])


def flood_json(b: FloodBench) -> dict:
    return asdict(b)
