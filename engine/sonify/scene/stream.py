"""The feature stream's conventions: what a visual tool, a lighting desk or a patch receives.

TouchDesigner's OSC In CHOP, Resolume, VDMX and most lighting desks read numbers, not strings,
and expect a value at a steady rate (a receiver that connects late hears the picture at once).
So every tick of the stream (``rate_hz``) sends, under its prefix (``/feature`` by default, the
OSC output adds its own ``/sonify`` in front):

==================================  ========  ============================================
address                             types     value
==================================  ========  ============================================
``/feature/<name>``                 ``f``     each scalar feature 0..1 (``fraction``: its
                                              registry range; ``stars`` is count / 16)
``/feature/mood``                   ``i``     the mood as its index in ``MOOD_LABELS``
                                              (0 calm, 1 happy, 2 energetic, 3 tense, 4 sad)
``/feature/mood/<label>``           ``f``     one-hot: 1.0 for the current mood, else 0.0
``/feature/mood/label``             ``s``     the mood's name (for Max, Pd, a log)
``/feature/grid``                   64 ``f``  the 8x8 luma grid 0..1, row by row from the
                                              top left
``/feature/star_points``            48 ``f``  the 16 brightest points as x, y, level triples
                                              (x 0 left .. 1 right, y 0 top .. 1 bottom, level
                                              0..1), brightest first, zero triples when fewer
==================================  ========  ============================================

Arrays go as plain float arguments (``,fff...``), not a blob: every OSC tool reads floats, few
decode blobs. ``changes_only`` sends an address only when its value differs from the last one
sent to it. An empty prefix sends no scalars and no arrays; an empty mood address no mood.

``stream_layout`` describes each address (type, range, meaning) for OSCQuery; ``frame``
builds one tick's messages. The scene's ``[stream]`` (``scene.controls``) and the config's
``[osc] stream_features_hz`` (``performance.parts``) both follow this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sonify.events import OscMessage
from sonify.features.analyzer import Features
from sonify.features.registry import FEATURES, MOOD_LABELS, SCALAR_NAMES, fraction
from sonify.features.registry import spec as feature_spec

STREAM_ARRAYS: tuple[str, ...] = ("grid", "star_points")
"""The arrays a stream sends unless told otherwise."""
DIGITS = 4  # values are rounded to this many decimals: steady numbers, and changes_only works
MOOD_LABEL_LEAF = "label"


def mood_index(label: str) -> int:
    """The mood's index in ``MOOD_LABELS`` (-1 for a label that is not one, e.g. before the
    first picture)."""
    try:
        return MOOD_LABELS.index(label)
    except ValueError:
        return -1


def mood_values(address: str, label: str) -> list[tuple[str, tuple[int | float | str, ...]]]:
    """The mood family: ``address i index``, ``address/<label> f 0|1`` per label, and
    ``address/label s name``."""
    out: list[tuple[str, tuple[int | float | str, ...]]] = [(address, (mood_index(label),))]
    out += [(f"{address}/{m}", (1.0 if m == label else 0.0,)) for m in MOOD_LABELS]
    out.append((f"{address}/{MOOD_LABEL_LEAF}", (label,)))
    return out


def array_args(features: Features, name: str) -> tuple[float, ...]:
    """The array feature ``name`` flattened row by row, as floats rounded to ``DIGITS``."""
    flat = np.asarray(features.arrays[name], dtype=np.float64).ravel()
    # tolist(): Python floats at once, not a NumPy scalar per value (every stream tick)
    return tuple(round(v, DIGITS) for v in flat.tolist())


def scalar_value(features: Features, name: str) -> float:
    """The scalar feature ``name`` as 0..1 (its registry ``fraction``), rounded."""
    return round(fraction(name, features.values.get(name, 0.0)), DIGITS)


@dataclass(frozen=True)
class StreamAddress:
    """One address of the stream as OSCQuery describes it: ``types`` its OSC type tags,
    ``lo``/``hi`` the range of each value (None: no range, e.g. a string)."""

    address: str
    types: str
    description: str
    lo: float | None = 0.0
    hi: float | None = 1.0
    values: tuple[str, ...] = ()  # the allowed values of a string


def stream_layout(prefix: str = "/feature", *, names: Sequence[str] = SCALAR_NAMES,
                  mood_address: str | None = None,
                  arrays: Sequence[str] = STREAM_ARRAYS) -> list[StreamAddress]:
    """Every address a stream with these settings sends (``mood_address`` None: at
    ``<prefix>/mood``; "" sends no mood), in the order a tick sends them."""
    mood = f"{prefix}/mood" if mood_address is None else mood_address
    out = []
    for name in names if prefix else ():
        spec = feature_spec(name)  # a zone's feature ("zone:door:presence") has its base's
        note = f" (count / {spec.span[1]:g}, at most 1)" if spec.hi is None else ""
        out.append(StreamAddress(f"{prefix}/{name}", "f", spec.description + note))
    if mood:
        labels = ", ".join(f"{i} {m}" for i, m in enumerate(MOOD_LABELS))
        out.append(StreamAddress(mood, "i", f"the mood as a number: {labels}", 0,
                                 len(MOOD_LABELS) - 1))
        out += [StreamAddress(f"{mood}/{m}", "f", f"1 while the mood is {m}, else 0")
                for m in MOOD_LABELS]
        out.append(StreamAddress(f"{mood}/{MOOD_LABEL_LEAF}", "s", "the mood's name",
                                 None, None, MOOD_LABELS))
    if prefix:
        for name in arrays:
            spec = FEATURES[name]
            n = int(np.prod(spec.shape))
            out.append(StreamAddress(f"{prefix}/{name}", "f" * n,
                                     f"{spec.description}: {n} floats 0..1"))
    return out


def frame(features: Features, t: float, prefix: str = "/feature", *,
          names: Sequence[str] = SCALAR_NAMES, mood_address: str | None = None,
          arrays: Sequence[str] = STREAM_ARRAYS,
          voice: str = "stream") -> list[OscMessage]:
    """One tick of the stream at ``t``: the scalars, the mood family and the arrays (see the
    module docstring), in ``stream_layout`` order."""
    out = [OscMessage(t, f"{prefix}/{name}", (scalar_value(features, name),), voice)
           for name in (names if prefix else ())]
    mood = f"{prefix}/mood" if mood_address is None else mood_address
    if mood:
        out += [OscMessage(t, a, args, voice) for a, args in mood_values(mood, features.mood)]
    if prefix:
        out += [OscMessage(t, f"{prefix}/{name}", array_args(features, name), voice)
                for name in arrays if name in features.arrays]
    return out


class ChangesOnly:
    """``changes_only``: passes a message on only when its arguments differ from the last ones
    passed at its address."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[object, ...]] = {}

    def __call__(self, messages: Sequence[OscMessage]) -> list[OscMessage]:
        out = []
        for m in messages:
            if self._last.get(m.address) != m.args:
                self._last[m.address] = m.args
                out.append(m)
        return out
