"""MIDI clock in: follow an external clock master (a DAW, a drum machine) in tempo and phase.

Two parts:

* :class:`ClockEstimator` (pure, no port, no threads): fed ``(status, t)`` for every clock,
  start, continue, stop and song position message with the time it arrived on the engine clock,
  it fits a straight line ``clock index = a + b * t`` by least squares over the last
  ``window`` clocks. The slope is the tempo (``b * 60 / 24`` BPM), the line itself the phase:
  ``timeline(t)`` reads the beat off the line at any ``t``, past or future. A least-squares fit
  over a few beats averages out delivery jitter (JACK hands MIDI over once per period, so
  arrival times are quantised to the period: ±21 ms with 1024 frames at 48 kHz, almost a whole
  clock interval at 100 BPM) without drifting: the line is refitted on absolute clock indices,
  so its error stays bounded however long the clock runs. A tempo change is noticed when a fit
  over the newest beat disagrees with the full window by more than ``change_ratio``; the window
  then restarts from the newest beat, so the new tempo is followed within about a beat instead
  of a whole window.
* :class:`MidiClockFollower`: a python-rtmidi ``MidiIn`` (JACK or ALSA) whose callback stamps
  each message with the engine clock (``time.perf_counter()``) and feeds the estimator, under
  a lock shared with ``timeline()`` (called on the music thread). It implements
  :class:`~sonify.timing.sync.ExternalTempo`.

Lock: ``timeline`` answers None until ``lock_clocks`` (24: one beat) clocks have come in a row,
and again once no clock has come for ``timeout_s`` (1 s, i.e. the master went quiet or slower
than 2.5 BPM); the next clock after such a gap starts a fresh fit. A transport stopped by STOP
is the exception: it answers ``playing=False`` (at the last tempo) until START or CONTINUE,
with or without clock, so the engine does not start playing by itself when a stopped master
also stops its clock.

Transport (MIDI 1.0): START sets the position of the *next* clock to beat 0, SONG POSITION
sets it to ``p`` sixteenths (6 clocks each) for the next CONTINUE, CONTINUE resumes from there
(or from where STOP left off), STOP freezes the position and reports ``playing=False``. Many
masters keep sending clock while stopped: those clocks keep the tempo fit fresh but do not move
the position. A clock that arrives before any transport message counts as playing, with beat
0 at the first clock received (sonify follows the tempo even of a master that never sends
START).

Latency: the line lags the master by the mean delivery delay (about half a JACK period plus
scheduling). ``latency_s`` moves the line earlier by that much, so a measured delay can be
compensated.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sonify.events import CLOCK, CONTINUE, SONG_POSITION, START, STOP
from sonify.timing.sync import Timeline

logger = logging.getLogger(__name__)

PPQN = 24
CLOCKS_PER_SIXTEENTH = 6


class ClockEstimator:
    """Tempo and phase from stamped MIDI clock messages (pure; not thread-safe by itself).

    ``window``: clocks in the least-squares fit (144 = 6 beats); ``lock_clocks``: clocks before
    the estimate counts (24 = 1 beat); ``timeout_s``: silence after which the lock is lost;
    ``change_clocks``/``change_ratio``: a fit over the newest ``change_clocks`` clocks whose
    tempo differs from the whole window's by more than ``change_ratio`` restarts the window;
    ``latency_s``: delivery delay to take off the arrival times.
    """

    def __init__(self, *, window: int = 144, lock_clocks: int = PPQN, timeout_s: float = 1.0,
                 change_clocks: int = PPQN, change_ratio: float = 0.03,
                 latency_s: float = 0.0) -> None:
        if window < 3 or lock_clocks < 3 or change_clocks < 3:
            raise ValueError("window, lock_clocks and change_clocks must be >= 3")
        self.window = window
        self.lock_clocks = lock_clocks
        self.timeout_s = timeout_s
        self.change_clocks = change_clocks
        self.change_ratio = change_ratio
        self.latency_s = latency_s
        self._ticks: deque[tuple[float, int]] = deque(maxlen=window)  # (t, running index)
        self._n = -1  # running index of the last clock received (never reset)
        self._last_t: float | None = None
        self._run = 0  # clocks received since the last gap
        self._fit: tuple[float, float, float] | None = None  # (t_ref, index at t_ref, per s)
        self._offset = 0  # song position (clocks) = running index - offset, while playing
        self._playing = True
        self._frozen = 0  # song position (clocks) of the next clock while stopped
        self._pending: int | None = None  # position set by SONG POSITION for CONTINUE
        self._stopped_bpm: float | None = None  # tempo reported while stopped (after a lock)
        self.clocks = 0
        self.tempo_resets = 0

    # -- input ----------------------------------------------------------------------------

    def feed(self, status: int, t: float, value: int = 0) -> None:
        """One message: ``status`` byte, arrival time ``t`` (engine clock) and, for SONG
        POSITION, the 14-bit position in sixteenths. Other statuses are ignored."""
        if status == CLOCK:
            self._clock(t - self.latency_s)
        elif status == START:
            self._playing = True
            self._stopped_bpm = None
            self._offset = self._n + 1  # the next clock is beat 0
            self._pending = None
        elif status == CONTINUE:
            pos = self._pending if self._pending is not None else self._position_of_next()
            self._playing = True
            self._stopped_bpm = None
            self._offset = self._n + 1 - pos
            self._pending = None
        elif status == STOP:
            if self._playing:
                self._frozen = self._position_of_next()
            self._playing = False
            if self._fit is not None and self._run >= self.lock_clocks:
                self._stopped_bpm = self._fit[2] * 60.0 / PPQN
        elif status == SONG_POSITION:
            pos = value * CLOCKS_PER_SIXTEENTH
            if self._playing:  # not by the book, but some masters send it while running
                self._offset = self._n + 1 - pos
            else:
                self._pending = pos
                self._frozen = pos

    def _position_of_next(self) -> int:
        return self._n + 1 - self._offset if self._playing else self._frozen

    def _clock(self, t: float) -> None:
        if self._last_t is not None and t - self._last_t > self.timeout_s:
            self._ticks.clear()  # the master went quiet: start a fresh fit
            self._run = 0
            self._fit = None
        self._n += 1
        self._last_t = t
        self._run += 1
        self.clocks += 1
        self._ticks.append((t, self._n))
        if len(self._ticks) >= 3:
            self._refit()

    def _refit(self) -> None:
        ticks = list(self._ticks)
        fit = _robust_line(ticks)
        if fit.rate <= 0.0:
            return
        if len(ticks) >= 2 * self.change_clocks:
            recent = _robust_line(_on_time(ticks[-self.change_clocks:], ticks, fit))
            # how far the newest beat's tempo may stray by jitter alone: 4 standard errors of
            # its slope, from the scatter around the whole window's line
            noise = 4.0 * fit.residual_sd * recent.slope_sd_per_residual / fit.rate
            if (recent.rate > 0.0
                    and abs(recent.rate / fit.rate - 1.0) > max(self.change_ratio, noise)):
                # the tempo changed, somewhere in the newest beat: keep its second half only,
                # which is most likely all new tempo (a mixed beat would be slow to get rid of)
                keep = max(3, self.change_clocks // 2)
                for _ in range(len(ticks) - keep):
                    self._ticks.popleft()
                self.tempo_resets += 1
                newest = ticks[-keep:]
                fit = _robust_line(newest)
                if fit.rate <= 0.0:
                    return
        self._fit = (fit.t_ref, fit.n_ref, fit.rate)
        if not self._playing and self._run >= self.lock_clocks:
            self._stopped_bpm = fit.rate * 60.0 / PPQN  # a clock running while stopped

    # -- output ---------------------------------------------------------------------------

    def locked(self, t: float) -> bool:
        return (self._fit is not None and self._run >= self.lock_clocks
                and self._last_t is not None and t - self._last_t <= self.timeout_s)

    def bpm(self) -> float | None:
        return None if self._fit is None else self._fit[2] * 60.0 / PPQN

    def timeline(self, t: float) -> Timeline | None:
        """Tempo and beat at ``t`` (extrapolated along the fit); None while not locked. A
        transport stopped by STOP stays stopped (at the last tempo) even when the master also
        stops its clock: only START or CONTINUE play again."""
        if not self._playing:
            if self._stopped_bpm is None:  # stopped before we ever locked: nothing to say
                return None
            return Timeline(self._stopped_bpm, self._frozen / PPQN, playing=False)
        if not self.locked(t):
            return None
        assert self._fit is not None
        t_ref, n_ref, rate = self._fit
        index = n_ref + (t - t_ref) * rate
        return Timeline(rate * 60.0 / PPQN, (index - self._offset) / PPQN, playing=True)


class _Line:
    """Least-squares ``index = n_ref + rate * (t - t_ref)``, ``t_ref`` the mean time (centred,
    so the sums stay small and exact enough)."""

    __slots__ = ("t_ref", "n_ref", "rate", "residual_sd", "slope_sd_per_residual")

    def __init__(self, ticks: list[tuple[float, int]]) -> None:
        m = len(ticks)
        self.t_ref = sum(t for t, _ in ticks) / m
        self.n_ref = sum(n for _, n in ticks) / m
        stt = sum((t - self.t_ref) ** 2 for t, _ in ticks)
        if stt <= 0.0:
            self.rate = 0.0
            self.residual_sd = self.slope_sd_per_residual = 0.0
            return
        stn = sum((t - self.t_ref) * (n - self.n_ref) for t, n in ticks)
        self.rate = stn / stt
        sse = sum((n - self.n_ref - self.rate * (t - self.t_ref)) ** 2 for t, n in ticks)
        self.residual_sd = (sse / max(1, m - 2)) ** 0.5  # in clocks
        self.slope_sd_per_residual = stt ** -0.5


def _robust_line(ticks: list[tuple[float, int]], rounds: int = 3) -> _Line:
    """The least-squares line without the clocks that arrived late.

    Delivery only ever delays a clock (a JACK period, a busy machine: a receiving thread held
    up for 150 ms hands over six clocks at once), so the outliers are one-sided: the clocks far
    below the line (late) are dropped and the line refitted, a few rounds. Without this a
    stall of a loaded machine bent the fit by 30 BPM. "Far": more than three robust standard
    deviations (1.4826 MAD) of the residuals, and at least half a clock, below their median.
    """
    fit = _Line(ticks)
    for _ in range(rounds):
        if fit.rate <= 0.0 or len(ticks) < 6:
            break
        res = [n - fit.n_ref - fit.rate * (t - fit.t_ref) for t, n in ticks]
        mid = statistics.median(res)
        mad = statistics.median(abs(r - mid) for r in res)
        floor = mid - max(3.0 * 1.4826 * mad, 0.5)
        keep = [tick for tick, r in zip(ticks, res, strict=True) if r >= floor]
        if len(keep) == len(ticks) or len(keep) < max(3, len(ticks) // 2):
            break
        ticks = keep
        fit = _Line(ticks)
    return fit


def _on_time(recent: list[tuple[float, int]], window: list[tuple[float, int]],
             line: _Line) -> list[tuple[float, int]]:
    """``recent`` without its clocks that came late by the window's ``line`` (more than three
    robust standard deviations of the window's residuals, and half a clock, below it): the
    bunch a stalled receiver hands over must not look like a new tempo. A real slowdown also
    makes clocks late, but steadily: its first clocks are still on time and show it, and when
    fewer than half are left the newest clocks are taken as they are."""
    if line.rate <= 0.0 or len(recent) < 6:
        return recent
    res = [n - line.n_ref - line.rate * (t - line.t_ref) for t, n in window]
    mid = statistics.median(res)
    mad = statistics.median(abs(r - mid) for r in res)
    floor = mid - max(3.0 * 1.4826 * mad, 0.5)
    kept = [(t, n) for t, n in recent if n - line.n_ref - line.rate * (t - line.t_ref) >= floor]
    return kept if len(kept) >= len(recent) // 2 else recent


# -- the MIDI input ---------------------------------------------------------------------------

OWN_PORT_NAME = "clock_in"  # our side of a connection: "<client_name>:clock_in" under JACK


class MidiClockFollower:
    """Follows the MIDI clock arriving on the first input port whose name contains ``port``
    (case-insensitive; under JACK the sender's output port, e.g. ``"Hydrogen:out"``), or on a
    virtual input port named ``virtual`` that the master connects to.

    ``api``: "auto", "jack" or "alsa" (as for ``MidiOutput``); ``clock``: the engine clock that
    stamps messages (``time.perf_counter``; tests inject their own); ``estimator``: the
    :class:`ClockEstimator` with its settings. Without ``wait`` a missing port is a
    MidiPortError listing the ports; with it, ``poll()`` connects once the port appears.
    ``poll()`` (about every 0.5 s) also reconnects after the port or the MIDI system (a JACK
    server that quit or restarted) went away and came back: see ``sonify.midi.ports``.
    """

    def __init__(self, port: str | None = None, *, virtual: str | None = None,
                 api: str = "auto", client_name: str = "sonify-clock", wait: bool = False,
                 clock: Callable[[], float] = time.perf_counter,
                 estimator: ClockEstimator | None = None) -> None:
        import rtmidi

        from sonify.midi.ports import MidiPort, MidiPortError

        if (port is None) == (virtual is None):
            raise ValueError("MidiClockFollower needs either port= (a port name pattern) or "
                             "virtual= (the name of a port to create), not both or neither")
        self.pattern = port
        self.virtual = virtual
        self.clock = clock
        self.estimator = estimator or ClockEstimator()
        self.messages = 0
        self._lock = threading.Lock()  # the estimator: the rtmidi callback and timeline()
        # the rtmidi client: poll() and close(). Not ``_lock``: closing waits for JACK's thread,
        # which may be in the callback waiting for ``_lock``
        self._port_lock = threading.Lock()
        self._closed = False
        self.name = f"midi-clock:{port if port is not None else virtual}"
        try:
            self._port = MidiPort(rtmidi.MidiIn, api=api, client_name=client_name, pattern=port,
                                  virtual=virtual, own_port=OWN_PORT_NAME, label=self.name,
                                  setup=self._setup_client, teardown=_cancel_callback)
        except rtmidi.RtMidiError as exc:
            raise MidiPortError(f"{self.name}: cannot open the MIDI input ({api}): "
                                f"{exc}") from None
        self.api = self._port.api
        if port is None:
            return
        try:
            found = self._port.connect()
            if not found and not wait:
                ports = ", ".join(repr(p) for p in self._port.ports()) or "none"
                raise MidiPortError(
                    f"no MIDI input port matches {port!r} (MIDI system: {self.api}); input "
                    f"ports there are: {ports}. Start the clock master first, or use a "
                    f"virtual port and connect the master to it")
        except rtmidi.RtMidiError as exc:
            self._port.close()
            raise MidiPortError(f"{self.name}: cannot open the MIDI input ({self.api}): "
                                f"{exc}") from None
        except BaseException:
            self._port.close()
            raise
        if not found:
            logger.warning("%s: no MIDI input port matches %r yet; waiting for it",
                           self.name, port)

    def _setup_client(self, midi: Any) -> None:
        # clock, start/stop and song position must come through; sysex and sensing not
        midi.ignore_types(sysex=True, timing=False, active_sense=True)
        midi.set_callback(self._on_message)

    @property
    def target(self) -> str | None:
        """The clock master's port we are connected to."""
        return self._port.target

    def poll(self) -> None:
        """Connect to the port once it appears (when waiting for it), and again after it or the
        MIDI system went away and came back; never raises."""
        if self._closed:
            return
        try:
            with self._port_lock:
                if not self._closed:
                    self._port.poll()
        except Exception as exc:
            logger.warning("%s: cannot connect: %s", self.name, exc)

    @property
    def connected(self) -> bool:
        return not self._closed and self._port.connected

    def _on_message(self, event: tuple[list[int], float], data: Any = None) -> None:
        t = self.clock()  # first: the stamp is the arrival time
        message = event[0]
        if not message:
            return
        status = message[0]
        value = 0
        if status == SONG_POSITION:
            if len(message) < 3:
                return
            value = message[1] | (message[2] << 7)
        with self._lock:
            self.messages += 1
            self.estimator.feed(status, t, value)

    # -- ExternalTempo --------------------------------------------------------------------

    def timeline(self, t: float) -> Timeline | None:
        with self._lock:
            return self.estimator.timeline(t)

    def propose_tempo(self, bpm: float, t: float) -> None:
        """The clock master decides the tempo: nothing to do."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._port_lock:
            self._port.close()


def _cancel_callback(midi: Any) -> None:
    midi.cancel_callback()
