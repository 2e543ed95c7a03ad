"""The harmony of a scene: a plan in bars, phrases and sections, with cadences and markers.

The plan is made as the music needs it (the player asks ``at(beat)``), a phrase at a time, from
the features of the moment its first bar is needed (sample and hold, as the voices do):

* **Phrases** of ``[harmony] phrase_bars`` bars (8). A phrase of 6 bars or more is a period:
  an antecedent that ends on a half cadence (V) and a consequent that ends on an authentic one
  (V-I, or IV-I with ``cadence = "plagal"``). A shorter phrase has one cadence, half or
  authentic in turn, authentic at the end of its section. The body of each half plays the
  section's 4-chord loop from its start, a chord every ``bars_per_chord`` bars; cadence chords
  take a bar each. In modes whose V is diminished (phrygian, locrian) the dominant is VII.
* **Sections**: A plays the mood's progression; B a contrasting loop (``contrast``, default vi
  IV ii V in major-like modes, VI iv i VII in minor-like ones), in the parallel mode when the
  scene says ``contrast_mode = "parallel"``; A' returns to A's key and loop. Live, a new section
  starts every ``section_phrases`` phrases (A B A' B' A'' ...). A piece of known length (a still
  picture's render, see ``PiecePlan``) follows the travelling eye: A while it shows the whole
  picture (the first phrase, or longer in a long piece), B while it visits the regions, A' for
  the last phrase as it draws back; its key is chosen at section starts only.
* **The ending** (a piece of known length): at each phrase start the harmony estimates how many
  whole bars are left (the current tempo, slowed by the form's ritardando, counted 5% slow to
  be safe) and, when the rest fits in one and a half phrases, makes it the final phrase: its
  last bar is the final tonic, preceded by V (or IV), struck on the last downbeat that leaves at
  least one whole bar and held to the end of the piece (the pad's notes end with the file). The
  piece keeps its length (``--duration``): the final chord lasts between one and about two bars.
* **Key**: root and scale are chosen at phrase starts (by the scene's choosers, with their
  hysteresis). A gray picture has no hue: when the root follows a feature and the picture's
  ``chroma`` (mean colour strength, 0..1) is below ``[key] gray_below`` (0.04 by default), the
  root is ``[key] default`` (else the first choice) instead of whatever hue 0 (red) would give.
  Measured on ``tests/data/photos``: the gray ones (brick, camera, grass, gravel) 0.000, the
  dark star field (Hubble) 0.019 (its hue is noise too), colour photographs 0.15-0.42; a gray
  tinted by 7 levels in one channel is 0.027.
* **Colour**: ``colour = "triads" | "sevenths" | "ninths"`` (``theory.coloured_chord``);
  ``inversions = true`` lets body chords take their third in the bass when that makes the bass
  move by step (phrase starts and cadences stay in root position). Pentatonic scales voice every
  chord from the pentatonic's own notes (``theory.pentatonic_chord``: sus2/add9).
* **Markers** (``events.Marker``): a key marker when the key or scale changes (and at the
  start), a section marker at each section's first bar, a phrase marker at each phrase's first
  bar, a chord marker at each chord change, a cadence marker on the cadence chord's bar.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sonify.events import Marker
from sonify.features.analyzer import Features
from sonify.music import theory
from sonify.scene.mapping import Chooser
from sonify.scene.schema import Scene
from sonify.timing.clock import TempoClock

GRAY_FEATURE = "chroma"
SAFETY = 0.95  # bars left are counted at this share of the estimated tempo: end early, not late
KEEP_BARS = 64
MIN_PERIOD_BARS = 6  # a phrase this long has a half cadence in its middle


@dataclass(frozen=True, slots=True)
class KeyState:
    """The harmony of one bar: key root (pc), scale, its ladder, the chord, and where the bar
    sits in the form (read by the voices; only the harmony writes it)."""

    slot: int  # the bar (counted from the harmony's start)
    root: int
    scale: str
    scale_pcs: tuple[int, ...]  # sorted (a ladder)
    chord: theory.Chord
    progression: str
    section: str = "A"
    bar: int = 0
    phrase_bar: int = 0
    phrase_bars: int = 8
    cadence: str | None = None  # "half" | "authentic" | "final" on a phrase's closing chord
    final: bool = False  # the piece's last chord: hold the tonic
    motif_seed: int = 0
    bass: int = -1  # the pc in the bass (-1: the root)
    change: bool = True  # a chord is struck on this bar (else the previous one holds)
    chord_bars: int = 1  # bars the chord lasts from this bar on (as planned)

    @property
    def bass_pc(self) -> int:
        return self.chord.root if self.bass < 0 else self.bass


@dataclass(frozen=True, slots=True)
class PiecePlan:
    """What the harmony knows of a piece of known length: when it ends (engine seconds), how
    the form scales the tempo (the ritardando), and whether its sections follow a travelling
    eye (``travel``: A for the opening share, A' for the closing one)."""

    start_s: float
    end_s: float
    opening: float = 0.15
    travel: bool = True
    tempo_scale: Callable[[float], float] | None = None


@dataclass(frozen=True, slots=True)
class _Bar:
    numeral: str
    cadence: str | None


def motif_seed(seed: int, section: str) -> int:
    """The same for a section and its returns (A, A', A''), another for B: a stable hash."""
    return zlib.crc32(f"{seed}:{section.rstrip(chr(39))}".encode())


def section_name(index: int) -> str:
    """A B A' B' A'' ... (index 0, 1, 2...)."""
    return ("A", "B")[index % 2] + "'" * (index // 2)


def default_contrast(loop: tuple[str, ...], scale: str) -> tuple[str, ...]:
    minorish = 3 in theory.scale_intervals(scale)[:3]
    if minorish:
        return ("VI", "iv", "i", "VII") if loop[:1] != ("VI",) else ("iv", "VI", "VII", "i")
    return ("vi", "IV", "ii", "V") if loop[:1] != ("vi",) else ("IV", "ii", "vi", "V")


def dominant(scale: str) -> str:
    """The chord that leads home: V, or VII where V is diminished (phrygian, locrian)."""
    return "VII" if scale in ("phrygian", "locrian") else "V"


def fill(bars: int, loop: tuple[str, ...], bars_per_chord: int, cadence: list[str],
         kind: str) -> list[_Bar]:
    """``bars`` bars: the loop from its start (``bars_per_chord`` bars a chord), then the
    cadence chords a bar each; the last bar carries the cadence ``kind``."""
    cadence = cadence[-bars:] if bars < len(cadence) else cadence
    body = bars - len(cadence)
    out: list[str] = []
    i = 0
    while len(out) < body:
        out += [loop[i % len(loop)]] * min(bars_per_chord, body - len(out))
        i += 1
    out += cadence
    return [_Bar(n, kind if j == bars - 1 else None) for j, n in enumerate(out)]


def phrase_plan(length: int, loop: tuple[str, ...], bars_per_chord: int, closing: str,
                scale: str, plagal: bool, single: str | None = None) -> list[_Bar]:
    """The numerals of a phrase of ``length`` bars closing with ``closing`` (half, authentic
    or final); ``single`` forces a one-cadence phrase's cadence (see the module docstring)."""
    home = ["IV" if plagal else dominant(scale), "I"]
    half = [dominant(scale)]
    if length >= MIN_PERIOD_BARS and single is None:
        h = length // 2
        return (fill(h, loop, bars_per_chord, half, "half")
                + fill(length - h, loop, bars_per_chord, home, closing))
    return fill(length, loop, bars_per_chord, half if closing == "half" else home, closing)


class Harmony:
    """The plan (see the module docstring). ``at(beat, features, tempo)`` gives the bar's
    KeyState, planning up to it; ``markers(...)`` the markers of the bars starting in a
    window. ``plan_piece`` gives it a known length, ``begin_section`` a section number."""

    def __init__(self, scene: Scene, seed: int = 0) -> None:
        h, k = scene.harmony, scene.key
        self.bar_beats = float(h.beats_per_bar)
        self.bars_per_chord = h.bars_per_chord
        self.slot_beats = self.bar_beats * h.bars_per_chord
        self.phrase_bars = h.phrase_bars
        self.section_phrases = h.section_phrases
        self.colour = h.colour
        self.inversions = h.inversions
        self.plagal = h.cadence == "plagal"
        self.contrast_mode = h.contrast_mode
        self._contrast = tuple(h.contrast) if h.contrast else None
        self._progs = {name: tuple(v) for name, v in h.progressions.items()}
        self._default_name = "default" if "default" in self._progs else next(iter(self._progs))
        self._root = Chooser(k.root)
        self._scale = Chooser(k.scale)
        self._root_default = theory.parse_pitch_class(k.default or k.root.choices[0])
        self._root_follows = bool(k.root.feature) and len(k.root.choices) > 1
        self._gray_below = k.gray_below
        self.seed = seed
        self.piece: PiecePlan | None = None
        self._section0 = 0
        self._bars: dict[int, KeyState] = {}
        self._last: int | None = None
        self._plan: dict[int, _Bar] = {}
        self._phrase_start = 0
        self._phrase_len = 0
        self._phrase_index = -1
        self._section = 0
        self._section_keys: dict[str, tuple[int, str]] = {}
        self._key: tuple[int, str] | None = None
        self._prog = self._default_name
        self._final_bar: int | None = None
        self._prev_bass: int | None = None
        self._marker_bar: int | None = None
        self._marked_key: tuple[int, str] | None = None
        self._piece_phrase = self.phrase_bars
        self._in_section = 0

    # -- what the player calls ---------------------------------------------------------------

    def plan_piece(self, piece: PiecePlan | None) -> None:
        self.piece = piece

    def begin_section(self, index: int) -> None:
        """This harmony starts the piece's section ``index`` (a video's cut: 1, 2...)."""
        self._section0 = index

    def relocate(self) -> None:
        """The beat grid jumped: markers go on from the next window's first downbeat."""
        self._marker_bar = None

    def latest(self) -> KeyState | None:
        return None if self._last is None else self._bars.get(self._last)

    def at(self, beat: float, features: Features, tempo: TempoClock) -> KeyState:
        bar = math.floor(beat / self.bar_beats + 1e-9)
        if self._last is None:
            self._last = bar - 1
            self._phrase_start = bar
        while self._last < bar:
            self._plan_bar(self._last + 1, features, tempo)
        state = self._bars.get(bar)
        return state if state is not None else self._bars[min(self._bars)]

    def bar_time(self, bar: int, tempo: TempoClock) -> float:
        return tempo.time_at(bar * self.bar_beats)

    def end_s(self) -> float | None:
        return None if self.piece is None else self.piece.end_s

    def markers(self, features: Features, tempo: TempoClock, t_from: float,
                t_to: float) -> list[Marker]:
        """The markers of every bar whose downbeat is in ``t_from <= t < t_to``."""
        out: list[Marker] = []
        if self._marker_bar is None:
            self._marker_bar = math.ceil(tempo.beat_at(t_from) / self.bar_beats - 1e-9)
        while (t := self.bar_time(self._marker_bar, tempo)) < t_to:
            bar = self._marker_bar
            self._marker_bar += 1
            if t < t_from - 0.1:  # a jump of the beat grid: skipped, like a late step
                continue
            out += self._bar_markers(self.at(bar * self.bar_beats, features, tempo), t)
        return out

    # -- planning ---------------------------------------------------------------------------

    def _plan_bar(self, bar: int, features: Features, tempo: TempoClock) -> None:
        if self._final_bar is not None and bar > self._final_bar:  # the final chord holds
            held = self._bars.get(bar - 1) or self._bars[self._final_bar]
            self._store(bar, dataclasses.replace(held, slot=bar, bar=bar, change=False,
                                                 cadence=None))
            return
        if bar >= self._phrase_start + self._phrase_len or bar not in self._plan:
            self._plan_phrase(bar, features, tempo)
        elif (self.piece is not None and self._plan[bar].cadence != "final"
              and self._bars_left(bar, tempo) <= 1):  # the estimate was long: end here
            self._plan[bar] = _Bar("I", "final")
        plan = self._plan[bar]
        root, scale = self._key if self._key is not None else (self._root_default, "major")
        chord = theory.coloured_chord(plan.numeral, root, scale, self._colour_for(plan))
        phrase_bar = bar - self._phrase_start
        prev = self._bars.get(bar - 1)
        before = self._plan.get(bar - 1)
        change = (phrase_bar == 0 or prev is None or before is None
                  or before.numeral != plan.numeral or (prev.root, prev.scale) != (root, scale))
        bass = self._bass(chord, plan, phrase_bar, change, prev)
        span = 1
        while (bar + span < self._phrase_start + self._phrase_len
               and self._plan[bar + span].numeral == plan.numeral):
            span += 1
        final = plan.cadence == "final"
        if final:
            self._final_bar = bar
        name = section_name(self._section)
        state = KeyState(bar, root, scale, theory.scale_pcs(root, scale), chord, self._prog,
                         section=name, bar=bar, phrase_bar=phrase_bar,
                         phrase_bars=self._phrase_len, cadence=plan.cadence, final=final,
                         motif_seed=motif_seed(self.seed, name),
                         bass=bass, change=change, chord_bars=span if change else 1)
        self._store(bar, state)

    def _store(self, bar: int, state: KeyState) -> None:
        self._bars[bar] = state
        self._last = bar
        self._bars.pop(bar - KEEP_BARS, None)
        self._plan.pop(bar - KEEP_BARS, None)

    def _colour_for(self, plan: _Bar) -> str:
        if plan.cadence == "final" and self.colour == "sevenths":
            return "triads"  # the last chord rests: no seventh pulling onwards
        return self.colour

    def _bass(self, chord: theory.Chord, plan: _Bar, phrase_bar: int, change: bool,
              prev: KeyState | None) -> int:
        """The bass pc: the root, or with ``inversions`` the third when that is nearer the last
        bass (a stepwise line), except at phrase starts, cadences and in pentatonic scales."""
        bass = chord.root
        if (self.inversions and change and phrase_bar > 0 and plan.cadence is None
                and prev is not None and len(chord.tones) >= 3
                and not theory.is_pentatonic(prev.scale)):
            last = prev.bass_pc

            def dist(pc: int) -> int:
                d = (pc - last) % 12
                return min(d, 12 - d)

            third = chord.tones[1]
            if 0 < dist(third) < dist(chord.root):
                bass = third
        return bass if bass != chord.root else -1

    def _plan_phrase(self, bar: int, features: Features, tempo: TempoClock) -> None:
        t = self.bar_time(bar, tempo)
        self._phrase_index += 1
        first = self._phrase_index == 0
        length, closing, final_phrase = self.phrase_bars, "authentic", False
        piece = self.piece
        if piece is not None:
            left = self._bars_left(bar, tempo)
            if first:  # a short piece has short phrases, so that it still has A B A'
                self._piece_phrase = self.phrase_bars if left >= 3.5 * self.phrase_bars \
                    else max(2, self.phrase_bars // 2)
            p = self._piece_phrase
            if left <= p + p // 2:
                length, closing, final_phrase = max(1, left), "final", True
            elif left < 2 * p:
                length = left - p
            else:
                length = p
        # the section
        if piece is not None and piece.travel:
            open_end = piece.start_s + piece.opening * (piece.end_s - piece.start_s)
            close_start = piece.end_s - piece.opening * (piece.end_s - piece.start_s)
            section = 0 if (first or t < open_end) else 2 if (final_phrase or
                                                              t >= close_start) else 1
        else:
            section = self._section0 + self._phrase_index // self.section_phrases
        new_section = first or section != self._section
        self._in_section = 0 if new_section else self._in_section + 1
        self._section = section
        name = section_name(section)
        # the key: at phrase starts (live) or section starts (a piece); A' returns to A's key
        if piece is None or new_section or self._key is None:
            if name.startswith("A") and name != "A" and "A" in self._section_keys \
                    and piece is not None:
                key = self._section_keys["A"]
            else:
                key = self._choose_key(features, t)
                if name.startswith("B") and self.contrast_mode == "parallel":
                    key = (key[0], theory.parallel_scale(key[1]))
            self._key = key
            self._section_keys.setdefault(name.rstrip("'"), key)
        root, scale = self._key
        # the loop
        if name.startswith("B"):
            wanted = self._progression_for(features.mood)
            loop = self._contrast or default_contrast(self._progs[wanted], scale)
            self._prog = "contrast"
        else:
            self._prog = self._progression_for(features.mood)
            loop = self._progs[self._prog]
        single: str | None = None
        if length < MIN_PERIOD_BARS and not final_phrase:
            # question, answer; the opening of a travelled still (one phrase) closes on I
            opening = piece is not None and piece.travel and section == 0
            closing = "authentic" if opening or self._in_section % 2 else "half"
            single = closing
        bars = phrase_plan(length, loop, self.bars_per_chord, closing, scale, self.plagal,
                           single)
        self._phrase_start, self._phrase_len = bar, len(bars)
        for j, b in enumerate(bars):
            self._plan[bar + j] = b

    def _progression_for(self, mood: str) -> str:
        return mood if mood in self._progs else self._default_name

    def _choose_key(self, features: Features, t: float) -> tuple[int, str]:
        if self._root_follows and features.values.get(GRAY_FEATURE, 1.0) < self._gray_below:
            root = self._root_default
        else:
            name = self._root(features, t)
            root = theory.parse_pitch_class(int(name) if name.isdigit() else name)
        return root, self._scale(features, t)

    def _bars_left(self, bar: int, tempo: TempoClock) -> int:
        """Whole bars from ``bar``'s downbeat to the piece's end (see the module docstring)."""
        assert self.piece is not None
        t0, end = self.bar_time(bar, tempo), self.piece.end_s
        if end <= t0:
            return 0
        scale = self.piece.tempo_scale or (lambda _t: 1.0)
        base = tempo.bpm / max(1e-6, scale(t0))
        n = 32
        dt = (end - t0) / n
        beats = sum(base * scale(t0 + (i + 0.5) * dt) for i in range(n)) * dt / 60.0
        return int(math.floor(beats * SAFETY / self.bar_beats + 1e-9))

    # -- markers -------------------------------------------------------------------------------

    def _bar_markers(self, k: KeyState, t: float) -> list[Marker]:
        out: list[Marker] = []
        if k.change and (k.root, k.scale) != self._marked_key:
            self._marked_key = (k.root, k.scale)
            pcs = [(k.root + i) % 12 for i in theory.scale_intervals(k.scale)]
            out.append(Marker(t, "key", f"root={theory.NOTE_NAMES[k.root]} scale={k.scale} "
                                        f"pcs={','.join(map(str, pcs))}"))
        if k.change and k.phrase_bar == 0:
            prev = self._bars.get(k.bar - 1)
            if prev is None or prev.section != k.section:
                out.append(Marker(t, "section", f"name={k.section}"))
            out.append(Marker(t, "phrase", f"bars={k.phrase_bars}"))
        if k.change:
            out.append(Marker(t, "chord", f"name={k.chord.numeral} root={k.chord.root} "
                                          f"pcs={','.join(map(str, k.chord.tones))} "
                                          f"bass={k.bass_pc}"))
        if k.cadence is not None:
            out.append(Marker(t, "cadence", f"type={k.cadence}"))
        return out

