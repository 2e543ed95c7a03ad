"""No recording is ever lost: `sonify run --record` and `sonify render` against real failures.

Each test runs the real command in its own process: killed with SIGKILL mid-recording, started
with a source that is missing, or writing to a disk that is really full (a tiny tmpfs in a
private mount namespace, `unshare -m`, whose filler the test removes through
/proc/PID/root). Timing bounds are generous: these test behaviour, not speed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mido
import pytest

from sonify.outputs.spool import read_commit
from tests.conftest import IN_CI, stop_process, wait_until

_SCRIPT = Path(sys.executable).with_name("sonify")
SONIFY = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "sonify.cli"]
QUIET = ["--control-port", "0", "--http-port", "0"]


def note_times(path: Path) -> list[tuple[float, str, int, int]]:
    """(seconds, note_on/note_off, channel, note) as a player reads the file."""
    t, out = 0.0, []
    for msg in mido.MidiFile(path):
        t += msg.time
        if msg.type in ("note_on", "note_off"):
            kind = "note_off" if msg.type == "note_off" or msg.velocity == 0 else "note_on"
            out.append((t, kind, msg.channel, msg.note))
    return out


def every_note_ends(timed: list[tuple[float, str, int, int]]) -> bool:
    sounding: dict[tuple[int, int], int] = {}
    for _, kind, ch, n in timed:
        sounding[(ch, n)] = max(0, sounding.get((ch, n), 0) + (1 if kind == "note_on" else -1))
    return not any(sounding.values())


def an_old_recording() -> bytes:
    mid = mido.MidiFile(type=1)
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=64, velocity=80, time=0),
                                      mido.Message("note_off", note=64, time=480)]))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


# -- a crash ---------------------------------------------------------------------------------

def test_sigkill_mid_recording_then_the_next_start_makes_the_file(tmp_path: Path) -> None:
    """SIGKILL skips every cleanup. What the killed run played, up to a second or two before
    the kill, is a valid MIDI file after the next start, which is one that fails at once
    (a missing source: under Restart=always it would be restarted again and again); that
    failing start touches no existing file and leaves nothing of its own."""
    path = tmp_path / "show.mid"
    old = an_old_recording()
    path.write_bytes(old)  # yesterday's recording: never replaced
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*SONIFY, "run", "--source", "demo", "--scene", "energize",
                                 "--no-midi", "--record", str(path), *QUIET],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    spool = tmp_path / ".show-001.mid.rec"
    try:
        assert wait_until(lambda: (read_commit(spool) or {}).get("notes", 0) > 0, 60.0, 0.1), \
            log.read_text()
        started = json.loads((spool / "meta.json").read_text())["started_unix"]
        time.sleep(3.0)
        killed_after_s = time.time() - started
        proc.kill()
        proc.wait(10)
    finally:
        stop_process(proc)
    assert spool.is_dir() and not (tmp_path / "show-001.mid").exists()

    again = subprocess.run([*SONIFY, "run", "--source", str(tmp_path / "missing.mp4"),
                            "--no-midi", "--record", str(path), *QUIET],
                           capture_output=True, text=True, timeout=90)
    assert again.returncode == 2 and "no such file" in again.stderr
    assert "recovered the recording a stopped run left" in again.stderr, again.stderr
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["run.log", "show-001.mid", "show.mid"]

    timed = note_times(tmp_path / "show-001.mid")
    assert timed and every_note_ends(timed)
    last_on = max(t for t, kind, _, _ in timed if kind == "note_on")
    # everything up to the last flush (about a second) is there, nothing after the kill
    assert killed_after_s - 3.0 <= last_on <= killed_after_s + 0.5
    assert mido.MidiFile(tmp_path / "show-001.mid").length <= killed_after_s + 0.5


def test_a_new_recording_goes_beside_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "show.mid"
    old = an_old_recording()
    path.write_bytes(old)
    done = subprocess.run([*SONIFY, "run", "--source", "demo", "--scene", "energize",
                           "--no-midi", "--record", str(path), "--duration", "3", *QUIET],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["show-001.mid", "show.mid"]
    assert f"recorded {tmp_path / 'show-001.mid'}" in done.stderr
    new = mido.MidiFile(tmp_path / "show-001.mid")
    assert new.length == pytest.approx(3.0, abs=0.3)


# -- a full disk -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_disk() -> list[str]:
    """The command prefix that runs a shell in a private mount namespace, where it may mount
    a tmpfs of a few pages (a real file system that really fills up)."""
    if shutil.which("unshare") is None:
        _unavailable("unshare is not installed (Debian package util-linux)")
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt "
                            "&& ! dd if=/dev/zero of=/mnt/x bs=4096 count=8 2>/dev/null"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        _unavailable(f"cannot mount a tmpfs in a private mount namespace: "
                     f"{probe.stderr.strip() or probe.returncode}")
    return prefix


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class UdpCounter:
    """Counts the datagrams (OSC) that arrive on a free port, with their arrival times."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(65536)
            except TimeoutError:
                continue
            self.times.append(time.monotonic())

    def between(self, a: float, b: float) -> int:
        return sum(1 for t in self.times if a <= t <= b)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()


@pytest.fixture
def osc_counter() -> Iterator[UdpCounter]:
    counter = UdpCounter()
    yield counter
    counter.close()


def test_a_full_disk_is_loud_the_show_goes_on_and_the_recording_resumes(
        tiny_disk: list[str], osc_counter: UdpCounter, tmp_path: Path) -> None:
    """The recording's disk is full from the start; after a while space comes back. The
    engine says so (an ERROR, rate-limited), keeps playing its other outputs, keeps what it
    could not write, writes it when it can, and exits with status 1 saying the recording
    failed. The music from before the space came back is in the file."""
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    config = tmp_path / "osc.toml"
    config.write_text("[osc]\nstream_features_hz = 20\n")
    run = " ".join([*SONIFY, "run", "--config", str(config), "--source", "demo", "--scene",
                    "energize", "--no-midi", "--osc", f"127.0.0.1:{osc_counter.port}",
                    "--record", f"{disk}/show.mid", "--duration", "10", *QUIET])
    script = (f"mount -t tmpfs -o size=64k tmpfs {disk} || exit 99; "
              f"dd if=/dev/zero of={disk}/filler bs=4096 2>/dev/null; {run}; rc=$?; "
              f"ls -A {disk} > {out}/ls.txt; cp {disk}/*.mid {out}/ 2>/dev/null; exit $rc")
    log = tmp_path / "run.log"
    with log.open("wb") as f:
        proc = subprocess.Popen([*tiny_disk, "sh", "-c", script], stdin=subprocess.DEVNULL,
                                stdout=f, stderr=subprocess.STDOUT)
    try:
        inside = Path(f"/proc/{proc.pid}/root") / disk.relative_to("/")
        assert wait_until(lambda: "cannot write the recording" in log.read_text(), 60.0,
                          0.1), log.read_text()
        refused_at = time.monotonic()
        time.sleep(2.5)
        (inside / "filler").unlink()  # space comes back
        freed_at = time.monotonic()
        proc.wait(60)
    finally:
        stop_process(proc)
    text = log.read_text()
    assert proc.returncode == 1, text
    errors = [line for line in text.splitlines() if "ERROR" in line]
    assert 1 <= len(errors) <= 2 and "No space left on device" in errors[0], text
    assert "the recording is written again" in text
    assert "sonify: error: the recording failed: cannot write the recording" in text
    assert osc_counter.between(refused_at, freed_at) >= 10  # the other output kept playing
    assert (out / "ls.txt").read_text().split() == ["show.mid"]  # no spool, no temp left
    timed = note_times(out / "show.mid")
    assert every_note_ends(timed)
    first_on = min(t for t, kind, _, _ in timed if kind == "note_on")
    assert first_on < 2.0  # kept while the disk was full, not lost
    assert mido.MidiFile(out / "show.mid").length == pytest.approx(10.0, abs=0.5)


def test_render_on_a_full_disk_says_one_line_and_leaves_nothing(tiny_disk: list[str],
                                                                tmp_path: Path) -> None:
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    render = " ".join([*SONIFY, "render", "demo", "-o", f"{disk}/x.mid", "-o", f"{disk}/x.wav",
                       "--duration", "5"])
    script = (f"mount -t tmpfs -o size=256k tmpfs {disk} || exit 99; {render}; rc=$?; "
              f"ls -A {disk} > {out}/ls.txt; exit $rc")
    done = subprocess.run([*tiny_disk, "sh", "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sonify: error: cannot write"), done.stderr
    assert "No space left on device" in lines[0] and "no output file was written" in lines[0]
    assert (out / "ls.txt").read_text().split() == []  # not x.mid, not a temp
