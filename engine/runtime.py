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
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.capture import Source, SourceError, find_cameras, open_source
from engine.config import AutoConfig, Config, parse_host_port
from engine.driver import SceneDriver
from engine.events import ControlChange, Event, Note, OscMessage, PitchBend
from engine.features.analyzer import Analyzer, AnalyzerConfig, Features
from engine.features.registry import SCALARS
from engine.outputs.base import Output
from engine.timing.clock import RealTime, TimeSource
from engine.timing.scheduler import Scheduler

if TYPE_CHECKING:
    from engine.control.osc_server import ControlServer
    from engine.control.reload import SceneReloader
    from engine.scene.schema import Scene

logger = logging.getLogger(__name__)

ONSET_NAMES = ("motion_onset", "cut_onset", "stars_onset")


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


def quantize_beat(beat: float, quantize: str, beats_per_bar: int, phrase_bars: int) -> float:
    """The first beat at or after ``beat`` on the ``quantize`` grid (now, beat, bar, phrase)."""
    if quantize == "now":
        return beat
    unit = {"beat": 1, "bar": beats_per_bar, "phrase": beats_per_bar * phrase_bars}[quantize]
    return math.ceil(beat / unit - 1e-9) * unit


class _ControlFade:
    """After a scene change, each CC and pitch bend the new scene sends glides from the value
    the old scene last sent on that channel and controller to the new scene's value, linearly
    over ``duration_s`` (a crossfade of controls: no jump in a filter or a volume)."""

    def __init__(self, t0: float, duration_s: float,
                 start: dict[tuple[str, int, int], int]) -> None:
        self.t0, self.t1 = t0, t0 + duration_s
        self.start = start

    def apply(self, ev: Event) -> Event:
        if not self.t0 <= ev.t < self.t1:
            return ev
        a = (ev.t - self.t0) / (self.t1 - self.t0)
        if isinstance(ev, ControlChange):
            old = self.start.get(("cc", ev.channel, ev.control))
            if old is not None:
                return replace(ev, value=int(round(old + (ev.value - old) * a)))
        elif isinstance(ev, PitchBend):
            old = self.start.get(("pb", ev.channel, 0))
            if old is not None:
                return replace(ev, value=int(round(old + (ev.value - old) * a)))
        return ev


class _AutoScene:
    """Auto mode: the mood label chooses the scene (``[auto] scenes``). A new mood must hold for
    ``hold_s`` (hysteresis: a mood flickering at a border changes nothing) and a scene plays at
    least ``dwell_s`` before the next change."""

    def __init__(self, cfg: AutoConfig) -> None:
        self.cfg = cfg
        self.mood = ""
        self.since = 0.0

    def choose(self, mood: str, now: float, scene: str, scene_since: float) -> str | None:
        """The scene to change to now, or None."""
        if mood != self.mood:
            self.mood, self.since = mood, now
            return None
        target = self.cfg.scenes.get(mood)
        if (target is None or target == scene or now - self.since < self.cfg.hold_s
                or now - scene_since < self.cfg.dwell_s):
            return None
        return target


def feature_fractions(features: Features) -> dict[str, float]:
    """Every scalar feature as 0..1 (a count such as ``stars`` is scaled by 50 and clipped)."""
    out: dict[str, float] = {}
    for spec in SCALARS:
        v = features.values[spec.name]
        hi = spec.hi if spec.hi is not None else 50.0
        frac = (v - spec.lo) / (hi - spec.lo) if hi > spec.lo else 0.0
        out[spec.name] = round(min(1.0, max(0.0, frac)), 4)
    return out


def feature_messages(features: Features, t: float) -> list[OscMessage]:
    """Every scalar feature as ``/feature/<name>`` with a float 0..1 (see
    ``feature_fractions``), then the mood label as ``/feature/mood``."""
    out = [OscMessage(t, f"/feature/{name}", (value,), "stream")
           for name, value in feature_fractions(features).items()]
    out.append(OscMessage(t, "/feature/mood", (features.mood,), "stream"))
    return out


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
    ) -> None:
        from engine.scene.player import ScenePlayer
        from engine.scene.schema import load_scene, resolve_scene

        self.config = config
        self.strict = strict
        self.time = time_source or RealTime()
        self.outputs = outputs
        self.scheduler = Scheduler(outputs, self.time)
        self.scene = load_scene(config.scene.name)
        self.scene_path: Path | None = resolve_scene(config.scene.name)
        self.player = ScenePlayer(self.scene, seed=config.scene.seed)
        self._load_scene = load_scene
        self._player_cls = ScenePlayer
        spec, note = resolve_source_spec(config.source.input)
        if note:
            logger.info("%s", note)
        self.source_note = note
        self.source = source or open_source(
            spec, width=config.source.width, height=config.source.height,
            fps=config.source.fps, loop=config.source.loop, realtime=True,
            seed=config.source.seed)
        self.analyzer = Analyzer(AnalyzerConfig(width=config.analysis.width,
                                                smoothing_s=dict(config.analysis.smoothing_s)))
        self.commands: queue.Queue[tuple[str, object]] = queue.Queue()
        self.status = Status(scene=self.scene.name, source=self.source.name)
        self._status_cb = status_cb
        self._latest = _Latest()
        self._stop = threading.Event()
        self._capture_thread: threading.Thread | None = None
        self._capture_error: BaseException | None = None
        self._latencies_ms: deque[float] = deque(maxlen=240)
        self._last_features_index = -1
        self.preview = preview
        self.muted: set[str] = set()
        self.frozen: Features | None = None
        self._preview_frame: tuple[np.ndarray, Features] | None = None
        self._next_preview = 0.0
        self._next_stream = 0.0
        self.transpose = 0
        self._pending_switch: tuple[Scene, float, str, Path | None] | None = None
        self._fade: _ControlFade | None = None
        self._last_controls: dict[tuple[str, int, int], int] = {}
        self._auto = _AutoScene(config.auto) if config.auto.enabled else None
        self._scene_since = 0.0
        self.services: list[_Service] = []  # control server, OSCQuery, reloader...
        self.extra_commands: dict[str, Callable[[object], None]] = {}
        self.scene_changes: list[tuple[float, float, str, str]] = []  # at_s, beat, name, why
        self.control_server: ControlServer | None = None
        self.reloader: SceneReloader | None = None
        self.streamed: dict[str, object] = {}  # the feature values last streamed (OSCQuery)
        from engine.health import Metrics, RecentErrors

        self.metrics = Metrics()
        self.recent_errors = RecentErrors()
        self.last_image: np.ndarray | None = None
        self.started_at = time.time()
        self._publish_snapshots()

    # -- control (any thread) -----------------------------------------------------------------

    def stop(self) -> None:
        """Ask the engine to stop (signal handlers call this); returns at once."""
        self._stop.set()

    def command(self, name: str, arg: object = None) -> None:
        """The one door for control input: applied by the music thread at its next block."""
        self.commands.put((name, arg))

    # -- threads ------------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                feats = self.analyzer.analyze(frame)
                self._latest.publish(feats)
                self.last_image = frame.image
                self.metrics.frame(feats.analysis_ms / 1e3)
                if self.preview:
                    self._preview_frame = (frame.image, feats)
        except Exception as exc:  # the music thread decides what to do with it
            self._capture_error = exc
            logger.error("capture stopped: %s", exc)
            if self.strict:
                raise
        finally:
            logger.info("capture loop ended after %d frames", self._latest.frames)

    def _show_preview(self) -> None:
        """On the music (main) thread: GUI toolkits want their windows driven from one thread."""
        from engine import preview

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
        except SourceError:
            self.close_outputs()
            raise
        engine_log = logging.getLogger("engine")
        engine_log.addHandler(self.recent_errors)
        self.metrics.start()
        try:
            self._start_services()
            return self._run(duration_s)
        finally:
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
            self.close_outputs()
            if self.preview:
                from engine import preview

                preview.close()

    def _start_services(self) -> None:
        """The control server and the scene reloader; one that cannot start is logged and the
        show goes on without it (a taken port must not silence a gallery)."""
        from engine.control.osc_server import ControlServer, ControlServerError
        from engine.control.reload import SceneReloader
        from engine.scene.schema import available_scenes

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
        from engine.health import HealthServer, Thumbnailer
        from engine.scene.schema import available_scenes

        h = self.config.http
        server = HealthServer(h.host, h.port, health=self.health, state=self.state,
                              command=self.command,
                              thumbnail=Thumbnailer(lambda: self.last_image),
                              metrics=self.metrics, scenes=lambda: list(available_scenes()),
                              token=h.token or None)
        server.name = "health page"  # type: ignore[attr-defined]
        return server  # type: ignore[return-value]

    def _oscquery(self, osc_port: int) -> _Service:
        from engine.control.oscquery import OscQueryServer, SonifyTree
        from engine.scene.schema import available_scenes

        def params() -> dict[str, tuple[float, float, float]]:
            values = self.player.params
            return {name: (lo, hi, values.get(name, lo))
                    for name, (lo, hi) in self.params_snapshot.items()}

        streaming = self.config.osc.stream_features_hz > 0
        tree = SonifyTree(state=self.state, scenes=lambda: list(available_scenes()),
                          params=params,
                          voices=lambda: {v: v in self.muted for v in self.voices_snapshot},
                          features=(lambda: {k: v for k, v in self.streamed.items()
                                             if isinstance(v, float)}) if streaming else None,
                          feature_prefix=self.config.osc.prefix or "/", osc_port=osc_port)
        c = self.config.control
        return OscQueryServer(tree, osc_port=osc_port, host=c.host, port=c.oscquery_port)

    def close_outputs(self) -> None:
        from engine.outputs.midifile import MidiFileRecorder

        end_s = self.time.now()
        for out in self.outputs:
            if isinstance(out, MidiFileRecorder):
                out.close(end_s=end_s)  # the file lasts as long as the run
            else:
                out.close()

    def _run(self, duration_s: float | None) -> Status:
        cfg = self.config.music
        # a note left hanging by an earlier process that was killed ends before anything plays
        self.scheduler.panic()
        self.scheduler.start(realtime_priority=cfg.realtime_priority)
        self._capture_thread = threading.Thread(target=self._capture_loop, name="sonify-capture",
                                                daemon=True)
        self._capture_thread.start()
        now = self.time.now()
        start = now
        from engine.outputs.midifile import MidiFileRecorder

        for out in self.outputs:
            if isinstance(out, MidiFileRecorder) and out.start_s is None:
                out.start_s = start  # tick 0 is the moment the run starts
        self.driver = SceneDriver(self.player, self.scheduler, now + cfg.lookahead_s,
                                  transform=self._transform)
        next_block = now
        next_status = now + (self.config.status.interval_s or 1.0)
        next_poll = now
        notes_window: deque[tuple[float, int]] = deque(maxlen=64)
        wake = threading.Event()
        while not self._stop.is_set():
            now = self.time.now()
            if duration_s is not None and now - start >= duration_s:
                break
            if self._capture_error is not None and not self.source.live:
                # a file source that broke mid-way: stop cleanly rather than play on stale data
                if isinstance(self._capture_error, SourceError):
                    raise self._capture_error
                raise RunError(f"capture failed: {self._capture_error}")
            self._apply_commands(now)
            features, onsets = self._latest.take()
            if self.frozen is not None:  # hold the picture: no new features, no onsets
                features, onsets = self.frozen, []
            if self._auto is not None and features is not None and self._pending_switch is None:
                self._auto_scene(features.mood, now)
            onsets = self._due_switch(features, onsets, now + cfg.lookahead_s)
            self._render(features, onsets, now + cfg.lookahead_s, now + cfg.block_s)
            stream_hz = self.config.osc.stream_features_hz
            if stream_hz > 0 and features is not None and now >= self._next_stream:
                messages = feature_messages(features, now)
                self.streamed = {m.address.rsplit("/", 1)[1]: m.args[0] for m in messages}
                self.scheduler.schedule(messages)
                self._next_stream = max(self._next_stream + 1.0 / stream_hz, now)
            if self.preview and now >= self._next_preview:
                self._show_preview()
                self._next_preview = now + 1 / 30
            if now >= next_poll:
                for out in self.outputs:
                    out.poll()
                next_poll = now + 1.0
            if now >= next_status:
                notes_window.append((now, self.scheduler.notes_sent))
                self._update_status(features, notes_window)
                if self._status_cb is not None:
                    self._status_cb(self.status)
                interval = self.config.status.interval_s or 1.0
                next_status = now + interval
            # absolute deadlines: the block grid does not drift with the time spent rendering
            next_block += cfg.block_s
            if next_block < now:
                next_block = now + cfg.block_s
            self.time.wait_until(next_block, wake)
        notes_window.append((self.time.now(), self.scheduler.notes_sent))
        self._update_status(self._latest.features, notes_window)
        return self.status

    def _render(self, features: Features | None, onsets: list[str], notes_to: float,
                controls_to: float) -> None:
        try:
            events = self.driver.advance(features, onsets, notes_to, controls_to)
        except Exception:
            if self.strict:
                raise
            logger.exception("scene %r failed to render; skipping this block", self.scene.name)
            self.driver.notes_to, self.driver.controls_to = notes_to, controls_to
            return
        if features is not None and features.index != self._last_features_index:
            self._last_features_index = features.index
            reacting = [e.t for e in events if isinstance(e, (ControlChange, PitchBend,
                                                               OscMessage))]
            if reacting:  # the first control that answers this frame: capture -> event
                self._latencies_ms.append((min(reacting) - features.t) * 1e3)

    def _transform(self, events: list[Event]) -> list[Event]:
        """Each block's events before they are scheduled: muted voices' new notes dropped, the
        MIDI transpose applied (not to drums on channel 10), controls crossfaded after a scene
        change, and the last value of every CC and pitch bend remembered for the next fade."""
        out: list[Event] = []
        fade = self._fade
        for ev in events:
            if self.muted and isinstance(ev, (Note, OscMessage)) and ev.voice in self.muted:
                continue
            if self.transpose and isinstance(ev, Note) and ev.channel != 9:
                pitch = ev.pitch + self.transpose
                if not 0 <= pitch <= 127:
                    continue
                ev = replace(ev, pitch=pitch)
            if fade is not None:
                ev = fade.apply(ev)
            if isinstance(ev, ControlChange):
                self._last_controls[("cc", ev.channel, ev.control)] = ev.value
            elif isinstance(ev, PitchBend):
                self._last_controls[("pb", ev.channel, 0)] = ev.value
            out.append(ev)
        return out

    def state(self) -> dict[str, object]:
        """What /sonify/status, OSCQuery and the health page report (any thread: reads only)."""
        s = self.status
        driver = getattr(self, "driver", None)
        bpm = driver.tempo.bpm if driver is not None else self.player.tempo_bpm(None)
        pending = self._pending_switch
        latest = self._latest.features
        return {"scene": s.scene, "tempo_bpm": round(bpm, 2),
                "mood": latest.mood if latest is not None else "-",
                "fps": round(self._latest.fps(), 1), "frozen": self.frozen is not None,
                "muted": sorted(self.muted), "notes": self.scheduler.notes_sent,
                "lateness_p99_ms": round(s.lateness_p99_ms, 3),
                "voices": [v.name for v in self.scene.voices],
                "params": dict(self.player.params), "transpose": self.transpose,
                "next_scene": pending[0].name if pending is not None else None,
                "auto": self._auto is not None,
                "features": feature_fractions(latest) if latest is not None else {},
                "frames": self._latest.frames,
                "outputs": [{"name": o.name, "connected": o.connected,
                             "dropped": o.stats.dropped} for o in self.outputs]}

    def health(self) -> dict[str, object]:
        """The /health report: each part's state, uptime and the last errors; ``ok`` is False
        when the capture thread died or no frame came for 5 s, the dispatch thread is dead, or
        an output is disconnected."""
        now = time.perf_counter()
        times = list(self._latest.frame_times)
        age = now - times[-1] if times else None
        capture_alive = self._capture_thread is not None and self._capture_thread.is_alive()
        source_ok = capture_alive and age is not None and age < 5.0
        sched = self.scheduler
        lat = sched.lateness()
        dispatch_alive = sched.running
        ams = list(self._latest.analysis_ms)
        outputs = [{"name": o.name, "connected": o.connected, "sent": o.stats.sent,
                    "dropped": o.stats.dropped, "reconnects": o.stats.reconnects,
                    "last_error": o.stats.last_error} for o in self.outputs]
        ok = source_ok and dispatch_alive and all(o.connected for o in self.outputs)
        return {
            "ok": ok, "uptime_s": round(time.time() - self.started_at, 1),
            "scene": self.status.scene,
            "source": {"name": self.source.name, "live": self.source.live, "ok": source_ok,
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
                          "pending": sched.pending(),
                          "last_dispatch_age_s": (round(now - sched.last_dispatch_s, 3)
                                                  if sched.last_dispatch_s else None)},
            "outputs": outputs,
            "errors": self.recent_errors.snapshot(),
        }

    def _publish_snapshots(self) -> None:
        """Immutable copies the control threads read (they never touch the live objects)."""
        self.voices_snapshot: frozenset[str] = frozenset(v.name for v in self.scene.voices)
        self.params_snapshot: dict[str, tuple[float, float]] = {
            name: (p.min, p.max) for name, p in self.scene.params.items()}

    def _apply_commands(self, now: float) -> None:
        while True:
            try:
                name, arg = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                self._apply(name, arg, now)
            except Exception as exc:
                logger.error("command %s(%r) failed: %s", name, arg, exc)
                if self.strict:
                    raise

    def _apply(self, name: str, arg: object, now: float) -> None:
        if name == "scene":
            from engine.scene.schema import resolve_scene

            path = resolve_scene(str(arg))  # a bad name raises: the old scene keeps playing
            self.request_scene(self._load_scene(path), now, "requested", path=path)
        elif name == "reload":  # a Scene the file watcher has already checked
            assert isinstance(arg, tuple) and len(arg) == 2
            scene, path = arg
            if self.scene_path is not None and Path(path).resolve() == self.scene_path.resolve():
                self.request_scene(scene, now, "reloaded", quantize="bar", path=Path(path))
        elif name == "panic":
            self.scheduler.clear()
            self.scheduler.panic()
        elif name == "stop":
            self._stop.set()
        elif name == "tempo":
            self.driver.fixed_bpm = float(arg)  # type: ignore[arg-type]
            self.status.tempo_bpm = float(arg)  # type: ignore[arg-type]
        elif name == "mute":
            assert isinstance(arg, tuple) and len(arg) == 2
            if arg[1]:
                self.muted.add(str(arg[0]))
            else:
                self.muted.discard(str(arg[0]))
        elif name == "freeze":
            self.frozen = self._latest.features if arg else None
        elif name == "param":
            assert isinstance(arg, tuple) and len(arg) == 2
            kept = self.player.set_param(str(arg[0]), float(arg[1]))
            logger.debug("param %s = %g", arg[0], kept)
        elif name == "transpose":
            self.transpose = max(-48, min(48, int(arg)))  # type: ignore[call-overload]
        elif name == "trigger":
            assert isinstance(arg, tuple) and len(arg) == 2
            pitch, velocity = int(arg[0]), int(arg[1])
            self.scheduler.schedule([Note(now, self.config.control.trigger_channel - 1, pitch,
                                          max(1, min(127, velocity)),
                                          self.config.control.trigger_length_s, "trigger")])
        elif name == "status":
            arg(self.state())  # type: ignore[operator]
        else:
            extra = self.extra_commands.get(name)
            if extra is None:
                raise ValueError(f"unknown command {name!r}")
            extra(arg)

    def request_scene(self, scene: Scene, now: float, why: str, *,
                      quantize: str | None = None, path: Path | None = None) -> None:
        """Change to ``scene`` on the next beat, bar or phrase (``[scene] quantize``); the
        change itself happens in the music loop when the note window reaches that moment."""
        q = quantize or self.config.scene.quantize
        driver = self.driver
        if q == "now":
            self._pending_switch = None
            self._switch_scene(scene, now, immediate=True, why=why, path=path)
            return
        bpb = self.scene.harmony.beats_per_bar
        beat = quantize_beat(driver.tempo.beat_at(driver.notes_to), q, bpb,
                             self.config.scene.phrase_bars)
        self._pending_switch = (scene, beat, why, path)
        logger.info("scene %s %s: changes at beat %g (next %s)", scene.name, why, beat, q)

    def _auto_scene(self, mood: str, now: float) -> None:
        assert self._auto is not None
        target = self._auto.choose(mood, now, self.scene.name, self._scene_since)
        if target is None:
            return
        try:
            from engine.scene.schema import resolve_scene

            path = resolve_scene(target)
            self.request_scene(self._load_scene(path), now, f"chosen by the mood ({mood})",
                               path=path)
        except Exception as exc:  # a bad map entry must not stop the show: log once per mood
            logger.error("auto mode: cannot play scene %r for mood %s: %s", target, mood, exc)
            self._auto.cfg.scenes.pop(mood, None)

    def _due_switch(self, features: Features | None, onsets: list[str],
                    horizon: float) -> list[str]:
        """Play the old scene up to a pending change that falls before ``horizon``, then switch
        there. Returns the onsets not yet used."""
        pending = self._pending_switch
        if pending is None:
            return onsets
        scene, beat, why, path = pending
        at_s = max(self.driver.tempo.time_at(beat), self.driver.notes_to)
        if at_s > horizon:
            return onsets
        self._render(features, onsets, at_s, min(at_s, self.driver.controls_to))
        self._pending_switch = None
        self._switch_scene(scene, at_s, immediate=False, why=why, path=path)
        return []

    def _switch_scene(self, scene: Scene, at_s: float, *, immediate: bool, why: str,
                      path: Path | None = None) -> None:
        old = self.player
        if self.config.scene.panic_on_change:
            if immediate:  # drop what is queued and end every sounding note now
                self.scheduler.clear()
                self.scheduler.panic()
            else:  # every old note ends at the change, with its own note-off
                self.scheduler.cut(at_s)
        self.scene = scene
        self.player = self._player_cls(scene, seed=self.config.scene.seed)
        for name, value in old.params.items():  # a reload keeps what the performer set
            if name in scene.params:
                self.player.set_param(name, value)
        self.scene_path = path
        if self.config.scene.crossfade_s > 0:
            self._fade = _ControlFade(at_s, self.config.scene.crossfade_s,
                                      dict(self._last_controls))
        self.driver.switch(self.player, at_s)
        self.status.scene = scene.name
        self._scene_since = at_s
        self.scene_changes.append((at_s, self.driver.tempo.beat_at(at_s), scene.name, why))
        self._publish_snapshots()
        logger.info("scene %s: %s", why if why != "requested" else "changed to", scene.name)

    def _update_status(self, features: Features | None,
                      notes_window: deque[tuple[float, int]]) -> None:
        s = self.status
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
        s.outputs = [f"{o.name}{'' if o.connected else ' (waiting)'}" for o in self.outputs]


def build_outputs(config: Config, *,
                  midi_file: str | None = None) -> tuple[list[Output], list[str]]:
    """The outputs the config asks for, plus notes to tell the user (which port, which file).

    With MIDI enabled and neither a port nor a virtual port possible, records to the fallback
    MIDI file instead (saying where), so the music is never lost.
    """
    from engine.outputs.midi import MidiOutput, MidiPortError
    from engine.outputs.midifile import MidiFileRecorder
    from engine.outputs.osc import OscOutput

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
        outputs.append(MidiFileRecorder(record))
        notes.append(f"recording MIDI to {Path(record).resolve()}")
    return outputs, notes
