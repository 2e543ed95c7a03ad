"""FluidSynth: sound out of the box, live through the sound card or rendered to a WAV.

``sonify run --synth`` plays through a real synth with no wiring: the ``fluidsynth`` program
(Debian's ``fluidsynth``) with a General MIDI soundfont (``fluid-soundfont-gm``), started and
driven by this module. ``open_synth`` chooses what plays, and says so in a sentence:

- the soundfont: the one named (``--soundfont``, ``[synth] soundfont``) or the first found at
  the usual places (``SOUNDFONT_PATHS``: Debian's /usr/share/sounds/sf2/FluidR3_GM.sf2 first);
- the sound: ``[synth] driver`` (``auto`` tries JACK when a JACK server runs, then PulseAudio
  (PipeWire's pulse server answers it too) when one answers, then ALSA when there is a sound
  card), each by starting FluidSynth on it and seeing it come up;
- with no audio device at all (a headless box, CI) or ``driver = "file"``: FluidSynth renders
  everything played to a WAV when the run ends (``fluidrender.FluidWavRenderer``, mastered to
  the scene's loudness, at the first free name for ``[synth] wav_file``);
- with no FluidSynth or no soundfont: the built-in synth (``synth.WavRenderer``) renders the
  WAV instead, and the note says why and what to install.

``FluidSynthOutput`` is the live part, an ``Output``: FluidSynth runs in its own process (its
own session, so a Ctrl-C reaches sonify, which ends every note, and not the synth first) and
reads its shell commands (``noteon 0 60 100``, ``cc 0 7 90``, ``pitch_bend 0 8192``, ``prog 0
5``) from a pipe. The dispatch thread only formats a line and puts it on a queue; a writer
thread writes what waits in one go, so a synth that stalls never holds the scheduler. Panic
sends CC 64 = 0, CC 123 and CC 120 on every channel (CC 120 silences at once); close panics
too, then ``quit``, and ends the process (SIGTERM, then SIGKILL) if it does not go. A synth
that dies is restarted by ``poll()`` (then ``on_reconnect``, as a returning MIDI port).
"""

from __future__ import annotations

import glob
import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sonify.events import (
    MIDI_EVENTS,
    ControlChange,
    Event,
    NoteOff,
    NoteOn,
    PitchBend,
    ProgramChange,
)
from sonify.limits import LOUDNESS_DEFAULT_LUFS as LOUDNESS_LUFS
from sonify.outputs.base import ALL_CHANNELS, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CC_SUSTAIN, Output

__all__ = ["DRIVERS", "SOUNDFONT_PATHS", "FluidSynthOutput", "SynthChoice", "SynthError",
           "audio_drivers", "find_fluidsynth", "find_soundfont", "open_synth", "shell_command"]

logger = logging.getLogger(__name__)

SOUNDFONT_PATHS: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian, Ubuntu: fluid-soundfont-gm
    "/usr/share/sounds/sf2/default-GM.sf2",  # Debian's alternatives link
    "/usr/share/soundfonts/FluidR3_GM.sf2",  # Fedora, Arch: fluid-soundfont-gm, soundfont-fluid
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",  # musescore-general-soundfont
    "/usr/share/sounds/sf2/TimGM6mb.sf2",  # timgm6mb-soundfont (small)
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)
DRIVERS = ("auto", "jack", "pulseaudio", "pipewire", "alsa", "file")
"""``[synth] driver``: ``pipewire`` is PipeWire's PulseAudio server (FluidSynth's pulseaudio
driver); ``file`` renders to the WAV even where a sound card is."""
LIVE_GAIN = 0.5  # FluidSynth's master gain live (0.2 is its quiet default; above 1 it clips)
READY_TIMEOUT_S = 20.0  # loading a 140 MB soundfont takes about a second
RESTART_EVERY_S = 5.0
_DRIVER_NAMES = {"jack": "JACK", "pulseaudio": "PulseAudio", "pipewire": "PipeWire (pulse)",
                 "alsa": "ALSA"}
_INSTALL = "apt install fluidsynth fluid-soundfont-gm"


class SynthError(Exception):
    """The synth asked for cannot play (which program, soundfont or driver, and why)."""


# -- finding the synth, the soundfont and the sound --------------------------------------------

def find_fluidsynth(env: Mapping[str, str] | None = None) -> str | None:
    """The ``fluidsynth`` program on ``PATH`` (of ``env``, default the process's), or None."""
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    return shutil.which("fluidsynth", path=path)


def find_soundfont(spec: str = "auto", paths: tuple[str, ...] = SOUNDFONT_PATHS) -> Path:
    """The soundfont ``spec`` names, or for ``""``/``"auto"`` the first of ``paths`` that
    exists; SynthError naming the file (or every place looked) when there is none."""
    if spec and spec != "auto":
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SynthError(f"the soundfont {spec!r} does not exist or is not a file (give a "
                             f".sf2 or .sf3 file, or 'auto' to find one)")
        return path
    for candidate in paths:
        if os.path.isfile(candidate):
            return Path(candidate)
    raise SynthError(f"no General MIDI soundfont found (looked for {', '.join(paths)}): "
                     f"{_INSTALL}, or name one with --soundfont")


def audio_drivers(env: Mapping[str, str] | None = None) -> list[str]:
    """The audio systems worth trying, best first: ``jack`` when a JACK server's socket is
    there, ``pulseaudio`` when a PulseAudio (or PipeWire-pulse) server is, ``alsa`` when a
    sound card has a playback device. Empty on a box with no sound (a server, CI)."""
    env = os.environ if env is None else env
    found = []
    uid = os.getuid() if hasattr(os, "getuid") else 0
    server = env.get("JACK_DEFAULT_SERVER") or "default"
    if os.path.exists(f"/dev/shm/jack_{server}_{uid}_0"):
        found.append("jack")
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    if env.get("PULSE_SERVER") or os.path.exists(os.path.join(runtime_dir, "pulse", "native")):
        found.append("pulseaudio")
    if glob.glob("/dev/snd/pcmC*D*p"):
        found.append("alsa")
    return found


# -- the live synth ----------------------------------------------------------------------------

def shell_command(event: Event) -> bytes | None:
    """The FluidSynth shell line for a MIDI event (None for anything else)."""
    if isinstance(event, NoteOn):
        return f"noteon {event.channel} {event.pitch} {event.velocity}\n".encode()
    if isinstance(event, NoteOff):
        return f"noteoff {event.channel} {event.pitch}\n".encode()
    if isinstance(event, ControlChange):
        return f"cc {event.channel} {event.control} {event.value}\n".encode()
    if isinstance(event, PitchBend):  # the shell takes 0..16383, 8192 = centre
        return f"pitch_bend {event.channel} {event.value + 8192}\n".encode()
    if isinstance(event, ProgramChange):
        return f"prog {event.channel} {event.program}\n".encode()
    return None


def panic_commands() -> bytes:
    return b"".join(f"cc {ch} {CC_SUSTAIN} 0\ncc {ch} {CC_ALL_NOTES_OFF} 0\n"
                    f"cc {ch} {CC_ALL_SOUND_OFF} 0\n".encode() for ch in ALL_CHANNELS)


_VOICES = re.compile(r"voice_count:\s*(\d+)")
_ECHO = re.compile(r"^(noteon|noteoff|cc|prog|pitch_bend|echo|voice_count|quit)( |$)")
MAX_QUEUED = 10_000  # shell lines waiting for a synth that does not read (a normal second: ~100)


class _Process:
    """One FluidSynth process and the threads that feed and read it."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, start_new_session=True)
        self.lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.answers: queue.Queue[str] = queue.Queue(maxsize=100)
        self.stderr: deque[str] = deque(maxlen=20)
        self.broken = False
        self._threads = [
            threading.Thread(target=self._write, name="sonify-fluid-in", daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, True),
                             name="sonify-fluid-out", daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False),
                             name="sonify-fluid-err", daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def alive(self) -> bool:
        return not self.broken and self.proc.poll() is None

    def why(self) -> str:
        """Why it stopped, in words: the exit (or the signal) and what it said last."""
        code = self.proc.poll()
        said = next((ln for ln in reversed(self.stderr)
                     if "error" in ln.lower() or "fail" in ln.lower()), "")
        if code is None:
            status = "its input closed"
        elif code < 0:
            status = f"killed by signal {-code}"
        else:
            status = f"exit status {code}"
        return f"{status}: {said}" if said else status

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        done = False
        while not done:
            item = self.lines.get()
            chunk = []
            while item is not None:  # whatever waits goes in one write
                chunk.append(item)
                try:
                    item = self.lines.get_nowait()
                except queue.Empty:
                    break
            done = item is None
            try:
                if chunk:
                    stdin.write(b"".join(chunk))
                    stdin.flush()
            except (OSError, ValueError):
                self.broken = True
                return
        try:
            stdin.close()
        except OSError:
            pass

    def _read(self, stream: IO[bytes] | None, answers: bool) -> None:
        assert stream is not None
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if not answers:
                self.stderr.append(line)
                continue
            line = line.lstrip("> ")  # the shell's prompt
            if line and not _ECHO.match(line):  # not the echo of a command sent
                try:
                    self.answers.put_nowait(line)
                except queue.Full:
                    pass

    def ask(self, command: str, pattern: re.Pattern[str] | str, timeout_s: float) -> str | None:
        """Send ``command``; the first answer line matching ``pattern``, or None."""
        while True:
            try:
                self.answers.get_nowait()
            except queue.Empty:
                break
        self.lines.put(f"{command}\n".encode())
        deadline = time.monotonic() + timeout_s
        while self.alive:
            try:
                line = self.answers.get(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    return None
                continue
            if re.search(pattern, line):
                return line
        return None

    def stop(self, timeout_s: float = 3.0) -> None:
        self.lines.put(b"quit\n")
        self.lines.put(None)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        for t in self._threads:
            t.join(timeout_s)


class FluidSynthOutput(Output):
    """MIDI events played live by a FluidSynth process on ``driver`` (jack, pulseaudio,
    pipewire, alsa) with ``soundfont``; SynthError when it does not come up on that driver
    (what FluidSynth said). See the module docstring."""

    def __init__(self, soundfont: str | os.PathLike[str], *, driver: str,
                 program: str = "fluidsynth", gain: float = LIVE_GAIN,
                 client_name: str = "sonify-synth", ready_timeout_s: float = READY_TIMEOUT_S,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__()
        if driver not in _DRIVER_NAMES:
            raise ValueError(f"driver must be one of {', '.join(_DRIVER_NAMES)}, got {driver!r}")
        if not 0.0 < gain <= 10.0:
            raise ValueError(f"gain must be more than 0 and at most 10, got {gain}")
        self.soundfont = Path(soundfont)
        self.driver = driver
        self.program = program
        self.gain = gain
        self.client_name = client_name
        self.ready_timeout_s = ready_timeout_s
        self._env = dict(os.environ if env is None else env)
        self._env["JACK_NO_START_SERVER"] = "1"  # play to a running JACK, never start one
        self.name = f"fluidsynth:{driver}"
        self._next_restart = 0.0
        self._proc = self._start()

    def command(self) -> list[str]:
        """The command line FluidSynth runs with."""
        cmd = [self.program, "-a", "pulseaudio" if self.driver == "pipewire" else self.driver,
               "-n", "-q", "-g", f"{self.gain:g}"]
        if self.driver == "jack":
            cmd += ["-o", "audio.jack.autoconnect=1", "-o", f"audio.jack.id={self.client_name}"]
        return [*cmd, str(self.soundfont)]

    def _start(self) -> _Process:
        try:
            proc = _Process(self.command(), self._env)
        except OSError as exc:
            raise SynthError(f"cannot start {self.program}: {exc.strerror or exc}") from None
        token = f"sonify-ready-{uuid.uuid4().hex[:8]}"
        if proc.ask(f"echo {token}", f"^{re.escape(token)}$", self.ready_timeout_s) is None:
            why = proc.why() if not proc.alive else \
                f"no answer within {self.ready_timeout_s:g} s"
            proc.stop(timeout_s=1.0)
            raise SynthError(f"FluidSynth could not play through "
                             f"{_DRIVER_NAMES[self.driver]}: {why}")
        return proc

    @property
    def connected(self) -> bool:
        return not self._closed and self._proc.alive

    @property
    def problem(self) -> str | None:
        if self._closed or self._proc.alive:
            return None
        return f"FluidSynth stopped ({self._proc.why()}); restarting it"

    def wants(self, event: Event) -> bool:
        return isinstance(event, MIDI_EVENTS)

    def _send(self, event: Event) -> None:
        line = shell_command(event)
        if line is None:
            return
        proc = self._proc
        if not proc.alive:
            raise SynthError(f"FluidSynth is not running ({proc.why()})")
        if proc.lines.qsize() >= MAX_QUEUED:
            raise SynthError(f"FluidSynth is {MAX_QUEUED} commands behind: it does not read")
        proc.lines.put(line)

    def _panic(self) -> None:
        if self._proc.alive:
            self._proc.lines.put(panic_commands())

    def voice_count(self, timeout_s: float = 5.0) -> int | None:
        """How many voices FluidSynth plays now (None when it does not answer)."""
        answer = self._proc.ask("voice_count", _VOICES, timeout_s)
        match = _VOICES.search(answer) if answer else None
        return int(match.group(1)) if match else None

    def poll(self) -> None:
        if self._closed or self._proc.alive or time.monotonic() < self._next_restart:
            return
        self._next_restart = time.monotonic() + RESTART_EVERY_S
        why = self._proc.why()
        self._proc.stop(timeout_s=1.0)
        try:
            proc = self._start()
        except SynthError as exc:
            logger.warning("%s: FluidSynth stopped (%s) and could not be restarted: %s; trying "
                           "again in %g s", self.name, why, exc, RESTART_EVERY_S)
            return
        with self._lock:
            self._proc = proc
        self.stats.reconnects += 1
        logger.warning("%s: FluidSynth stopped (%s); restarted it", self.name, why)
        if self.on_reconnect is not None:
            self.on_reconnect(self)

    def _close(self) -> None:
        if self._proc.alive:
            self._proc.lines.put(panic_commands())
        self._proc.stop()


# -- choosing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SynthChoice:
    """What plays the music, and a sentence telling the user (which synth, where the sound
    goes, or which file it is written to and why)."""

    output: Output
    note: str


def open_synth(*, soundfont: str = "", driver: str = "auto", gain: float = LIVE_GAIN,
               wav_file: str | os.PathLike[str] = "sonify-synth.wav",
               loudness_lufs: float = LOUDNESS_LUFS,
               env: Mapping[str, str] | None = None) -> SynthChoice:
    """The synth for ``sonify run --synth`` (see the module docstring). SynthError for what
    was asked for explicitly and cannot be had: a named soundfont that is not there, a named
    driver FluidSynth cannot play through (or no FluidSynth for it)."""
    from sonify.outputs.fluidrender import FluidWavRenderer
    from sonify.outputs.spool import candidates, expand
    from sonify.outputs.synth import WavRenderer

    if driver not in DRIVERS:
        raise SynthError(f"synth driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
    wav = next(p for p in candidates(expand(Path(wav_file), time.time())) if not p.exists())
    where = wav.resolve()
    builtin = f"the built-in synth renders the music to {where} when the run ends"
    program = find_fluidsynth(env)
    if soundfont and soundfont != "auto":
        font = find_soundfont(soundfont)  # named: missing is an error
    else:
        try:
            font = find_soundfont()
        except SynthError as exc:
            if driver not in ("auto", "file"):
                raise
            return SynthChoice(WavRenderer(wav, loudness_lufs=loudness_lufs),
                               f"synth: {exc}; {builtin}")
    if program is None:
        if driver not in ("auto", "file"):
            raise SynthError(f"FluidSynth is not installed ({_INSTALL}): it is needed to play "
                             f"through {_DRIVER_NAMES[driver]}")
        return SynthChoice(WavRenderer(wav, loudness_lufs=loudness_lufs),
                           f"synth: FluidSynth is not installed ({_INSTALL}); {builtin}")
    tried: list[str] = []
    for name in (audio_drivers(env) if driver == "auto" else [] if driver == "file"
                 else [driver]):
        try:
            out = FluidSynthOutput(font, driver=name, program=program, gain=gain, env=env)
        except SynthError as exc:
            if driver != "auto":
                raise
            tried.append(str(exc))
            continue
        return SynthChoice(out, f"synth: FluidSynth with {font}, sound to "
                                f"{_DRIVER_NAMES[name]}")
    if driver == "file":
        why = "[synth] driver = \"file\""
    elif tried:
        why = "; ".join(tried)
    else:
        why = "no audio device (no JACK server, no PulseAudio or PipeWire, no ALSA sound card)"
    return SynthChoice(FluidWavRenderer(wav, soundfont=font, program=program,
                                        loudness_lufs=loudness_lufs),
                       f"synth: {why}: FluidSynth with {font} renders the music to {where} "
                       f"when the run ends")
