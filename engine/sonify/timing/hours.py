"""Opening hours: when the installation plays, with a fade at each edge; silent in between.

A week of ranges per day, plus dated exceptions::

    week = { daily = "10:00-18:00", mon = "closed", fri = "10:00-18:00, 20:00-02:00" }
    dates = { "2025-12-25" = "closed", "2025-12-31" = "10:00-16:00" }

- keys: ``mon`` .. ``sun`` (or full names), ranges such as ``mon-fri`` or ``fri-mon``, and
  ``daily``; later keys win over earlier ones, so ``daily`` first and the exceptions after;
- values: ``"HH:MM-HH:MM"`` ranges separated by commas, ``"closed"`` (or ``""``), ``"open"``
  (all day, the same as ``"00:00-24:00"``). A range whose end is not after its start runs past
  midnight and belongs to the day it starts on: Friday's ``"22:00-02:00"`` ends on Saturday at
  2:00. Ranges that touch (``sat = "00:00-24:00"``, ``sun = "00:00-24:00"``) merge, so there is
  no fade at midnight;
- times are wall-clock times in ``timezone`` (an IANA name; None = the box's own zone). Edges
  are turned into instants with the zone's rules, so a day with a DST change opens and closes
  at the printed times, and a fade lasts ``fade_s`` real seconds even across the change. A time
  that does not exist that day (the skipped hour in spring) is taken as the same time on the
  clock before the change, i.e. an hour later; a repeated one (autumn) as its first occurrence.

``gain(when)`` is 0 when closed, rises from 0 to 1 over the first ``fade_s`` seconds of an
opening and falls back to 0 over its last ``fade_s``, so the room is silent *at* closing time.
Everything is pure: the caller passes the time (an aware datetime is best, e.g.
``datetime.now().astimezone()``; a naive one is read as wall-clock time in ``timezone``).

``HoursGate`` applies the gain to the event stream on the music thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sonify.events import ControlChange, Event, Note, NoteOn, OscMessage

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_DAY = 24 * 60
MAX_FADE_S = 6 * 3600.0
CC_EXPRESSION = 11
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class HoursError(ValueError):
    """An opening-hours setting that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class Span:
    """Open from ``start_min`` to ``end_min`` minutes after the day's midnight (wall clock);
    ``end_min`` may pass 1440 (the range runs into the next day)."""

    start_min: int
    end_min: int


def _parse_time(text: str, where: str, *, end: bool) -> int:
    m = _TIME.match(text.strip())
    if not m:
        raise HoursError(f"{where}: {text.strip()!r} is not a time HH:MM (e.g. 09:30)")
    h, mi = int(m.group(1)), int(m.group(2))
    if mi > 59 or h > 24 or (h == 24 and (mi != 0 or not end)):
        raise HoursError(f"{where}: {text.strip()!r} is not a time of day (00:00..23:59; "
                         f"24:00 only as an end)")
    return h * 60 + mi


def parse_spans(text: str, where: str = "hours") -> tuple[Span, ...]:
    """``"10:00-13:00, 14:00-18:00"`` -> spans; ``"closed"``/``""`` -> none; ``"open"`` -> all
    day. An end not after the start runs past midnight."""
    value = text.strip().lower()
    if value in ("", "closed"):
        return ()
    if value == "open":
        return (Span(0, MINUTES_PER_DAY),)
    spans = []
    for part in value.split(","):
        start_s, sep, end_s = part.partition("-")
        if not sep:
            raise HoursError(f"{where}: {part.strip()!r} is not a range HH:MM-HH:MM "
                             f"(or 'closed', 'open')")
        start = _parse_time(start_s, where, end=False)
        end = _parse_time(end_s, where, end=True)
        if end == start:
            raise HoursError(f"{where}: {part.strip()!r} is empty; for the whole day write "
                             f"'open' or 00:00-24:00")
        if end < start:
            end += MINUTES_PER_DAY  # overnight: ends the next day
        spans.append(Span(start, end))
    return tuple(spans)


def parse_days(key: str, where: str = "hours.week") -> list[int]:
    """``"mon"`` -> [0]; ``"fri-mon"`` -> [4, 5, 6, 0]; ``"daily"`` -> all seven."""
    k = key.strip().lower()
    if k == "daily":
        return list(range(7))

    def one(name: str) -> int:
        n = name.strip()
        if n in DAYS:
            return DAYS.index(n)
        if n in FULL_DAYS:
            return FULL_DAYS.index(n)
        raise HoursError(f"{where}: unknown day {key!r}; use mon, tue, wed, thu, fri, sat, "
                         f"sun, a range such as mon-fri, or daily")

    first, sep, last = k.partition("-")
    if not sep:
        return [one(first)]
    a, b = one(first), one(last)
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


def parse_timezone(name: str, where: str = "hours.timezone") -> tzinfo | None:
    """An IANA zone (``Europe/Paris``), or None for ``""`` (the box's own zone)."""
    if not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"{where}: unknown time zone {name!r}; use an IANA name such as "
                         f"Europe/Paris (see timedatectl list-timezones), or \"\" for the "
                         f"box's own") from None


class OpeningHours:
    """When the installation plays; see the module docstring for the format."""

    def __init__(self, week: Mapping[str, str], *, dates: Mapping[str, str] | None = None,
                 fade_s: float = 60.0, tz: tzinfo | None = None,
                 where: str = "hours") -> None:
        if not 0 <= fade_s <= MAX_FADE_S:
            raise HoursError(f"{where}.fade_s: must be 0..{MAX_FADE_S:g} s, got {fade_s}")
        self.fade_s = float(fade_s)
        self.tz = tz
        self.week: list[tuple[Span, ...]] = [() for _ in DAYS]
        for key, value in week.items():
            spans = parse_spans(value, f"{where}.week.{key}")
            for day in parse_days(key, f"{where}.week.{key}"):
                self.week[day] = spans
        self.dates: dict[date, tuple[Span, ...]] = {}
        for key, value in (dates or {}).items():
            try:
                d = date.fromisoformat(key.strip())
            except ValueError:
                raise HoursError(f"{where}.dates: {key!r} is not a date YYYY-MM-DD") from None
            self.dates[d] = parse_spans(value, f"{where}.dates.{key}")

    @classmethod
    def from_settings(cls, week: Mapping[str, str], *, dates: Mapping[str, str] | None = None,
                      fade_s: float = 60.0, timezone: str = "",
                      where: str = "hours") -> OpeningHours:
        """From the config's strings (the zone by name)."""
        return cls(week, dates=dates, fade_s=fade_s,
                   tz=parse_timezone(timezone, f"{where}.timezone"), where=where)

    @classmethod
    def always(cls) -> OpeningHours:
        return cls({"daily": "open"}, fade_s=0.0)

    # -- time ---------------------------------------------------------------------------------

    def _instant(self, wall: datetime) -> float:
        """Epoch seconds of a naive wall-clock time in this schedule's zone."""
        if self.tz is None:
            return wall.timestamp()  # naive: the box's local zone, with its DST rules
        return wall.replace(tzinfo=self.tz).timestamp()

    def _now(self, when: datetime) -> tuple[float, date]:
        """``when`` as epoch seconds and the local date it falls on."""
        if when.tzinfo is None:
            return self._instant(when), when.date()
        local = when.astimezone(self.tz) if self.tz is not None else when.astimezone()
        return when.timestamp(), local.date()

    def spans_on(self, day: date) -> tuple[Span, ...]:
        return self.dates.get(day, self.week[day.weekday()])

    def _intervals(self, first: date, last: date) -> list[tuple[float, float]]:
        """Open intervals (epoch seconds) of the spans starting on ``first``..``last``,
        merged where they overlap or touch."""
        raw = []
        day = first
        while day <= last:
            midnight = datetime(day.year, day.month, day.day)
            for s in self.spans_on(day):
                raw.append((self._instant(midnight + timedelta(minutes=s.start_min)),
                            self._instant(midnight + timedelta(minutes=s.end_min))))
            day += timedelta(days=1)
        raw.sort()
        merged: list[tuple[float, float]] = []
        for a, b in raw:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    def _around(self, t: float, today: date) -> tuple[float, float] | None:
        # a span can start at most a day before (overnight); two days either side keeps the
        # window's own edges (an artificial close of a 24/7 schedule) over a day from now
        for a, b in self._intervals(today - timedelta(days=2), today + timedelta(days=2)):
            if a <= t < b:
                return a, b
        return None

    # -- questions ----------------------------------------------------------------------------

    def is_open(self, when: datetime) -> bool:
        t, today = self._now(when)
        return self._around(t, today) is not None

    def gain(self, when: datetime) -> float:
        """0 closed, 1 open, in between during the fades at the edges (linear in time)."""
        t, today = self._now(when)
        span = self._around(t, today)
        if span is None:
            return 0.0
        if self.fade_s <= 0:
            return 1.0
        a, b = span
        return max(0.0, min(1.0, (t - a) / self.fade_s, (b - t) / self.fade_s))

    def next_change(self, when: datetime, horizon_days: int = 400) -> datetime | None:
        """The next opening or closing after ``when`` (aware, in the schedule's zone or the
        box's), None when nothing changes within ``horizon_days``."""
        t, today = self._now(when)
        last = today + timedelta(days=horizon_days)
        # an edge at the window's end may be the window's, not the schedule's: stop a day short
        limit = self._instant(datetime(last.year, last.month, last.day))
        for a, b in self._intervals(today - timedelta(days=2), last):
            for edge in (a, b):
                if t < edge < limit:
                    return datetime.fromtimestamp(edge, self.tz).astimezone(self.tz)
        return None


# -- applying the gain --------------------------------------------------------------------------

@dataclass
class GateStep:
    """What ``HoursGate.update`` asks of the runtime: schedule ``events`` (the fade controls);
    when ``panic`` the room just went silent: clear the scheduler and panic."""

    events: list[Event] = field(default_factory=list)
    panic: bool = False


class HoursGate:
    """Applies the opening hours to what the scene plays, on the music thread.

    - ``update(when, t)`` every block (it only emits on a change): sends the gain as MIDI
      ``control`` (CC 11, expression, by default: scenes do not use it, and a GM synth
      multiplies it with CC 7 volume, so a scene's own mix survives) on ``channels``, as 0..127,
      and as ``/gain`` (a float 0..1) for OSC receivers; ``panic`` once when the gain reaches 0;
    - ``filter(events)`` drops new notes (and voiced OSC messages) while the gain is 0; with
      ``control`` None it scales note velocities by the gain instead (for synths that ignore
      CC 11; a held note then keeps its level until it ends).
    """

    def __init__(self, hours: OpeningHours, *, control: int | None = CC_EXPRESSION,
                 channels: Iterable[int] = range(16), osc_address: str | None = "/gain") -> None:
        if control is not None and not 0 <= control <= 119:
            raise HoursError(f"fade control must be a MIDI controller 0..119, got {control}")
        self.hours = hours
        self.control = control
        self.channels = tuple(channels)
        self.osc_address = osc_address
        self.gain = 1.0
        self._level: int | None = None
        self._osc_level: int | None = None
        self._silent: bool | None = None

    @property
    def open(self) -> bool:
        return self.gain > 0.0

    def update(self, when: datetime, t: float) -> GateStep:
        """The gain at wall-clock ``when``; events stamped ``t`` (engine clock)."""
        self.gain = self.hours.gain(when)
        step = GateStep()
        level = round(self.gain * 127)
        if self.control is not None and level != self._level:
            step.events += [ControlChange(t, ch, self.control, level) for ch in self.channels]
        self._level = level
        osc_level = round(self.gain * 100)  # 1 % steps: enough for a fade, few messages
        if self.osc_address is not None and osc_level != self._osc_level:
            step.events.append(OscMessage(t, self.osc_address, (osc_level / 100,)))
        self._osc_level = osc_level
        silent = self.gain <= 0.0
        step.panic = silent and self._silent is False  # only on the way down, not at start
        self._silent = silent
        return step

    def resend(self) -> None:
        """Send the level again at the next ``update`` (a synth that restarted forgot it: call
        when an output reconnects, or every minute or so to be safe)."""
        self._level = None
        self._osc_level = None

    def filter(self, events: list[Event]) -> list[Event]:
        """The scene's events as the hours allow (the driver's transform, on the music thread)."""
        if self.gain >= 1.0:
            return events
        if self.gain <= 0.0:
            return [e for e in events
                    if not isinstance(e, (Note, NoteOn))
                    and not (isinstance(e, OscMessage) and e.voice)]
        if self.control is not None:
            return events
        out: list[Event] = []
        for e in events:
            if isinstance(e, (Note, NoteOn)):
                e = _with_velocity(e, max(1, round(e.velocity * self.gain)))
            out.append(e)
        return out


def _with_velocity(e: Note | NoteOn, velocity: int) -> Note | NoteOn:
    return replace(e, velocity=velocity)
