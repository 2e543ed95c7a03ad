"""Per-feature temporal smoothing and onset detection with hysteresis."""

from __future__ import annotations

import math


class OnePole:
    """One-pole low-pass with a time constant in seconds, exact for uneven frame intervals.

    ``alpha = 1 - exp(-dt / tau)``; tau 0 passes values through. ``circular`` smooths a value in
    0..1 that wraps (a hue) through its angle, so 0.95 -> 0.05 goes the short way round.
    """

    __slots__ = ("tau_s", "circular", "value", "_t", "_c", "_s")

    def __init__(self, tau_s: float, circular: bool = False) -> None:
        if tau_s < 0:
            raise ValueError(f"smoothing time constant must be >= 0 s, got {tau_s}")
        self.tau_s = tau_s
        self.circular = circular
        self.value: float | None = None
        self._t = 0.0
        self._c = 0.0
        self._s = 0.0

    def reset(self) -> None:
        self.value = None

    def update(self, x: float, t: float) -> float:
        if self.value is None or self.tau_s == 0.0:
            alpha = 1.0
        else:
            dt = max(0.0, t - self._t)
            alpha = 1.0 - math.exp(-dt / self.tau_s)
        self._t = t
        if self.circular:
            angle = 2.0 * math.pi * x
            if alpha >= 1.0:
                self._c = self._s = 0.0
            self._c += alpha * (math.cos(angle) - self._c)
            self._s += alpha * (math.sin(angle) - self._s)
            if self._c == 0.0 and self._s == 0.0:
                self.value = x
            else:
                self.value = (math.atan2(self._s, self._c) / (2.0 * math.pi)) % 1.0
        elif alpha >= 1.0 or self.value is None:
            self.value = x
        else:
            self.value += alpha * (x - self.value)
        return self.value


class Onset:
    """Fires once when a value rises to ``high``; re-arms only after it falls to ``low``.

    The gap between the two thresholds (hysteresis) keeps a value hovering at the threshold
    from firing on every frame; ``min_interval_s`` caps the rate.
    """

    __slots__ = ("high", "low", "min_interval_s", "armed", "_last")

    def __init__(self, high: float, low: float, min_interval_s: float = 0.0) -> None:
        if not low < high:
            raise ValueError(f"onset needs low < high, got low={low} high={high}")
        self.high = high
        self.low = low
        self.min_interval_s = min_interval_s
        self.armed = True
        self._last = -math.inf

    def update(self, x: float, t: float) -> bool:
        if self.armed:
            if x >= self.high and t - self._last >= self.min_interval_s:
                self.armed = False
                self._last = t
                return True
        elif x <= self.low:
            self.armed = True
        return False
