"""Notes over OSC for SuperCollider, Max and Pd: the exact message, what the scheduler hands
it (the note's length, a cut, a panic), and real receivers (oscdump, Pd) hearing every note of
a scene that `sonify run` plays."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage as ParsedMessage

from sonify.events import Note, NoteOff, NoteOn
from sonify.outputs.osc import OscOutput, encode, note_args, osc_message
from sonify.scene.schema import load_scene
from sonify.timing.clock import ManualTime
from sonify.timing.scheduler import Scheduler
from tests.conftest import OscDump, free_udp_port, require_program, stop_process, wait_until
from tests.runtime.test_run_peers import SONIFY

README = (Path(__file__).parents[2] / "README.md").read_text()


class Captured(OscOutput):
    """An OscOutput whose datagrams are kept instead of sent (the encoding is the real one)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("127.0.0.1:9", **kwargs)
        self.dgrams: list[bytes] = []

    def _ship(self, dgram: bytes) -> None:
        self.dgrams.append(dgram)

    def messages(self) -> list[tuple[str, list[Any]]]:
        return [(m.address, list(m.params)) for m in map(ParsedMessage, self.dgrams)]


def test_a_note_goes_out_with_voice_channel_pitch_velocity_and_length() -> None:
    on = NoteOn(0.0, 0, 60, 127, "lead", 7, 0.5)
    assert encode(on, notes=True) == osc_message("/sonify/note", ("lead", 1, 60, 1.0, 0.5))
    assert encode(on, notes=True, velocity="int") == osc_message(
        "/sonify/note", ("lead", 1, 60, 127, 0.5))
    off = NoteOff(0.5, 0, 60, "lead", 7)
    assert encode(off, notes=True) is None  # note-offs only where asked
    assert encode(off, notes=True, note_offs=True) == osc_message(
        "/sonify/noteoff", ("lead", 1, 60))
    assert encode(on) is None  # the pure encoder sends notes only when told


def test_an_osc_output_sends_notes_by_default_and_note_offs_when_asked() -> None:
    plain, with_offs = Captured(), Captured(note_offs=True)
    assert plain.wants(NoteOn(0.0, 0, 60, 1)) and not plain.wants(NoteOff(0.0, 0, 60))
    assert with_offs.wants(NoteOff(0.0, 0, 60))
    assert not Captured(notes=False).wants(NoteOn(0.0, 0, 60, 1))


def scheduled(out: Captured, notes: list[Note], until: float, *, cut: float | None = None,
              panic_at: float | None = None) -> list[tuple[str, list[Any]]]:
    clock = ManualTime(0.0)
    sched = Scheduler([out], clock)
    sched.schedule(notes)
    if cut is not None:
        sched.cut(cut)
    if panic_at is not None:
        sched.run_until(panic_at)
        sched.panic()
    sched.run_until(until)
    return out.messages()


def test_the_scheduler_hands_each_note_its_length() -> None:
    got = scheduled(Captured(note_offs=True), [Note(0.0, 2, 64, 64, 0.25, "pad")], 1.0)
    assert got[0][0] == "/sonify/note"
    voice, channel, pitch, velocity, duration = got[0][1]
    assert (voice, channel, pitch) == ("pad", 3, 64)
    assert abs(velocity - 64 / 127) < 1e-6 and abs(duration - 0.25) < 1e-6
    assert got[1:] == [("/sonify/noteoff", ["pad", 3, 64])]


def test_a_scene_change_cut_shortens_the_length_a_note_announces() -> None:
    got = scheduled(Captured(), [Note(0.0, 0, 60, 100, 2.0, "bass")], 3.0, cut=0.5)
    (note,) = got
    assert abs(note[1][4] - 0.5) < 1e-6


def test_a_panic_note_off_names_the_voice_that_played() -> None:
    got = scheduled(Captured(note_offs=True), [Note(0.0, 0, 48, 90, 10.0, "drone")], 12.0,
                    panic_at=0.5)
    assert ("/sonify/noteoff", ["drone", 1, 48]) in got
    assert got[-1] == ("/sonify/panic", [])
    assert [a for a, _ in got].count("/sonify/noteoff") == 1  # the late note-off is skipped


def run_city(port: int, tmp_path: Path, seconds: float = 4.0) -> None:
    config = tmp_path / "notes.toml"
    config.write_text("[osc]\nnote_offs = true\n[http]\nport = 0\n[control]\nport = 0\n")
    done = subprocess.run([*SONIFY, "run", "--config", str(config), "--source", "demo:city",
                           "--scene", "city", "--no-midi", "--osc", f"127.0.0.1:{port}",
                           "--duration", str(seconds)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_sonify_run_sends_every_note_of_city_to_oscdump(oscdump: OscDump,
                                                        tmp_path: Path) -> None:
    run_city(oscdump.port, tmp_path)
    msgs = oscdump.wait_for(20, timeout_s=5.0)
    notes = [m for m in msgs if m.address == "/sonify/note"]
    offs = [m for m in msgs if m.address == "/sonify/noteoff"]
    assert len(notes) >= 10, [m.address for m in msgs][:20]
    voices = {v.name for v in load_scene("city").voices}
    for m in notes:
        assert m.types == "siiff"
        voice, channel, pitch, velocity, duration = m.args
        assert voice in voices and 1 <= channel <= 16 and 0 <= pitch <= 127
        assert 0.0 < velocity <= 1.0 and duration > 0.0
    assert all(m.types == "sii" for m in offs)
    # every note ends with its own note-off (the run's end ends the held ones), then a panic
    started = Counter((m.args[0], m.args[1], m.args[2]) for m in notes)
    ended = Counter((m.args[0], m.args[1], m.args[2]) for m in offs)
    assert started == ended
    assert msgs[-1].address == "/sonify/panic"


PD_PATCH = re.compile(r"```pd\n(.*?)```", re.S)


def _udp_taken(port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


@pytest.fixture
def pd_log(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """Pure Data, headless, running the README's patch on a free port: (its log, the port)."""
    program = require_program("pd", "puredata-core")
    match = PD_PATCH.search(README)
    assert match is not None, "the README has no ```pd block"
    port = free_udp_port()
    patch = tmp_path / "sonify.pd"
    patch.write_text(match.group(1).replace("9200", str(port)))
    log = tmp_path / "pd.log"
    with log.open("wb") as out:
        pd = subprocess.Popen([program, "-nogui", "-nosound", "-nomidi", "-noprefs", "-stderr",
                               "-open", str(patch)], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT)
    try:
        if not wait_until(lambda: _udp_taken(port), 10.0, 0.1):
            pytest.fail(f"Pd does not listen on UDP {port}:\n{log.read_text()}")
        yield log, port
    finally:
        stop_process(pd, signal.SIGTERM)


def test_the_readme_pd_patch_prints_every_note(pd_log: tuple[Path, int],
                                               tmp_path: Path) -> None:
    log, port = pd_log
    run_city(port, tmp_path, seconds=3.0)
    wait_until(lambda: "NOTEOFF:" in log.read_text(errors="replace"), 5.0, 0.1)
    text = log.read_text(errors="replace")
    ons = [line.split()[1:] for line in text.splitlines() if line.startswith("NOTE:")]
    offs = [line.split()[1:] for line in text.splitlines() if line.startswith("NOTEOFF:")]
    assert ons and offs, text[-2000:]
    voices = {v.name for v in load_scene("city").voices}
    for voice, channel, pitch, velocity, duration in ons:
        assert voice in voices and 1 <= int(channel) <= 16 and 0 <= int(pitch) <= 127
        assert 0 < float(velocity) <= 1 and float(duration) > 0
    assert Counter(tuple(o[:3]) for o in ons) == Counter(tuple(o) for o in offs)


def test_the_readme_supercollider_example_reads_each_field_where_it_is_sent() -> None:
    match = re.search(r"```supercollider\n(.*?)```", README, re.S)
    assert match is not None, "the README has no ```supercollider block"
    block = match.group(1)
    # sclang's msg holds the address at 0, then the arguments in the order they are sent
    msg = ["/sonify/note", *note_args(NoteOn(0.0, 1, 67, 80, "lead", 1, 0.25))]
    assert "'/sonify/note'" in block
    assert f"msg[{msg.index(67)}].midicps" in block  # the pitch
    assert f"msg[{msg.index(round(80 / 127, 6))}] * 0.3" in block  # the velocity 0..1
    assert f"dur: msg[{msg.index(0.25)}]" in block  # the duration in seconds
    assert f"msg[{msg.index(2)}] - 8.5" in block  # the channel 1..16, panned
