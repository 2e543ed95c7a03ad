"""Real peers for tests: a JACK server (dummy driver), jack_midi_dump and oscdump.

Every fixture starts its program itself, binds to 127.0.0.1 where it can, picks free names and
ports, and stops what it started by PID in teardown. A missing program skips the test with the
reason locally, and fails it under CI (CI=true), where scripts/test.sh installs the peers.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# JACK period for the test server. Not 64: with --no-realtime and busy CPUs, a 1.3 ms period
# makes JACK miss cycles (xruns) and lose MIDI; 1024 frames (21 ms) keeps the tests exact under
# load, and no test asserts timing finer than that.
JACK_PERIOD_FRAMES = int(os.environ.get("SONIFY_TEST_JACK_PERIOD", "1024"))
NTP_UNIX_OFFSET_S = 2208988800


# -- the whole run: kernels compiled once, before any test ----------------------------------

# What the first `sonify render ... -o x.wav` compiles: the analysis kernels (serial and
# parallel) and the WAV master's. Run in a child so this process's numba stays untouched.
WARM_KERNELS = """
import tempfile
from pathlib import Path

from sonify.features.analyzer import Analyzer, AnalyzerConfig
from sonify.render import render

Analyzer(AnalyzerConfig(threads=2))
with tempfile.TemporaryDirectory() as folder:
    render("demo", [str(Path(folder) / "warm.wav")], duration_s=2.0)
"""


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fill numba's cache before any test runs. A test that checks what `sonify run` or
    `render` prints, or how soon they start, expects the cache of a machine that has played
    before; without this, the tests that compile came first only by chance of order (a test
    run alone, or a kernel edited since the last run, broke them)."""
    warm = subprocess.run([sys.executable, "-c", WARM_KERNELS], capture_output=True, text=True,
                          timeout=600)
    if warm.returncode != 0:  # the tests that analyse or master will fail and say why
        print(f"compiling the kernels failed:\n{warm.stderr[-3000:]}", file=sys.stderr)


def require_program(program: str, package: str) -> str:
    """Path of ``program``; skip (locally) or fail (CI) when it is not installed."""
    path = shutil.which(program)
    if path is None:
        reason = (f"{program} is not installed (Debian package {package}; scripts/test.sh "
                  f"installs it when run as root)")
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM,
                 timeout_s: float = 5.0) -> None:
    """Stop a process we started, by its PID: ``sig``, then SIGKILL after ``timeout_s``."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)
        except ProcessLookupError:
            pass


def unique_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:6]}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


# -- JACK ---------------------------------------------------------------------------------------

@dataclass
class JackServer:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name}

    def ports(self) -> list[str]:
        res = subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True,
                             timeout=10)
        return res.stdout.splitlines() if res.returncode == 0 else []

    def connections(self) -> str:
        return subprocess.run(["jack_lsp", "-c"], env=self.env, capture_output=True, text=True,
                              timeout=10).stdout


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JackServer]:
    """``jackd --no-realtime -d dummy -r 48000 -p 1024`` under a unique server name, which is
    exported as JACK_DEFAULT_SERVER for this test process (so rtmidi's JACK clients join it)."""
    jackd = require_program("jackd", "jackd2")
    require_program("jack_lsp", "jackd2")
    name = unique_name("sonify-test-")
    log = tmp_path_factory.mktemp("jack") / "jackd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([jackd, "--no-realtime", "-n", name, "-d", "dummy",
                                 "-r", "48000", "-p", str(JACK_PERIOD_FRAMES)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    server = JackServer(name, proc, log)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        up = wait_until(lambda: proc.poll() is not None or bool(server.ports()), 15.0, 0.1)
        if not up or proc.poll() is not None:
            pytest.fail(f"jackd did not start (exit {proc.poll()}):\n{_tail(log)}",
                        pytrace=False)
        yield server
    finally:
        stop_process(proc, signal.SIGINT)  # jackd may ignore SIGTERM
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


_DUMP_LINE = re.compile(r"^\s*(\d+):\s+(.*)$")
_HEX_BYTE = re.compile(r"^[0-9a-fA-F]{2}$")


def parse_midi_dump(text: str) -> list[tuple[int, list[int]]]:
    """``(frame, bytes)`` per line of jack_midi_dump output, e.g.
    `` 62976: 90 3c 64 note on  (channel  0): pitch  60, velocity 100``."""
    out = []
    for line in text.splitlines():
        m = _DUMP_LINE.match(line)
        if not m:
            continue
        data = []
        for token in m.group(2).split():
            if not _HEX_BYTE.match(token):
                break
            data.append(int(token, 16))
        if data:
            out.append((int(m.group(1)), data))
    return out


PROBE_MESSAGE = [0xF3, 0x7F]  # Song Select 127: what the fixture sends to see the dump is live


class MidiDump:
    """``jack_midi_dump`` as a JACK client with one MIDI input port, ``<client>:input``.

    JACK lists a client's port before the client processes, and a message sent to a port whose
    client is not running yet is lost; so ``start()`` returns only once a probe message
    (``PROBE_MESSAGE``, left out of ``messages()``) has come through.
    """

    def __init__(self, server: JackServer, client: str, directory: Path) -> None:
        self.server = server
        self.client = client
        self.port = f"{client}:input"
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs: list[Path] = []

    def start(self) -> MidiDump:
        program = require_program("jack_midi_dump", "jackd2")
        stdbuf = require_program("stdbuf", "coreutils")
        path = self.directory / f"{self.client}-{len(self.runs) + 1}.txt"
        self.runs.append(path)
        with path.open("wb") as out:
            self.proc = subprocess.Popen([stdbuf, "-oL", program, "-a", self.client],
                                         env=self.server.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: self.port in self.server.ports(), 10.0):
            pytest.fail(f"jack_midi_dump did not register {self.port}", pytrace=False)
        self._probe()
        return self

    def _probe(self) -> None:
        import rtmidi

        probe = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=unique_name("probe-"))
        try:
            probe.open_port(probe.get_ports().index(self.port), "probe")

            def through() -> bool:
                probe.send_message(PROBE_MESSAGE)
                return PROBE_MESSAGE in self.messages(probes=True)

            if not wait_until(through, 10.0, 0.1):
                pytest.fail(f"jack_midi_dump on {self.port} receives nothing", pytrace=False)
            time.sleep(0.3)  # let the last probes drain before the probe port goes
            probe.close_port()
        finally:
            probe.delete()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM)
            self.proc = None
            wait_until(lambda: self.port not in self.server.ports(), 10.0)

    def messages(self, run: int = -1, probes: bool = False) -> list[list[int]]:
        """The MIDI messages one run of the dump received (default: the latest run)."""
        if not self.runs:
            return []
        return [data for _, data in parse_midi_dump(self.runs[run].read_text())
                if probes or data != PROBE_MESSAGE]

    def wait_for(self, count: int, timeout_s: float = 5.0, run: int = -1) -> list[list[int]]:
        """Wait until the run has at least ``count`` messages (then a little more, so that
        extra messages would show), and return them."""
        wait_until(lambda: len(self.messages(run)) >= count, timeout_s)
        time.sleep(0.1)
        return self.messages(run)


@pytest.fixture
def midi_dump_factory(jack_server: JackServer,
                      tmp_path: Path) -> Iterator[Callable[[], MidiDump]]:
    """Makes (unstarted) jack_midi_dump clients with unique names; stops them all after."""
    dumps: list[MidiDump] = []

    def make() -> MidiDump:
        dump = MidiDump(jack_server, unique_name("dump-"), tmp_path)
        dumps.append(dump)
        return dump

    yield make
    for dump in dumps:
        dump.stop()


@pytest.fixture
def midi_dump(midi_dump_factory: Callable[[], MidiDump]) -> MidiDump:
    """A running jack_midi_dump: send to ``midi_dump.port``, read ``midi_dump.messages()``."""
    return midi_dump_factory().start()


# -- OSC ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DumpedOsc:
    timetag_unix_s: float
    address: str
    types: str
    args: tuple[Any, ...]


def _osc_value(kind: str, token: str) -> Any:
    if kind in "ihc":
        return int(token)
    if kind in "fd":
        return float(token)
    if kind == "T":
        return True
    if kind == "F":
        return False
    if kind == "N":
        return None
    return token


_OSC_LINE = re.compile(r"^([0-9a-fA-F]{8})\.([0-9a-fA-F]{8}) (\S+) ?(\S*) ?(.*)$")


def parse_oscdump(text: str) -> list[DumpedOsc]:
    """oscdump's lines, ``TIMETAG /address types values`` (``eeb0082b.585479d4 /a/b ifsTF 1
    0.500000 "hello" #T #F``): the timetag as Unix time, the values typed."""
    out = []
    for line in text.splitlines():
        m = _OSC_LINE.match(line)
        if not m:
            continue
        secs, frac, address, types, rest = m.groups()
        tokens = shlex.split(rest) if rest else []
        args = tuple(_osc_value(k, tok) for k, tok in zip(types, tokens, strict=False))
        unix = int(secs, 16) - NTP_UNIX_OFFSET_S + int(frac, 16) / 2**32
        out.append(DumpedOsc(unix, address, types, args))
    return out


READY_ADDRESS = "/sonify-test/ready"


class OscDump:
    """``oscdump -L <port>``: prints each message (a bundle's at its time) line by line."""

    def __init__(self, port: int, path: Path) -> None:
        self.port = port
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OscDump:
        program = require_program("oscdump", "liblo-tools")
        with self.path.open("wb") as out:
            # a bare port: "osc.udp://127.0.0.1:PORT" would be taken as a multicast group
            self.proc = subprocess.Popen([program, "-L", str(self.port)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ready = (b"/sonify-test/ready\x00\x00" + b",\x00\x00\x00")

        def answered() -> bool:
            probe.sendto(ready, ("127.0.0.1", self.port))
            return any(m.address == READY_ADDRESS for m in self.all_messages())

        try:
            if not wait_until(answered, 10.0, 0.1):
                pytest.fail(f"oscdump on port {self.port} does not receive:\n"
                            f"{_tail(self.path)}", pytrace=False)
        finally:
            probe.close()
        return self

    def all_messages(self) -> list[DumpedOsc]:
        return parse_oscdump(self.path.read_text(errors="replace"))

    def messages(self) -> list[DumpedOsc]:
        """What it received, without the readiness probes."""
        return [m for m in self.all_messages() if m.address != READY_ADDRESS]

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[DumpedOsc]:
        wait_until(lambda: len(self.messages()) >= count, timeout_s)
        return self.messages()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM)
            self.proc = None


@pytest.fixture
def oscdump(tmp_path: Path) -> Iterator[OscDump]:
    """A running oscdump on a free UDP port (send to 127.0.0.1:``oscdump.port``)."""
    dump = OscDump(free_udp_port(), tmp_path / "oscdump.txt")
    try:
        yield dump.start()
    finally:
        dump.stop()
