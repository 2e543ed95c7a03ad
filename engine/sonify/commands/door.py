"""The door: ``CommandQueue``, bounded, coalescing and rate-limited, between the control
threads and the music thread (see ``sonify.commands``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sonify.commands.kinds import (
    Command,
    Freeze,
    Learn,
    Mute,
    Panic,
    Reload,
    SetMaster,
    SetParam,
    SetScene,
    SetTempo,
    Status,
    Stop,
    Teach,
    TeachOutputs,
    Transpose,
    Trigger,
)
from sonify.util.ratelimit import TokenBucket

# -- the door -----------------------------------------------------------------------------------

# kind -> (commands per second, burst). A state command over its rate waits; an event command
# over its rate is dropped. Not listed: unlimited (still coalesced if a state command).
RATES: dict[str, tuple[float, float]] = {
    SetScene.kind: (8.0, 4.0),  # each one loads and checks a scene file
    Reload.kind: (4.0, 2.0),
    Trigger.kind: (200.0, 64.0),  # notes from MIDI in: a fast player, not a flood
    Learn.kind: (4.0, 4.0),
    Status.kind: (50.0, 20.0),
    Teach.kind: (20.0, 20.0),  # a train costs up to a few hundred ms (on its own thread live)
}
# State commands: type -> coalescing key. Any other command is an event command (FIFO).
STATE_KEYS: dict[type, Callable[[Any], Hashable]] = {
    SetScene: lambda cmd: SetScene.kind,
    Reload: lambda cmd: Reload.kind,
    SetTempo: lambda cmd: SetTempo.kind,
    Freeze: lambda cmd: Freeze.kind,
    SetMaster: lambda cmd: SetMaster.kind,
    Transpose: lambda cmd: Transpose.kind,
    Panic: lambda cmd: Panic.kind,
    Stop: lambda cmd: Stop.kind,
    SetParam: lambda cmd: (SetParam.kind, cmd.name),
    Mute: lambda cmd: (Mute.kind, cmd.voice),
    TeachOutputs: lambda cmd: TeachOutputs.kind,
}
ALWAYS_ADMITTED: tuple[type, ...] = (Panic, Stop)  # even into a full queue
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
        self._waiting: OrderedDict[tuple[str, Hashable], Command] = OrderedDict()
        self._seq = 0
        self.max_waiting = max_waiting
        self._stats: dict[str, KindStats] = {}

    def _bucket(self, kind: str, now: float) -> TokenBucket | None:
        rate = self._rates.get(kind)
        if rate is None:
            return None
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = TokenBucket(rate[0], rate[1], now)
        return bucket

    def _kind(self, kind: str) -> KindStats:
        stats = self._stats.get(kind)
        if stats is None:
            stats = self._stats[kind] = KindStats()
        return stats

    def put(self, cmd: Command) -> bool:
        """Queue a command (any thread). False when it was dropped (rate limit or full)."""
        kind = cmd.kind
        keyer = STATE_KEYS.get(type(cmd))
        with self._lock:
            stats = self._kind(kind)
            stats.received += 1
            if keyer is not None:
                try:
                    key: tuple[str, Hashable] | None = ("state", keyer(cmd))
                    hash(key)
                except TypeError:  # an unhashable name: no coalescing for it
                    key = None
                if key is not None:
                    if self._waiting.pop(key, None) is not None:
                        stats.coalesced += 1
                    elif (len(self._waiting) >= self.max_waiting
                          and not isinstance(cmd, ALWAYS_ADMITTED)):
                        stats.dropped += 1
                        return False
                    self._waiting[key] = cmd
                    return True
            bucket = self._bucket(kind, self._clock())
            if bucket is not None and not bucket.take(self._clock()):
                stats.dropped += 1
                return False
            if len(self._waiting) >= self.max_waiting:
                stats.dropped += 1
                return False
            self._seq += 1
            self._waiting[("event", self._seq)] = cmd
            return True

    def take(self, limit: int = TAKE_LIMIT) -> list[Command]:
        """Up to ``limit`` commands in order (the music thread, once per block). A state
        command whose rate is used up stays for a later take."""
        out: list[Command] = []
        with self._lock:
            if not self._waiting:
                return out
            now = self._clock()
            for key in list(self._waiting):
                if len(out) >= limit:
                    break
                cmd = self._waiting[key]
                if key[0] == "state":
                    bucket = self._bucket(cmd.kind, now)
                    if bucket is not None and not bucket.take(now):
                        continue  # waits for its token; a newer request may still replace it
                del self._waiting[key]
                self._kind(cmd.kind).applied += 1
                out.append(cmd)
        return out

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def stats(self) -> CommandStats:
        with self._lock:
            return CommandStats({k: KindStats(**vars(v)) for k, v in self._stats.items()})
