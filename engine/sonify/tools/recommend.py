"""``sonify recommend``: rank a catalogue of tracks by how well their mood fits a picture.

**Catalogue format.** A UTF-8 CSV file whose first row that is not a comment is a header
naming at least the columns ``title, artist, valence, energy, tempo, tags`` (any order, any
case; extra columns are ignored). Lines starting with ``#`` and blank lines are skipped;
each row is one physical line (a quoted field may hold commas but not a line break).

=========  ===========================================================================
title      the work (required)
artist     composer or performer (required)
valence    0..1: 0 grieving or menacing, 1 joyful
energy     0..1: 0 still and soft, 1 loud, fast and dense
tempo      beats per minute, 20..400
tags       words separated by ``;`` (may be empty); the scoring reads major, minor,
           bright and dark, and the rest (slow, fast, piano, dance ...) are for people
=========  ===========================================================================

A row with the wrong number of fields, an empty required field, or a number that is not a
number or is out of range is skipped with a warning naming its line (lines count from 1 and
include comments). A missing or unreadable file, no header, or a header without the required
columns is an error. Without ``--catalog`` the catalogue shipped in ``sonify/data/catalog.csv``
is used (over 80 public-domain works; its header explains how their values were chosen).

**Scoring.** The picture is read by the Analyzer (``sonify.features``). Its valence and arousal
rarely leave 0.15..0.75 and 0.2..0.7 (see ``sonify.features.mood``), so both are first
stretched from those ranges onto 0..1 to be compared with the tracks' valence and energy:

    want_valence = stretch(valence, 0.15, 0.75)
    want_energy  = stretch(arousal, 0.20, 0.70)
    want_tempo   = 50 + 110 * want_energy                         (BPM)
    colour_tone  = clip(0.6 * warm + 0.4 * light, -1, 1)          (+ warm/light, - cool/dark)
        warm  = (2 * warmth - 1) * min(1, chroma / 0.25)          (greys have no temperature)
        light = 2 * brightness - 1

    mood_fit  = 1 - sqrt((dv**2 + 1.5 * de**2) / 2.5)             (dv, de: valence, energy gaps)
    tempo_fit = max(0, 1 - |log2(tempo / want_tempo)|)            (0 an octave of tempo away)
    tone_fit  = (1 + colour_tone * tag_tone) / 2                  (tag_tone: +1 major/bright,
                                                                   -1 minor/dark, 0 neither)
    score     = 0.70 * mood_fit + 0.15 * tempo_fit + 0.15 * tone_fit      (0..1)

Energy weighs 1.5 times valence because a wrong pace is heard at once, a wrong shade of mood
later. Warm, light colours thus lean to major and bright pieces, cool, dark ones to minor and
dark pieces; an energetic picture to fast tempi. Ties are broken by title, then artist, so the
ranking is deterministic.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sonify.capture.base import Frame
from sonify.capture.files import ImageSource

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("title", "artist", "valence", "energy", "tempo", "tags")
TEMPO_RANGE_BPM = (20.0, 400.0)
IMAGE_VALENCE_RANGE = (0.15, 0.75)  # where pictures' valence falls (sonify.features.mood)
IMAGE_AROUSAL_RANGE = (0.20, 0.70)
ENERGY_WEIGHT = 1.5
WEIGHTS = {"mood": 0.70, "tempo": 0.15, "tone": 0.15}
CHROMA_FULL = 0.25  # chroma at which a picture's warmth counts fully
DEFAULT_COUNT = 10


class CatalogError(Exception):
    """The catalogue as a whole cannot be used; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Track:
    title: str
    artist: str
    valence: float
    energy: float
    tempo_bpm: float
    tags: tuple[str, ...]
    line: int  # where it was read, for messages


@dataclass(frozen=True, slots=True)
class ImageMood:
    """What the picture asks for, already on the tracks' scales (see the module docstring)."""

    valence: float  # 0..1
    energy: float  # 0..1
    tempo_bpm: float
    colour_tone: float  # -1 cool/dark .. +1 warm/light
    words: str  # e.g. "calm, sombre, dark cool colours"


@dataclass(frozen=True, slots=True)
class Match:
    track: Track
    score: float
    why: str


# -- the catalogue ------------------------------------------------------------------------------

def parse_catalog(text: str, name: str) -> tuple[list[Track], list[str]]:
    """Tracks from catalogue ``text`` (``name`` for messages), and one message per skipped row
    (``"NAME line N: why"``). Raises CatalogError when there is no usable header."""
    header: dict[str, int] | None = None
    width = 0
    tracks: list[Track] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = next(csv.reader([line]))
        if header is None:
            names = [f.strip().lower() for f in fields]
            missing = [c for c in REQUIRED_COLUMNS if c not in names]
            if missing:
                raise CatalogError(
                    f"{name} line {number}: the header lacks {', '.join(missing)}; the first "
                    f"line that is not a comment must name the columns "
                    f"{', '.join(REQUIRED_COLUMNS)}")
            header = {c: names.index(c) for c in REQUIRED_COLUMNS}
            width = len(names)
            continue
        try:
            tracks.append(_track(fields, header, width, number))
        except ValueError as exc:
            problems.append(f"{name} line {number}: {exc}")
    if header is None:
        raise CatalogError(f"{name}: no header row; the first line that is not a comment must "
                           f"name the columns {', '.join(REQUIRED_COLUMNS)}")
    return tracks, problems


def _track(fields: list[str], header: dict[str, int], width: int, line: int) -> Track:
    if len(fields) != width:
        raise ValueError(f"{len(fields)} fields where the header has {width} (a comma inside "
                         'a field needs "double quotes")')
    value = {c: fields[i].strip() for c, i in header.items()}
    for column in ("title", "artist", "valence", "energy", "tempo"):
        if not value[column]:
            raise ValueError(f"no {column}")
    tags = tuple(t.strip().lower() for t in value["tags"].split(";") if t.strip())
    return Track(value["title"], value["artist"], _number(value, "valence", 0.0, 1.0),
                 _number(value, "energy", 0.0, 1.0), _number(value, "tempo", *TEMPO_RANGE_BPM),
                 tags, line)


def _number(value: dict[str, str], column: str, lo: float, hi: float) -> float:
    try:
        x = float(value[column])
    except ValueError:
        raise ValueError(f"{column} {value[column]!r} is not a number") from None
    if not lo <= x <= hi:  # also refuses nan
        raise ValueError(f"{column} {value[column]} is outside {lo:g}..{hi:g}")
    return x


def read_catalog(path: str | None) -> tuple[list[Track], list[str]]:
    """The catalogue at ``path``, or the shipped one when None (see ``parse_catalog``)."""
    if path is None:
        text = resources.files("sonify.data").joinpath("catalog.csv").read_text("utf-8")
        return parse_catalog(text, "catalog.csv")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogError(f"no such catalogue file: {path!r}; give a CSV file or leave out "
                           "--catalog to use the built-in one") from None
    except UnicodeDecodeError:
        raise CatalogError(f"catalogue {path!r} is not UTF-8 text; save it as UTF-8 CSV") from None
    except OSError as exc:
        raise CatalogError(f"cannot read catalogue {path!r}: {exc.strerror or exc}") from None
    return parse_catalog(text, path)


# -- scoring ------------------------------------------------------------------------------------

def _stretch(x: float, lo: float, hi: float) -> float:
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def image_mood(values: dict[str, float]) -> ImageMood:
    """Turn the Analyzer's scalars (valence, arousal, warmth, brightness, chroma) into targets."""
    valence = _stretch(values["valence"], *IMAGE_VALENCE_RANGE)
    energy = _stretch(values["arousal"], *IMAGE_AROUSAL_RANGE)
    warm = (2.0 * values["warmth"] - 1.0) * min(1.0, values["chroma"] / CHROMA_FULL)
    light = 2.0 * values["brightness"] - 1.0
    tone = min(1.0, max(-1.0, 0.6 * warm + 0.4 * light))

    words = [_level(energy, ("calm", "moderate", "energetic"))]
    if valence < 0.35:
        words.append("sombre")
    elif valence > 0.65:
        words.append("cheerful")
    shade = "dark " if light < -0.4 else "light " if light > 0.4 else ""
    temperature = "warm " if warm > 0.25 else "cool " if warm < -0.25 else ""
    words.append(f"{shade}{temperature}colours" if shade or temperature else "neutral colours")
    return ImageMood(valence, energy, 50.0 + 110.0 * energy, tone, ", ".join(words))


def _level(x: float, names: tuple[str, str, str]) -> str:
    return names[0] if x < 1 / 3 else names[1] if x < 2 / 3 else names[2]


def _tag_tone(tags: tuple[str, ...]) -> int:
    up = int("major" in tags) + int("bright" in tags)
    down = int("minor" in tags) + int("dark" in tags)
    return (up > down) - (up < down)


def score_track(mood: ImageMood, track: Track) -> Match:
    """How well ``track`` fits the picture (0..1, higher better) and a phrase saying why."""
    dv, de = mood.valence - track.valence, mood.energy - track.energy
    mood_fit = 1.0 - math.sqrt((dv * dv + ENERGY_WEIGHT * de * de) / (1.0 + ENERGY_WEIGHT))
    tempo_fit = max(0.0, 1.0 - abs(math.log2(track.tempo_bpm / mood.tempo_bpm)))
    tone_fit = (1.0 + mood.colour_tone * _tag_tone(track.tags)) / 2.0
    score = (WEIGHTS["mood"] * mood_fit + WEIGHTS["tempo"] * tempo_fit
             + WEIGHTS["tone"] * tone_fit)
    said = [_level(track.energy, ("low energy", "medium energy", "high energy"))]
    said += [m for m in ("major", "minor") if m in track.tags]
    said.append(f"{track.tempo_bpm:g} BPM")
    return Match(track, score, f"{mood.words} → {', '.join(said)}")


def rank(mood: ImageMood, tracks: list[Track]) -> list[Match]:
    """Every track scored, best first; equal scores in title, then artist order."""
    matches = [score_track(mood, t) for t in tracks]
    # Rounded so that scores equal but for float noise tie, and the tie order is the title's.
    return sorted(matches, key=lambda m: (-round(m.score, 9), m.track.title.casefold(),
                                          m.track.artist.casefold()))


def analyse_image(path: str) -> dict[str, float]:
    """The Analyzer's scalars for the still picture at ``path`` (SourceError if unreadable)."""
    from sonify.features.analyzer import Analyzer

    with ImageSource(path, max_frames=1) as source:
        frame: Frame = next(iter(source))
    return Analyzer().analyze(frame).values


# -- command line -------------------------------------------------------------------------------

def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sonify recommend`` (its help is in ``sonify.cli.recommend``)."""
    p.add_argument("image", metavar="IMAGE", help="the picture (any format OpenCV reads)")
    p.add_argument("--catalog", metavar="FILE.csv",
                   help="the catalogue (default: the built-in one of public-domain works)")
    p.add_argument("-n", type=_count, default=DEFAULT_COUNT,
                   help=f"how many tracks to list (default {DEFAULT_COUNT})")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list: the catalogue's fields plus score and why")


def run(args: argparse.Namespace) -> int:
    """Print the ``args.n`` best tracks for ``args.image``; 0 on success."""
    from sonify.errors import CliError

    try:
        tracks, problems = read_catalog(args.catalog)
    except CatalogError as exc:
        raise CliError(str(exc)) from None
    for problem in problems:
        logger.warning("%s; row skipped", problem)
    if not tracks:
        raise CliError(f"no usable tracks in {args.catalog or 'the built-in catalogue'} "
                       f"({len(problems)} rows skipped)")
    values = analyse_image(args.image)
    mood = image_mood(values)
    best = rank(mood, tracks)[: args.n]

    if args.json:
        print(json.dumps([_as_json(m) for m in best], indent=1))
        return 0
    print(f"{args.image}: {mood.words} (valence {values['valence']:.2f}, arousal "
          f"{values['arousal']:.2f}, warmth {values['warmth']:.2f}, brightness "
          f"{values['brightness']:.2f}, chroma {values['chroma']:.2f})")
    names = [f"{m.track.title} — {m.track.artist}" for m in best]
    width = max(len(n) for n in names)
    print(f"{'#':>3}  score  {'track':<{width}}  why")
    for i, (m, n) in enumerate(zip(best, names, strict=True), start=1):
        print(f"{i:>3}  {m.score:5.3f}  {n:<{width}}  {m.why}")
    return 0


def _as_json(m: Match) -> dict[str, object]:
    t = m.track
    return {"title": t.title, "artist": t.artist, "valence": t.valence, "energy": t.energy,
            "tempo": t.tempo_bpm, "tags": list(t.tags), "score": round(m.score, 4),
            "why": m.why}
