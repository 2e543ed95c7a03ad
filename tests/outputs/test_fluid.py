"""FluidSynth as sonify's synth (``sonify.outputs.fluid``, ``fluidrender``): live through JACK,
rendered to a WAV on a box with no sound card, the built-in synth where FluidSynth is missing,
and ``sonify render --soundfont``. The peers are the real ``fluidsynth`` program with Debian's
FluidR3 General MIDI soundfont, and a JACK server with the dummy driver."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sonify.config import Config
from sonify.events import Event, NoteOff, NoteOn, PitchBend, ProgramChange, Tempo
from sonify.outputs.fluid import (
    FluidSynthOutput,
    SynthError,
    audio_drivers,
    find_soundfont,
    open_synth,
    panic_commands,
    shell_command,
)
from sonify.outputs.fluidrender import render_fluid
from sonify.outputs.synth import WavRenderer
from sonify.render.loudness import integrated_loudness, read_wav
from sonify.scene import load_scene
from tests.conftest import IN_CI, JackServer, require_program, unique_name, wait_until

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "tests" / "data" / "photos" / "coffee.jpg"
_SCRIPT = Path(sys.executable).with_name("sonify")
SONIFY = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "sonify.cli"]
SILENCE_DBFS = -60.0


@pytest.fixture
def fluid() -> tuple[str, Path]:
    """The fluidsynth program and the General MIDI soundfont (fluid-soundfont-gm)."""
    program = require_program("fluidsynth", "fluidsynth")
    try:
        font = find_soundfont()
    except SynthError as exc:
        if IN_CI:
            pytest.fail(f"{exc} (Debian package fluid-soundfont-gm)", pytrace=False)
        pytest.skip(str(exc))
    return program, font


def melody(t0: float = 0.0) -> list[Event]:
    """Piano notes at t0 + 0.5, 1.5 and 2.5 s, each 0.5 s long."""
    events: list[Event] = [Tempo(t0, 120.0), ProgramChange(t0, 0, 0)]
    for i, pitch in enumerate((60, 64, 67)):
        on = t0 + 0.5 + i
        events += [NoteOn(on, 0, pitch, 100, note_id=i + 1),
                   NoteOff(on + 0.5, 0, pitch, note_id=i + 1)]
    return events


def window_dbfs(samples: np.ndarray, rate: int, t0: float, t1: float) -> float:
    part = samples[int(t0 * rate):int(t1 * rate)]
    rms = float(np.sqrt(np.mean(part.astype(np.float64) ** 2))) if len(part) else 0.0
    return 20 * np.log10(rms) if rms > 0 else -np.inf


def quiet_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a box with no sound server: no JACK, no PulseAudio/PipeWire."""
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER",)}
    env["JACK_DEFAULT_SERVER"] = unique_name("no-jack-")
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    return env


# -- the pieces --------------------------------------------------------------------------------

def test_every_midi_event_becomes_a_fluidsynth_shell_line() -> None:
    assert shell_command(NoteOn(0, 9, 36, 100)) == b"noteon 9 36 100\n"
    assert shell_command(NoteOff(0, 0, 60)) == b"noteoff 0 60\n"
    assert shell_command(ProgramChange(0, 2, 81)) == b"prog 2 81\n"
    assert shell_command(PitchBend(0, 1, 0)) == b"pitch_bend 1 8192\n"
    assert shell_command(PitchBend(0, 1, -8192)) == b"pitch_bend 1 0\n"
    assert shell_command(Tempo(0, 100.0)) is None
    lines = panic_commands().decode().splitlines()
    assert len(lines) == 48 and "cc 15 120 0" in lines and "cc 0 64 0" in lines


def test_a_named_soundfont_that_is_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="nope.sf2.*does not exist"):
        find_soundfont(str(tmp_path / "nope.sf2"))
    with pytest.raises(SynthError, match="apt install fluidsynth fluid-soundfont-gm"):
        find_soundfont("auto", paths=(str(tmp_path / "none.sf2"),))


def test_fluidsynth_renders_each_note_at_its_time_at_the_asked_loudness(
        fluid: tuple[str, Path]) -> None:
    program, font = fluid
    left, right = render_fluid(melody(10.0), 4.0, soundfont=font, program=program,
                               start_s=10.0, loudness_lufs=-22.0)
    assert len(left) == len(right) == 4 * 44100
    stereo = np.stack([left, right], axis=1)
    assert integrated_loudness(stereo, 44100) == pytest.approx(-22.0, abs=0.5)
    assert window_dbfs(stereo, 44100, 0.0, 0.45) < SILENCE_DBFS  # nothing before the first note
    for on in (0.5, 1.5, 2.5):  # each note sounds from its time
        assert window_dbfs(stereo, 44100, on + 0.02, on + 0.3) > -40.0
    # the pitches are the melody's: the spectrum's strongest peak in each note is its pitch
    for on, pitch in zip((0.5, 1.5, 2.5), (60, 64, 67), strict=True):
        part = left[int((on + 0.05) * 44100):int((on + 0.45) * 44100)]
        spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
        freqs = np.fft.rfftfreq(len(part), 1 / 44100)
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        band = (freqs > f0 * 0.97) & (freqs < f0 * 1.03)
        assert spectrum[band].max() > 0.5 * spectrum[(freqs > 100) & (freqs < 2000)].max()


# -- sonify run --synth ------------------------------------------------------------------------

def test_synth_with_no_sound_card_renders_a_wav_with_sound(fluid: tuple[str, Path],
                                                           tmp_path: Path) -> None:
    env = quiet_env(tmp_path)
    if audio_drivers(env):
        pytest.skip("this box has a sound card: --synth plays through it")
    done = subprocess.run([*SONIFY, "run", "--synth", "--source", "demo", "--duration", "4",
                           "--no-midi", "--control-port", "0", "--http-port", "0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    wav = tmp_path / "sonify-synth.wav"
    assert "no audio device" in done.stderr and f"FluidSynth with {fluid[1]}" in done.stderr
    assert str(wav) in done.stderr  # it says where, at the start and at the end
    assert f"sonify: the synth's audio is in {wav}" in done.stderr
    samples, rate = read_wav(wav)
    assert len(samples) / rate == pytest.approx(4.0, abs=0.5)
    target = load_scene("gallery").render.loudness_lufs
    assert integrated_loudness(samples, rate) == pytest.approx(target, abs=1.0)


def test_without_fluidsynth_the_builtin_synth_renders_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sonify.live.wiring import build_outputs, close_outputs

    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no fluidsynth anywhere
    monkeypatch.chdir(tmp_path)
    config = Config()
    config.midi.enabled = False
    config.synth.enabled = True
    outputs, notes = build_outputs(config)
    assert [type(o) for o in outputs] == [WavRenderer]
    said = " ".join(notes)
    assert "FluidSynth is not installed" in said and "built-in synth" in said
    assert str(tmp_path / "sonify-synth.wav") in said
    for ev in melody(5.0):
        outputs[0].send(ev)
    close_outputs(outputs, end_s=9.0)
    samples, rate = read_wav(tmp_path / "sonify-synth.wav")
    assert len(samples) / rate == pytest.approx(4.0, abs=0.01)
    assert window_dbfs(samples, rate, 0.55, 0.9) > -40.0


def test_a_named_driver_fluidsynth_cannot_play_through_is_an_error(
        fluid: tuple[str, Path], tmp_path: Path) -> None:
    env = quiet_env(tmp_path)  # no JACK server under this name
    with pytest.raises(SynthError, match="could not play through JACK"):
        open_synth(driver="jack", env=env, wav_file=tmp_path / "x.wav")


def test_synth_plays_live_through_jack_and_panic_silences_it(
        fluid: tuple[str, Path], jack_server: JackServer) -> None:
    assert "jack" in audio_drivers(jack_server.env)
    client = unique_name("sonify-synth-")
    out = FluidSynthOutput(fluid[1], driver="jack", program=fluid[0], client_name=client,
                           env=jack_server.env)
    try:
        assert wait_until(lambda: f"{client}:left" in jack_server.ports(), 10.0)
        assert f"{client}:left" in jack_server.connections()  # to the speakers (system:playback)
        out.send(ProgramChange(0, 0, 0))
        out.send(NoteOn(0, 0, 60, 100, note_id=1))
        out.send(NoteOn(0, 9, 36, 100, note_id=2))
        assert wait_until(lambda: (out.voice_count() or 0) >= 2, 5.0)
        out.panic()
        assert wait_until(lambda: out.voice_count() == 0, 5.0)
        assert out.stats.dropped == 0 and out.problem is None
    finally:
        out.close()
    assert out._proc.proc.returncode is not None  # the process is gone with the output


def test_a_synth_that_dies_is_restarted(fluid: tuple[str, Path],
                                        jack_server: JackServer) -> None:
    out = FluidSynthOutput(fluid[1], driver="jack", program=fluid[0],
                           client_name=unique_name("sonify-synth-"), env=jack_server.env)
    reconnected: list[object] = []
    out.on_reconnect = reconnected.append
    try:
        os.kill(out._proc.proc.pid, signal.SIGKILL)
        assert wait_until(lambda: not out.connected, 5.0)
        assert out.problem is not None and "FluidSynth stopped" in out.problem
        out.send(NoteOn(0, 0, 60, 100))  # counted as a drop, never raised
        assert out.stats.dropped == 1
        out.poll()
        assert out.connected and out.stats.reconnects == 1 and reconnected == [out]
        out.send(NoteOn(0, 0, 60, 100))
        assert wait_until(lambda: (out.voice_count() or 0) >= 1, 5.0)
    finally:
        out.close()


def test_a_synth_that_stops_reading_never_holds_the_dispatch_thread(
        fluid: tuple[str, Path], jack_server: JackServer) -> None:
    import threading

    from sonify.outputs.fluid import MAX_QUEUED

    out = FluidSynthOutput(fluid[1], driver="jack", program=fluid[0],
                           client_name=unique_name("sonify-synth-"), env=jack_server.env)
    pid = out._proc.proc.pid
    os.kill(pid, signal.SIGSTOP)  # a synth that hangs: its input pipe fills up
    try:
        def flood() -> None:
            for i in range(MAX_QUEUED):
                out.send(NoteOn(0, 0, 40 + i % 40, 90))
                out.send(NoteOff(0, 0, 40 + i % 40))

        sender = threading.Thread(target=flood)
        sender.start()
        sender.join(30.0)
        assert not sender.is_alive()  # every send returned
        assert out.stats.dropped > 0  # beyond the bound, counted as drops
        os.kill(pid, signal.SIGCONT)
        assert out.voice_count(timeout_s=10.0) is not None  # it catches up and answers
    finally:
        os.kill(pid, signal.SIGCONT)
        out.close()


def test_the_synth_config_names_a_bad_driver(tmp_path: Path) -> None:
    from sonify.config import ConfigError, load_config

    bad = tmp_path / "synth.toml"
    bad.write_text('[synth]\nenabled = true\ndriver = "oss"\n')
    with pytest.raises(ConfigError, match="synth.driver: must be one of auto, jack"):
        load_config(bad)


# -- sonify render --soundfont -----------------------------------------------------------------

def test_render_with_a_soundfont_plays_the_same_music_with_real_instruments(
        fluid: tuple[str, Path], tmp_path: Path) -> None:
    from sonify.render import render

    fs, builtin = tmp_path / "fs", tmp_path / "builtin"
    fs.mkdir()
    builtin.mkdir()
    render(str(PHOTO), [str(fs / "p.wav"), str(fs / "p.mid")], scene="gallery", duration_s=8,
           soundfont="auto")
    render(str(PHOTO), [str(builtin / "p.wav"), str(builtin / "p.mid")], scene="gallery",
           duration_s=8)
    # the music is the same (determinism), the sound is not the built-in synth's
    assert (fs / "p.mid").read_bytes() == (builtin / "p.mid").read_bytes()
    a, rate = read_wav(fs / "p.wav")
    b, _ = read_wav(builtin / "p.wav")
    assert len(a) == len(b) == 8 * rate
    target = load_scene("gallery").render.loudness_lufs
    assert integrated_loudness(a, rate) == pytest.approx(target, abs=0.5)
    assert not np.allclose(a, b, atol=0.01)


def test_render_soundfont_that_is_missing_is_named(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from sonify.cli import main

    code = main(["render", str(PHOTO), "-o", str(tmp_path / "x.wav"), "--duration", "2",
                 "--soundfont", str(tmp_path / "nope.sf2")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.sf2" in err and "does not exist" in err
    assert not (tmp_path / "x.wav").exists()


# -- the README --------------------------------------------------------------------------------

def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Sound out of the box", 1)[1].split("\n## ", 1)[0]


def test_readme_quick_start_and_section_show_the_synth() -> None:
    quick = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "sonify run --synth" in quick
    block = re.search(r"```sh\n(.*?)```", readme_section(), re.S)
    assert block is not None
    commands = [ln.split("#")[0].strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert commands == ["sonify run --synth --source demo --duration 10",
                        "sonify render tests/data/photos/coffee.jpg -o piece.wav "
                        "--soundfont auto --duration 20"]


def test_readme_render_example_runs(fluid: tuple[str, Path], tmp_path: Path) -> None:
    block = re.search(r"```sh\n(.*?)```", readme_section(), re.S)
    assert block is not None
    line = block.group(1).splitlines()[1].split("#")[0].split()
    assert line[:2] == ["sonify", "render"]
    args = [str(ROOT / a) if a.startswith("tests/") else a for a in line[2:]]
    args[args.index("--duration") + 1] = "6"  # shorter, same path
    done = subprocess.run([*SONIFY, "render", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    samples, rate = read_wav(tmp_path / "piece.wav")
    assert integrated_loudness(samples, rate) > -40.0
