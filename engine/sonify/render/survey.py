"""``sonify survey``: every note-playing scene on many pictures, judged against issue 12's targets.

Renders (in-process, ``render()``) each shipped scene that plays notes on every picture: the
photographs in ``tests/data/photos`` (or ``--pictures DIR``) plus drawn ones (a bright warm
colourful picture, a dark blue field, a mid gray field, a red-to-blue gradient, a checkerboard),
``--seconds`` long (60), judges each MIDI file (``sonify.music.figures``, with the scene's
registers, chord voices and fixed key as hints) and prints a table of the targets:

- melody figures (motif restatement, clash, leaps, register edge): the mean over every piece
  that has a melody, per scene and over all; the target must hold for every scene's mean;
- notes outside the stated scale (their total) and pieces ending on the tonic, held (share);
- ``city`` on a still: the widest tempo range and the most trigger firings of any picture;
- ``gallery``: the main mode of the bright warm picture (major or lydian) and of the dark blue
  one (minor);
- pictures differ: the mean ``distance`` between two different pictures' pieces over the mean
  between the same picture's pieces with seeds 0 and 1 (``--seed-pairs`` pictures), >= 3;
- loudness: calm vs energize on the first picture, built-in WAV, integrated LUFS (>= 8 LU);
- video: a drawn clip with a cut; the first chord-voice note-on after the cut must come within
  one frame of it (offline).

``survey()`` returns the records and ``targets()`` the table rows, so tests assert the same.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sonify.events import NoteOn
from sonify.music.distance import distance
from sonify.music.figures import Figures, figures_dict, judge
from sonify.music.parts import hints_from_scene
from sonify.render.core import render
from sonify.render.loudness import wav_loudness
from sonify.resources import shipped
from sonify.scene import available_scenes, load_scene

MINOR_SCALES = ("minor", "harmonic_minor", "melodic_minor", "minor_pentatonic")
BRIGHT = ("major", "lydian")
WARM, DARK_BLUE = "drawn_warm_colourful", "drawn_dark_blue"
VIDEO_FPS, VIDEO_CUT_S, VIDEO_S = 25.0, 4.0, 8.0


def photos_dir() -> Path:
    return shipped("scenes").parent / "tests" / "data" / "photos"


def drawn_pictures() -> dict[str, np.ndarray]:
    """Pictures the survey draws (BGR, 320x240): fields, a gradient, a texture."""
    h, w = 240, 320
    x = np.linspace(0.0, 1.0, w)[None, :, None]
    warm = np.zeros((h, w, 3), np.uint8)
    for i, bgr in enumerate([(40, 220, 255), (30, 160, 255), (60, 60, 240), (80, 230, 250),
                             (50, 200, 120), (200, 120, 255)]):  # yellow, orange, red... bright
        warm[:, i * w // 6:(i + 1) * w // 6] = bgr
    warm[h // 3: 2 * h // 3] = (60, 235, 255)  # a wide yellow band across
    gradient = ((1 - x) * np.array([40, 40, 230]) + x * np.array([230, 90, 30])).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    checker = np.where(((yy // 20 + xx // 20) % 2 == 0)[..., None], 230, 25).astype(np.uint8)
    return {WARM: warm,
            DARK_BLUE: np.full((h, w, 3), (90, 30, 15), np.uint8),
            "drawn_gray": np.full((h, w, 3), 128, np.uint8),
            "drawn_gradient": np.broadcast_to(gradient, (h, w, 3)).copy(),
            "drawn_checker": np.repeat(checker, 3, axis=2)}


def note_scenes() -> list[str]:
    """The available scenes with at least one voice that plays notes."""
    return [name for name, path in available_scenes().items()
            if any(not v.mute for v in load_scene(str(path)).voices)]


def picture_files(folder: Path, pictures_dir: Path | None) -> dict[str, Path]:
    """Photographs (``pictures_dir`` or the shipped test photos) and the drawn pictures, written
    into ``folder``."""
    source = pictures_dir or photos_dir()
    files = {p.stem: p for p in sorted(source.glob("*"))
             if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp")}
    for name, image in drawn_pictures().items():
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), image)
        files[name] = path
    return files


@dataclass(frozen=True)
class Record:
    scene: str
    picture: str
    seed: int
    figures: Figures
    trigger_firings: int  # trigger events (notes, OSC, CC) at distinct times


@dataclass
class Survey:
    seconds: float
    records: list[Record] = field(default_factory=list)
    loudness: dict[str, float] = field(default_factory=dict)  # scene -> LUFS
    video_cut_delay_s: float | None = None  # chord onset after the cut (None: none found)
    video_frame_s: float = 1.0 / VIDEO_FPS

    def of(self, scene: str | None = None, seed: int | None = 0) -> list[Record]:
        return [r for r in self.records if (scene is None or r.scene == scene)
                and (seed is None or r.seed == seed)]


def _render_one(picture: Path, scene: str, seconds: float, seed: int, folder: Path,
                wav: bool = False) -> tuple[Record, Path | None]:
    stem = folder / f"{scene}-{picture.stem}-{seed}"
    outs = [str(stem.with_suffix(".mid"))] + ([str(stem.with_suffix(".wav"))] if wav else [])
    result = render(str(picture), outs, scene=scene, duration_s=seconds, seed=seed)
    firings = {(getattr(ev, "voice", ""), round(ev.t, 3)) for ev in result.events
               if str(getattr(ev, "voice", "")).startswith("trigger:")}
    figures = judge(stem.with_suffix(".mid"), hints_from_scene(load_scene(scene)))
    return (Record(scene, picture.stem, seed, figures, len(firings)),
            stem.with_suffix(".wav") if wav else None)


def draw_cut_video(path: Path) -> None:
    """A clip of two shots: a warm textured field, then at ``VIDEO_CUT_S`` a cool one."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), VIDEO_FPS, (320, 240))
    rng = np.random.default_rng(0)
    warm = np.clip(np.full((240, 320, 3), (40, 140, 230), np.int16)
                   + rng.integers(-30, 30, (240, 320, 3)), 0, 255).astype(np.uint8)
    cool = np.full((240, 320, 3), (200, 90, 30), np.uint8)
    for i in range(int(VIDEO_S * VIDEO_FPS)):
        writer.write(warm if i < VIDEO_CUT_S * VIDEO_FPS else cool)
    writer.release()


def video_cut_delay(folder: Path, scene: str = "gallery") -> float | None:
    """Seconds from the drawn cut to the first chord-voice note-on at or after it (allowing a
    frame early), or None when no chord follows."""
    clip = folder / "cut.avi"
    draw_cut_video(clip)
    result = render(str(clip), [str(folder / "cut.json")], scene=scene, duration_s=VIDEO_S)
    chords = {v.name for v in load_scene(scene).voices if v.kind == "chords"}
    onsets = sorted(ev.t for ev in result.events if isinstance(ev, NoteOn) and ev.voice in chords
                    and ev.t >= VIDEO_CUT_S - 1.0 / VIDEO_FPS)
    return onsets[0] - VIDEO_CUT_S if onsets else None


def survey(*, seconds: float = 60.0, scenes: list[str] | None = None,
           pictures_dir: Path | None = None, pictures: list[str] | None = None,
           seed_pairs: int = 4, loudness: bool = True, video: bool = True,
           progress: Callable[[str], None] | None = None) -> Survey:
    """Render and judge (see the module docstring). ``pictures`` keeps only those names."""
    out = Survey(seconds)
    with tempfile.TemporaryDirectory(prefix="sonify-survey-") as tmp:
        folder = Path(tmp)
        files = picture_files(folder, pictures_dir)
        if pictures is not None:
            files = {k: v for k, v in files.items() if k in pictures}
        first = next(iter(files.values()))
        for scene in scenes or note_scenes():
            for i, (name, path) in enumerate(files.items()):
                for seed in (0, 1) if i < seed_pairs else (0,):
                    if progress:
                        progress(f"{scene} {name} seed {seed}")
                    wav = loudness and path == first and seed == 0 and scene in ("calm",
                                                                                  "energize")
                    record, wav_path = _render_one(path, scene, seconds, seed, folder, wav)
                    out.records.append(record)
                    if wav_path is not None:
                        out.loudness[scene] = wav_loudness(wav_path)
        if video:
            out.video_cut_delay_s = video_cut_delay(folder)
    return out


@dataclass(frozen=True)
class Target:
    figure: str
    target: str
    value: str
    passed: bool | None  # None: not measurable here
    per_scene: dict[str, str] = field(default_factory=dict)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share_row(s: Survey, figure: str, attr: str, limit: float, at_least: bool) -> Target:
    """The mean over every piece with the figure, per scene and over all; it passes when every
    scene's mean meets the target (a pooled mean would let calm pieces hide a clashing scene)."""
    per: dict[str, str] = {}
    means: dict[str, float] = {}
    for scene in sorted({r.scene for r in s.records}):
        m = _mean([v for r in s.of(scene) if (v := getattr(r.figures, attr)) is not None])
        per[scene] = "-" if m is None else f"{100 * m:.1f}%"
        if m is not None:
            means[scene] = m
    m = _mean([v for r in s.of() if (v := getattr(r.figures, attr)) is not None])
    target = f"{'>=' if at_least else '<='} {100 * limit:g}%"
    if m is None:
        return Target(figure, target, "-", None, per)
    worst = (min if at_least else max)(means, key=lambda k: means[k])
    ok = all(v >= limit if at_least else v <= limit for v in means.values())
    return Target(figure, target, f"{100 * m:.1f}% (worst {worst} {100 * means[worst]:.1f}%)",
                  ok, per)


def _pictures_differ(s: Survey) -> tuple[float | None, float, float]:
    between, within = [], []
    for scene in sorted({r.scene for r in s.records}):
        base = s.of(scene)
        between += [distance(a.figures, b.figures)
                    for i, a in enumerate(base) for b in base[i + 1:]]
        ones = {r.picture: r for r in s.of(scene, seed=1)}
        within += [distance(r.figures, ones[r.picture].figures) for r in base if r.picture in ones]
    b, w = _mean(between) or 0.0, _mean(within) or 0.0
    return (b / w if w > 0 else (math.inf if b > 0 else None)), b, w


def targets(s: Survey) -> list[Target]:
    """Issue 12's "Measured" table over the survey (see the module docstring)."""
    rows = [_share_row(s, "melody bars restating the motif", "restatement", 0.40, True),
            _share_row(s, "melody note-time a semitone against a chord tone", "clash", 0.03,
                       False),
            _share_row(s, "melody intervals larger than 7 semitones", "leaps", 0.10, False),
            _share_row(s, "melody notes within 2 semitones of the register edge",
                       "register_edge", 0.25, False)]
    per = {sc: str(sum(r.figures.outside_scale or 0 for r in s.of(sc)))
           + ("" if all(r.figures.outside_scale is not None for r in s.of(sc)) else " (key est.)")
           for sc in sorted({r.scene for r in s.records})}
    judged = [r for r in s.of() if r.figures.outside_scale is not None]
    total = sum(r.figures.outside_scale or 0 for r in judged)
    rows.append(Target("notes outside the stated scale", "0", f"{total} in {len(judged)} pieces",
                       total == 0 if judged else None, per))
    per = {sc: f"{sum(r.figures.ending_ok for r in s.of(sc))}/{len(s.of(sc))}"
           for sc in sorted({r.scene for r in s.records})}
    ends = s.of()
    ok = sum(r.figures.ending_ok for r in ends)
    rows.append(Target("pieces ending on the tonic chord, held", "100%",
                       f"{100 * ok / max(1, len(ends)):.0f}%", ok == len(ends) if ends else None,
                       per))
    city = s.of("city")
    if city:
        worst = max(city, key=lambda r: r.figures.tempo_range)
        rows.append(Target("city tempo range on a still", "<= 4 BPM",
                           f"{worst.figures.tempo_range:.1f} BPM ({worst.picture})",
                           worst.figures.tempo_range <= 4.0))
        most = max(city, key=lambda r: r.trigger_firings)
        rows.append(Target("city trigger firings on a still", "<= 1",
                           f"{most.trigger_firings} ({most.picture})", most.trigger_firings <= 1))
    for picture, want, label in ((WARM, BRIGHT, "major or lydian"),
                                 (DARK_BLUE, MINOR_SCALES, "minor")):
        found = [r for r in s.of("gallery") if r.picture == picture]
        if found:
            f = found[0].figures
            rows.append(Target(f"gallery: {picture} plays {label}", "yes",
                               f"{f.main_key[1]} ({f.key_source})", f.main_key[1] in want))
    ratio, between, within = _pictures_differ(s)
    rows.append(Target("pictures differ: distance between pictures / same picture, 2 seeds",
                       ">= 3x", "-" if ratio is None else
                       f"{ratio:.2f}x ({between:.3f} / {within:.3f})",
                       None if ratio is None else ratio >= 3.0))
    if "calm" in s.loudness and "energize" in s.loudness:
        gap = s.loudness["energize"] - s.loudness["calm"]
        rows.append(Target("calm vs energize loudness (built-in WAV)", ">= 8 LU",
                           f"{gap:.1f} LU (calm {s.loudness['calm']:.1f}, energize "
                           f"{s.loudness['energize']:.1f} LUFS)", gap >= 8.0))
    if s.video_cut_delay_s is not None or s.records:
        d = s.video_cut_delay_s
        rows.append(Target("video: new chord struck within one frame of a cut (offline)",
                           f"<= {1000 * s.video_frame_s:.0f} ms",
                           "no chord after the cut" if d is None else f"{1000 * d:.0f} ms",
                           None if d is None and not s.records else
                           (d is not None and abs(d) <= s.video_frame_s + 1e-6)))
    return rows


def table(rows: list[Target]) -> str:
    scenes = sorted({k for r in rows for k in r.per_scene})
    fig_w = max(len(r.figure) for r in rows)
    val_w = max(len(r.value) for r in rows)
    head = "  ".join([f"{'figure':<{fig_w}}", f"{'target':<9}", f"{'value':<{val_w}}", "pass",
                      *(f"{sc:>9}" for sc in scenes)])
    lines = [head, "-" * len(head)]
    for r in rows:
        verdict = "n/a" if r.passed is None else ("PASS" if r.passed else "FAIL")
        lines.append("  ".join([f"{r.figure:<{fig_w}}", f"{r.target:<9}", f"{r.value:<{val_w}}",
                                f"{verdict:<4}", *(f"{r.per_scene.get(sc, ''):>9}"
                                                   for sc in scenes)]).rstrip())
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pictures", metavar="DIR", type=Path,
                        help="photographs to use (default: the shipped test photos)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each render")
    parser.add_argument("--scene", action="append", dest="scenes", metavar="NAME",
                        help="only this scene (repeatable; default: every note-playing scene)")
    parser.add_argument("--seed-pairs", type=int, default=4, metavar="N",
                        help="pictures rendered with two seeds for 'pictures differ' (4)")
    parser.add_argument("--json", action="store_true", help="print the targets and every "
                        "piece's figures as JSON")


def run(args: argparse.Namespace) -> int:
    def say(what: str) -> None:
        print(f"  rendering {what}", file=sys.stderr, flush=True)

    result = survey(seconds=args.seconds, scenes=args.scenes, pictures_dir=args.pictures,
                    seed_pairs=args.seed_pairs, progress=None if args.json else say)
    rows = targets(result)
    if args.json:
        print(json.dumps({
            "seconds": result.seconds, "loudness_lufs": result.loudness,
            "video_cut_delay_s": result.video_cut_delay_s,
            "targets": [{"figure": r.figure, "target": r.target, "value": r.value,
                         "passed": r.passed, "per_scene": r.per_scene} for r in rows],
            "pieces": [{"scene": r.scene, "picture": r.picture, "seed": r.seed,
                        "trigger_firings": r.trigger_firings, **figures_dict(r.figures)}
                       for r in result.records]}, indent=1))
    else:
        print(table(rows))
    return 0 if all(r.passed is not False for r in rows) else 1
