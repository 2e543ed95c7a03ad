"""The form of a piece: what shapes it over its whole length, beyond the scene's own rules.

A ``Form`` is optional and any run may use one (``sonify render`` does; a live run could):

- **an arc** over a known duration (a still picture's piece): the velocity swells through the
  opening, holds, and fades through the ending, where the tempo also slows (a ritardando);
- **sections at cuts** (a video): each scene cut after the first half second starts a new
  section, where the scene's harmony starts afresh (a new seed); ``sections`` lists where each
  section begins (engine seconds, the first at the start);
- **the plan of a still picture's piece** (``shape``, with the arc): the player's harmony
  learns when the piece ends and how the ritardando slows it, and its sections follow the
  travelling eye (A B A'), so the final cadence lands on the last bar and the tonic is held to
  the end (``sonify.scene.harmony``);
- **an ending** (``ending``: a video's or the demo's render, of known length, without the arc):
  the harmony plans only the final cadence, so the piece ends on the tonic too, in tempo and
  with its sections at cuts as live.

At a cut (``cut``) the old harmony ends and the new one is struck at once: the notes of the old
section's voices still sounding end at the cut with their own note-offs (triggers, such as the
cut's own cymbal, ring on), and the beat grid is re-anchored so that the cut is a downbeat (the
beat count jumps forward to the next bar line; not while following an external clock, whose
grid is shared). The new section's first chord is struck there: offline on the block of the
cut's frame, live at the end of the notes already rendered (the lookahead, under a beat).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sonify.events import Event, Note
from sonify.scene.harmony import PiecePlan

if TYPE_CHECKING:
    from sonify.performance.driver import SceneDriver
    from sonify.scene.player import ScenePlayer
    from sonify.timing.scheduler import Scheduler

CUT_GRACE_S = 0.5  # a cut this early is the first picture arriving, not a new shot


@dataclass
class Form:
    duration_s: float | None = None  # with ``arc``: the piece's length
    arc: bool = False
    sections_at_cuts: bool = False
    ending: bool = False  # a video's (or the demo's) piece of known length ends on the tonic
    opening: float = 0.15  # the arc's opening and ending, each a share of the duration
    ritardando: float = 0.2  # set from the scene by shape(): 0 for a beat scene
    start_s: float = 0.0
    sections: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if (self.arc or self.ending) and not (self.duration_s and self.duration_s > 0):
            raise ValueError("an arc or a planned ending needs the piece's duration")
        if not self.sections:
            self.sections.append(self.start_s)

    # -- the arc ----------------------------------------------------------------------------

    def level(self, t: float) -> float:
        """The velocity factor at ``t``: 0.55 -> 1 through the opening, 1 -> 0.55 at the end."""
        if not self.arc or self.duration_s is None:
            return 1.0
        d = self.duration_s
        t_open, t_end = self.opening * d, (1 - self.opening) * d
        t -= self.start_s
        if t < t_open:
            return 0.55 + 0.45 * t / t_open
        if t > t_end:
            return 1.0 - 0.45 * (t - t_end) / (d - t_end)
        return 1.0

    def tempo_scale(self, t: float) -> float:
        """The tempo factor at ``t``: 1, slowing to ``1 - ritardando`` through the ending (the
        scene's ``[harmony] ritardando``, 0.2 unless it says; 0 for beat scenes)."""
        if not self.arc or self.duration_s is None:
            return 1.0
        d = self.duration_s
        t_end = (1 - self.opening) * d
        t -= self.start_s
        if t > t_end:
            return 1.0 - self.ritardando * min(1.0, (t - t_end) / (d - t_end))
        return 1.0

    def transform(self, events: list[Event]) -> list[Event]:
        if not self.arc:
            return events
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, Note):
                ev = replace(ev, velocity=max(1, min(127, round(ev.velocity * self.level(ev.t)))))
            out.append(ev)
        return out

    # -- sections -----------------------------------------------------------------------------

    def new_section(self, onsets: Sequence[str], now: float) -> bool:
        """Whether a new section starts after the block at ``now`` (a cut came in it)."""
        return (self.sections_at_cuts and "cut_onset" in onsets
                and now - self.start_s > CUT_GRACE_S)

    # -- the plan of the piece, and cuts ------------------------------------------------------

    def shape(self, player: ScenePlayer) -> None:
        """Tell ``player``'s harmony the piece's length, ritardando and sections: a still
        picture's piece (``arc``). A video or a demo plays as it would live (sections at cuts,
        phrases going on); with ``ending`` its harmony also knows when the piece ends, so the
        last phrase closes on the tonic."""
        if self.duration_s is None or self.duration_s <= 0:
            return
        if not self.arc:
            if self.ending:  # no arc, no travelling eye: only the final cadence on the last bar
                player.plan_piece(PiecePlan(self.start_s, self.start_s + self.duration_s,
                                            opening=self.opening, travel=False))
            return
        self.ritardando = player.scene.harmony.ritardando
        player.plan_piece(PiecePlan(self.start_s, self.start_s + self.duration_s,
                                    opening=self.opening, travel=True,
                                    tempo_scale=self.tempo_scale))

    def cut(self, driver: SceneDriver, scheduler: Scheduler, player: ScenePlayer,
            at_s: float) -> float:
        """Prepare the section ``player`` starts at a cut near ``at_s`` (see the module
        docstring); returns when it starts (``driver.switch`` it there)."""
        at = max(at_s, driver.notes_to)
        old = {v.name for v in driver.player.scene.voices}
        scheduler.cut(at, voices=old)
        if not driver.synced:
            bar = player.scene.harmony.beats_per_bar
            beat = driver.tempo.beat_at(at)
            driver.tempo.align(driver.tempo.bpm, math.ceil(beat / bar - 1e-9) * bar, at)
            if driver.clock_out is not None:
                scheduler.schedule(driver.clock_out.relocate(driver.tempo, at))
        player.begin_section(len(self.sections))
        self.shape(player)
        return at
