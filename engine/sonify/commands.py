"""The one door for control input: a bounded queue that coalesces and rate-limits commands.

Every control path (OSC, MIDI in, the web page, the scene file watcher) hands ``(name, arg)``
to ``CommandQueue.put`` from its own thread; the music thread takes a bounded batch each block
with ``take``. A flood of valid commands must not make notes late (a 2,000 messages/s
``/sonify/scene`` flood once stalled the music thread for seconds), so:

- **Coalescing.** A command that sets a state (``scene``, ``reload``, ``tempo``, ``freeze``,
  ``master``, ``transpose``, ``panic``, ``param`` per name, ``mute`` per voice) replaces a
  waiting one of the same key: the latest wins, and it moves to the back so the order of the
  latest requests is kept. However many arrive, a key is applied at most once per take.
- **Rate limits.** Each kind has a token bucket (``RATES``). A state command that finds its
  bucket empty waits in the queue (still replaced by newer ones) until a token comes: the
  latest request is applied, late rather than lost. An event command (``trigger``, ``learn``,
  ``status``) that finds its bucket empty is dropped and counted.
- **Bounds.** At most ``max_waiting`` commands wait (then new event commands are dropped and
  counted; state commands always have their one slot per key) and ``take(limit)`` hands out
  at most ``limit`` per block.

``stats()`` counts, per kind: received, applied (taken), coalesced (replaced by a newer one)
and dropped (rate limit or full). Thread-safe; ``take`` never blocks.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sonify.ratelimit import TokenBucket

# kind -> (commands per second, burst). A state command over its rate waits; an event command
# over its rate is dropped. Not listed: unlimited (still coalesced if a state command).
RATES: dict[str, tuple[float, float]] = {
    "scene": (8.0, 4.0),  # each one loads and checks a scene file
    "reload": (4.0, 2.0),
    "trigger": (200.0, 64.0),  # notes from MIDI in: a fast player, not a flood
    "learn": (4.0, 4.0),
    "status": (50.0, 20.0),
}
# State commands: (name, arg) -> coalescing key. Anything else is an event command (FIFO).
STATE_KEYS: dict[str, Callable[[object], object]] = {
    "scene": lambda arg: "scene",
    "reload": lambda arg: "reload",
    "tempo": lambda arg: "tempo",
    "freeze": lambda arg: "freeze",
    "master": lambda arg: "master",
    "transpose": lambda arg: "transpose",
    "panic": lambda arg: "panic",
    "stop": lambda arg: "stop",
    "param": lambda arg: ("param", arg[0] if isinstance(arg, tuple) and arg else arg),
    "mute": lambda arg: ("mute", arg[0] if isinstance(arg, tuple) and arg else arg),
}
MAX_WAITING = 512
TAKE_LIMIT = 64


@dataclass
class KindStats:
    received: int = 0
    applied: int = 0
    coalesced: int = 0
    dropped: int = 0


@dataclass
class CommandStats:
    kinds: dict[str, KindStats] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(k.dropped for k in self.kinds.values())

    @property
    def coalesced(self) -> int:
        return sum(k.coalesced for k in self.kinds.values())


class CommandQueue:
    """See the module docstring. ``clock`` (seconds, monotonic) is injectable for tests."""

    def __init__(self, rates: Mapping[str, tuple[float, float]] | None = None, *,
                 max_waiting: int = MAX_WAITING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rates = dict(RATES if rates is None else rates)
        self._buckets: dict[str, TokenBucket] = {}
        self._waiting: OrderedDict[object, tuple[str, object]] = OrderedDict()
        self._seq = 0
        self.max_waiting = max_waiting
        self._stats: dict[str, KindStats] = {}

    def _bucket(self, name: str, now: float) -> TokenBucket | None:
        rate = self._rates.get(name)
        if rate is None:
            return None
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = TokenBucket(rate[0], rate[1], now)
        return bucket

    def _kind(self, name: str) -> KindStats:
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = KindStats()
        return stats

    def put(self, name: str, arg: object = None) -> bool:
        """Queue a command (any thread). False when it was dropped (rate limit or full)."""
        keyer = STATE_KEYS.get(name)
        with self._lock:
            stats = self._kind(name)
            stats.received += 1
            if keyer is not None:
                try:
                    key: object = ("state", name, keyer(arg))
                    hash(key)
                except TypeError:  # an unhashable arg: no coalescing for it
                    key = None
                if key is not None:
                    if self._waiting.pop(key, None) is not None:
                        stats.coalesced += 1
                    elif len(self._waiting) >= self.max_waiting and name not in ("panic",
                                                                                 "stop"):
                        stats.dropped += 1
                        return False
                    self._waiting[key] = (name, arg)
                    return True
            bucket = self._bucket(name, self._clock())
            if bucket is not None and not bucket.take(self._clock()):
                stats.dropped += 1
                return False
            if len(self._waiting) >= self.max_waiting:
                stats.dropped += 1
                return False
            self._seq += 1
            self._waiting[("event", self._seq)] = (name, arg)
            return True

    def take(self, limit: int = TAKE_LIMIT) -> list[tuple[str, object]]:
        """Up to ``limit`` commands in order (the music thread, once per block). A state
        command whose rate is used up stays for a later take."""
        out: list[tuple[str, object]] = []
        with self._lock:
            if not self._waiting:
                return out
            now = self._clock()
            for key in list(self._waiting):
                if len(out) >= limit:
                    break
                name, arg = self._waiting[key]
                if key[0] == "state":  # type: ignore[index]
                    bucket = self._bucket(name, now)
                    if bucket is not None and not bucket.take(now):
                        continue  # waits for its token; a newer request may still replace it
                del self._waiting[key]
                self._kind(name).applied += 1
                out.append((name, arg))
        return out

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def stats(self) -> CommandStats:
        with self._lock:
            return CommandStats({k: KindStats(**vars(v)) for k, v in self._stats.items()})
