"""``sonify run``: the live engine's threads and lifecycle.

Size (about 510 lines): the two run loops (real and virtual) and their shared start, step and
upkeep; what they build, report and capture is in ``wiring.py``, ``report.py`` and ``capture.py``.

Threads:
- *capture* (``sonify.live.capture``) reads the source and analyses each frame; it publishes
  the latest Features and collects onsets (the scene samples the latest features when it
  renders: sample and hold); each extra source has its own (``sonify.live.extras``);
- *music* (the caller's thread) steps the performance core (``Performance.step``) every
  ``block_s`` over a window reaching ``lookahead_s`` ahead, polls outputs, prints the status
  line, and publishes the music's state for the other threads once per block;
- *dispatch* is the scheduler's thread, which sleeps until each event is due;
- services (``sonify.live.wiring``: control server, OSCQuery, health page, MIDI control,
  reloader) run on their own threads and read only the published state.

Control reaches the runtime through one door, ``commands`` (a queue the music thread drains),
never by poking objects from another thread. A scene that raises while rendering is logged and
the last good scene keeps playing (``strict`` turns that off for tests). What the run reports
about itself (status line, /health, systemd) is ``sonify.live.report``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sonify.capture import Frame, Source, SourceError, open_source
from sonify.commands import Command, CommandQueue
from sonify.config import Config
from sonify.errors import RunError
from sonify.events import ControlChange, Event, OscMessage, PitchBend
from sonify.features.analyzer import Analyzer, AnalyzerConfig, Features
from sonify.live import report
from sonify.live.capture import Capture
from sonify.live.extras import ExtraSources
from sonify.live.published import RecentNotes, page_state
from sonify.live.report import Status, SystemdReport
from sonify.live.wiring import (
    Service,
    build_outputs,
    close_outputs,
    make_sync,
    resolve_source_spec,
    start_services,
)
from sonify.outputs.base import Output
from sonify.performance.core import (  # re-exported: tests and tools know them from here
    AutoScene,
    ControlFade,
    Performance,
    feature_fractions,
    feature_messages,
    quantize_beat,
)
from sonify.performance.driver import SceneDriver
from sonify.performance.form import Form
from sonify.performance.loop import Script, play
from sonify.performance.vision import VisionStage
from sonify.scene.player import ScenePlayer
from sonify.timing.clock import ManualTime, RealTime, TimeSource
from sonify.timing.scheduler import Scheduler
from sonify.util.notice import NOTICE

if TYPE_CHECKING:
    from sonify.control.midi_in import MidiControl
    from sonify.control.osc_server import ControlServer
    from sonify.control.reload import SceneReloader
    from sonify.control.wekinator import WekinatorServer
    from sonify.live.preview import Person
    from sonify.scene.schema import Scene
    from sonify.timing.sync import ExternalTempo

__all__ = ["AutoScene", "ControlFade", "Performance", "RunError", "Runtime", "Status",
           "build_outputs", "feature_fractions", "feature_messages", "quantize_beat",
           "resolve_source_spec"]

logger = logging.getLogger(__name__)

GIL_SWITCH_S = 0.001
PUBLISH_EVERY_S = 0.1  # how often the music thread publishes its state (the page: 10 a second)


class Runtime:
    """The live engine. ``run(duration_s)`` blocks until the duration ends or ``stop()``."""

    def __init__(
        self,
        config: Config,
        outputs: list[Output],
        *,
        source: Source | None = None,
        time_source: TimeSource | None = None,
        strict: bool = False,
        status_cb: Callable[[Status], None] | None = None,
        preview: bool = False,
        form: Form | None = None,
    ) -> None:
        from sonify.install.health import Metrics, RecentErrors
        from sonify.install.health.monitor import HealthLimits, HealthMonitor
        from sonify.install.notify import Notifier, Watchdog, watchdog_interval_s
        from sonify.timing.hours import HoursGate

        self.config = config
        self.strict = strict
        self.time = time_source or RealTime()
        self.outputs = outputs
        self.scheduler = Scheduler(outputs, self.time)
        h = config.hours
        self.gate = (HoursGate(h.opening_hours(), control=h.fade_control or None)
                     if h.enabled else None)
        # live, a [teach] model trains beside the music; a virtual run trains in place
        self.performance = Performance(config, self.scheduler, strict=strict, gate=self.gate,
                                       form=form,
                                       teach_threads=not isinstance(self.time, ManualTime))
        spec, note = resolve_source_spec(config.source.input)
        if note:
            logger.info("%s", note)
        self.source_note = note
        sc = config.source
        self.source = source or open_source(
            spec, width=sc.width, height=sc.height, fps=sc.fps, loop=sc.loop, realtime=True,
            seed=sc.seed, stall_s=sc.stall_s, stale_s=sc.stale_s or None,
            retry_initial_s=sc.retry_initial_s, retry_max_s=sc.retry_max_s,
            hold_s=sc.hold_s or None)
        self.performance.source_name = f"camera {self.source.name}"
        self.analyzer = Analyzer(AnalyzerConfig(
            width=config.analysis.width, threads=config.analysis.threads,
            smoothing_s=dict(config.analysis.smoothing_s)))
        self.status = Status(scene=self.scene.name, source=self.source.name)
        self._status_cb = status_cb
        self._stop = threading.Event()
        # people, faces, flow and zones: analysed only while the scene reads them
        self.vision = VisionStage(self.performance.vision, config.vision.settings())
        self.capture = Capture(self.source, self.analyzer, self._stop,
                               beat=lambda t: self.watchdog.beat("capture", t),
                               on_frame=self._on_frame, retry_initial_s=sc.retry_initial_s,
                               retry_max_s=sc.retry_max_s, strict=strict, vision=self.vision)
        self.extras = ExtraSources(config, self.performance.sources, self._stop, strict=strict,
                                   realtime=not isinstance(self.time, ManualTime),
                                   beat=lambda t: None)  # the main capture beats the watchdog
        self._latencies_ms: deque[float] = deque(maxlen=240)
        self._last_features_index = -1
        self.preview = preview
        self._preview_frame: tuple[np.ndarray, Features, tuple[Person, ...]] | None = None
        self._next_preview = 0.0
        self.services: list[Service] = []  # control server, OSCQuery, reloader...
        self.control_server: ControlServer | None = None
        self.reloader: SceneReloader | None = None
        self.sync: ExternalTempo | None = None  # MIDI clock in or Link, made by run()
        self.midi_control: MidiControl | None = None
        self.wekinator: WekinatorServer | None = None  # [wekinator]: started with the services
        self.metrics = Metrics()
        self.recent_errors = RecentErrors()
        hc = config.health
        self.monitor = HealthMonitor(HealthLimits(
            max_lateness_ms=hc.max_lateness_ms, window_s=hc.window_s,
            max_block_lag_s=max(config.music.lookahead_s, config.music.block_s),
            music_stall_s=hc.music_stall_s))
        self.last_image: np.ndarray | None = None
        self.started_at = time.time()
        sv = config.service
        self.notifier = Notifier()
        self.watchdog = Watchdog(watchdog_interval_s() if sv.watchdog else None,
                                 {"capture": sv.capture_stall_s,
                                  "dispatch": sv.dispatch_stall_s})
        self.systemd = SystemdReport()
        # listeners (the Python API): each analysed frame's features (capture thread), and
        # each block's events (music thread); keep them quick
        self.feature_listeners: list[Callable[[Features], None]] = []
        self.event_listeners: list[Callable[[list[Event]], None]] = []
        self.recent_notes = RecentNotes()  # the page's piano roll, published with the state
        self._published_at = -1e9
        self._published_wall = -1e9
        self._realtime = not isinstance(self.time, ManualTime)
        self.published: dict[str, Any] = self._publish(self._published_at)  # for others
        self.performance.state_fn = self.state  # what /sonify/status replies

    # -- the music's state, for readers (the performance core holds it) -------------------------

    @property
    def scene(self) -> Scene:
        return self.performance.scene

    @property
    def scene_path(self) -> Path | None:
        return self.performance.scene_path

    @property
    def player(self) -> ScenePlayer:
        return self.performance.player

    @property
    def driver(self) -> SceneDriver:
        driver = self.performance.driver
        if driver is None:
            raise AttributeError("driver: the music has not started")
        return driver

    @property
    def scene_changes(self) -> list[tuple[float, float, str, str]]:
        return self.performance.scene_changes

    @property
    def extra_commands(self) -> dict[str, Callable[[object], None]]:
        return self.performance.extra_commands

    @property
    def commands(self) -> CommandQueue:
        return self.performance.commands

    @property
    def params_snapshot(self) -> dict[str, tuple[float, float]]:
        return self.performance.params_snapshot

    @property
    def voices_snapshot(self) -> frozenset[str]:
        return self.performance.voices_snapshot

    @property
    def transpose(self) -> int:
        return self.performance.transpose

    # -- control (any thread) -----------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """A stop was asked for (a signal, ``stop()``)."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the engine to stop (signal handlers call this); returns at once."""
        self._stop.set()

    def command(self, cmd: Command) -> None:
        """The one door for control input: applied by the music thread at its next block
        (coalesced and rate-limited: see ``sonify.commands``)."""
        self.performance.command(cmd)

    # -- what the run reports (any thread; see sonify.live.report) ------------------------------

    def problems(self) -> list[str]:
        """What is wrong now, one sentence each ([] when all is well)."""
        return report.problems(self)

    def health(self) -> dict[str, object]:
        """The /health report; ``ok`` is True exactly when ``problems()`` is empty."""
        return report.health(self)

    # -- threads ------------------------------------------------------------------------------

    def _on_frame(self, image: np.ndarray, feats: Features) -> None:
        """After each analysed frame (capture thread): the thumbnail, metrics, the preview."""
        self.last_image = image
        self.metrics.frame(feats.analysis_ms / 1e3)
        if self.preview:  # the people being followed, copied here on the capture thread
            vision = self.vision.vision
            people = tuple((t.id, t.slot, t.box) for t in vision.tracks) if (
                vision is not None and self.vision.demand.wanted) else ()
            self._preview_frame = (image, feats, people)
        for listener in self.feature_listeners:
            listener(feats)

    def _show_preview(self) -> None:
        """On the music (main) thread: GUI toolkits want their windows driven from one thread."""
        from sonify.live import preview

        shown = self._preview_frame
        if shown is None:
            return
        image, feats, people = shown
        zones = self.performance.vision.zones if self.performance.vision.wanted else ()
        if not preview.show(preview.draw_preview(image, feats, self.scene.name, people=people,
                                                 zones=zones)):
            # a window closed by mistake must not stop a show: the music plays on
            logger.log(NOTICE, "preview window closed; the music plays on (Ctrl-C stops it)")
            preview.close()
            self.preview = False

    def run(self, duration_s: float | None = None) -> Status:
        """Play until ``duration_s`` has passed or ``stop()``; always ends cleanly: pending
        events dropped, a panic (note-off for every held note, CC 64/123/120), outputs
        closed."""
        try:
            self.capture.open()
        except SourceError as exc:
            if not (self.source.live and self.config.source.wait_for_camera):
                self.close_outputs()
                raise
            logger.error("%s; playing idle and waiting for it", exc)
        try:
            self.extras.open()
        except SourceError:
            self.source.close()
            self.close_outputs()
            raise
        engine_log = logging.getLogger("sonify")
        engine_log.addHandler(self.recent_errors)
        self.metrics.start()
        # A thread that wants the GIL waits up to the switch interval (5 ms by default) while
        # another runs Python, e.g. the control server under a flood: 1 ms bounds how late
        # the dispatcher can be for that reason (measured with `sonify bench --flood`).
        switch_s = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_s, GIL_SWITCH_S))
        try:
            self.sync = make_sync(self.config, self.performance.tempo_bpm())
            start_services(self)
            return self._run(duration_s)
        finally:
            sys.setswitchinterval(switch_s)
            end_s = self.time.now()  # the run ends now, however long the cleanup takes
            self.performance.stop(end_s)  # MIDI clock STOP before the queue is dropped
            if self.sync is not None:
                self.sync.close()
            self.notifier.stopping()
            engine_log.removeHandler(self.recent_errors)
            self._stop.set()
            for service in reversed(self.services):
                try:
                    service.stop()
                except Exception:
                    logger.exception("stopping %s failed", service.name)
            self.source.close()
            self.extras.close(join_s=1.0)
            self.capture.join(timeout_s=3.0)
            self.scheduler.stop(panic=True)
            self.close_outputs(end_s)
            if self.preview:
                from sonify.live import preview

                preview.close()

    def close_outputs(self, end_s: float | None = None) -> None:
        close_outputs(self.outputs, self.time.now() if end_s is None else end_s)

    def _run(self, duration_s: float | None) -> Status:
        cfg = self.config.music
        # a note left hanging by an earlier process that was killed ends before anything plays
        self.scheduler.panic()
        if self.config.midi.startup_sweep:
            from sonify.outputs.midi import MidiOutput

            for out in self.outputs:  # and a note-off for every note: some synths ignore CC 123
                if isinstance(out, MidiOutput) and out.connected:
                    out.note_off_sweep()
        self.scheduler.start(realtime_priority=cfg.realtime_priority)
        self.capture.start()
        self.extras.start()
        start = self._begin_music()
        next_block = start
        wake = threading.Event()
        while not self._stop.is_set() and not self.performance.stop_requested:
            now = self.time.now()
            self.monitor.block(now, now - next_block)  # late blocks render late notes
            if duration_s is not None and now - start >= duration_s:
                break
            if self.capture.error is not None and not self.source.live:
                # a file source that broke mid-way: stop cleanly rather than play on stale data
                if isinstance(self.capture.error, SourceError):
                    raise self.capture.error
                raise RunError(f"capture failed: {self.capture.error}")
            self._step(now, cfg.block_s)
            # absolute deadlines: the block grid does not drift with the time spent rendering
            next_block += cfg.block_s
            if next_block < now:
                next_block = now + cfg.block_s
            self.time.wait_until(next_block, wake)
        return self._end_music()

    def run_virtual(self, duration_s: float, *, block_s: float | None = None,
                    script: Script = (),
                    on_hour: Callable[[int], None] | None = None) -> Status:
        """Play ``duration_s`` seconds of virtual time in this thread, as fast as the machine
        goes (soak tests, rehearsals of a config, and the proof that live and render agree):
        the loop ``sonify render`` uses (``sonify.performance.loop.play``) around the same
        ``Performance.step`` as ``run``, with this runtime's upkeep after each block (outputs'
        polls, status and metrics), frames analysed when their time on the source's own
        timeline comes, and the scheduler dispatching each block with ``run_until``.

        Needs ``time_source=ManualTime(...)`` and a source that does not pace itself (e.g.
        ``DemoSource(realtime=False)``); a source that ends leaves the last features playing,
        as live. The music starts at once (live, it starts one lookahead ahead). ``block_s``
        (default ``[music] block_s``) must not exceed ``[music] lookahead_s``, or notes would
        be rendered after their time. ``script`` issues commands at their times (seconds from
        the start). ``on_hour(n)`` runs on this thread after each full virtual hour. Services
        (control server, health page, reloader) do not start: they live on the wall clock.
        Ends as ``run`` does: pending events dropped, a panic, outputs closed.
        """
        if not isinstance(self.time, ManualTime):
            raise TypeError("run_virtual needs a Runtime made with time_source=ManualTime()")
        clock = self.time
        block = self.config.music.block_s if block_s is None else block_s
        lookahead = self.config.music.lookahead_s
        if not 0 < block <= lookahead:
            raise ValueError(f"block_s must be > 0 and at most [music] lookahead_s "
                             f"({lookahead} s), got {block}")
        self.source.open()
        self.extras.open()
        engine_log = logging.getLogger("sonify")
        engine_log.addHandler(self.recent_errors)
        self.metrics.start()
        hours = [0]

        def analyze(frame: Frame) -> Features:  # the extra sources' frames of that time first
            self.extras.analyze_until(frame.t, start)
            return self.capture.analyze(frame)

        def after_block(now: float, events: list[Event], features: Features | None) -> None:
            self._after_step(now, events, features)
            if on_hour is not None and now + block - start >= (hours[0] + 1) * 3600.0 - 1e-6:
                hours[0] += 1
                self.scheduler.run_until(now + block)  # the hour's last events are sent
                on_hour(hours[0])

        try:
            self.scheduler.panic()
            start = self._begin_music(lead_s=0.0)
            play(iter(self.source), self.performance, clock, analyze=analyze,
                 start_s=start, duration_s=duration_s, block_s=block, lookahead_s=lookahead,
                 script=script, stop=self._stop, after_block=after_block)
            return self._end_music()
        finally:
            engine_log.removeHandler(self.recent_errors)
            self._stop.set()
            self.performance.stop(clock.now())
            self.source.close()
            self.extras.close()
            self.scheduler.stop(panic=True)
            self.close_outputs()

    def _begin_music(self, lead_s: float | None = None) -> float:
        """Start the music loop now: tick 0 of MIDI files, the performance ``lead_s`` ahead
        (default: one lookahead, so the first notes are on time), the poll and status
        deadlines. Returns the start time."""
        from sonify.outputs.midifile import MidiFileRecorder

        now = self.time.now()
        for out in self.outputs:
            if isinstance(out, MidiFileRecorder) and out.start_s is None:
                out.start_s = now  # tick 0 is the moment the run starts
        start_s = now + (self.config.music.lookahead_s if lead_s is None else lead_s)
        if self.sync is not None and hasattr(self.sync, "start"):  # Link: start on a bar line
            start_s = self.sync.start(start_s)
        self.performance.start(start_s, sync=self.sync)
        self._next_status = now + (self.config.status.interval_s or 1.0)
        self._next_poll = now
        self._notes_window: deque[tuple[float, int]] = deque(maxlen=64)
        self.published = self._publish(now)
        return now

    def _step(self, now: float, block_s: float) -> None:
        """One block of the live loop at ``now``: the latest features and onsets from the
        capture thread into ``Performance.step``, then the upkeep."""
        features, onsets = self.capture.latest.take()
        lost = self.capture.lost if self.source.live else None
        events = self.performance.step(now, features, onsets,
                                       lookahead_s=self.config.music.lookahead_s,
                                       block_s=block_s, lost=lost)
        self._after_step(now, events, self.performance.features)

    def _after_step(self, now: float, events: list[Event], features: Features | None) -> None:
        """After each block, live or virtual: latency, preview, the outputs' upkeep, systemd,
        the status line and metrics, and the state published for other threads."""
        if events:
            self.recent_notes.add(events)
            for listener in self.event_listeners:
                listener(events)
        if features is not None and features.index != self._last_features_index:
            self._last_features_index = features.index
            reacting = [e.t for e in events if isinstance(e, (ControlChange, PitchBend,
                                                               OscMessage))]
            if reacting:  # the first control that answers this frame: capture -> event
                self._latencies_ms.append((min(reacting) - features.t) * 1e3)
        if self.preview and now >= self._next_preview:
            self._show_preview()
            self._next_preview = now + 1 / 30
        if now >= self._next_poll:
            for out in self.outputs:
                out.poll()
            self.monitor.sample_outputs(now, self.outputs)
            poll_sync = getattr(self.sync, "poll", None)
            if poll_sync is not None:
                poll_sync()
            self.systemd.tick(self, now)
            self._next_poll = now + 0.5
        if now >= self._next_status:
            self._notes_window.append((now, self.scheduler.notes_sent))
            report.update_status(self, features, self._notes_window, self._latencies_ms)
            self.published = self._publish(now)  # what the status callback may read
            if self._status_cb is not None:
                self._status_cb(self.status)
            interval = self.config.status.interval_s or 1.0
            self._next_status = now + interval
        elif now - self._published_at >= PUBLISH_EVERY_S and (
                self._realtime or time.perf_counter() - self._published_wall >= PUBLISH_EVERY_S):
            # a virtual run publishes as often as a person could look (not every 0.1 s of
            # music: 12 virtual hours would publish 432,000 times)
            self.published = self._publish(now)

    def _end_music(self) -> Status:
        self._notes_window.append((self.time.now(), self.scheduler.notes_sent))
        report.update_status(self, self.capture.latest.features, self._notes_window,
                             self._latencies_ms)
        return self.status

    def _publish(self, now: float) -> dict[str, Any]:
        """The music's state as plain values, made on the music thread for the others (with
        what the page plays from: ``sonify.live.published``)."""
        self._published_at = now
        self._published_wall = time.perf_counter()
        return {**self.performance.snapshot(), **page_state(self.performance),
                "recent_notes": self.recent_notes.snapshot(now)}

    def state(self) -> dict[str, object]:
        """What /sonify/status, OSCQuery and the health page report (any thread): the state the
        music thread last published, with the counters read now."""
        state: dict[str, object] = dict(self.published)
        state.update({
            "fps": round(self.capture.latest.fps(), 1), "notes": self.scheduler.notes_sent,
            "lateness_p99_ms": round(self.status.lateness_p99_ms, 3),
            "frames": self.capture.latest.frames, "clock_s": round(self.time.now(), 3),
            "outputs": [{"name": o.name, "connected": o.connected,
                         "dropped": o.stats.dropped, "problem": o.problem}
                        for o in self.outputs],
            "problems": self.problems()})
        return state
