"""What the music thread publishes for the performance page, on a virtual clock: the notes
played lately (the piano roll), the parameters' ranges, where the music is in the bar, the bar
a pending scene comes in at and the bar it landed on."""

from __future__ import annotations

from typing import Any

from sonify.capture.demo import DemoSource
from sonify.commands import SetScene
from sonify.config import Config
from sonify.events import Note
from sonify.live.published import RecentNotes
from sonify.live.runtime import Runtime, Status
from sonify.outputs.recording import RecordingOutput
from sonify.timing.clock import ManualTime


def test_recent_notes_keep_the_last_seconds_and_a_bounded_count() -> None:
    ring = RecentNotes(keep_s=2.0, max_notes=4)
    ring.add([Note(0.0, 0, 60, 100, 0.5, "bass"), Note(1.0, 0, 62, 90, 3.0, "lead")])
    assert ring.snapshot(1.0) == [[0.0, 0.5, 60, 100, "bass"], [1.0, 3.0, 62, 90, "lead"]]
    assert ring.snapshot(3.0) == [[1.0, 3.0, 62, 90, "lead"]]  # the first ended 2.5 s ago
    ring.add(Note(2.0 + i, 0, 64 + i, 80, 0.1, "lead") for i in range(4))
    assert [n[2] for n in ring.snapshot(5.0)] == [65, 66, 67]  # four kept, the oldest gone


def test_the_published_state_carries_the_notes_and_the_bars() -> None:
    c = Config()
    c.scene.name = "city"  # a scene with a parameter (stabs, 0..1)
    c.scene.quantize = "bar"
    c.scene.watch = False
    c.control.port = 0
    c.http.port = 0
    c.status.interval_s = 0.25
    out = RecordingOutput()
    seen: list[dict[str, Any]] = []

    def look(status: Status) -> None:  # 4 times a virtual second: what the page is pushed
        seen.append(rt.state())
        if len(seen) == 12:
            rt.command(SetScene("calm"))

    rt = Runtime(c, [out], time_source=ManualTime(0.0), status_cb=look,
                 source=DemoSource("city", width=160, height=90, fps=4.0, realtime=False))
    rt.run_virtual(12.0, block_s=0.05)

    first = seen[11]
    assert first["param_ranges"] == {"stabs": [0.0, 1.0]} and first["learn"] is False
    assert first["master"] == 1.0 and first["beats_per_bar"] == 4
    assert first["bar"] == int(first["beat"] // 4) + 1 and first["last_change"] is None
    notes = first["recent_notes"]
    assert notes and {n[4] for n in notes} <= set(first["voices"])
    # the notes of the last seconds, up to a lookahead ahead: what the outputs were sent
    assert all(first["clock_s"] - 10.0 <= n[0] + n[1] and
               n[0] <= first["clock_s"] + c.music.lookahead_s + 1e-6 for n in notes)
    played = {(round(ev.t, 3), ev.pitch, ev.velocity, ev.voice) for ev in out.notes_on}
    assert {(n[0], n[2], n[3], n[4]) for n in notes} <= played

    # the switch: announced for a bar, then landed on that bar's line
    pending = [s for s in seen if s["next_scene"] == "calm"]
    landed = [s for s in seen if s["last_change"] is not None]
    assert landed and landed[-1]["scene"] == "calm"
    at_s, beat, name, _ = rt.scene_changes[-1]
    bar = round(beat / 4) + 1
    assert name == "calm" and abs(beat - 4 * (bar - 1)) < 1e-3  # on a bar line (4/4)
    assert landed[-1]["last_change"] == {"scene": "calm", "bar": bar, "why": "requested"}
    assert pending and all(s["next_scene_bar"] == bar for s in pending)
