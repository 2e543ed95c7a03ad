"""`sonify render`: pictures and videos the tests make become MIDI, JSON and PNG files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import mido
import numpy as np
import pytest

from sonify.cli import main
from sonify.render import render
from tests.features import images


def two_sided_picture(path: Path) -> Path:
    """Warm and busy on the left, cool and calm on the right: a journey has places to go."""
    h, w = 540, 960
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = images.gradient(w // 2, h, warm=True)
    img[:, w // 2 :] = images.gradient(w - w // 2, h, warm=False)
    rng = np.random.default_rng(1)
    for _ in range(40):  # shapes on the warm side
        x, y = int(rng.integers(20, w // 2 - 60)), int(rng.integers(20, h - 60))
        cv2.rectangle(img, (x, y), (x + 40, y + 40), (30, 220, 255), 3)
    cv2.imwrite(str(path), img)
    return path


def cut_video(path: Path, fps: float = 30.0, cut_s: float = 2.0, total_s: float = 4.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 180))
    a = images.gradient(320, 180, warm=True)
    b = images.checkerboard(320, 180, cell=20)
    for i in range(int(total_s * fps)):
        writer.write(a if i < cut_s * fps else b)
    writer.release()
    return path


def test_same_input_scene_and_seed_give_identical_files(tmp_path: Path) -> None:
    pic = two_sided_picture(tmp_path / "pic.png")
    outs = []
    for run in ("a", "b"):
        files = [str(tmp_path / f"{run}.{ext}") for ext in ("mid", "json", "png")]
        render(str(pic), files, scene="gallery", duration_s=20.0, seed=3)
        outs.append([Path(f).read_bytes() for f in files])
    assert outs[0] == outs[1]
    other = tmp_path / "c.json"
    render(str(pic), [str(other)], scene="gallery", duration_s=20.0, seed=4)
    assert other.read_bytes() != outs[0][1]


def test_a_still_image_piece_changes_over_its_duration(tmp_path: Path) -> None:
    pic = two_sided_picture(tmp_path / "pic.png")
    out = tmp_path / "piece.json"
    render(str(pic), [str(out)], scene="gallery", duration_s=45.0)
    piece = json.loads(out.read_text())
    notes = [n for n in piece["notes"] if not n["voice"].startswith("trigger")]
    third = piece["duration_s"] / 3
    first = [n for n in notes if n["t"] < third]
    last = [n for n in notes if n["t"] >= 2 * third]
    assert first and last
    pitch_first = np.mean([n["pitch"] for n in first])
    pitch_last = np.mean([n["pitch"] for n in last])
    vel_first = np.mean([n["velocity"] for n in first])
    vel_last = np.mean([n["velocity"] for n in last])
    assert (abs(pitch_first - pitch_last) >= 1.0 or abs(len(first) - len(last)) >= 3
            or abs(vel_first - vel_last) >= 5)
    assert len(piece["path"]) >= 4  # opening, regions, ending


def test_midi_file_parses_and_lasts_the_requested_duration(tmp_path: Path) -> None:
    pic = two_sided_picture(tmp_path / "pic.png")
    mid = tmp_path / "piece.mid"
    render(str(pic), [str(mid)], scene="energize", duration_s=12.0)
    f = mido.MidiFile(str(mid))
    assert f.type == 1 and len(f.tracks) >= 3
    assert f.length == pytest.approx(12.0, abs=0.05)
    names = [t.name for t in f.tracks]
    assert "tempo" in names and len(set(names)) == len(names)


def test_a_note_answering_a_video_cut_lands_within_one_frame(tmp_path: Path) -> None:
    video = cut_video(tmp_path / "cut.avi")
    out = tmp_path / "video.json"
    render(str(video), [str(out)], scene="gallery")
    piece = json.loads(out.read_text())
    assert piece["duration_s"] == pytest.approx(4.0, abs=0.05)
    cut_notes = [n for n in piece["notes"] if n["voice"] == "trigger:cut_onset"]
    assert len(cut_notes) == 1
    assert 2.0 <= cut_notes[0]["t"] <= 2.0 + 1 / 30
    assert len(piece["sections"]) == 2 and piece["sections"][1] == pytest.approx(2.0, abs=1 / 30)


def test_png_shows_the_piece(tmp_path: Path) -> None:
    pic = two_sided_picture(tmp_path / "pic.png")
    png = tmp_path / "piece.png"
    render(str(pic), [str(png)], duration_s=10.0)
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] == 1600 and img.std() > 10


def test_corrupt_input_exits_2_and_leaves_no_file(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    outdir = tmp_path / "out"
    outdir.mkdir()
    code = main(["render", str(bad), "-o", str(outdir / "x.mid"), "-o", str(outdir / "x.png")])
    err = capsys.readouterr().err
    assert code == 2 and "broken.jpg" in err
    assert list(outdir.iterdir()) == []


def test_unknown_output_kind_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pic = two_sided_picture(tmp_path / "pic.png")
    code = main(["render", str(pic), "-o", str(tmp_path / "x.mp3")])
    assert code == 2 and ".wav" in capsys.readouterr().err


def test_cli_prints_a_summary_and_no_progress_bar_off_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pic = two_sided_picture(tmp_path / "pic.png")
    code = main(["render", str(pic), "-o", str(tmp_path / "x.json"), "--duration", "8",
                 "--tempo", "90"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "rendered 8.0 s of gallery" in out and "notes:" in out and "mood:" in out
    assert "\r" not in err
    assert json.loads((tmp_path / "x.json").read_text())["tempo_bpm"] == pytest.approx(90 * 1.0)


def test_wav_has_the_right_length_is_not_silent_and_never_clips(tmp_path: Path) -> None:
    import wave

    pic = two_sided_picture(tmp_path / "pic.png")
    wav = tmp_path / "piece.wav"
    render(str(pic), [str(wav)], scene="energize", duration_s=10.0)
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 44100)
        assert w.getnframes() == 10 * 44100
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert np.abs(samples.astype(np.int32)).max() < 32767
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 300


def test_video_wav_is_as_long_as_the_video(tmp_path: Path) -> None:
    import wave

    video = cut_video(tmp_path / "cut.avi")
    wav = tmp_path / "video.wav"
    render(str(video), [str(wav)], scene="city")
    with wave.open(str(wav)) as w:
        assert w.getnframes() == pytest.approx(4.0 * 44100, abs=2)


def test_outputs_are_all_written_or_none(tmp_path: Path) -> None:
    """The .wav's folder became a file while rendering (the OS refuses the .wav); the .mid,
    written first, is not left behind either, and an existing file of that name is left as
    it was."""
    from sonify.render import RenderWriteError

    pic = two_sided_picture(tmp_path / "pic.png")
    mid, sub = tmp_path / "x.mid", tmp_path / "sub"
    mid.write_bytes(b"the old x.mid")
    sub.mkdir()

    def remove_the_folder(t: float, total: float) -> None:
        if sub.is_dir() and t > total / 2:
            sub.rmdir()
            sub.write_text("in the way")

    with pytest.raises(RenderWriteError, match="no output file was written"):
        render(str(pic), [str(mid), str(sub / "x.wav")], duration_s=4.0,
               progress=remove_the_folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pic.png", "sub", "x.mid"]
    assert mid.read_bytes() == b"the old x.mid"


@pytest.mark.parametrize("scene", ["gallery", "city"])
def test_a_video_render_ends_on_the_tonic_held(tmp_path: Path, scene: str) -> None:
    """A video (here the demo, which has cuts) of known length plans its final cadence as a
    still picture's piece does, without the arc: the last chord is the tonic, held to the end."""
    from sonify.music.figures import judge
    from sonify.music.parts import hints_from_scene
    from sonify.scene import load_scene

    mid = tmp_path / "video.mid"
    render("demo", [str(mid)], scene=scene, duration_s=30.0)
    figures = judge(mid, hints_from_scene(load_scene(scene)))
    assert figures.ending_tonic and figures.ending_held, figures.ending_chord
