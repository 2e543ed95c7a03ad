"""Euclidean rhythms, step patterns, swing and deterministic humanising."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonify.music.rhythm import (
    ACCENT,
    HIT,
    REST,
    RhythmError,
    euclid,
    format_steps,
    humanise,
    parse_steps,
    swing_steps,
    unit_random,
)


@pytest.mark.parametrize(("pulses", "steps", "pattern"), [
    (3, 8, "x..x..x."),      # tresillo
    (5, 8, "x.xx.xx."),      # cinquillo
    (2, 5, "x.x.."),
    (4, 16, "x...x...x...x..."),
    (7, 16, "x..x.x.x..x.x.x."),
    (0, 8, "........"),
    (8, 8, "xxxxxxxx"),
])
def test_euclidean_rhythms_match_toussaint(pulses: int, steps: int, pattern: str) -> None:
    assert format_steps(euclid(pulses, steps)) == pattern


def test_rotate_moves_the_pattern_later() -> None:
    assert format_steps(euclid(3, 8, rotate=1)) == ".x..x..x"
    assert format_steps(euclid(3, 8, rotate=8)) == "x..x..x."


@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_euclid_spreads_pulses_as_evenly_as_possible(ps: tuple[int, int]) -> None:
    pulses, steps = ps
    pattern = euclid(pulses, steps)
    assert len(pattern) == steps and sum(pattern) == pulses
    if pulses >= 2:
        onsets = [i for i, v in enumerate(pattern) if v]
        gaps = [(b - a) for a, b in zip(onsets, onsets[1:] + [onsets[0] + steps], strict=True)]
        assert max(gaps) - min(gaps) <= 1
        assert pattern[0] == HIT


def test_step_patterns_read_hits_accents_and_rests() -> None:
    assert parse_steps("x..X.x..") == (HIT, REST, REST, ACCENT, REST, HIT, REST, REST)
    assert parse_steps("x--x | x.x.") == (HIT, REST, REST, HIT, HIT, REST, HIT, REST)
    assert format_steps(parse_steps("X.x.")) == "X.x."


@pytest.mark.parametrize("bad", ["x.o.", "", " | "])
def test_bad_step_patterns_say_what_is_allowed(bad: str) -> None:
    with pytest.raises(RhythmError, match="x = hit, X = accented hit"):
        parse_steps(bad)


def test_swing_delays_only_off_beat_steps() -> None:
    assert [swing_steps(i, 1 / 3) for i in range(4)] == [0.0, 1 / 3, 0.0, 1 / 3]
    assert swing_steps(5, 0.0) == 0.0


def test_humanise_is_deterministic_per_seed_and_bounded() -> None:
    a = [humanise(7, (0, k, 0), 10.0, 8) for k in range(500)]
    b = [humanise(7, (0, k, 0), 10.0, 8) for k in range(500)]
    c = [humanise(8, (0, k, 0), 10.0, 8) for k in range(500)]
    assert a == b
    assert a != c
    assert all(-0.010 <= dt <= 0.010 and -8 <= dv <= 8 for dt, dv in a)
    assert min(dt for dt, _ in a) < -0.008 and max(dt for dt, _ in a) > 0.008
    assert {dv for _, dv in a} == set(range(-8, 9))
    assert humanise(1, (3,), 0.0, 0) == (0.0, 0)


def test_unit_random_depends_only_on_seed_and_keys() -> None:
    xs = [unit_random(3, 1, k) for k in range(4000)]
    assert xs == [unit_random(3, 1, k) for k in range(4000)]
    assert all(0.0 <= x < 1.0 for x in xs)
    assert 0.45 < sum(xs) / len(xs) < 0.55
    assert unit_random(3, 1, 2) != unit_random(4, 1, 2)
