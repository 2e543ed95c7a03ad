"""``sonify run``: wires source, analyzer, scene, scheduler and outputs, and owns the threads.

Threads:
- *capture* reads the source and analyses each frame; it publishes the latest Features and
  collects onsets (the scene samples the latest features when it renders: sample and hold);
- *music* (the caller's thread) renders the scene every ``block_s`` over a window reaching
  ``lookahead_s`` ahead, applies the scene's tempo, polls outputs and prints the status line;
- *dispatch* is the scheduler's thread, which sleeps until each event is due.

Control reaches the runtime through one door, ``commands`` (a queue the music thread drains),
never by poking objects from another thread. A scene that raises while rendering is logged and
the last good scene keeps playing (``strict`` turns that off for tests).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sonify.capture import Frame, Source, SourceError, find_cameras, open_source
from sonify.commands import Command, CommandQueue
from sonify.config import Config, parse_host_port
from sonify.events import ControlChange, Event, OscMessage, PitchBend
from sonify.features.analyzer import Analyzer, AnalyzerConfig, Features
from sonify.features.registry import ONSET_NAMES
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
from sonify.scene.player import ScenePlayer
from sonify.timing.clock import ManualTime, RealTime, TimeSource
from sonify.timing.scheduler import Scheduler

if TYPE_CHECKING:
    from sonify.control.midi_in import MidiControl
    from sonify.control.osc_server import ControlServer
    from sonify.control.reload import SceneReloader
    from sonify.scene.schema import Scene
    from sonify.timing.sync import ExternalTempo

__all__ = ["AutoScene", "ControlFade", "Performance", "RunError", "Runtime", "Status",
           "build_outputs", "feature_fractions", "feature_messages", "quantize_beat"]

logger = logging.getLogger(__name__)

GIL_SWITCH_S = 0.001
PUBLISH_EVERY_S = 0.2  # how often the music thread publishes its state for the others


class RunError(Exception):
    """Something the user must fix before the engine can run (exit status 2)."""


@dataclass
class Status:
    """What the one-line status shows (and later the health page)."""

    fps: float = 0.0
    analysis_ms: float = 0.0
    lateness_p99_ms: float = 0.0
    notes_per_s: float = 0.0
    latency_ms: float = 0.0
    mood: str = "-"
    scene: str = "-"
    tempo_bpm: float = 0.0
    source: str = "-"
    outputs: list[str] = field(default_factory=list)

    def line(self) -> str:
        latency = f"{self.latency_ms:4.1f} ms" if self.latency_ms else "   - ms"
        return (f"{self.fps:5.1f} fps | analysis {self.analysis_ms:4.1f} ms | "
                f"lateness p99 {self.lateness_p99_ms:5.2f} ms | frame->control {latency} | "
                f"{self.notes_per_s:4.1f} notes/s | mood {self.mood:<9} | scene {self.scene}")


class _Service(Protocol):
    """Something the runtime starts with the run and stops after it (control server...)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


def resolve_source_spec(spec: str) -> tuple[str, str]:
    """``auto`` -> the first camera, else the demo; returns (spec, a note saying which)."""
    if spec != "auto":
        return spec, ""
    cameras = find_cameras()
    if cameras:
        return cameras[0], f"using the first camera, {cameras[0]}"
    return "demo", "no camera found: playing the built-in demo source"


class _Latest:
    """The newest Features and the onsets since the last take, shared by two threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.features: Features | None = None
        self._onsets: set[str] = set()
        self.frames = 0
        self.frame_times: deque[float] = deque(maxlen=120)
        self.analysis_ms: deque[float] = deque(maxlen=120)

    def publish(self, feats: Features) -> None:
        with self._lock:
            self.features = feats
            for name in ONSET_NAMES:
                if feats.raw.get(name):
                    self._onsets.add(name)
            self.frames += 1
            self.frame_times.append(time.perf_counter())
            self.analysis_ms.append(feats.analysis_ms)

    def take(self) -> tuple[Features | None, list[str]]:
        with self._lock:
            onsets = sorted(self._onsets)
            self._onsets.clear()
            return self.features, onsets

    def fps(self) -> float:
        with self._lock:
            times = list(self.frame_times)
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


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
        self.performance = Performance(config, self.scheduler, strict=strict, gate=self.gate,
                                       form=form)
        spec, note = resolve_source_spec(config.source.input)
        if note:
            logger.info("%s", note)
        self.source_note = note
        sc = config.source
        self.source = source or open_source(
            spec, width=sc.width, height=sc.height, fps=sc.fps, loop=sc.loop, realtime=True,
            seed=sc.seed, stall_s=sc.stall_s, stale_s=sc.stale_s or None,
            retry_initial_s=sc.retry_initial_s, retry_max_s=sc.retry_max_s)
        self.performance.source_name = f"camera {self.source.name}"
        self._source_open = False
        self.analyzer = Analyzer(AnalyzerConfig(width=config.analysis.width,
                                                smoothing_s=dict(config.analysis.smoothing_s)))
        self.status = Status(scene=self.scene.name, source=self.source.name)
        self._status_cb = status_cb
        self._latest = _Latest()
        self._stop = threading.Event()
        self._capture_thread: threading.Thread | None = None
        self._capture_error: BaseException | None = None
        self._latencies_ms: deque[float] = deque(maxlen=240)
        self._last_features_index = -1
        self.preview = preview
        self._preview_frame: tuple[np.ndarray, Features] | None = None
        self._next_preview = 0.0
        self.services: list[_Service] = []  # control server, OSCQuery, reloader...
        self.control_server: ControlServer | None = None
        self.reloader: SceneReloader | None = None
        self.sync: ExternalTempo | None = None  # MIDI clock in or Link, made by run()
        self.midi_control: MidiControl | None = None
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
        self._ready_sent = False
        self._next_notify_status = 0.0
        self._published_at = -1e9
        self._published: dict[str, Any] = self.performance.snapshot()
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

    def stop(self) -> None:
        """Ask the engine to stop (signal handlers call this); returns at once."""
        self._stop.set()

    def command(self, cmd: Command) -> None:
        """The one door for control input: applied by the music thread at its next block
        (coalesced and rate-limited: see ``sonify.commands``)."""
        self.performance.command(cmd)

    # -- threads ------------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        try:
            if not self._source_open:
                self._open_when_there()
            # None every 0.2 s without a frame: the loop keeps turning (and beating) while a
            # camera is lost or hung; source.state says which
            for frame in self.source.frames(heartbeat_s=0.2):
                self.watchdog.beat("capture", time.perf_counter())
                if self._stop.is_set():
                    break
                if frame is not None:
                    self._analyze(frame)
        except Exception as exc:  # the music thread decides what to do with it
            self._capture_error = exc
            logger.error("capture stopped: %s", exc)
            if self.strict:
                raise
        finally:
            logger.info("capture loop ended after %d frames", self._latest.frames)

    def _open_when_there(self) -> None:
        """A camera missing at start (``wait_for_camera``): retry with backoff, beating the
        watchdog, until it opens or the run stops."""
        wait = self.config.source.retry_initial_s
        while not self._stop.is_set():
            try:
                self.source.open()
            except SourceError as exc:
                self.watchdog.beat("capture", time.perf_counter())
                logger.debug("camera still missing: %s", exc)
                deadline = time.perf_counter() + wait
                while not self._stop.is_set() and time.perf_counter() < deadline:
                    self.watchdog.beat("capture", time.perf_counter())
                    self._stop.wait(0.2)
                wait = min(wait * 2, self.config.source.retry_max_s)
                continue
            self._source_open = True
            logger.warning("camera %s is there now: playing it", self.source.name)
            return

    def _analyze(self, frame: Frame) -> Features:
        """Analyse one frame and publish its features (the capture thread, or ``run_virtual``)."""
        feats = self.analyzer.analyze(frame)
        self._latest.publish(feats)
        self.last_image = frame.image
        self.metrics.frame(feats.analysis_ms / 1e3)
        if self.preview:
            self._preview_frame = (frame.image, feats)
        return feats

    def _show_preview(self) -> None:
        """On the music (main) thread: GUI toolkits want their windows driven from one thread."""
        from sonify.live import preview

        shown = self._preview_frame
        if shown is None:
            return
        image, feats = shown
        if not preview.show(preview.draw_preview(image, feats, self.scene.name)):
            logger.info("preview window closed: stopping")
            self._stop.set()

    def run(self, duration_s: float | None = None) -> Status:
        """Play until ``duration_s`` has passed or ``stop()``; always ends cleanly: pending
        events dropped, a panic (note-off for every held note, CC 64/123/120), outputs
        closed."""
        try:
            self.source.open()
            self._source_open = True
        except SourceError as exc:
            if not (self.source.live and self.config.source.wait_for_camera):
                self.close_outputs()
                raise
            logger.error("%s; playing idle and waiting for it", exc)
        engine_log = logging.getLogger("sonify")
        engine_log.addHandler(self.recent_errors)
        self.metrics.start()
        # A thread that wants the GIL waits up to the switch interval (5 ms by default) while
        # another runs Python, e.g. the control server under a flood: 1 ms bounds how late
        # the dispatcher can be for that reason (measured with `sonify bench --flood`).
        switch_s = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_s, GIL_SWITCH_S))
        try:
            self.sync = self._make_sync()
            self._start_services()
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
            if self._capture_thread is not None:
                self._capture_thread.join(timeout=3.0)
            self.scheduler.stop(panic=True)
            self.close_outputs(end_s)
            if self.preview:
                from sonify.live import preview

                preview.close()

    def _make_sync(self) -> ExternalTempo | None:
        """The external tempo ``[sync] source`` asks for (RunError when it cannot be had)."""
        sc = self.config.sync
        if sc.source == "midi_clock":
            from sonify.outputs.midi import MidiPortError
            from sonify.timing.midiclock_in import ClockEstimator, MidiClockFollower

            try:
                return MidiClockFollower(
                    port=sc.clock_in_port or None,
                    virtual=None if sc.clock_in_port else sc.clock_in_virtual,
                    api=self.config.midi.api, wait=True,
                    estimator=ClockEstimator(latency_s=sc.clock_in_latency_ms / 1e3))
            except MidiPortError as exc:
                raise RunError(f"MIDI clock in: {exc}") from None
        if sc.source == "link":
            from sonify.timing.link import LinkSync, LinkUnavailableError

            try:
                return LinkSync(self.performance.tempo_bpm(), quantum=sc.link_quantum)
            except LinkUnavailableError as exc:
                raise RunError(str(exc)) from None
        return None

    def _start_services(self) -> None:
        """The control server and the scene reloader; one that cannot start is logged and the
        show goes on without it (a taken port must not silence a gallery)."""
        from sonify.control.osc_server import ControlServer, ControlServerError
        from sonify.control.reload import SceneReloader
        from sonify.scene.schema import available_scenes

        c = self.config.control
        wanted: list[_Service] = []
        if c.port:
            server = ControlServer(self.command, self.state, host=c.host, port=c.port,
                                   allow=c.allow or None, known_scenes=available_scenes,
                                   voices=lambda: self.voices_snapshot,
                                   params=lambda: self.params_snapshot,
                                   max_future_s=c.max_future_s)
            self.control_server = server
            wanted.append(server)
        if c.port and c.oscquery_port:
            wanted.append(self._oscquery(c.port if self.control_server is None
                                         else self.control_server.port))
        if self.config.http.port:
            wanted.append(self._health_server())
        if c.midi.enabled:
            from sonify.control.midi_in import MidiControl

            self.midi_control = MidiControl.from_config(
                c.midi, self.command, params=lambda: self.params_snapshot,
                scenes=available_scenes)
            self.extra_commands["learn"] = lambda name: self.midi_control.learn(str(name))  # type: ignore[union-attr]
            wanted.append(self.midi_control)
        if self.config.scene.watch:
            self.reloader = SceneReloader(self.command, lambda: self.scene_path)
            wanted.append(self.reloader)
        for service in wanted:
            try:
                service.start()
            except (ControlServerError, OSError) as exc:
                logger.error("%s not started: %s", service.name, exc)
                continue
            self.services.append(service)

    def _health_server(self) -> _Service:
        from sonify.install.health import HealthServer, Thumbnailer
        from sonify.scene.schema import available_scenes

        h = self.config.http
        server = HealthServer(h.host, h.port, health=self.health, state=self.state,
                              command=self.command,
                              thumbnail=Thumbnailer(lambda: self.last_image),
                              metrics=self.metrics, scenes=lambda: list(available_scenes()),
                              token=h.token or None)
        server.name = "health page"  # type: ignore[attr-defined]
        return server  # type: ignore[return-value]

    def _oscquery(self, osc_port: int) -> _Service:
        from sonify.control.oscquery import OscQueryServer, SonifyTree
        from sonify.scene.schema import available_scenes

        perf = self.performance

        def params() -> dict[str, tuple[float, float, float]]:  # from the published state
            values: dict[str, float] = self._published.get("params", {})  # type: ignore[assignment]
            return {name: (lo, hi, values.get(name, lo))
                    for name, (lo, hi) in perf.params_snapshot.items()}

        def voices() -> dict[str, bool]:
            muted = set(self._published.get("muted", ()))  # type: ignore[call-overload]
            return {v: v in muted for v in perf.voices_snapshot}

        streaming = self.config.osc.stream_features_hz > 0
        tree = SonifyTree(state=self.state, scenes=lambda: list(available_scenes()),
                          params=params, voices=voices,
                          features=(lambda: {k: v for k, v in perf.streamed.items()
                                             if isinstance(v, float)}) if streaming else None,
                          feature_prefix=self.config.osc.prefix or "/", osc_port=osc_port)
        c = self.config.control
        return OscQueryServer(tree, osc_port=osc_port, host=c.host, port=c.oscquery_port,
                              allow=c.allow or None)

    def close_outputs(self, end_s: float | None = None) -> None:
        from sonify.outputs.midifile import MidiFileRecorder

        end_s = self.time.now() if end_s is None else end_s
        for out in self.outputs:
            if isinstance(out, MidiFileRecorder):
                out.close(end_s=end_s)  # the file lasts as long as the run
            else:
                out.close()

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
        self._capture_thread = threading.Thread(target=self._capture_loop, name="sonify-capture",
                                                daemon=True)
        self._capture_thread.start()
        start = self._begin_music()
        next_block = start
        wake = threading.Event()
        while not self._stop.is_set() and not self.performance.stop_requested:
            now = self.time.now()
            self.monitor.block(now, now - next_block)  # late blocks render late notes
            if duration_s is not None and now - start >= duration_s:
                break
            if self._capture_error is not None and not self.source.live:
                # a file source that broke mid-way: stop cleanly rather than play on stale data
                if isinstance(self._capture_error, SourceError):
                    raise self._capture_error
                raise RunError(f"capture failed: {self._capture_error}")
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
        engine_log = logging.getLogger("sonify")
        engine_log.addHandler(self.recent_errors)
        self.metrics.start()
        hours = [0]

        def after_block(now: float, events: list[Event], features: Features | None) -> None:
            self._after_step(now, events, features)
            if on_hour is not None and now + block - start >= (hours[0] + 1) * 3600.0 - 1e-6:
                hours[0] += 1
                self.scheduler.run_until(now + block)  # the hour's last events are sent
                on_hour(hours[0])

        try:
            self.scheduler.panic()
            start = self._begin_music(lead_s=0.0)
            play(iter(self.source), self.performance, clock, analyze=self._analyze,
                 start_s=start, duration_s=duration_s, block_s=block, lookahead_s=lookahead,
                 script=script, stop=self._stop, after_block=after_block)
            return self._end_music()
        finally:
            engine_log.removeHandler(self.recent_errors)
            self._stop.set()
            self.performance.stop(clock.now())
            self.source.close()
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
        self._published = self._publish(now)
        return now

    def _step(self, now: float, block_s: float) -> None:
        """One block of the live loop at ``now``: the latest features and onsets from the
        capture thread into ``Performance.step``, then the upkeep."""
        features, onsets = self._latest.take()
        lost = (not self._source_open or self.source.state != "ok") if self.source.live \
            else None
        events = self.performance.step(now, features, onsets,
                                       lookahead_s=self.config.music.lookahead_s,
                                       block_s=block_s, lost=lost)
        self._after_step(now, events, self.performance.features)

    def _after_step(self, now: float, events: list[Event], features: Features | None) -> None:
        """After each block, live or virtual: latency, preview, the outputs' upkeep, systemd,
        the status line and metrics, and the state published for other threads."""
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
            self._service_tick(now)
            self._next_poll = now + 0.5
        if now >= self._next_status:
            self._notes_window.append((now, self.scheduler.notes_sent))
            self._update_status(features, self._notes_window)
            if self._status_cb is not None:
                self._status_cb(self.status)
            interval = self.config.status.interval_s or 1.0
            self._next_status = now + interval
            self._published = self._publish(now)
        elif now - self._published_at >= PUBLISH_EVERY_S:
            self._published = self._publish(now)

    def _end_music(self) -> Status:
        self._notes_window.append((self.time.now(), self.scheduler.notes_sent))
        self._update_status(self._latest.features, self._notes_window)
        return self.status

    def _service_tick(self, now: float) -> None:
        """systemd: READY once the pipeline really runs (a frame analysed and the dispatcher
        looping), WATCHDOG while both loops beat, STATUS every ``notify_status_s``."""
        from sonify.install.notify import status_text

        if self.scheduler.running and self.scheduler.loop_beat_s:
            self.watchdog.beat("dispatch", self.scheduler.loop_beat_s)
        state = "closed" if self.gate is not None and not self.gate.open else "playing"
        interval = self.config.service.notify_status_s
        telling = self.notifier.enabled and (not self._ready_sent or (
            interval > 0 and now >= self._next_notify_status))
        problems = self.problems() if telling else []  # only what STATUS= will carry
        if problems:
            state = f"unwell: {problems[0]}" + (f" (+{len(problems) - 1} more)"
                                                if len(problems) > 1 else "")
        if not self._ready_sent and self._latest.frames > 0 and self.scheduler.loop_beat_s:
            self._ready_sent = True
            self._next_notify_status = now + self.config.service.notify_status_s
            self.notifier.ready(status_text(scene=self.status.scene, fps=self._latest.fps(),
                                            mood=self.status.mood, state=state))
        if self.watchdog.poll(now):
            self.notifier.watchdog()
        if (interval > 0 and self._ready_sent and now >= self._next_notify_status
                and self.notifier.enabled):  # READY comes first; it carries the first STATUS
            self._next_notify_status = now + interval
            self.notifier.status(status_text(scene=self.status.scene, fps=self._latest.fps(),
                                             mood=self.status.mood,
                                             notes_per_s=self.status.notes_per_s, state=state))

    def _publish(self, now: float) -> dict[str, Any]:
        """The music's state as plain values, made on the music thread for the others."""
        self._published_at = now
        return self.performance.snapshot()

    def state(self) -> dict[str, object]:
        """What /sonify/status, OSCQuery and the health page report (any thread): the state the
        music thread last published, with the counters read now."""
        state: dict[str, object] = dict(self._published)
        state.update({
            "fps": round(self._latest.fps(), 1), "notes": self.scheduler.notes_sent,
            "lateness_p99_ms": round(self.status.lateness_p99_ms, 3),
            "frames": self._latest.frames,
            "outputs": [{"name": o.name, "connected": o.connected,
                         "dropped": o.stats.dropped, "problem": o.problem}
                        for o in self.outputs],
            "problems": self.problems()})
        return state

    def problems(self) -> list[str]:
        """What is wrong now, one sentence each ([] when all is well): the capture (thread dead,
        no frame for 5 s, camera lost), the dispatcher, the music thread, lateness, each output
        (see ``sonify.install.health.monitor``). Any thread."""
        now = time.perf_counter()
        found: list[str] = []
        times = list(self._latest.frame_times)
        age = now - times[-1] if times else None
        capture_alive = self._capture_thread is not None and self._capture_thread.is_alive()
        if self._capture_thread is not None and not capture_alive:
            found.append("the capture thread stopped" + (f": {self._capture_error}"
                                                         if self._capture_error else ""))
        elif self.source.live and (not self._source_open or self.source.state != "ok"):
            found.append(f"camera {self.source.name} is "
                         f"{'not there' if not self._source_open else self.source.state}"
                         f"{': playing idle' if self.performance.idle else ''}")
        elif capture_alive and (age is None or age >= 5.0):
            found.append("no frame for 5 s" if age is not None else "no frame yet")
        music_running = self.scheduler.running
        if self._capture_thread is not None and not music_running:
            found.append("the dispatch thread is not running")
        found += self.monitor.problems(self.time.now(), self.scheduler, self.outputs,
                                       music_running=music_running and not self._stop.is_set())
        return found

    def health(self) -> dict[str, object]:
        """The /health report: each part's state, uptime, the last errors and ``problems``
        (one sentence per thing that is wrong); ``ok`` is True exactly when there are none."""
        now = time.perf_counter()
        times = list(self._latest.frame_times)
        age = now - times[-1] if times else None
        capture_alive = self._capture_thread is not None and self._capture_thread.is_alive()
        source_ok = (capture_alive and age is not None and age < 5.0
                     and (not self.source.live or self.source.state == "ok"))
        sched = self.scheduler
        lat = sched.lateness()
        dispatch_alive = sched.running
        ams = list(self._latest.analysis_ms)
        outputs = [{"name": o.name, "connected": o.connected, "sent": o.stats.sent,
                    "dropped": o.stats.dropped, "reconnects": o.stats.reconnects,
                    "last_error": o.stats.last_error, "problem": o.problem}
                   for o in self.outputs]
        problems = self.problems()
        commands = self.commands.stats()
        recent = self.scheduler.recent_lateness(self.time.now() - self.monitor.limits.window_s)
        return {
            "ok": not problems, "problems": problems,
            "uptime_s": round(time.time() - self.started_at, 1),
            "scene": self.status.scene,
            "source": {"name": self.source.name, "live": self.source.live, "ok": source_ok,
                       "state": self.source.state if self._source_open else "waiting",
                       "idle": self.performance.idle,
                       "losses": getattr(self.source, "losses", 0),
                       "stable_path": getattr(self.source, "stable_path", None),
                       "frames": self._latest.frames, "fps": round(self._latest.fps(), 2),
                       "last_frame_age_s": None if age is None else round(age, 3),
                       "error": None if self._capture_error is None
                       else str(self._capture_error)},
            "analysis": {"ok": source_ok,
                         "analysis_ms": round(float(np.median(ams)), 3) if ams else None},
            "scheduler": {"ok": dispatch_alive, "running": dispatch_alive,
                          "lateness_p50_ms": round(lat.p50_ms, 3),
                          "lateness_p99_ms": round(lat.p99_ms, 3),
                          "lateness_max_ms": round(lat.max_ms, 3),
                          "recent_lateness_p99_ms": round(recent.p99_ms, 3),
                          "pending": sched.waiting(),
                          "last_dispatch_age_s": (round(now - sched.last_dispatch_s, 3)
                                                  if sched.last_dispatch_s else None)},
            "outputs": outputs,
            "music": {"last_block_age_s": (None if self.monitor.last_block_s is None else
                                           round(self.time.now() - self.monitor.last_block_s, 3)),
                      "blocks_late": self.monitor.blocks_late},
            "commands": {"waiting": self.commands.waiting(),
                         "coalesced": commands.coalesced, "dropped": commands.dropped},
            "watchdog": {"ok": self.watchdog.healthy(now), "stale": self.watchdog.stale(now),
                         "systemd": self.notifier.enabled},
            "hours": None if self.gate is None else {"open": self.gate.open,
                                                     "gain": round(self.gate.gain, 3)},
            "errors": self.recent_errors.snapshot(),
        }

    def _update_status(self, features: Features | None,
                      notes_window: deque[tuple[float, int]]) -> None:
        s = self.status
        s.scene = self.performance.scene.name
        s.tempo_bpm = self.performance.tempo_bpm()
        s.fps = self._latest.fps()
        ams = list(self._latest.analysis_ms)
        s.analysis_ms = float(np.median(ams)) if ams else 0.0
        s.lateness_p99_ms = self.scheduler.lateness().p99_ms
        if len(notes_window) >= 2:
            (t0, n0), (t1, n1) = notes_window[0], notes_window[-1]
            s.notes_per_s = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        lat = list(self._latencies_ms)
        s.latency_ms = float(np.median(lat)) if lat else 0.0
        s.mood = features.mood if features is not None else "-"
        m = self.metrics
        m.observe_lateness_ring(*self.scheduler.lateness_ring())
        m.notes(self.scheduler.notes_sent)
        m.fps(s.fps)
        for o in self.outputs:
            m.output(o.name, connected=o.connected, dropped=o.stats.dropped,
                     reconnects=o.stats.reconnects)
        if self.control_server is not None:
            m.control_rejections(self.control_server.stats.rejected)
        m.commands({kind: (k.applied, k.coalesced, k.dropped)
                    for kind, k in self.commands.stats().kinds.items()})
        m.healthy(not self.problems())
        s.outputs = [f"{o.name}{'' if o.connected else ' (waiting)'}" for o in self.outputs]


def build_outputs(config: Config, *,
                  midi_file: str | None = None) -> tuple[list[Output], list[str]]:
    """The outputs the config asks for, plus notes to tell the user (which port, which file).

    With MIDI enabled and neither a port nor a virtual port possible, records to the fallback
    MIDI file instead (saying where), so the music is never lost.
    """
    from sonify.outputs.midi import MidiOutput, MidiPortError
    from sonify.outputs.midifile import MidiFileRecorder
    from sonify.outputs.osc import OscOutput

    outputs: list[Output] = []
    notes: list[str] = []
    record = midi_file if midi_file is not None else config.record.midi_file
    if config.midi.enabled:
        m = config.midi
        try:
            if m.port:
                outputs.append(MidiOutput(port=m.port, api=m.api, wait=m.wait_for_port))
                notes.append(f"MIDI to the port matching {m.port!r}")
            elif m.virtual:
                outputs.append(MidiOutput(virtual=m.virtual, api=m.api))
                notes.append(f"MIDI on the virtual port {m.virtual!r}")
        except MidiPortError as exc:
            if m.port:
                raise RunError(str(exc)) from None
            if not record:
                record = config.record.fallback_midi_file
            notes.append(f"no virtual MIDI port on this system ({exc}); recording instead")
    for target in config.osc.targets:
        host, port = parse_host_port(target)
        outputs.append(OscOutput([(host, port)], prefix=config.osc.prefix,
                                 bundle_latency_s=config.osc.bundle_latency_s or None))
        notes.append(f"OSC to {host}:{port}")
    if record:
        from sonify.outputs.spool import recover_beside

        recover_beside(record)  # a killed run left its recording unfinished: finish it (logged)
        try:
            outputs.append(MidiFileRecorder(record, split=config.record.split))
        except ValueError as exc:
            for out in outputs:
                out.close()
            raise RunError(f"cannot record to {record!r}: {exc}") from None
        where = Path(record).resolve()
        notes.append(f"recording MIDI to {where}" + (
            " (a new numbered file if that one exists)" if "%" not in where.name else ""))
    return outputs, notes
