"""Opening hours: day ranges, overnight ranges, fades at the edges, exceptions, DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sonify.events import ControlChange, Note, NoteOn, OscMessage
from sonify.timing.hours import (
    HoursError,
    HoursGate,
    OpeningHours,
    Span,
    parse_days,
    parse_spans,
)

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, tz: ZoneInfo | None = PARIS) -> datetime:
    """'2025-06-02 10:00' (a Monday) as an aware time in ``tz``."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def gallery(fade_s: float = 0.0) -> OpeningHours:
    return OpeningHours({"daily": "10:00-18:00", "mon": "closed", "fri": "10:00-18:00, "
                         "20:00-02:00", "sat-sun": "11:00-19:00"}, fade_s=fade_s, tz=PARIS)


def test_open_within_the_days_ranges_and_closed_outside() -> None:
    h = gallery()
    assert not h.is_open(at("2025-06-02 12:00"))  # Monday: closed
    assert not h.is_open(at("2025-06-03 09:59"))  # Tuesday
    assert h.is_open(at("2025-06-03 10:00"))
    assert h.is_open(at("2025-06-03 17:59:59"))
    assert not h.is_open(at("2025-06-03 18:00"))  # the end is exclusive
    assert h.is_open(at("2025-06-07 18:30"))  # Saturday: 11-19
    assert not h.is_open(at("2025-06-07 10:30"))


def test_an_overnight_range_belongs_to_the_day_it_starts() -> None:
    h = gallery()
    assert not h.is_open(at("2025-06-06 19:00"))  # Friday, between the two ranges
    assert h.is_open(at("2025-06-06 23:00"))
    assert h.is_open(at("2025-06-07 01:59"))  # Saturday night, still Friday's range
    assert not h.is_open(at("2025-06-07 02:00"))
    # Monday is closed, but Sunday's hours are not overnight: Monday 01:00 is closed
    assert not h.is_open(at("2025-06-09 01:00"))


def test_an_overnight_range_into_a_closed_day_still_runs_to_its_end() -> None:
    h = OpeningHours({"sun": "22:00-02:00", "mon": "closed"}, tz=PARIS)
    assert h.is_open(at("2025-06-09 01:30"))  # Monday 01:30, from Sunday


def test_the_gain_fades_in_after_opening_and_out_before_closing() -> None:
    h = gallery(fade_s=60.0)
    tue = "2025-06-03"
    assert h.gain(at(f"{tue} 09:59:59")) == 0.0
    assert h.gain(at(f"{tue} 10:00:00")) == 0.0
    assert h.gain(at(f"{tue} 10:00:30")) == pytest.approx(0.5)
    assert h.gain(at(f"{tue} 10:01:00")) == 1.0
    assert h.gain(at(f"{tue} 14:00:00")) == 1.0
    assert h.gain(at(f"{tue} 17:59:15")) == pytest.approx(0.75)
    assert h.gain(at(f"{tue} 17:59:45")) == pytest.approx(0.25)
    assert h.gain(at(f"{tue} 18:00:00")) == 0.0  # silent at closing time


def test_ranges_that_touch_merge_so_there_is_no_dip_at_midnight() -> None:
    h = OpeningHours({"sat": "open", "sun": "00:00-24:00", "mon": "00:00-09:00"},
                     fade_s=600.0, tz=PARIS)
    assert h.gain(at("2025-06-07 23:59:59")) == 1.0
    assert h.gain(at("2025-06-08 00:00:00")) == 1.0
    assert h.gain(at("2025-06-09 00:00:00")) == 1.0
    assert h.gain(at("2025-06-09 08:55:00")) == pytest.approx(0.5)
    assert h.gain(at("2025-06-07 00:05:00")) == pytest.approx(0.5)  # Friday was closed


def test_always_open_never_fades() -> None:
    h = OpeningHours.always()
    assert all(h.gain(at("2025-01-01 00:00") + timedelta(hours=k)) == 1.0 for k in range(200))


def test_later_keys_win_and_dates_override_the_week() -> None:
    h = OpeningHours({"daily": "10:00-18:00", "tue": "12:00-14:00"},
                     dates={"2025-06-04": "closed", "2025-06-02": "08:00-09:00"}, tz=PARIS)
    assert not h.is_open(at("2025-06-03 11:00")) and h.is_open(at("2025-06-03 13:00"))
    assert not h.is_open(at("2025-06-04 12:00"))  # a closed Wednesday
    assert h.is_open(at("2025-06-02 08:30")) and not h.is_open(at("2025-06-02 12:00"))
    assert h.is_open(at("2025-06-05 12:00"))


def test_an_aware_time_in_another_zone_is_converted() -> None:
    h = gallery()
    assert h.is_open(datetime(2025, 6, 3, 8, 30, tzinfo=UTC))  # 10:30 in Paris (CEST)
    assert not h.is_open(datetime(2025, 6, 3, 7, 30, tzinfo=UTC))  # 09:30 in Paris


def test_a_naive_time_is_wall_clock_time_in_the_schedules_zone() -> None:
    h = gallery()
    assert h.is_open(datetime(2025, 6, 3, 10, 30))
    local = OpeningHours({"daily": "10:00-18:00"})  # the box's own zone
    assert local.is_open(datetime(2025, 6, 3, 10, 30))
    assert not local.is_open(datetime(2025, 6, 3, 9, 30))


def test_hours_keep_to_the_wall_clock_on_the_day_dst_starts() -> None:
    h = OpeningHours({"daily": "10:00-18:00"}, tz=PARIS)
    assert h.is_open(at("2025-03-30 10:00")) and not h.is_open(at("2025-03-30 09:59"))
    assert h.is_open(at("2025-10-26 17:59")) and not h.is_open(at("2025-10-26 18:00"))


def test_a_fade_lasts_real_seconds_across_a_dst_change() -> None:
    # Paris, 2025-03-30: 02:00 CET jumps to 03:00 CEST. Closing at 03:05 with a 30 min fade:
    # at 01:59 CET only 6 real minutes remain (the wall clock says 66).
    h = OpeningHours({"sat": "20:00-03:05"}, fade_s=1800.0, tz=PARIS)
    assert h.gain(at("2025-03-30 01:59")) == pytest.approx(6 / 30)
    assert h.gain(at("2025-03-30 03:04")) == pytest.approx(1 / 30)
    # 2025-10-26: 03:00 CEST goes back to 02:00 CET; the night is an hour longer
    h = OpeningHours({"sat": "20:00-03:00"}, fade_s=7200.0, tz=PARIS)
    first_0130 = datetime(2025, 10, 26, 1, 30, tzinfo=PARIS)  # CEST, 2.5 real hours left
    assert h.gain(first_0130) == pytest.approx(1.0)
    second_0230 = datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=PARIS)  # CET, 30 min left
    assert h.gain(second_0230) == pytest.approx(0.25)


def test_next_change_says_when_it_opens_or_closes() -> None:
    h = gallery()
    assert h.next_change(at("2025-06-02 12:00")) == at("2025-06-03 10:00")  # Mon -> Tue
    assert h.next_change(at("2025-06-03 12:00")) == at("2025-06-03 18:00")
    assert h.next_change(at("2025-06-06 23:00")) == at("2025-06-07 02:00")
    assert OpeningHours.always().next_change(at("2025-06-02 12:00")) is None
    closed = OpeningHours({"daily": "closed"}, dates={"2025-09-01": "10:00-11:00"}, tz=PARIS)
    assert closed.next_change(at("2025-06-02 12:00")) == at("2025-09-01 10:00")


def test_parsing_spans_and_days() -> None:
    assert parse_spans("10:00-13:00, 14:00-18:00") == (Span(600, 780), Span(840, 1080))
    assert parse_spans("22:00-02:00") == (Span(1320, 1560),)
    assert parse_spans("9:30-24:00") == (Span(570, 1440),)
    assert parse_spans("closed") == () == parse_spans(" ")
    assert parse_spans("Open") == (Span(0, 1440),)
    assert parse_days("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_days("fri-mon") == [4, 5, 6, 0]
    assert parse_days("Sunday") == [6]
    assert parse_days("daily") == list(range(7))


@pytest.mark.parametrize(("week", "dates", "message"), [
    ({"mon": "25:00-18:00"}, None, "hours.week.mon: '25:00' is not a time of day"),
    ({"mon": "10:00-10:00"}, None, "hours.week.mon: '10:00-10:00' is empty"),
    ({"mon": "10-18"}, None, "hours.week.mon: '10' is not a time HH:MM"),
    ({"mon": "10:00"}, None, "hours.week.mon: '10:00' is not a range"),
    ({"mon": "24:00-02:00"}, None, "24:00 only as an end"),
    ({"funday": "10:00-18:00"}, None, "hours.week.funday: unknown day 'funday'"),
    ({}, {"25.12.2025": "closed"}, "hours.dates: '25.12.2025' is not a date YYYY-MM-DD"),
    ({}, {"2025-12-25": "all day"}, "hours.dates.2025-12-25"),
])
def test_bad_hours_are_named_errors(week: dict[str, str], dates: dict[str, str] | None,
                                    message: str) -> None:
    with pytest.raises(HoursError, match=message.replace(".", r"\.").replace("(", r"\(")):
        OpeningHours(week, dates=dates)


def test_bad_fade_and_time_zone_are_named_errors() -> None:
    with pytest.raises(HoursError, match=r"hours\.fade_s"):
        OpeningHours({}, fade_s=-1)
    with pytest.raises(HoursError, match=r"hours\.timezone: unknown time zone 'Mars/Olympus'"):
        OpeningHours.from_settings({}, timezone="Mars/Olympus")
    assert OpeningHours.from_settings({}, timezone="Europe/Paris").tz == PARIS


# -- the gate ---------------------------------------------------------------------------------

def test_the_gate_sends_the_fade_as_cc11_and_osc_gain_only_on_change() -> None:
    gate = HoursGate(gallery(fade_s=127.0), channels=(0, 1))
    step = gate.update(at("2025-06-03 12:00"), t=5.0)  # open: reset the level at start
    assert step.events == [ControlChange(5.0, 0, 11, 127), ControlChange(5.0, 1, 11, 127),
                           OscMessage(5.0, "/gain", (1.0,))]
    assert not step.panic
    assert gate.update(at("2025-06-03 12:00:01"), t=6.0).events == []
    step = gate.update(at("2025-06-03 17:59:00"), t=7.0)  # 60 s of 127 left
    assert [e.value for e in step.events if isinstance(e, ControlChange)] == [60, 60]
    assert [e.args for e in step.events if isinstance(e, OscMessage)] == [(0.47,)]


def test_closing_mutes_new_notes_and_asks_for_one_panic() -> None:
    gate = HoursGate(gallery(fade_s=60.0))
    gate.update(at("2025-06-03 17:00"), t=0.0)
    notes = [Note(1.0, 0, 60, 100, 0.5, "pad"), ControlChange(1.0, 0, 74, 10),
             OscMessage(1.0, "/pad/note", (60,), "pad"), OscMessage(1.0, "/feature/x", (0.5,))]
    assert gate.filter(notes) == notes
    step = gate.update(at("2025-06-03 18:00"), t=1.0)
    assert step.panic and not gate.open
    assert gate.filter(notes) == [ControlChange(1.0, 0, 74, 10),
                                  OscMessage(1.0, "/feature/x", (0.5,))]
    assert not gate.update(at("2025-06-03 18:00:01"), t=2.0).panic  # once
    step = gate.update(at("2025-06-04 10:00:30"), t=3.0)  # Wednesday: fading in
    assert gate.open and not step.panic and 0 < gate.gain < 1
    assert gate.filter(notes) == notes  # the CC fades them; velocities untouched


def test_starting_while_closed_is_silent_without_a_panic() -> None:
    gate = HoursGate(gallery())
    step = gate.update(at("2025-06-02 12:00"), t=0.0)  # Monday
    assert not step.panic
    assert ControlChange(0.0, 15, 11, 0) in step.events
    assert gate.filter([NoteOn(0.0, 0, 60, 90)]) == []


def test_without_a_fade_control_velocities_are_scaled() -> None:
    gate = HoursGate(gallery(fade_s=60.0), control=None, osc_address=None)
    step = gate.update(at("2025-06-03 10:00:30"), t=0.0)
    assert step.events == [] and gate.gain == pytest.approx(0.5)
    assert gate.filter([Note(0.0, 0, 60, 100, 1.0), NoteOn(0.0, 1, 62, 1)]) == [
        Note(0.0, 0, 60, 50, 1.0), NoteOn(0.0, 1, 62, 1)]
    with pytest.raises(HoursError):
        HoursGate(gallery(), control=120)


def test_the_level_can_be_sent_again_for_a_synth_that_restarted() -> None:
    gate = HoursGate(gallery(), channels=(0,), osc_address=None)
    assert gate.update(at("2025-06-03 12:00"), t=0.0).events
    assert gate.update(at("2025-06-03 12:00"), t=1.0).events == []
    gate.resend()
    assert gate.update(at("2025-06-03 12:00"), t=2.0).events == [ControlChange(2.0, 0, 11, 127)]
