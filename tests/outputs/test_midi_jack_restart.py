"""The MIDI layer survives its JACK server quitting, being killed, stalling and coming back.

Each test runs its own jackd (a unique name, so it can be killed without touching the session's
server) and the engine's MIDI parts in a child process: the engine itself (``sonify run``), or
``tests/outputs/jack_restart_child.py`` (a MidiOutput fed by the real Scheduler, a MidiControl
and a MidiClockFollower, answering questions on stdin). The test process opens no JACK client
of its own while a server is killed: jack2's libjack keeps process-wide state about a server
that shut down (see ``sonify.midi.ports``). The peers are jack_midi_dump (what a synth hears)
and jack_midiseq (a MIDI source). Bounds are generous: behaviour, not speed.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sonify.midi.ports import RING_CHECK_BYTES, RING_LIMIT_BYTES
from tests.conftest import (
    JACK_PERIOD_FRAMES,
    JackServer,
    MidiDump,
    _tail,
    require_program,
    stop_process,
    unique_name,
    wait_until,
)
from tests.runtime.test_run_peers import finish, notes_balance, start_run

ROOT = Path(__file__).resolve().parents[2]


class RestartableJack:
    """A jackd that a test may stop (any signal) and start again under the same name."""

    def __init__(self, directory: Path) -> None:
        self.jackd = require_program("jackd", "jackd2")
        require_program("jack_lsp", "jackd2")
        self.directory = directory
        self.starts = 0
        self.server = JackServer(unique_name("sonify-restart-"), None,  # type: ignore[arg-type]
                                 directory / "jackd-1.log")

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def env(self) -> dict[str, str]:
        return self.server.env

    def start(self) -> None:
        self.starts += 1
        self.server.log = self.directory / f"jackd-{self.starts}.log"
        with self.server.log.open("wb") as out:
            self.server.proc = subprocess.Popen(
                [self.jackd, "--no-realtime", "-n", self.name, "-d", "dummy", "-r", "48000",
                 "-p", str(JACK_PERIOD_FRAMES)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        proc = self.server.proc
        up = wait_until(lambda: proc.poll() is not None or bool(self.server.ports()), 15.0, 0.1)
        if not up or proc.poll() is not None:
            pytest.fail(f"jackd did not start (exit {proc.poll()}):\n{_tail(self.server.log)}",
                        pytrace=False)

    def kill(self, sig: int) -> None:
        proc = self.server.proc
        proc.send_signal(sig)
        try:
            proc.wait(10.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)

    def stop(self) -> None:
        """Stop it for good, leaving nothing behind. jack2 registers each server in a table of
        8 per user (/dev/shm/jack-shm-registry): one that dies without unregistering (SIGKILL)
        keeps its slot until a server of the same name starts, and 8 such make every jackd on
        the machine fail ("Too many servers already active"). So a server that did not end
        cleanly is started once more and stopped with SIGINT."""
        proc = self.server.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a test may have left it stopped
            stop_process(proc, signal.SIGINT, timeout_s=15.0)
        if proc is not None and proc.returncode != 0:
            self.start()
            stop_process(self.server.proc, signal.SIGINT, timeout_s=15.0)
        # the named semaphores of clients that were there when a server was killed
        for leftover in Path("/dev/shm").glob(f"jack_sem.*_{self.name}_*"):
            leftover.unlink(missing_ok=True)


class Peer:
    """A JACK client program run by the test (jack_midiseq), stopped by its PID."""

    def __init__(self, jack: RestartableJack, args: list[str], port: str) -> None:
        self.jack, self.args, self.port = jack, args, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Peer:
        self.proc = subprocess.Popen(self.args, env=self.jack.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: self.port in self.jack.server.ports(), 10.0):
            pytest.fail(f"{self.args[0]} did not register {self.port}", pytrace=False)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM)
            self.proc = None


class Child:
    """``python -m tests.outputs.jack_restart_child``: ask it for its state with ``ask``."""

    def __init__(self, jack: RestartableJack, log: Path, *args: str) -> None:
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.outputs.jack_restart_child", *args], cwd=ROOT,
                env=jack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert "ready" in self._answer(30.0)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _answer(self, timeout_s: float) -> dict[str, Any]:
        try:
            return dict(json.loads(self.lines.get(timeout=timeout_s)))
        except queue.Empty:
            pytest.fail(f"the child did not answer within {timeout_s} s (hung?):\n"
                        f"{_tail(self.log, 30)}", pytrace=False)

    def ask(self, command: str = "state", timeout_s: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer(timeout_s)

    def until(self, predicate: Any, timeout_s: float, what: str) -> dict[str, Any]:
        """Ask until ``predicate(state)`` holds; the state that made it."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.ask()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout_s} s; last state {state}\n"
                            f"{_tail(self.log, 30)}", pytrace=False)
            time.sleep(0.1)

    def quit(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(15.0)

    def kill(self) -> None:
        stop_process(self.proc, signal.SIGKILL)


@pytest.fixture
def jack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableJack]:
    server = RestartableJack(tmp_path)
    # jack_midi_dump's probe (conftest) joins JACK_DEFAULT_SERVER from this process
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Things with a ``stop()`` or ``kill()`` to end after the test, newest first."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        (thing.kill if isinstance(thing, Child) else thing.stop)()


def note_ons(messages: list[list[int]]) -> int:
    return notes_balance(messages)[0]


def panic_before_first_note(messages: list[list[int]]) -> bool:
    """CC 123 on all 16 channels comes before the first note-on."""
    seen: set[int] = set()
    for m in messages:
        if m[0] & 0xF0 == 0xB0 and m[1] == 123:
            seen.add(m[0] & 0x0F)
        elif m[0] & 0xF0 == 0x90 and m[2] > 0:
            return len(seen) == 16
    return False


def start_dump(jack: RestartableJack, client: str) -> MidiDump:
    require_program("jack_midi_dump", "jackd2")
    return MidiDump(jack.server, client, jack.directory).start()


def start_midiseq(jack: RestartableJack, client: str) -> Peer:
    seq = require_program("jack_midiseq", "jackd2")
    # a C4 at the start of every half second (at 48 kHz), 8000 frames long
    return Peer(jack, [seq, client, "24000", "0", "60", "8000"], f"{client}:out").start()


def jack_connect(jack: RestartableJack, source: str, destination: str) -> None:
    subprocess.run(["jack_connect", source, destination], check=True, env=jack.env,
                   timeout=10, capture_output=True)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_output_control_and_clock_come_back_after_jackd_dies_and_restarts(
        jack: RestartableJack, cleanup: list[Any], tmp_path: Path, sig: int) -> None:
    dump = start_dump(jack, unique_name("dump-"))
    cleanup.append(dump)
    seq_client = unique_name("seq-")
    seq = start_midiseq(jack, seq_client)
    cleanup.append(seq)
    client = unique_name("restart-")
    child = Child(jack, tmp_path / "child.log", "--client", client, "--output-port", dump.port,
                  "--control-port", seq.port, "--clock-virtual", "clk")
    cleanup.append(child)
    clock_port = f"{client}-clock:clk"
    jack_connect(jack, seq.port, clock_port)  # the patchbay
    before = child.until(lambda s: s["output"]["connected"] and s["control"]["received"] >= 2
                         and s["clock"]["messages"] >= 2, 15.0, "playing and listening")
    assert wait_until(lambda: note_ons(dump.messages(0)) >= 3, 10.0), dump.messages(0)
    assert before["output"]["problem"] is None or "xrun" in before["output"]["problem"]

    jack.kill(sig)
    dump.stop()  # JACK clients outlive their server: the dump and the sequencer go by PID
    seq.stop()
    gone = child.until(lambda s: not s["output"]["connected"], 10.0, "the output noticed")
    assert "JACK server is gone" in gone["output"]["problem"]
    assert not gone["control"]["connected"] and not gone["clock"]["connected"]
    # the music plays on into the void: counted as dropped (after the old client is deleted,
    # which holds the process for a second: rtmidi waits for the dead server to drain it)
    still = child.until(lambda s: s["output"]["dropped"] >= gone["output"]["dropped"] + 5, 10.0,
                        "the notes are counted as dropped")
    assert "JACK server is gone" in still["output"]["problem"]
    assert still["output"]["last_error"]

    jack.start()
    dump.start()  # the same client name: the output finds its port again by itself
    seq.start()
    back = child.until(lambda s: s["output"]["connected"] and s["control"]["connected"]
                       and s["clock"]["connected"], 15.0, "everything reconnected")
    assert back["output"]["reconnects"] == 1 and back["control"]["reconnects"] == 1
    assert wait_until(lambda: note_ons(dump.messages(1)) >= 3, 15.0), dump.messages(1)
    assert panic_before_first_note(dump.messages(1)), dump.messages(1)[:60]
    # the control found its source by name; the clock's virtual port is connected again as a
    # patchbay would
    child.until(lambda s: s["control"]["received"] > back["control"]["received"] + 1, 10.0,
                "the control hears its source again")
    jack_connect(jack, seq.port, clock_port)
    child.until(lambda s: s["clock"]["messages"] > back["clock"]["messages"] + 1, 10.0,
                "the clock input hears its master again")
    final = child.ask()
    assert final["output"]["problem"] is None or "xrun" in final["output"]["problem"]

    child.quit()  # the scheduler's stop: note-offs for held notes, then the panic
    assert child.proc.returncode == 0, _tail(child.log, 30)
    time.sleep(0.5)
    _, hanging = notes_balance(dump.messages(1))
    assert not hanging, f"note-ons without note-off: {hanging}"


def test_a_stalled_server_never_hangs_the_process_and_the_drops_are_counted(
        jack: RestartableJack, cleanup: list[Any], tmp_path: Path) -> None:
    dump = start_dump(jack, unique_name("dump-"))
    cleanup.append(dump)
    child = Child(jack, tmp_path / "child.log", "--client", unique_name("stall-"),
                  "--output-port", dump.port)
    cleanup.append(child)
    child.until(lambda s: s["output"]["connected"], 15.0, "connected")
    assert wait_until(lambda: note_ons(dump.messages()) >= 3, 10.0)

    jack.server.proc.send_signal(signal.SIGSTOP)  # the server hangs: nobody empties rtmidi's ring
    try:
        before = child.ask()
        # more than rtmidi's 16 KB ring holds (2340 messages): unguarded, this hangs for good
        flooded = child.ask("flood 3000", timeout_s=20.0)
        dropped = flooded["output"]["dropped"] - before["output"]["dropped"]
        # at most RING_CHECK_BYTES + RING_LIMIT_BYTES went in after the last cycle: 7 bytes each
        assert dropped >= 3000 - (RING_CHECK_BYTES + RING_LIMIT_BYTES) // 7, flooded
        assert "stalled" in flooded["output"]["last_error"]
        stalled = child.until(lambda s: "stalled" in (s["output"]["problem"] or ""), 10.0,
                              "the stall is reported")
        assert stalled["output"]["connected"]  # the server is there, only stuck
    finally:
        jack.server.proc.send_signal(signal.SIGCONT)
    n = note_ons(dump.messages())
    assert wait_until(lambda: note_ons(dump.messages()) >= n + 3, 15.0), "no notes after the stall"
    # JACK reports the missed cycles as an xrun: health hears of it, MIDI may have been lost
    child.until(lambda s: (s["output"]["xruns"] or 0) > before["output"]["xruns"]
                and "xrun" in (s["output"]["problem"] or ""), 10.0,
                "the xrun is counted and reported (which also ends the stall's report)")
    child.quit()
    assert child.proc.returncode == 0, _tail(child.log, 30)


# -- the engine itself ----------------------------------------------------------------------------

def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def midi_output_health(base: str) -> dict[str, Any]:
    """The MIDI output's entry of /health (a 503 answers too, with the same body)."""
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            body = json.load(r)
    except urllib.error.HTTPError as err:
        body = json.load(err)
    except (urllib.error.URLError, OSError):
        return {}
    outputs = [o for o in body.get("outputs", []) if o["name"].startswith("midi:")]
    return dict(outputs[0]) if outputs else {}


@pytest.mark.parametrize("kind,sig", [("named", signal.SIGINT), ("virtual", signal.SIGKILL)],
                         ids=["named-port-SIGINT", "virtual-port-SIGKILL"])
def test_sonify_run_plays_again_on_a_restarted_jack_server_panic_first(
        jack: RestartableJack, cleanup: list[Any], tmp_path: Path, kind: str, sig: int) -> None:
    dump = start_dump(jack, unique_name("dump-"))
    cleanup.append(dump)
    http = free_tcp_port()
    base = f"http://127.0.0.1:{http}"
    virtual = unique_name("feed-")
    where = ("--midi", dump.port) if kind == "named" else ("--virtual", virtual)
    log = tmp_path / "run.log"
    env = {**jack.env, "PYTHONUNBUFFERED": "1"}
    proc = start_run("--source", "demo:city", "--scene", "city", "--midi-api", "jack", *where,
                     "--control-port", "0", "--http-port", str(http), env=env, log=log)
    our_port = f"sonify:{virtual}"
    try:
        if kind == "virtual":
            assert wait_until(lambda: our_port in jack.server.ports(), 30.0), log.read_text()
            jack_connect(jack, our_port, dump.port)
        assert wait_until(lambda: note_ons(dump.messages(0)) >= 3, 40.0), log.read_text()

        jack.kill(sig)
        dump.stop()
        assert wait_until(lambda: "JACK server is gone" in
                          (midi_output_health(base).get("problem") or ""), 10.0), \
            _tail(log, 30)
        gone = midi_output_health(base)
        assert gone["connected"] is False
        assert wait_until(lambda: midi_output_health(base).get("dropped", 0) > gone["dropped"],
                          10.0), "the notes while the server is gone are not counted as dropped"
        assert proc.poll() is None, log.read_text()

        jack.start()
        dump.start()
        if kind == "virtual":
            # the port is made again, and waits for the patchbay before it plays (and panics)
            assert wait_until(lambda: "waiting for something to connect" in
                              (midi_output_health(base).get("problem") or ""), 15.0), \
                _tail(log, 30)
            assert our_port in jack.server.ports()
            jack_connect(jack, our_port, dump.port)
        assert wait_until(lambda: note_ons(dump.messages(1)) >= 3, 15.0), _tail(log, 30)
        assert panic_before_first_note(dump.messages(1)), dump.messages(1)[:60]
        back = midi_output_health(base)
        assert back["connected"] is True and back["reconnects"] == 1, back
    finally:
        proc.send_signal(signal.SIGTERM)
    output = finish(proc, log)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    time.sleep(0.5)
    ons, hanging = notes_balance(dump.messages(1))
    assert ons >= 3 and not hanging, f"note-ons without note-off: {hanging}"
