"""``sonify judge FILE.mid [FILE.mid ...] [--json]``: a piece's musical figures, as a table.

For users comparing scenes and for the tests: how often the melody restates its motif, how much
of it clashes with the chords, how it leaps, whether it hugs its register's edges, notes outside
the stated scale, whether it ends on the tonic held to the end, its tempo, keys, sections,
register and density (``sonify.music.figures`` defines each). With two or more files it also
prints how far each pair lies apart (``sonify.music.distance``).

``--scene NAME`` says which scene played the file: its voices' registers, its chord voices and
its key when fixed are then known (without it the register is the melody's own extremes, and the
key comes from the file's ``key`` markers or is estimated from the notes; the table says which).
``--melody NAME`` names the melody's track when it is not ``melody``.

The Python API: ``judge(path, hints) -> Figures``, ``distance(a, b) -> float``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sonify.music.distance import components, distance
from sonify.music.figures import Figures, figures_dict, judge
from sonify.music.parts import Hints, hints_from_scene
from sonify.music.piece import PieceError
from sonify.scene import SceneError, load_scene

__all__ = ["Figures", "Hints", "add_arguments", "distance", "figures_dict", "judge", "run",
           "table"]

TARGETS = {"restatement": ">= 40%", "clash": "<= 3%", "leaps": "<= 10%",
           "register_edge": "<= 25%", "outside_scale": "0", "ending": "tonic, held"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.mid", help="MIDI files to judge")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--scene", metavar="NAME",
                        help="the scene that played the files: its registers, chord voices "
                             "and fixed key")
    parser.add_argument("--melody", metavar="TRACK",
                        help="the melody's track name (default: 'melody', else the busiest "
                             "monophonic track)")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _rows(f: Figures) -> list[tuple[str, str]]:
    reg = ("-" if f.register is None
           else f"{f.register[0]}-{f.register[1]} ({f.register_source})")
    ending = ("-" if f.ending_tonic is None else
              f"{f.ending_chord}: {'tonic' if f.ending_tonic else 'not tonic'}, "
              f"{'held' if f.ending_held else 'not held'}")
    outside = ("- (key estimated)" if f.outside_scale is None else
               str(f.outside_scale) + ("" if not f.outside_by_voice else " (" + ", ".join(
                   f"{v} {n}" for v, n in sorted(f.outside_by_voice.items())) + ")"))
    return [
        ("melody", f"{f.melody or '-'}; chords: {', '.join(f.chord_tracks) or '-'}"),
        ("key", f"{', '.join(f.keys)} ({f.key_source})"),
        ("sections", " ".join(f.sections) or "-"),
        ("cadences", " ".join(f.cadences) or "-"),
        ("motif", f"{f.motif.text()} ({f.motif.source})" if f.motif else "-"),
        ("restatement", f"{_pct(f.restatement)} of {f.bars} bars"),
        ("clash", _pct(f.clash)),
        ("leaps", _pct(f.leaps)),
        ("register", reg),
        ("register_edge", _pct(f.register_edge)),
        ("outside_scale", outside),
        ("ending", ending),
        ("tempo", f"{f.tempo_min:.1f}-{f.tempo_max:.1f} BPM (range {f.tempo_range:.1f}, "
                  f"mean {f.tempo_mean:.1f})"),
        ("mean pitch", "-" if f.mean_pitch is None else f"{f.mean_pitch:.1f}"),
        ("density", ", ".join(f"{v} {d:.2f}/s" for v, d in sorted(f.density.items())) or "-"),
        ("triggers", ", ".join(f"{v} {n}" for v, n in sorted(f.triggers.items())) or "-"),
    ]


def table(figures: list[Figures]) -> str:
    """An aligned table: a row per figure, a column per file, and the target."""
    rows = [_rows(f) for f in figures]
    names = [Path(f.path).name for f in figures]
    widths = [max(len(names[i]), *(len(v) for _, v in rows[i])) for i in range(len(figures))]
    label_w = max(len(k) for k, _ in rows[0])
    head = "  ".join([f"{'figure':<{label_w}}", *(f"{n:<{w}}" for n, w in zip(
        names, widths, strict=True)), "target"])
    lines = [head, "-" * len(head)]
    for r, (label, _) in enumerate(rows[0]):
        cells = [f"{rows[i][r][1]:<{widths[i]}}" for i in range(len(figures))]
        lines.append("  ".join([f"{label:<{label_w}}", *cells, TARGETS.get(label, "")]).rstrip())
    for i in range(len(figures)):
        for j in range(i + 1, len(figures)):
            parts = components(figures[i], figures[j])
            lines.append(f"distance {names[i]} - {names[j]}: {distance(figures[i], figures[j]):.3f}"
                         f" ({', '.join(f'{k} {v:.2f}' for k, v in parts.items())})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    hints = Hints(melody=args.melody)
    if args.scene:
        try:
            hints = hints_from_scene(load_scene(args.scene), melody=args.melody)
        except SceneError as exc:
            print(f"sonify judge: {exc}", file=sys.stderr)
            return 2
    try:
        figures = [judge(p, hints) for p in args.files]
    except PieceError as exc:
        print(f"sonify judge: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out: dict[str, object] = {"files": [figures_dict(f) for f in figures]}
        out["distances"] = [
            {"a": a.path, "b": b.path, "distance": distance(a, b), **components(a, b)}
            for i, a in enumerate(figures) for b in figures[i + 1:]]
        print(json.dumps(out, indent=1))
    else:
        print(table(figures))
    return 0
