"""`sonify pianoroll`: the piano roll, drawn back from the MIDI file alone, is the picture."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import cv2
import mido
import numpy as np
import pytest

import sonify.cli
from sonify.capture import SourceError
from sonify.cli import CliError
from sonify.music.theory import scale_pcs
from sonify.tools import pianoroll

ROWS = 61  # C2..C7, the default range
LOW = 36
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def run_cli(*argv: str) -> int:
    """Run `sonify pianoroll ...` as the CLI would, reporting errors without ending the test."""
    args = sonify.cli.build_parser().parse_args(["pianoroll", *argv])
    try:
        return pianoroll.run(args)
    except (CliError, SourceError) as exc:
        print(f"sonify: error: {exc}", file=sys.stderr)
        return 2


def save(tmp_path: Path, name: str, image: np.ndarray) -> str:
    path = tmp_path / name
    assert cv2.imwrite(str(path), image)
    return str(path)


# -- pictures ------------------------------------------------------------------------------------

def text_picture() -> np.ndarray:
    img = np.full((240, 960, 3), 255, np.uint8)
    cv2.putText(img, "sonify", (30, 185), cv2.FONT_HERSHEY_SIMPLEX, 6.0, BLACK, 24, cv2.LINE_AA)
    return img


def shapes_picture() -> np.ndarray:
    img = np.full((400, 400, 3), 255, np.uint8)
    cv2.circle(img, (110, 110), 70, BLACK, -1)
    cv2.rectangle(img, (230, 50), (360, 170), BLACK, -1)
    cv2.fillPoly(img, [np.array([[60, 360], [200, 220], [340, 360]], np.int32)], BLACK)
    return img


def radial_gradient() -> np.ndarray:
    """Dark in the middle, light at the edges: a threshold cuts a disc out of it."""
    yy, xx = np.mgrid[0:300, 0:450]
    r = np.hypot(xx - 225, yy - 150) / 200.0
    luma = np.clip(r, 0.0, 1.0) * 255.0
    return np.ascontiguousarray(np.repeat(luma[:, :, None], 3, axis=2).astype(np.uint8))


# -- reading the roll back -------------------------------------------------------------------------

def decode_roll(path: str, rows: int, columns: int, seconds: float,
                pitches: list[int] | None = None) -> np.ndarray:
    """Draw the notes of the MIDI file at ``path`` onto a rows x columns grid (row 0 = top).

    Uses only the file: ticks per beat, the set_tempo and the note times; a note's start and
    end seconds become columns at ``seconds / columns`` per column.
    """
    mid = mido.MidiFile(path)
    pitches = pitches or list(range(LOW, LOW + rows))
    tempos = [m.tempo for t in mid.tracks for m in t if m.type == "set_tempo"]
    assert len(tempos) == 1
    grid = np.zeros((rows, columns), bool)
    column_s = seconds / columns
    for track in mid.tracks:
        tick = 0
        started: dict[int, int] = {}
        for msg in track:
            tick += msg.time
            col = round(mido.tick2second(tick, mid.ticks_per_beat, tempos[0]) / column_s)
            if msg.type == "note_on" and msg.velocity > 0:
                assert msg.note not in started, "overlapping notes on one pitch"
                started[msg.note] = col
            elif msg.type in ("note_off", "note_on"):
                row = rows - 1 - pitches.index(msg.note)
                grid[row, started.pop(msg.note):col] = True
        assert not started, "a note is never ended"
    return grid


def thresholded(image: np.ndarray, rows: int, columns: int, threshold: float = 0.5,
                bright: bool = False) -> np.ndarray:
    """The input as the docs describe it: luma area-averaged onto the grid, then thresholded."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    luma = cv2.resize(gray, (columns, rows), interpolation=cv2.INTER_AREA)
    return luma > threshold if bright else luma <= threshold


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


# -- the roll is the picture ---------------------------------------------------------------------

@pytest.mark.parametrize(("name", "draw", "extra", "threshold"), [
    ("text", text_picture, (), 0.5),
    ("shapes", shapes_picture, (), 0.5),
    ("gradient", radial_gradient, ("--threshold", "0.35", "--no-invert"), 0.35),
])
def test_piano_roll_drawn_back_from_the_file_is_the_picture(
        tmp_path: Path, name: str, draw: object, extra: tuple[str, ...],
        threshold: float) -> None:
    image = draw()  # type: ignore[operator]
    out = tmp_path / f"{name}.mid"
    assert run_cli(save(tmp_path, f"{name}.png", image), "-o", str(out), *extra) == 0
    h, w = image.shape[:2]
    columns = min(512, round(ROWS * w / h))
    roll = decode_roll(str(out), ROWS, columns, 30.0)
    reference = thresholded(image, ROWS, columns, threshold)
    assert reference.sum() > 50  # the picture really has strokes to compare
    assert iou(roll, reference) >= 0.9  # measured 1.0: the file holds the grid exactly
    # And the grid still is the picture: the roll scaled up to the picture's size against the
    # picture thresholded at full resolution (measured 0.92 text, 0.96 shapes and gradient).
    full = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) / 255.0 <= threshold
    scaled = cv2.resize(roll.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    assert iou(scaled, full) >= 0.9


def test_light_strokes_on_dark_ground_are_found_by_themselves(tmp_path: Path) -> None:
    image = 255 - text_picture()
    auto, forced = tmp_path / "auto.mid", tmp_path / "forced.mid"
    path = save(tmp_path, "negative.png", image)
    assert run_cli(path, "-o", str(auto)) == 0
    assert run_cli(path, "-o", str(forced), "--invert") == 0
    roll = decode_roll(str(auto), ROWS, 244, 30.0)
    assert iou(roll, thresholded(image, ROWS, 244, bright=True)) >= 0.9
    assert np.array_equal(roll, decode_roll(str(forced), ROWS, 244, 30.0))


def test_otsu_threshold_finds_a_faint_drawing(tmp_path: Path) -> None:
    image = np.full((200, 200, 3), 200, np.uint8)  # light grey paper, mid grey pencil
    cv2.rectangle(image, (40, 40), (160, 160), (150, 150, 150), -1)
    out = tmp_path / "faint.mid"
    assert run_cli(save(tmp_path, "faint.png", image), "-o", str(out)) == 0
    assert not decode_roll(str(out), ROWS, ROWS, 30.0).any()  # 0.5 sees only paper
    assert run_cli(save(tmp_path, "faint.png", image), "-o", str(out), "--threshold", "auto") == 0
    roll = decode_roll(str(out), ROWS, ROWS, 30.0)
    assert iou(roll, thresholded(image, ROWS, ROWS, 175 / 255)) >= 0.9


def test_one_line_is_one_note_per_row_with_its_start_and_end(tmp_path: Path) -> None:
    image = np.full((61, 100, 3), 255, np.uint8)
    image[30, 20:60] = BLACK  # row 30 of 61: the middle pitch, 36 + 30 = 66
    out = tmp_path / "line.mid"
    assert run_cli(save(tmp_path, "line.png", image), "-o", str(out), "--seconds", "10") == 0
    notes = [m for m in mido.MidiFile(str(out)) if not m.is_meta]
    assert [m.type for m in notes] == ["note_on", "note_off"]
    assert {m.note for m in notes} == {66}
    assert notes[0].velocity == 127  # solid black


def test_scale_rows_are_only_scale_pitches(tmp_path: Path) -> None:
    image = shapes_picture()
    out = tmp_path / "scale.mid"
    path = save(tmp_path, "shapes.png", image)
    assert run_cli(path, "-o", str(out), "--scale", "major", "--root", "D") == 0
    pcs = scale_pcs(2, "major")
    pitches = [p for p in range(36, 97) if p % 12 in pcs]
    assert len(pitches) == 35  # 5 octaves of 7; C7 itself is not in D major
    played = {m.note for m in mido.MidiFile(str(out)) if m.type == "note_on"}
    assert played and all(p % 12 in pcs for p in played)
    roll = decode_roll(str(out), len(pitches), len(pitches), 30.0, pitches)
    assert iou(roll, thresholded(image, len(pitches), len(pitches))) >= 0.9


@pytest.mark.parametrize("seconds", [0.5, 12.5, 30.0, 600.0])
def test_file_lasts_the_requested_seconds(tmp_path: Path, seconds: float) -> None:
    out = tmp_path / "len.mid"
    assert run_cli(save(tmp_path, "s.png", shapes_picture()), "-o", str(out),
                  "--seconds", str(seconds)) == 0
    mid = mido.MidiFile(str(out))
    assert mid.type == 1
    assert mid.length == pytest.approx(seconds, abs=1e-3)
    assert mid.tracks[1].name == "pianoroll"


def test_very_long_piece_stays_within_midi_tempo_range() -> None:
    column_ticks, tempo_us = pianoroll.column_timing(columns=2, seconds=3600.0)
    assert tempo_us <= 0xFFFFFF
    assert column_ticks * 2 * tempo_us / pianoroll.TICKS_PER_BEAT / 1e6 == pytest.approx(3600.0)


def test_columns_keep_the_aspect_up_to_a_cap() -> None:
    assert pianoroll.auto_columns(960, 240, 61) == 244
    assert pianoroll.auto_columns(10_000, 100, 61) == pianoroll.MAX_COLUMNS
    assert pianoroll.auto_columns(10, 10_000, 61) == 1


# -- what goes wrong ----------------------------------------------------------------------------

def test_blank_picture_gives_a_silent_file_of_the_requested_length(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "blank.mid"
    with caplog.at_level(logging.WARNING, logger="sonify.tools.pianoroll"):
        assert run_cli(save(tmp_path, "white.png", np.full((90, 160, 3), 255, np.uint8)),
                      "-o", str(out), "--seconds", "20") == 0
    mid = mido.MidiFile(str(out))
    assert mid.length == pytest.approx(20.0, abs=1e-3)
    assert not [m for m in mid if m.type == "note_on"]
    assert "silent" in caplog.text and "white.png" in caplog.text


def test_corrupt_image_exits_2_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a picture")
    out = tmp_path / "out.mid"
    assert run_cli(str(bad), "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and "cannot read image" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png"]


def test_missing_image_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.mid")) == 2
    assert "no such image file" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_the_old_file_and_no_partial_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "roll.mid"
    out.write_bytes(b"previous")
    image = save(tmp_path, "shapes.png", shapes_picture())

    def half_then_fail(self: mido.MidiFile, filename: object = None, file: object = None) -> None:
        file.write(b"MThd")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mido.MidiFile, "save", half_then_fail)
    assert run_cli(image, "-o", str(out)) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roll.mid", "shapes.png"]


@pytest.mark.parametrize(("args", "message"), [
    (("--low", "C7", "--high", "C2"), "must be below --high"),
    (("--low", "H2"), "not a note"),
    (("--scale", "klingon"), "unknown scale"),
    (("--root", "D"), "--root only applies with --scale"),
    (("--seconds", "0"), "--seconds must be"),
])
def test_bad_options_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           args: tuple[str, ...], message: str) -> None:
    image = save(tmp_path, "s.png", shapes_picture())
    assert run_cli(image, "-o", str(tmp_path / "x.mid"), *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.mid").exists()


def test_threshold_out_of_range_is_refused_by_the_parser(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli("x.png", "-o", "x.mid", "--threshold", "1.5")
    assert exc.value.code == 2


def test_through_the_real_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli.mid"
    path = save(tmp_path, "s.png", shapes_picture())
    assert sonify.cli.main(["pianoroll", path, "-o", str(out)]) == 0
    assert mido.MidiFile(str(out)).length == pytest.approx(30.0, abs=1e-3)
    assert sonify.cli.main(["pianoroll", str(tmp_path / "missing.png"), "-o", str(out)]) == 2
