"""Ableton Link: tempo, beat phase and transport shared with other programs on the network.

An :class:`~sonify.timing.sync.ExternalTempo` over the optional ``aalink`` package (GPL-3.0,
installed with ``pip install 'sonify-engine[link]'``, imported only when a ``LinkSync`` is
made), so the core engine stays MIT and does not need it.

Decisions, and why:

- **Always locked.** With Link configured, :meth:`LinkSync.timeline` never returns ``None``:
  alone, Link's timeline is the session's timeline (it is what the first peer to join will
  adopt), so the engine follows it from the first note and nothing jumps when a peer arrives
  other than what Link itself decides (a joining peer takes the existing session's tempo and
  phase).
- **Beats are Link's beats less a whole number of bars.** Link shares tempo and the phase
  within the quantum (``beat mod quantum``), not absolute beat numbers: each peer numbers its
  own beats. :meth:`LinkSync.start` picks the next quantum boundary after a moment (a quantised
  start, as Link apps do) and makes it beat 0 of the engine; every beat the engine sees is the
  Link beat less that boundary, so bars line up with every peer's bars.
- **Clocks.** The engine runs on ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux); Link runs
  on its own host clock, in microseconds (``Link.time``; CLOCK_MONOTONIC_RAW on Linux, which
  differs from CLOCK_MONOTONIC by an offset and by NTP's slewing of a few ppm). aalink reads
  the beat only *now*, so every query samples ``clock()`` just before and after reading
  ``link.beat`` and takes the midpoint as the engine time of that beat (the two reads are about
  a microsecond apart; a read preempted in between is read again); the beat at another time
  ``t`` is the line through that point at the current tempo, which is exactly Link's own model
  until someone changes the tempo. Where aalink needs a Link time (starting the transport at a
  given moment), the offset ``link.time - clock()`` is sampled the same way at that moment, so
  the slow drift between the two clocks never accumulates.
- **Tempo changes at their time.** ``propose_tempo(bpm, t)`` with ``t`` ahead (the runtime
  proposes at the start of its next note window) is committed to Link when ``t`` comes, by a
  timer on Link's own event loop; until then :meth:`timeline` already answers with the new
  tempo for times at or after ``t``, so the engine's next window and Link agree. Link carries
  tempo between peers as microseconds per beat, so a peer reads 130 BPM back as 130.0001:
  compare tempos with a tolerance of about 0.01 BPM, never exactly.
- **Transport.** With ``start_stop_sync`` the ``playing`` of each timeline is the session's
  (another app pressing stop stops the engine's notes, if the runtime honours it) and
  :meth:`start` starts the session's transport at the start downbeat when it is stopped: a new
  Link session is stopped, so without ``start()`` the engine would wait for another app to
  press play. Without ``start_stop_sync`` ``playing`` is always True.

Use (the runtime)::

    link = LinkSync(tempo_bpm, quantum=beats_per_bar)   # LinkUnavailableError: no aalink
    start_s = link.start(clock.now() + lead_s)          # the next bar line: the engine's beat 0
    driver = SceneDriver(player, scheduler, start_s, sync=link)
    ...
    link.close()
- **Its own loop.** aalink is asyncio-based: it posts its callbacks to the event loop it was
  made on. ``LinkSync`` runs one on a daemon thread; the engine's threads only read Link's
  state (thread-safe in Link, about a microsecond, no waiting on that loop).

Link finds peers by UDP multicast (224.76.78.75:20808) on every IPv4 interface that is up.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sonify.timing.sync import Timeline

logger = logging.getLogger(__name__)

#: The tempo range Link accepts (it clamps anything outside it).
LINK_MIN_BPM = 20.0
LINK_MAX_BPM = 999.0
INSTALL_HINT = "pip install 'sonify-engine[link]'"
#: A bar line this little before the moment asked for still counts as "at" it: Link reads its
#: clock in whole microseconds, so a beat read back at a bar line's own time can land a few
#: microseconds past it (0.0001 beats is 50 us at 120 BPM).
ON_BOUNDARY_BEATS = 1e-4
# Reading Link's beat takes about a microsecond; a bracket wider than this was preempted.
_BRACKET_OK_S = 50e-6
_BRACKET_TRIES = 5


class LinkUnavailableError(RuntimeError):
    """Link is configured but the optional ``aalink`` package cannot be imported."""


@dataclass(frozen=True)
class _Line:
    """Link's timeline as sampled once: ``beat`` (raw Link beat) at engine time ``t``, tempo
    ``bpm``; and a tempo change proposed for ``change_at`` not yet committed to Link."""

    t: float
    beat: float
    bpm: float
    playing: bool
    change_at: float | None = None
    change_bpm: float = 0.0

    def beat_at(self, t: float) -> float:
        if self.change_at is None or t < self.change_at:
            return self.beat + (t - self.t) * self.bpm / 60.0
        at_change = self.beat + (self.change_at - self.t) * self.bpm / 60.0
        return at_change + (t - self.change_at) * self.change_bpm / 60.0

    def bpm_at(self, t: float) -> float:
        if self.change_at is None or t < self.change_at:
            return self.bpm
        return self.change_bpm

    def time_at(self, beat: float) -> float:
        if self.change_at is not None:
            at_change = self.beat_at(self.change_at)
            if beat >= at_change:
                return self.change_at + (beat - at_change) * 60.0 / self.change_bpm
        return self.t + (beat - self.beat) * 60.0 / self.bpm


def _import_aalink() -> Any:
    try:
        return importlib.import_module("aalink")
    except ImportError as exc:
        raise LinkUnavailableError(
            f"Ableton Link needs the optional 'aalink' package, which is not installed "
            f"({exc}); install it with: {INSTALL_HINT}") from exc


def clamp_bpm(bpm: float) -> float:
    """``bpm`` within Link's range (20..999 BPM)."""
    return min(max(float(bpm), LINK_MIN_BPM), LINK_MAX_BPM)


class LinkSync:
    """Follow, and lead, an Ableton Link session.

    ``bpm`` is the tempo the engine offers (the session's tempo wins if peers are already
    playing); ``quantum`` is the bar length in beats that phase is aligned on (4: bars of 4/4
    start together on every peer); ``start_stop_sync`` shares play/stop with the session;
    ``clock`` is the engine clock (seconds, the clock of ``Frame.t``); ``enabled=False`` keeps
    Link's timeline on this machine only (no network), for tests and offline use.

    Raises :class:`LinkUnavailableError` if ``aalink`` is not installed.
    """

    name = "link"

    def __init__(self, bpm: float = 120.0, quantum: float = 4.0, start_stop_sync: bool = True,
                 clock: Callable[[], float] = time.perf_counter, *, enabled: bool = True) -> None:
        if not LINK_MIN_BPM <= bpm <= LINK_MAX_BPM:
            raise ValueError(f"Link tempo must be {LINK_MIN_BPM:g}..{LINK_MAX_BPM:g} BPM, "
                             f"got {bpm}")
        if not (math.isfinite(quantum) and quantum > 0):
            raise ValueError(f"Link quantum must be a positive number of beats, got {quantum}")
        aalink = _import_aalink()
        self.quantum = float(quantum)
        self.start_stop_sync = start_stop_sync
        self._clock = clock
        self._origin_beat = 0.0  # Link beat that is the engine's beat 0 (a multiple of quantum)
        self._lock = threading.Lock()
        self._pending: tuple[float, float] | None = None  # (engine time, bpm) not yet committed
        self._generation = 0
        self._closed = False
        self._link: Any = None

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="link-loop",
                                        daemon=True)
        self._thread.start()

        async def make() -> Any:
            # aalink binds to the running loop: build the Link on the loop's own thread
            link = aalink.Link(float(bpm))
            link.quantum = self.quantum
            link.start_stop_sync_enabled = start_stop_sync
            link.set_num_peers_callback(self._on_num_peers)
            link.set_tempo_callback(self._on_tempo)
            link.set_start_stop_callback(self._on_start_stop)
            link.enabled = enabled
            return link

        try:
            self._link = asyncio.run_coroutine_threadsafe(make(), self._loop).result(10.0)
        except BaseException:
            self._stop_loop()
            raise
        logger.info("Ableton Link %s at %.2f BPM, quantum %g, start/stop sync %s",
                    "enabled" if enabled else "local only", self._link.tempo, self.quantum,
                    "on" if start_stop_sync else "off")

    # -- callbacks, on the Link loop's thread ---------------------------------------------

    def _on_num_peers(self, num_peers: int) -> None:
        logger.info("Ableton Link: %d peer(s)", num_peers)

    def _on_tempo(self, bpm: float) -> None:
        logger.debug("Ableton Link tempo %.3f BPM", bpm)

    def _on_start_stop(self, playing: bool) -> None:
        logger.info("Ableton Link transport %s", "playing" if playing else "stopped")

    # -- reading Link -------------------------------------------------------------------

    def _live(self) -> Any:
        link = self._link
        if link is None:
            raise RuntimeError("LinkSync is closed")
        return link

    def _sample(self) -> _Line:
        link = self._live()
        # under the lock so that a proposed tempo being committed (``_commit``) is seen either
        # as still pending or as Link's tempo, never as neither
        with self._lock:
            t, beat = self._bracket(lambda: link.beat)
            bpm = link.tempo
            pending = self._pending
        playing = link.playing if self.start_stop_sync else True
        if pending is None:
            return _Line(t, beat, bpm, playing)
        return _Line(t, beat, bpm, playing, pending[0], pending[1])

    def _bracket(self, read: Callable[[], Any]) -> tuple[float, Any]:
        """``read()`` and the engine time it happened at: the midpoint of clock readings
        just before and after. A thread preempted between them (a loaded machine) widens the
        bracket to milliseconds, so read again, up to a few times, keeping the tightest."""
        best: tuple[float, float, Any] | None = None
        for _ in range(_BRACKET_TRIES):
            t0 = self._clock()
            value = read()
            t1 = self._clock()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, (t0 + t1) / 2.0, value)
            if t1 - t0 <= _BRACKET_OK_S:
                break
        assert best is not None
        return best[1], best[2]

    def _link_time_us(self, t: float) -> int:
        """Link's host time (microseconds) at engine time ``t``."""
        link = self._live()
        at, link_now = self._bracket(lambda: link.time)
        link_s = link_now / datetime.timedelta(seconds=1)
        return round((link_s + (t - at)) * 1e6)

    def link_clock_offset_s(self) -> float:
        """Link's host clock less the engine clock, now (seconds; drifts by a few ppm)."""
        return self._link_time_us(0.0) / 1e6

    @property
    def num_peers(self) -> int:
        """Other Link apps in the session (0: alone)."""
        return int(self._live().num_peers)

    @property
    def origin_beat(self) -> float:
        """The Link beat that is the engine's beat 0 (a multiple of ``quantum``)."""
        return self._origin_beat

    def timeline(self, t: float) -> Timeline:
        """Tempo, engine beat and transport at engine time ``t`` (never None: see above)."""
        line = self._sample()
        return Timeline(line.bpm_at(t), line.beat_at(t) - self._origin_beat, line.playing)

    def next_downbeat(self, t: float) -> float:
        """Engine time of the first quantum boundary (Link phase 0) at or after ``t``."""
        return self._next_boundary(self._sample(), t)[1]

    def _next_boundary(self, line: _Line, t: float) -> tuple[float, float]:
        """(Link beat, engine time) of the first quantum boundary at or after ``t``."""
        beat = line.beat_at(t) - ON_BOUNDARY_BEATS
        boundary = math.ceil(beat / self.quantum) * self.quantum
        return boundary, max(t, line.time_at(boundary))

    def start(self, t: float | None = None) -> float:
        """A quantised start: the engine's beat 0 is the first quantum boundary at or after
        ``t`` (default now). Returns that boundary's engine time: start the scene there.

        With ``start_stop_sync`` and the session stopped, the session's transport starts at
        that moment (other apps with start/stop sync start with the engine).
        """
        link = self._live()
        if t is None:
            t = self._clock()
        boundary, at = self._next_boundary(self._sample(), t)
        self._origin_beat = boundary
        if self.start_stop_sync and not link.playing:
            # requesting the beat the boundary already has keeps the timeline; it only stamps
            # the start with its time, so peers start on the same downbeat. With peers, Link
            # maps the beat to the first time *at or after* the one asked with its phase, so
            # ask a hair early: float noise past the bar line would move it a whole bar on.
            early_s = 0.0005 if link.num_peers else 0.0
            link.set_is_playing_and_request_beat_at_time(
                True, datetime.timedelta(microseconds=self._link_time_us(at - early_s)),
                boundary)
        logger.info("Ableton Link start at Link beat %g (%d peer(s))", boundary,
                    link.num_peers)
        return at

    def stop(self) -> None:
        """Stop the session's transport (with ``start_stop_sync``; otherwise a no-op)."""
        link = self._live()
        if self.start_stop_sync and link.playing:
            link.playing = False

    # -- leading Link -------------------------------------------------------------------

    def propose_tempo(self, bpm: float, t: float) -> None:
        """Set the session's tempo to ``bpm`` (clamped to 20..999) from engine time ``t`` on;
        every peer follows. A ``t`` in the past or present takes effect now."""
        bpm = clamp_bpm(bpm)
        with self._lock:
            if self._closed:
                return
            self._generation += 1
            generation = self._generation
            now = t <= self._clock()
            self._pending = None if now else (t, bpm)
            if now:
                if abs(self._link.tempo - bpm) > 1e-6:
                    self._link.tempo = bpm
                return
        self._loop.call_soon_threadsafe(self._arm, generation, t, bpm)

    def _arm(self, generation: int, t: float, bpm: float) -> None:
        self._loop.call_later(max(0.0, t - self._clock()), self._commit, generation, bpm)

    def _commit(self, generation: int, bpm: float) -> None:
        with self._lock:
            if generation != self._generation or self._closed:
                return  # superseded by a later proposal
            self._link.tempo = bpm
            self._pending = None

    # -- teardown -----------------------------------------------------------------------

    def close(self) -> None:
        """Leave the session (disable Link) and stop the loop thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending = None
        link, self._link = self._link, None
        try:
            link.enabled = False
            # dropping the Link joins aalink's threads (its destructor releases the GIL); the
            # loop is still running, so a last callback from them is delivered, not lost
            del link
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> LinkSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
