"""The engine's MIDI parts in a child process, for tests/outputs/test_midi_jack_restart.py.

``python -m tests.outputs.jack_restart_child [options]`` opens, on the JACK server named by
JACK_DEFAULT_SERVER: a ``MidiOutput`` (``--output-port`` pattern or ``--output-virtual`` name)
fed by a real ``Scheduler`` (one short note every ``--note-every`` seconds; its reconnect
handler ends held notes and panics, as in the engine), optionally a ``MidiControl`` reading a
source port (``--control-port`` pattern) and a ``MidiClockFollower`` on a virtual input
(``--clock-virtual``). A thread polls them all every 0.25 s, as the runtime does.

Each line on stdin is a command, answered by one JSON line on stdout:

- ``state``: what each part reports (connected, problem, counters) and how long the last
  command took to be read (a process hung in rtmidi answers nothing);
- ``flood N``: N control changes handed to the output at once (as a burst of events would);
- ``quit``: stop the scheduler (its panic), close everything, exit.

A child because jack2's libjack keeps process-wide state about a server that shut down (see
``sonify.midi.ports``): the test process, which talks to other JACK servers, must not share it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from typing import Any

from sonify.commands import Command, Trigger
from sonify.control.midi_in import MidiControl
from sonify.events import ControlChange, Note
from sonify.outputs.midi import MidiOutput
from sonify.timing.clock import RealTime
from sonify.timing.midiclock_in import MidiClockFollower
from sonify.timing.scheduler import Scheduler

POLL_S = 0.25


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--output-port")
    ap.add_argument("--output-virtual")
    ap.add_argument("--control-port")
    ap.add_argument("--clock-virtual")
    ap.add_argument("--client", default="restart")
    ap.add_argument("--note-every", type=float, default=0.1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    out = MidiOutput(port=args.output_port, virtual=args.output_virtual, api="jack",
                     client_name=args.client, wait=True)
    scheduler = Scheduler([out], RealTime())
    commands: list[Command] = []
    control = None
    if args.control_port:
        control = MidiControl(commands.append,
                              params=lambda: {}, scenes=lambda: [], port=args.control_port,
                              api="jack", client_name=f"{args.client}-ctl", wait=True,
                              notes="trigger", poll_interval_s=POLL_S)
        control.start()
    clock = None
    if args.clock_virtual:
        clock = MidiClockFollower(virtual=args.clock_virtual, api="jack",
                                  client_name=f"{args.client}-clock")
    stop = threading.Event()

    def work() -> None:
        next_poll = next_note = time.perf_counter()
        pitch = 0
        while not stop.is_set():
            now = time.perf_counter()
            if now >= next_note:
                scheduler.schedule([Note(now + 0.02, pitch % 4, 60 + pitch % 12, 100,
                                         args.note_every * 0.6)])
                pitch += 1
                next_note += args.note_every
            if now >= next_poll:
                out.poll()
                if clock is not None:
                    clock.poll()
                next_poll += POLL_S
            stop.wait(0.01)

    scheduler.start()
    worker = threading.Thread(target=work, name="restart-child", daemon=True)
    worker.start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "quit":
            break
        if command[0] == "flood":
            for i in range(int(command[1])):
                out.send(ControlChange(0.0, 15, 1, i % 128))
        answer: dict[str, Any] = {
            "at": time.monotonic(),
            "output": {"connected": out.connected, "problem": out.problem,
                       "sent": out.stats.sent, "dropped": out.stats.dropped,
                       "reconnects": out.stats.reconnects, "last_error": out.stats.last_error,
                       "notes": scheduler.notes_sent, "xruns": out.jack_xruns},
        }
        if control is not None:
            stats = control.stats
            answer["control"] = {"connected": control.connected, "target": control.target,
                                 "received": stats.received, "reconnects": stats.reconnects,
                                 "triggers": sum(1 for c in commands if isinstance(c, Trigger))}
        if clock is not None:
            answer["clock"] = {"connected": clock.connected, "messages": clock.messages}
        print(json.dumps(answer), flush=True)
    stop.set()
    worker.join(2.0)
    scheduler.stop(panic=True)
    if control is not None:
        control.stop()
    if clock is not None:
        clock.close()
    out.close()
    print(json.dumps({"closed": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
