"""The built-in synthesiser: a WAV of exactly the asked length, stereo 16-bit 44.1 kHz, never at
full scale, deterministic, panned and in tune, written atomically, and fast."""

from __future__ import annotations

import logging
import random
import time
import wave
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from sonify.events import (
    ControlChange,
    Event,
    Note,
    NoteOff,
    NoteOn,
    OscMessage,
    PitchBend,
    ProgramChange,
    Tempo,
)
from sonify.outputs import drumkit, mastering, synth, synthscore
from sonify.outputs.synth import WavRenderer, WavWriteError, instrument_for, render_audio

SR = 44100
FULL_SCALE = 32767


def busy_piece(duration_s: float = 60.0, seed: int = 1) -> list[Event]:
    """A dense piece: 7 pitched voices (pad chords, strings, organ, bass, arp, melody, sparkle)
    plus drums on channel 10, about 17 notes a second, as the scheduler sends them."""
    rnd = random.Random(seed)
    events: list[Event] = []
    next_id = 0

    def note(t: float, channel: int, pitch: int, velocity: int, length_s: float,
             voice: str) -> None:
        nonlocal next_id
        next_id += 1
        events.append(NoteOn(t, channel, pitch, velocity, voice, next_id))
        events.append(NoteOff(t + length_s, channel, pitch, voice, next_id))

    for channel, program, voice in ((0, 89, "pad"), (1, 38, "bass"), (2, 80, "arp"),
                                    (3, 0, "melody"), (4, 10, "sparkle"), (5, 48, "strings"),
                                    (6, 16, "organ")):
        events.append(ProgramChange(0.0, channel, program, voice))
    events.append(Tempo(0.0, 120.0))
    beat = 0.5
    for step in range(int(duration_s / beat)):
        t = step * beat
        if step % 4 == 0:
            for pitch in (48, 52, 55, 59):
                note(t, 0, pitch, 70, 2.0, "pad")
            note(t, 5, 64, 60, 2.0, "strings")
        if step % 2 == 0:
            note(t, 6, 60 + rnd.randrange(12), 60, 0.9, "organ")
        note(t, 1, 36 + rnd.choice([0, 3, 5, 7]), 100, beat * 0.9, "bass")
        for k in range(2):
            note(t + k * beat / 2, 2, 60 + rnd.choice([0, 4, 7, 12, 16]), 90, beat * 0.4, "arp")
        if rnd.random() < 0.5:
            note(t, 3, 67 + rnd.randrange(12), 80, beat, "melody")
        if rnd.random() < 0.3:
            note(t, 4, 84 + rnd.randrange(12), 70, 0.2, "sparkle")
        note(t, 9, 36 if step % 2 == 0 else 38, 110, 0.1, "drums")
        note(t, 9, 42, 80, 0.05, "drums")
        note(t + beat / 2, 9, 42, 60, 0.05, "drums")
        if step % 16 == 0:
            note(t, 9, 49, 100, 0.5, "drums")
    return events


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        frames = np.frombuffer(w.readframes(params.nframes), dtype="<i2")
    return params, frames.reshape(-1, params.nchannels)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def render_file(tmp_path: Path, events: list[Event], duration_s: float,
                name: str = "out.wav") -> Path:
    out = WavRenderer(tmp_path / name, start_s=0.0, duration_s=duration_s)
    for ev in events:
        out.send(ev)
    return out.save()


# -- length and format -------------------------------------------------------------------------

@pytest.mark.parametrize("duration_s", [0.0, 0.5, 1.0, 2.34567, 7.25])
def test_the_audio_lasts_exactly_the_asked_duration_even_with_notes_past_the_end(
        tmp_path: Path, duration_s: float) -> None:
    events: list[Event] = [
        ProgramChange(0.0, 0, 89, "pad"),
        Note(0.0, 0, 60, 90, 30.0, "pad"),  # held far past the end
        Note(max(0.0, duration_s - 0.1), 9, 49, 120, 1.0, "drums"),  # a crash ringing out
        Note(duration_s + 1.0, 1, 40, 90, 1.0, "bass"),  # after the end: never heard
    ]
    expected = round(duration_s * SR)
    assert render_audio(events, duration_s).shape == (expected, 2)
    params, frames = read_wav(render_file(tmp_path, events, duration_s))
    assert params.nframes == expected and frames.shape == (expected, 2)


def test_the_wav_is_stereo_16_bit_44_1_khz(tmp_path: Path) -> None:
    path = render_file(tmp_path, [Note(0.1, 1, 45, 100, 0.5, "bass")], 1.0)
    params, _ = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, 44100)
    assert params.comptype == "NONE"


def test_the_renderer_ends_where_close_says_and_lines_up_with_start_s(tmp_path: Path) -> None:
    t0 = 1000.0
    out = WavRenderer(tmp_path / "run.wav", start_s=t0)
    out.send(NoteOn(t0 + 1.0, 1, 45, 100, "bass", 1))
    out.send(NoteOff(t0 + 1.5, 1, 45, "bass", 1))
    out.send(OscMessage(t0, "/ignored"))
    out.close(end_s=t0 + 2.5)
    params, frames = read_wav(tmp_path / "run.wav")
    assert params.nframes == round(2.5 * SR)
    first = int(np.argmax(np.abs(frames[:, 0]) > 0))
    assert abs(first - SR) <= 2  # the note starts 1 s in
    assert out.stats.sent == 2  # the OSC message is not wanted


def test_without_an_end_the_audio_runs_tail_s_past_the_last_event(tmp_path: Path) -> None:
    out = WavRenderer(tmp_path / "tail.wav", tail_s=1.5)
    out.send(NoteOn(5.0, 0, 60, 100, "melody", 1))
    out.send(NoteOff(6.0, 0, 60, "melody", 1))
    out.close()
    params, _ = read_wav(tmp_path / "tail.wav")
    assert params.nframes == round(2.5 * SR)  # from the first event (5.0) to 6.0 + 1.5


# -- level --------------------------------------------------------------------------------------

def test_no_sample_reaches_full_scale_even_in_a_dense_loud_piece(tmp_path: Path) -> None:
    events: list[Event] = [ProgramChange(0.0, c, p) for c, p in
                           ((0, 0), (1, 38), (2, 81), (3, 89), (4, 10), (5, 16))]
    for i in range(400):
        t = (i % 40) * 0.05
        events.append(Note(t, i % 6, 24 + (i * 7) % 90, 127, 1.5))
        events.append(Note(t, 9, (35, 36, 38, 39, 42, 46, 49, 51)[i % 8], 127, 0.1))
    _, frames = read_wav(render_file(tmp_path, events, 3.0))
    peak = int(np.abs(frames.astype(np.int32)).max())
    assert peak < FULL_SCALE
    assert peak <= round(10 ** (-1 / 20) * FULL_SCALE) + 1  # capped at -1 dBFS


def test_a_piece_with_notes_sits_at_the_default_minus_20_lufs(tmp_path: Path) -> None:
    _, frames = read_wav(render_file(tmp_path, busy_piece(8.0), 8.0))
    lufs = pyloudnorm.Meter(SR).integrated_loudness(frames / FULL_SCALE)
    assert lufs == pytest.approx(-20.0, abs=0.3)


def test_a_single_quiet_note_is_not_silent() -> None:
    audio = render_audio([Note(0.2, 0, 72, 10, 0.3, "melody")], 2.0)
    assert rms(audio) > 10 ** (-40 / 20)
    assert np.abs(audio).max() <= 10 ** (-1 / 20) + 1e-6


def test_a_piece_without_notes_is_a_valid_silent_wav(tmp_path: Path) -> None:
    events: list[Event] = [ProgramChange(0.0, 0, 89, "pad"), ControlChange(0.5, 0, 7, 100),
                           PitchBend(0.7, 0, 100), Tempo(0.0, 90.0)]
    params, frames = read_wav(render_file(tmp_path, events, 3.0))
    assert params.nframes == 3 * SR
    assert not frames.any()
    assert not render_audio([], 1.0).any()


# -- determinism, pan, pitch, envelopes ----------------------------------------------------------

def test_the_same_events_give_the_same_bytes(tmp_path: Path) -> None:
    events = busy_piece(6.0)
    a = render_file(tmp_path, events, 6.0, "a.wav")
    b = render_file(tmp_path, list(events), 6.0, "b.wav")
    assert a.read_bytes() == b.read_bytes()


def channel_energy(audio: np.ndarray) -> tuple[float, float]:
    return rms(audio[:, 0]), rms(audio[:, 1])


@pytest.mark.parametrize("program", [0, 38, 81, 89])
def test_cc_10_at_0_puts_a_voice_hard_left_and_at_127_hard_right(program: int) -> None:
    def render(pan: int) -> np.ndarray:
        return render_audio([ProgramChange(0.0, 2, program), ControlChange(0.0, 2, 10, pan),
                             Note(0.1, 2, 57, 100, 1.0, "lead")], 2.0)

    left, right = channel_energy(render(0))
    assert left > 0 and right < left * 1e-3
    left, right = channel_energy(render(127))
    assert right > 0 and left < right * 0.02


def test_bass_and_kick_sit_in_the_centre_and_other_voices_spread() -> None:
    for events in ([Note(0.1, 1, 40, 100, 1.0, "bass")], [Note(0.1, 9, 36, 100, 0.1)]):
        left, right = channel_energy(render_audio(events, 1.5))
        assert left == pytest.approx(right, rel=1e-3)
    pans = {synth.default_pan("pad", name, 0) for name in ("pad", "melody", "arp", "sparkle")}
    assert len(pans) == 4 and all(-0.6 <= p <= 0.6 for p in pans)
    assert synth.default_pan("lead", "arp", 3) == synth.default_pan("lead", "arp", 3)


def peak_frequency(mono: np.ndarray) -> float:
    window = np.hanning(len(mono))
    spectrum = np.abs(np.fft.rfft(mono * window, n=8 * len(mono)))
    return float(np.argmax(spectrum) * SR / (8 * len(mono)))


def test_a_bass_a2_sounds_at_110_hz() -> None:
    audio = render_audio([ProgramChange(0.0, 1, 33, "bass"), Note(0.0, 1, 45, 100, 2.0, "bass")],
                         2.0)
    held = audio[int(0.5 * SR):int(1.5 * SR), 0]
    assert peak_frequency(held) == pytest.approx(110.0, abs=2.0)


def test_pitch_bend_retunes_the_next_note_by_up_to_two_semitones() -> None:
    audio = render_audio([ProgramChange(0.0, 1, 33), PitchBend(0.0, 1, 8191),
                          Note(0.0, 1, 45, 100, 2.0, "bass")], 2.0)
    assert peak_frequency(audio[int(0.5 * SR):int(1.5 * SR), 0]) == pytest.approx(
        110.0 * 2 ** (2 / 12), abs=2.0)


@pytest.mark.parametrize("program", [0, 10, 16, 38, 80, 81, 89])
def test_notes_start_and_end_without_clicks(program: int) -> None:
    audio = render_audio([ProgramChange(0.0, 0, program), Note(0.1, 0, 52, 127, 0.4)], 3.0)
    mono = audio[:, 0]
    # a click is a jump of the order of the level; a smooth wave moves far less per sample
    peak = np.abs(mono).max()
    assert np.abs(np.diff(mono)).max() < 0.35 * peak
    onset = int(0.1 * SR)
    assert np.abs(mono[onset:onset + 3]).max() < 0.05 * peak  # it rises from silence
    assert mono[:int(0.1 * SR) - 1].max() == 0.0  # nothing before the note
    assert np.abs(mono[int(2.5 * SR):]).max() < 1e-3  # released long before the end


def test_the_end_fades_out_so_a_held_note_is_not_cut_with_a_click() -> None:
    audio = render_audio([ProgramChange(0.0, 0, 89), Note(0.0, 0, 60, 100, 10.0, "pad")], 3.0)
    assert np.abs(audio[-1]).max() < 1e-3
    assert rms(audio[-int(0.01 * SR):]) < 0.2 * rms(audio[int(2.0 * SR):int(2.9 * SR)])


def test_a_note_off_releases_the_note_it_ends() -> None:
    # two overlapping notes on one key: the note-off names which one ends
    events: list[Event] = [ProgramChange(0.0, 1, 33),
                           NoteOn(0.0, 1, 45, 100, "bass", 1), NoteOn(0.5, 1, 45, 100, "bass", 2),
                           NoteOff(1.0, 1, 45, "bass", 2), NoteOff(3.0, 1, 45, "bass", 1)]
    notes = synthscore.score(events, 4.0)
    assert [(n.note_id, n.off_s) for n in notes] == [(1, 3.0), (2, 1.0)]
    all_off = synthscore.score([NoteOn(0.0, 3, 60, 90), ControlChange(0.2, 3, 123, 0)], 4.0)
    assert all_off[0].off_s == 0.2


def test_instruments_follow_the_gm_program_then_the_voice_name_then_piano() -> None:
    assert instrument_for(9, 0, "melody") == "drums"  # channel 10 is always the kit
    assert [instrument_for(0, p, "") for p in (0, 5, 11, 17, 25, 33, 48, 80, 81, 89, 112)] == [
        "piano", "piano", "bell", "organ", "piano", "bass", "pad", "square", "lead", "pad",
        "bell"]
    assert instrument_for(0, 89, "bass") == "pad"  # the program wins over the name
    assert [instrument_for(0, None, v) for v in
            ("drums", "Bass", "arp", "warm pad", "sparkle", "lead", "melody", "")] == [
        "drums", "bass", "square", "pad", "bell", "lead", "piano", "piano"]


def test_a_very_long_note_is_made_in_pieces_with_the_same_samples(
        monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[Event] = [ProgramChange(0.0, 0, 89), Note(0.0, 0, 57, 100, 5.0, "pad")]
    whole = render_audio(events, 3.0)
    monkeypatch.setattr(synth, "_RAMP_MAX", 10007)  # pieces of a quarter second
    assert np.array_equal(render_audio(events, 3.0), whole)


def test_drums_play_by_gm_pitch_and_noise_is_seeded() -> None:
    kick, hat = drumkit.drum_hit(36, 0, SR), drumkit.drum_hit(42, 0, SR)
    assert peak_frequency(kick[:int(0.3 * SR)]) < 120.0  # low thump
    assert peak_frequency(hat) > 3000.0  # bright hiss
    assert len(hat) < len(kick) < len(drumkit.drum_hit(49, 0, SR))  # hat short, crash long
    first = drumkit.drum_hit(38, 1, SR).copy()
    drumkit.drum_hit.cache_clear()
    assert np.array_equal(drumkit.drum_hit(38, 1, SR), first)


# -- writing ------------------------------------------------------------------------------------

def test_an_unwritable_place_is_a_clear_error_and_leaves_no_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    out = WavRenderer(blocker / "out.wav", start_s=0.0, duration_s=1.0)
    out.send(NoteOn(0.0, 0, 60, 100, "melody"))
    with pytest.raises(WavWriteError, match="cannot write the WAV file .*not-a-dir/out.wav"):
        out.save()
    with caplog.at_level(logging.WARNING):
        out.close()  # like every output, close logs instead of raising
    assert "cannot write the WAV file" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]


def test_a_failure_while_writing_keeps_the_old_file_and_leaves_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "take.wav"
    path.write_bytes(b"the previous take")

    def broken(left: np.ndarray, right: np.ndarray) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mastering, "_pcm16", broken)
    out = WavRenderer(path, start_s=0.0, duration_s=1.0)
    out.send(NoteOn(0.0, 0, 60, 100, "melody"))
    with pytest.raises(WavWriteError, match="No space left on device"):
        out.save()
    assert path.read_bytes() == b"the previous take"
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]


def test_close_after_save_does_not_render_again(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = WavRenderer(tmp_path / "once.wav", start_s=0.0, duration_s=1.0)
    out.send(NoteOn(0.0, 0, 60, 100, "melody"))
    out.save()
    calls = []
    real = synth._render_lr
    monkeypatch.setattr(synth, "_render_lr", lambda *a: calls.append(1) or real(*a))
    out.close()
    assert calls == []


# -- speed --------------------------------------------------------------------------------------

def test_a_busy_minute_renders_far_faster_than_real_time(tmp_path: Path) -> None:
    events = busy_piece(60.0)
    assert sum(isinstance(e, NoteOn) for e in events) > 600
    render_audio(busy_piece(2.0), 2.0)  # tables and drum sounds, once per process
    start = time.perf_counter()
    path = render_file(tmp_path, events, 60.0)
    elapsed = time.perf_counter() - start
    assert read_wav(path)[0].nframes == 60 * SR
    assert elapsed < 10.0, f"60 s of a busy piece took {elapsed:.2f} s to render and write"
