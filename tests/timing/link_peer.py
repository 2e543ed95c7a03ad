"""One Link peer in its own process, driven over stdin/stdout by tests/timing/test_link.py.

Usage: ``python link_peer.py BPM QUANTUM``. Prints ``{"ready": ...}``, then answers each
command line with one JSON line. Times are engine times (``time.perf_counter()``, which is
CLOCK_MONOTONIC on Linux and so the same clock in every process on the machine):

- ``peers``                -> {"peers": n}
- ``timeline T``           -> waits until T, then {"t", "bpm", "beat", "raw_beat", "playing"}
- ``propose BPM T``        -> propose_tempo(BPM, T); {"ok": true}
- ``start T``              -> start(T); {"at", "origin_beat"}
- ``quit``                 -> close and exit
"""

from __future__ import annotations

import json
import sys
import time

from sonify.timing.link import LinkSync


def main() -> None:
    bpm, quantum = float(sys.argv[1]), float(sys.argv[2])
    link = LinkSync(bpm, quantum=quantum)

    def say(**reply: object) -> None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    say(ready=True, bpm=link.timeline(time.perf_counter()).bpm)
    try:
        for line in sys.stdin:
            cmd, *args = line.split()
            if cmd == "peers":
                say(peers=link.num_peers)
            elif cmd == "timeline":
                t = float(args[0])
                while time.perf_counter() < t:
                    time.sleep(min(0.001, max(0.0, t - time.perf_counter())))
                tl = link.timeline(t)
                say(t=t, bpm=tl.bpm, beat=tl.beat, raw_beat=tl.beat + link.origin_beat,
                    playing=tl.playing)
            elif cmd == "propose":
                link.propose_tempo(float(args[0]), float(args[1]))
                say(ok=True)
            elif cmd == "start":
                at = link.start(float(args[0]))
                say(at=at, origin_beat=link.origin_beat)
            elif cmd == "quit":
                break
            else:
                say(error=f"unknown command {cmd!r}")
    finally:
        link.close()


if __name__ == "__main__":
    main()
