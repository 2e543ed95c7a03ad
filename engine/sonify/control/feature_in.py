"""Features that arrive over OSC, as an extra source: one box analyses, others play.

``OscFeatureInput`` listens on UDP ``host:port`` for the feature stream another sonify box
sends (``[osc] stream_features_hz`` or a scene's ``[stream]``: ``/sonify/feature/<name> f``,
see ``sonify.scene.stream``), or for the same values from TouchDesigner, a sensor or a patch:
any ``/<anything>/<feature> f`` whose last part is a scalar feature name of the registry
(``/td/motion 0.4``, ``/box1/feature/brightness 0.7``, or just ``/warmth 0.2``).

**Values** are what the stream sends: each feature as a 0..1 fraction of its registry span
(``sonify.features.registry``: ``fraction``/``span``; for most features the span is 0..1, for
``stars`` 0..16), turned back into registry units here, so ``room:stars`` reads a count as
the camera's ``stars`` does. A value outside 0..1 is clipped; ``i``/``h``/``d`` are taken as
numbers; a string, a NaN or a message with no or several arguments on a feature address is
ignored with a (rate-limited) log line. ``/<...>/mood i`` (the stream's mood index) and
``/<...>/mood/label s`` set the mood label. Every other address (the stream's ``/note``
messages, the mood's one-hot family, the grid and star arrays) is ignored silently and
counted in ``stats.ignored``.

**Publishing.** The listener drains every datagram waiting, then publishes once: a
``sonify.features.analyzer.Features`` holding every scalar of ``SCALAR_NAMES``, each the last
value received or, for one never received, the neutral value (a mid-grey picture's,
``performance.parts.neutral_features``), through ``publish(name, features)``
(``SourceFeatures.publish``: scenes read them as ``<name>:<feature>``). A burst that changed
nothing known publishes nothing. The arrays are the neutral ones (extra sources lend scenes
their scalars only), ``raw`` equals ``values`` (the sender has smoothed them already).

**Inputs in the config.** ``[[source.extra]] input = "osc:9100"`` listens on 127.0.0.1:9100;
``"osc:HOST:PORT"`` or ``"osc://HOST:PORT"`` on another address (``0.0.0.0`` to hear
another machine); ``parse_osc_input`` reads these.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sonify.control.udp import ListeningService, Reject, UdpListener, parse_packet
from sonify.features.analyzer import Features
from sonify.features.registry import FEATURES, MOOD_LABELS, SCALAR_NAMES
from sonify.performance.parts import neutral_features
from sonify.util.ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

OSC_SCHEME = "osc:"
DEFAULT_HOST = "127.0.0.1"
_SCALARS = frozenset(SCALAR_NAMES)


def parse_osc_input(text: str) -> tuple[str, int] | None:
    """``"osc:9100"`` -> ``("127.0.0.1", 9100)``; ``"osc:HOST:PORT"`` and
    ``"osc://HOST:PORT"`` -> ``(HOST, PORT)``; None for an input that is not OSC. A
    ValueError says what is expected for an ``osc:`` input that is malformed."""
    if not text.startswith(OSC_SCHEME):
        return None
    rest = text[len(OSC_SCHEME):].removeprefix("//")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]") if sep else DEFAULT_HOST
    if not port.isdigit() or not 1 <= int(port) <= 65535 or not host:
        raise ValueError(f"{text!r} is not an OSC input: write osc:PORT (on 127.0.0.1), "
                         f"osc:HOST:PORT or osc://HOST:PORT, e.g. osc:9100 or "
                         f"osc://0.0.0.0:9100")
    return host, int(port)


@dataclass(frozen=True)
class FeatureInputStats:
    """What the input did since it was created."""

    received: int = 0  # datagrams read
    values: int = 0  # feature values taken
    published: int = 0  # Features published
    ignored: int = 0  # messages at addresses that carry no scalar feature
    rejected: int = 0  # bad packets and bad values on feature addresses


def _number(address: str, args: list[Any]) -> float:
    if len(args) != 1:
        raise Reject("wrong_arity", f"{address} takes one number, got {len(args)} arguments")
    a = args[0]
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        raise Reject("wrong_type", f"{address}: {type(a).__name__} {a!r:.40} is not a number")
    v = float(a)
    if not math.isfinite(v):
        raise Reject("out_of_range", f"{address}: {v} is not a value")
    return v


class OscFeatureInput(ListeningService):
    """An extra source fed over OSC (see the module docstring): ``start()`` binds
    ``host:port`` (port 0: any free one; ``ListenError`` names a taken port) and listens on a
    daemon thread, ``close()`` ends it; each burst received is ``publish(name, Features)``."""

    def __init__(self, name: str, host: str, port: int,
                 publish: Callable[[str, Features], None]) -> None:
        self.name = name
        self._publish = publish
        self._listener = UdpListener(f"OSC features for {name}", host, port,
                                     f"[[source.extra]] {name} input = \"osc:PORT\"",
                                     self._handle_datagram, self._after_batch)
        self._log = RateLimitedLog(logger)
        self._lock = threading.Lock()
        self._neutral = neutral_features()
        self._fractions: dict[str, float] = {}
        self._mood: str | None = None
        self._changed = False
        self._index = 0
        self._received = self._values = self._published = self._ignored = self._rejected = 0

    @property
    def where(self) -> str:
        return f"OSC {self.host}:{self.port}"

    @property
    def stats(self) -> FeatureInputStats:
        with self._lock:
            return FeatureInputStats(received=self._received, values=self._values,
                                     published=self._published, ignored=self._ignored,
                                     rejected=self._rejected)

    def open(self) -> None:
        """Bind the port now (ListenError if it cannot), listen later with ``start``."""
        self._listener.bind()

    def start(self) -> None:
        self._listener.start()

    def close(self) -> None:
        self._listener.close()

    def features(self) -> Features:
        """The Features the received values make now (neutral ones for the rest)."""
        with self._lock:
            fractions, mood = dict(self._fractions), self._mood
            self._index += 1
            index = self._index
        values = dict(self._neutral.values)
        for name, frac in fractions.items():
            lo, hi = FEATURES[name].span
            values[name] = lo + frac * (hi - lo)
        return replace(self._neutral, index=index, t=time.perf_counter(), values=values,
                       raw=dict(values), mood=mood or self._neutral.mood, analysis_ms=0.0)

    # -- the listener thread -------------------------------------------------------------------

    def _handle_datagram(self, data: bytes, sender: tuple[Any, ...]) -> None:
        with self._lock:
            self._received += 1
        try:
            messages = parse_packet(data)
        except Reject as rej:
            self._reject(rej.reason, "%s: bad packet from %s: %s", self._listener.what,
                         sender[0], rej.detail)
            return
        for address, args in messages:
            try:
                self._take(address, args)
            except Reject as rej:
                self._reject(rej.reason, "%s: %s from %s ignored: %s", self._listener.what,
                             address[:80], sender[0], rej.detail)

    def _take(self, address: str, args: list[Any]) -> None:
        parent, _, leaf = address.rpartition("/")
        if leaf in _SCALARS:
            frac = min(1.0, max(0.0, _number(address, args)))
            with self._lock:
                self._fractions[leaf] = frac
                self._values += 1
                self._changed = True
            return
        mood: str | None = None
        if leaf == "mood" and len(args) == 1 and isinstance(args[0], int) \
                and not isinstance(args[0], bool) and 0 <= args[0] < len(MOOD_LABELS):
            mood = MOOD_LABELS[args[0]]
        elif (leaf == "label" and parent.endswith("/mood") and len(args) == 1
              and args[0] in MOOD_LABELS):
            mood = str(args[0])
        with self._lock:
            if mood is None:
                self._ignored += 1
            elif mood != self._mood:
                self._mood = mood
                self._changed = True

    def _after_batch(self) -> None:
        with self._lock:
            changed, self._changed = self._changed, False
        if not changed:
            return
        self._publish(self.name, self.features())
        with self._lock:
            self._published += 1

    def _reject(self, reason: str, msg: str, *args: object) -> None:
        with self._lock:
            self._rejected += 1
        self._log.warning(reason, msg, *args)
