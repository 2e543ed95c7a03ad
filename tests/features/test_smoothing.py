from __future__ import annotations

import math

import pytest

from sonify.features.smoothing import OnePole, Onset


def test_one_pole_is_exact_for_uneven_frame_intervals() -> None:
    even, uneven = OnePole(0.5), OnePole(0.5)
    even.update(0.0, 0.0)
    uneven.update(0.0, 0.0)
    for k in range(1, 11):
        even.update(1.0, k * 0.1)
    for t in (0.05, 0.3, 0.35, 0.9, 1.0):
        uneven.update(1.0, t)
    assert even.value == pytest.approx(uneven.value)
    assert even.value == pytest.approx(1 - math.exp(-1.0 / 0.5))


def test_zero_time_constant_passes_values_through() -> None:
    p = OnePole(0.0)
    assert [p.update(x, i) for i, x in enumerate([0.1, 0.9, 0.3])] == [0.1, 0.9, 0.3]


def test_circular_smoothing_goes_the_short_way_round() -> None:
    hue = OnePole(1.0, circular=True)
    hue.update(0.95, 0.0)
    v = hue.update(0.05, 1.0)
    assert v > 0.95 or v < 0.05  # through red, never through green/blue at 0.5


def test_negative_time_constant_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        OnePole(-1.0)


def test_onset_needs_to_fall_below_low_before_firing_again() -> None:
    o = Onset(high=0.5, low=0.2)
    fired = [o.update(x, i) for i, x in enumerate([0.1, 0.6, 0.7, 0.4, 0.6, 0.1, 0.6])]
    assert fired == [False, True, False, False, False, False, True]


def test_onset_rate_limit() -> None:
    o = Onset(high=0.5, low=0.2, min_interval_s=1.0)
    fired = [o.update(x, t) for t, x in [(0.0, 0.9), (0.1, 0.0), (0.2, 0.9), (1.5, 0.0),
                                         (1.6, 0.9)]]
    assert fired == [True, False, False, False, True]


def test_onset_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="low < high"):
        Onset(high=0.2, low=0.5)
