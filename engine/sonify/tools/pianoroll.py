"""``sonify pianoroll``: write a MIDI file whose piano roll *is* the picture.

Composers who draw pictures into their piano rolls do this by hand; here the picture is laid
on a grid of ``rows`` pitches by ``columns`` time steps and every inked cell becomes sound:

1. Rows are the pitches from ``--low`` to ``--high`` (default C2..C7, 61 rows), the top row the
   highest; with ``--scale`` only that scale's pitches in the range, so no row is wasted.
2. Columns keep the picture's aspect: ``round(rows * width / height)``, at most
   ``MAX_COLUMNS`` (512), at least 1; ``--columns`` overrides.
3. The picture's luma (0 black .. 1 white) is area-averaged (``cv2.INTER_AREA``) onto that
   grid. A cell is *bright* when its luma is above the threshold (default 0.5; ``auto``: Otsu's
   threshold on the grid's own luma, which suits faint or low-contrast drawings), else *dark*.
4. The ink is the dark cells (``--no-invert``: dark strokes on paper), the bright ones
   (``--invert``: light strokes on a dark ground), or by default whichever of the two is the
   minority, since strokes cover less of a drawing than its ground (a tie counts as dark).
5. Each horizontal run of inked cells in a row is one note: it starts at its first column and
   ends where its last column ends. Its velocity says how strong the stroke is:
   ``32 + 95 * ink``, the run's mean ink being 1 - luma for dark strokes and luma for bright
   ones (solid black, or white when inverted, is 127; mid grey about 80).

The file is a type-1 Standard MIDI File: track 0 carries the tempo, a 4/4 time signature and
the picture's name; track 1, named "pianoroll", the notes on channel 1. A column is a sixteenth
note (120 of 480 ticks per beat) and the tempo is set so the piece lasts ``--seconds``
(a column becomes longer than a beat only when that tempo would be slower than MIDI allows).

A blank picture (no inked cell) still gives a valid, silent file of the requested length, with
a warning, so a batch of conversions never breaks on one empty frame. The file is written to
a temporary file beside the target and renamed over it, so a failure never leaves a partial
file behind.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import mido
import numpy as np

from sonify.capture.files import ImageSource
from sonify.music.theory import SCALES, TheoryError, parse_note, parse_pitch_class, scale_pcs
from sonify.util.atomicio import atomic_write

logger = logging.getLogger(__name__)

MAX_COLUMNS = 512
"""Most time steps chosen automatically: beyond this a wide picture's notes get too short."""
TICKS_PER_BEAT = 480
COLUMN_TICKS = 120  # a sixteenth note per column: the grid lines a DAW draws fall on columns
MAX_TEMPO_US = 0xFFFFFF  # the largest microseconds-per-beat a set_tempo message can carry
MIN_SECONDS, MAX_SECONDS = 0.1, 86_400.0
VELOCITY_FAINT, VELOCITY_SOLID = 32, 127
NOTE_TRACK_NAME = "pianoroll"


@dataclass(frozen=True, slots=True)
class Note:
    """One run of inked cells: ``pitch``, columns ``start_col`` (inclusive) to ``end_col``
    (exclusive), ``velocity`` 1..127."""

    pitch: int
    start_col: int
    end_col: int
    velocity: int


def roll_pitches(low: int, high: int, scale: str | None = None, root_pc: int = 0) -> list[int]:
    """The pitches of the rows, lowest first: every semitone from ``low`` to ``high``
    inclusive, or only those of ``scale`` on ``root_pc`` when a scale is given."""
    if scale is None:
        return list(range(low, high + 1))
    pcs = scale_pcs(root_pc % 12, scale)
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def auto_columns(width_px: int, height_px: int, rows: int) -> int:
    """Columns that keep the picture's aspect on a ``rows``-high grid, 1..MAX_COLUMNS."""
    return max(1, min(MAX_COLUMNS, round(rows * width_px / height_px)))


def ink_grid(image: np.ndarray, rows: int, columns: int, threshold: float | None,
             invert: bool | None) -> tuple[np.ndarray, np.ndarray, float]:
    """The picture on a ``rows`` x ``columns`` grid: (inked cells as bool, ink strength 0..1
    per cell, the threshold used). ``threshold`` None means Otsu; ``invert`` None means
    whichever of dark and bright cells is the minority (see the module docstring)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / np.float32(255.0)
    luma = cv2.resize(gray, (columns, rows), interpolation=cv2.INTER_AREA)
    if threshold is None:
        luma8 = np.clip(np.rint(luma * 255.0), 0, 255).astype(np.uint8)
        level, _ = cv2.threshold(luma8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        threshold = float(level) / 255.0
    bright = luma > threshold
    if invert is None:
        invert = int(bright.sum()) < bright.size - int(bright.sum())
    if invert:
        return bright, luma, threshold
    return ~bright, 1.0 - luma, threshold


def grid_notes(inked: np.ndarray, strength: np.ndarray, pitches: list[int]) -> list[Note]:
    """One Note per horizontal run of inked cells; row 0 (the top) is the highest pitch."""
    rows = inked.shape[0]
    notes: list[Note] = []
    for row in range(rows):
        # Run edges: +1 where a run starts, -1 one past where it ends (padding closes runs
        # that touch either border).
        edges = np.diff(np.concatenate(([0], inked[row].astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        for start, end in zip(starts, ends, strict=True):
            level = float(np.clip(strength[row, start:end].mean(), 0.0, 1.0))
            velocity = round(VELOCITY_FAINT + (VELOCITY_SOLID - VELOCITY_FAINT) * level)
            notes.append(Note(pitches[rows - 1 - row], int(start), int(end), velocity))
    return notes


def column_timing(columns: int, seconds: float) -> tuple[int, int]:
    """(ticks per column, microseconds per beat) so ``columns`` columns last ``seconds``."""
    column_ticks = COLUMN_TICKS
    tempo_us = seconds * 1e6 * TICKS_PER_BEAT / (columns * column_ticks)
    if tempo_us > MAX_TEMPO_US:
        # Slower than MIDI's slowest tempo (about 3.6 BPM): make each column longer instead.
        column_ticks = math.ceil(seconds * 1e6 * TICKS_PER_BEAT / (columns * MAX_TEMPO_US))
        tempo_us = seconds * 1e6 * TICKS_PER_BEAT / (columns * column_ticks)
    return column_ticks, max(1, round(tempo_us))


def build_midi(notes: list[Note], columns: int, seconds: float, name: str) -> mido.MidiFile:
    """A type-1 MIDI file of ``notes`` on a grid of ``columns`` columns lasting ``seconds``."""
    column_ticks, tempo_us = column_timing(columns, seconds)
    end_tick = columns * column_ticks
    conductor = mido.MidiTrack([
        mido.MetaMessage("track_name", name=name, time=0),
        mido.MetaMessage("set_tempo", tempo=tempo_us, time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        mido.MetaMessage("end_of_track", time=end_tick),
    ])
    # (tick, offs before ons at the same tick, pitch, message)
    timed: list[tuple[int, int, int, mido.Message]] = []
    for n in notes:
        timed.append((n.start_col * column_ticks, 1, n.pitch,
                      mido.Message("note_on", note=n.pitch, velocity=n.velocity)))
        timed.append((n.end_col * column_ticks, 0, n.pitch,
                      mido.Message("note_off", note=n.pitch, velocity=64)))
    timed.sort(key=lambda item: item[:3])
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=NOTE_TRACK_NAME, time=0)])
    now = 0
    for tick, _, _, message in timed:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=end_tick - now))
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    mid.tracks.extend([conductor, track])
    return mid


def save_atomically(mid: mido.MidiFile, path: Path) -> None:
    """Write ``mid`` to a temporary file beside ``path``, then rename it over ``path``."""
    atomic_write(path, lambda f: mid.save(file=f))


# -- command line -------------------------------------------------------------------------------

def _threshold(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a luma level 0..1, got {text!r}")
    return value


def _columns(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sonify pianoroll`` (its help is in ``sonify.cli.pianoroll``)."""
    p.add_argument("image", metavar="IMAGE", help="the picture (any format OpenCV reads)")
    p.add_argument("-o", "--output", metavar="OUT.mid", required=True,
                   help="the MIDI file to write (replaced atomically if it exists)")
    p.add_argument("--seconds", type=float, default=30.0,
                   help="length of the piece in seconds (default 30)")
    p.add_argument("--low", default="C2", metavar="NOTE",
                   help="pitch of the bottom row: a name or MIDI number (default C2 = 36)")
    p.add_argument("--high", default="C7", metavar="NOTE",
                   help="pitch of the top row (default C7 = 96)")
    p.add_argument("--columns", type=_columns, default=None, metavar="N",
                   help=f"time steps (default: keep the picture's aspect, at most {MAX_COLUMNS})")
    p.add_argument("--threshold", type=_threshold, default=0.5, metavar="T",
                   help="luma 0..1 above which a cell is bright, or 'auto' for Otsu's "
                   "threshold (default 0.5)")
    p.add_argument("--scale", metavar="NAME",
                   help=f"rows only on this scale's pitches: {', '.join(SCALES)}")
    p.add_argument("--root", metavar="NOTE", help="the scale's root (default C)")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                   help="--invert: bright strokes are notes; --no-invert: dark strokes are "
                   "(default: whichever is the minority)")


def run(args: argparse.Namespace) -> int:
    """Convert ``args.image`` and write ``args.output``; 0 on success."""
    from sonify.errors import CliError

    try:
        low, high = parse_note(args.low), parse_note(args.high)
        root_pc = parse_pitch_class(args.root) if args.root is not None else 0
        pitches = roll_pitches(low, high, args.scale, root_pc)
    except TheoryError as exc:
        raise CliError(str(exc)) from None
    if args.root is not None and args.scale is None:
        raise CliError("--root only applies with --scale (e.g. --scale major --root D)")
    if low >= high:
        raise CliError(f"--low ({args.low} = {low}) must be below --high ({args.high} = {high})")
    if not pitches:
        raise CliError(f"no {args.scale} notes between {args.low} and {args.high}; "
                       "widen the range")
    if not MIN_SECONDS <= args.seconds <= MAX_SECONDS:
        raise CliError(f"--seconds must be {MIN_SECONDS:g}..{MAX_SECONDS:g}, got {args.seconds:g}")
    out = Path(args.output)
    if out.is_dir():
        raise CliError(f"-o {out}: is a folder; give a file name such as {out / 'roll.mid'}")
    if not out.parent.is_dir():
        raise CliError(f"-o {out}: folder {out.parent} does not exist; create it first")

    with ImageSource(args.image, max_frames=1) as source:  # SourceError names the file
        image = next(iter(source)).image
    height_px, width_px = image.shape[:2]
    rows = len(pitches)
    columns = args.columns or auto_columns(width_px, height_px, rows)
    inked, strength, threshold = ink_grid(image, rows, columns, args.threshold, args.invert)
    notes = grid_notes(inked, strength, pitches)
    if not notes:
        logger.warning("%s: no stroke on the %dx%d grid at threshold %.3f; writing a silent "
                       "%g s file (try --invert, --no-invert or --threshold auto)",
                       args.image, columns, rows, threshold, args.seconds)
    mid = build_midi(notes, columns, args.seconds, Path(args.image).stem)
    try:
        save_atomically(mid, out)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    logger.info("%s: %d notes on %d rows x %d columns (threshold %.3f) -> %s",
                args.image, len(notes), rows, columns, threshold, out)
    print(f"wrote {out}: {len(notes)} notes on {rows} pitches x {columns} steps, "
          f"{args.seconds:g} s")
    return 0
