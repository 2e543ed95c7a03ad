"""The form of a piece: what shapes it over its whole length, beyond the scene's own rules.

A ``Form`` is optional and any run may use one (``sonify render`` does; a live run could):

- **an arc** over a known duration (a still picture's piece): the velocity swells through the
  opening, holds, and fades through the ending, where the tempo also slows (a ritardando);
- **sections at cuts** (a video): each scene cut after the first half second starts a new
  section, where the scene's harmony starts afresh (a new seed); ``sections`` lists where each
  section begins (engine seconds, the first at the start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sonify.events import Event, Note

CUT_GRACE_S = 0.5  # a cut this early is the first picture arriving, not a new shot


@dataclass
class Form:
    duration_s: float | None = None  # with ``arc``: the piece's length
    arc: bool = False
    sections_at_cuts: bool = False
    opening: float = 0.15  # the arc's opening and ending, each a share of the duration
    start_s: float = 0.0
    sections: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.arc and not (self.duration_s and self.duration_s > 0):
            raise ValueError("an arc needs the piece's duration")
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
        """The tempo factor at ``t``: 1, slowing to 0.8 through the ending (a ritardando)."""
        if not self.arc or self.duration_s is None:
            return 1.0
        d = self.duration_s
        t_end = (1 - self.opening) * d
        t -= self.start_s
        if t > t_end:
            return 1.0 - 0.2 * min(1.0, (t - t_end) / (d - t_end))
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
