"""`sonify panic` (panic_outputs) against real peers: jack_midi_dump, FluidSynth, oscdump."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from sonify.config import Config
from sonify.install.panic import panic_outputs
from sonify.outputs.midi import panic_messages
from tests.conftest import (
    IN_CI,
    JackServer,
    require_program,
    stop_process,
    unique_name,
    wait_until,
)

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def midi_config(port: str = "", *, virtual: str = "", osc: list[str] | None = None) -> Config:
    config = Config()
    config.midi.port = port
    config.midi.virtual = virtual
    config.midi.api = "jack"
    config.osc.targets = osc or []
    return config


def test_panic_ends_every_note_on_every_channel(midi_dump: Any) -> None:
    said: list[str] = []
    assert panic_outputs(midi_config(midi_dump.port), report=said.append) == 0
    got = midi_dump.wait_for(48 + 2048, timeout_s=10.0)
    assert got[:48] == panic_messages()  # CC 64 = 0, 123, 120 on each channel: silence first
    assert got[48:] == [[0x80 | ch, pitch, 64] for ch in range(16) for pitch in range(128)]
    assert said == [f"MIDI: panic sent to {midi_dump.port!r} (2096 messages: CC 64/123/120 on "
                    f"16 channels and a note-off for every note)"]


def test_panic_without_the_note_sweep_sends_the_channel_messages_only(midi_dump: Any) -> None:
    assert panic_outputs(midi_config(midi_dump.port), notes=False, report=lambda s: None) == 0
    assert midi_dump.wait_for(48) == panic_messages()


def test_an_absent_port_exits_1_and_says_so(jack_server: JackServer) -> None:
    said: list[str] = []
    assert panic_outputs(midi_config("no-such-synth"), report=said.append) == 1
    assert len(said) == 1
    assert said[0].startswith("MIDI: not sent: no MIDI output port matches 'no-such-synth'")


def test_osc_targets_get_the_panic_address(oscdump: Any) -> None:
    config = midi_config(osc=[f"127.0.0.1:{oscdump.port}"])
    config.midi.enabled = False
    said: list[str] = []
    assert panic_outputs(config, report=said.append) == 0
    assert [m.address for m in oscdump.wait_for(1)] == ["/sonify/panic"]
    assert said == [f"OSC 127.0.0.1:{oscdump.port}: /sonify/panic sent"]


def test_one_absent_destination_is_exit_1_but_the_others_still_get_it(
        oscdump: Any, jack_server: JackServer) -> None:
    config = midi_config("no-such-synth", osc=[f"127.0.0.1:{oscdump.port}"])
    assert panic_outputs(config, report=lambda s: None) == 1
    assert [m.address for m in oscdump.wait_for(1)] == ["/sonify/panic"]


def test_a_virtual_port_cannot_be_reached_afterwards_and_is_skipped() -> None:
    said: list[str] = []
    assert panic_outputs(midi_config(virtual="sonify"), report=said.append) == 0
    assert "virtual port 'sonify'" in said[0] and "[midi] port" in said[0]
    assert said[-1].startswith("nothing to silence")


# -- the case it exists for: the engine was killed with a note sounding -------------------------

class FluidSynth:
    def __init__(self, server: JackServer, client: str, shell_port: int,
                 proc: subprocess.Popen[bytes]) -> None:
        self.server = server
        self.port = f"{client}:midi_00"
        self.shell_port = shell_port
        self.proc = proc

    def voice_count(self) -> int:
        with socket.create_connection(("127.0.0.1", self.shell_port), timeout=5) as s:
            s.sendall(b"voice_count\n")
            answer = b""
            while b"\n" not in answer:
                chunk = s.recv(200)
                if not chunk:
                    break
                answer += chunk
        return int(answer.decode().split(":")[1])


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fluidsynth(jack_server: JackServer, tmp_path: Any) -> Iterator[FluidSynth]:
    program = require_program("fluidsynth", "fluidsynth")
    if not os.path.exists(SOUNDFONT):
        reason = f"{SOUNDFONT} is missing (Debian package fluid-soundfont-gm)"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    client = unique_name("fluid-")
    shell_port = free_tcp_port()
    log = (tmp_path / "fluidsynth.log").open("wb")
    proc = subprocess.Popen([program, "-a", "jack", "-m", "jack", "-s", "-i",
                             "-o", f"shell.port={shell_port}", "-o", f"midi.jack.id={client}",
                             "-o", f"audio.jack.id={client}", SOUNDFONT],
                            env=jack_server.env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    synth = FluidSynth(jack_server, client, shell_port, proc)

    def up() -> bool:
        try:
            return synth.port in jack_server.ports() and synth.voice_count() >= 0
        except OSError:
            return False

    try:
        if not wait_until(up, 20.0, 0.2):
            pytest.fail(f"fluidsynth did not come up: {(tmp_path / 'fluidsynth.log').read_text()}",
                        pytrace=False)
        yield synth
    finally:
        stop_process(proc)
        log.close()


def test_a_note_left_by_a_killed_engine_is_ended_by_the_panic(fluidsynth: FluidSynth) -> None:
    # an "engine" that holds an organ note (it never decays) and is then killed outright,
    # as systemd's watchdog does: no Python cleanup runs
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time, rtmidi
        out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="held")
        out.open_port(out.get_ports().index({fluidsynth.port!r}), "out")
        time.sleep(0.3)
        out.send_message([0xC3, 19])           # church organ on channel 4
        out.send_message([0x93, 48, 100])
        out.send_message([0x93, 55, 100])
        print("sounding", flush=True)
        time.sleep(600)
        """)], env=fluidsynth.server.env, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"sounding\n"
        assert wait_until(lambda: fluidsynth.voice_count() >= 2, 5.0)
        stop_process(holder, sig=9)
        assert fluidsynth.voice_count() >= 2  # the synth holds them with the engine gone
        assert panic_outputs(midi_config(fluidsynth.port), report=lambda s: None) == 0
        assert wait_until(lambda: fluidsynth.voice_count() == 0, 5.0)
    finally:
        stop_process(holder, sig=9)
