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
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.capture import Source, SourceError, find_cameras, open_source
from engine.config import Config, parse_host_port
from engine.driver import SceneDriver
from engine.events import ControlChange, Event, Note, OscMessage, PitchBend
from engine.features.analyzer import Analyzer, AnalyzerConfig, Features
from engine.features.registry import SCALARS
from engine.outputs.base import Output
from engine.timing.clock import RealTime, TimeSource
from engine.timing.scheduler import Scheduler

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


def feature_messages(features: Features, t: float) -> list[Event]:
    """Every scalar feature as ``/feature/<name>`` with a float 0..1 (a count such as ``stars``
    is scaled by 50 and clipped), then the mood label as ``/feature/mood``."""
    out: list[Event] = []
    for spec in SCALARS:
        v = features.values[spec.name]
        hi = spec.hi if spec.hi is not None else 50.0
        frac = (v - spec.lo) / (hi - spec.lo) if hi > spec.lo else 0.0
        out.append(OscMessage(t, f"/feature/{spec.name}", (round(min(1.0, max(0.0, frac)), 4),),
                              "stream"))
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
        from engine.scene.schema import load_scene

        self.config = config
        self.strict = strict
        self.time = time_source or RealTime()
        self.outputs = outputs
        self.scheduler = Scheduler(outputs, self.time)
        self.scene = load_scene(config.scene.name)
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
        try:
            return self._run(duration_s)
        finally:
            self._stop.set()
            self.source.close()
            if self._capture_thread is not None:
                self._capture_thread.join(timeout=3.0)
            self.scheduler.stop(panic=True)
            self.close_outputs()
            if self.preview:
                from engine import preview

                preview.close()

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
                                  transform=self._mute_filter)
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
            self._render(features, onsets, now + cfg.lookahead_s, now + cfg.block_s)
            stream_hz = self.config.osc.stream_features_hz
            if stream_hz > 0 and features is not None and now >= self._next_stream:
                self.scheduler.schedule(feature_messages(features, now))
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

    def _mute_filter(self, events: list[Event]) -> list[Event]:
        """Drop the new notes of muted voices (notes already sounding end as planned)."""
        if not self.muted:
            return events
        return [e for e in events
                if not (isinstance(e, (Note, OscMessage)) and e.voice in self.muted)]

    def state(self) -> dict[str, object]:
        """What /sonify/status and the health page report."""
        s = self.status
        return {"scene": s.scene, "tempo_bpm": round(self.driver.tempo.bpm, 2),
                "mood": s.mood, "fps": round(s.fps, 1), "frozen": self.frozen is not None,
                "muted": sorted(self.muted), "notes": self.scheduler.notes_sent,
                "lateness_p99_ms": round(s.lateness_p99_ms, 3),
                "voices": [v.name for v in self.scene.voices]}

    def _apply_commands(self, now: float) -> None:
        while True:
            try:
                name, arg = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                if name == "scene":
                    self._switch_scene(str(arg), now)
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
                elif name == "status":
                    arg(self.state())  # type: ignore[operator]
                else:
                    logger.warning("unknown command %r ignored", name)
            except Exception as exc:
                logger.error("command %s(%r) failed: %s", name, arg, exc)
                if self.strict:
                    raise

    def _switch_scene(self, name: str, now: float) -> None:
        scene = self._load_scene(name)  # a bad scene raises here; the old one keeps playing
        self.scene = scene
        self.player = self._player_cls(scene, seed=self.config.scene.seed)
        if self.config.scene.panic_on_change:
            self.scheduler.clear()
            self.scheduler.panic()
        self.driver.switch(self.player, now)
        self.status.scene = scene.name
        logger.info("scene changed to %s", scene.name)

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
