"""The performance core: everything that decides the music over time, on any clock.

Size (about 575 lines): the one loop body and the command dispatch it applies between blocks
share the performance's state (pending switch, fades, idle, hours); the parts that stand alone
are in ``parts.py``, ``driver.py``, ``form.py``, ``sources.py``, ``vision.py`` and
``teach.py``.

``Performance.step(now, features, onsets)`` is the one loop body. Live (``sonify run``: the real
clock, a capture thread), soak tests (a manual or scaled clock) and ``sonify render`` (a file
source, a manual clock) all call it once per block, so what plays live renders note for note.
Per block it:

1. applies the commands that came through ``command()`` (coalesced and rate-limited by the
   ``CommandQueue``): scene, param, tempo, mute, freeze, master, transpose, trigger, panic...;
2. plays idle while a live source is lost (``lost=True``: hold the last picture's features, or
   a scene), and the music it chose again when the source is back;
3. holds the features while frozen; lets the mood choose the scene in auto mode; adds the
   extra sources' features, says which people, flow and zone features the analysis must add
   (``VisionDemand``), and lets the scene's ``[teach]`` model record or play (``TeachPart``);
4. switches scene at the quantised beat, bar or phrase (the old scene's notes end there with
   their own note-offs; controls glide from the old values over ``crossfade_s``);
5. renders the scene through the ``SceneDriver`` up to ``now + lookahead_s`` (notes) and
   ``now + block_s`` (controls, triggers), following an external tempo (``sync``), with the
   form (``Form``: the dynamics arc of a still picture, a new section at a video's cut) and the
   event transform (opening hours' gain, mutes, master level, transpose, control fades);
6. streams the features over OSC when asked, and applies opening hours.

The core owns no thread and no output: it schedules events into the ``Scheduler`` it is given;
whoever drives it dispatches them (the scheduler's thread live, ``run_until`` offline).
``snapshot()`` is a plain dict of the state for other threads (status, OSCQuery, the page).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sonify.commands import (
    Command,
    CommandQueue,
    Extra,
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
    check,
)
from sonify.config import Config
from sonify.events import ControlChange, Event, Note, OscMessage, PitchBend
from sonify.features.analyzer import Features
from sonify.performance.driver import SceneDriver
from sonify.performance.form import Form
from sonify.performance.sources import SourceFeatures
from sonify.performance.teach import TeachPart
from sonify.performance.vision import VisionDemand, with_neutral
from sonify.scene.player import ScenePlayer
from sonify.scene.schema import Scene, load_scene, resolve_scene
from sonify.timing.scheduler import Scheduler
from sonify.util.ratelimit import RateLimitedLog

if TYPE_CHECKING:
    from sonify.timing.hours import HoursGate
    from sonify.timing.sync import ExternalTempo

from sonify.performance.parts import (  # re-exported: the live runtime and tests know them here
    AutoScene,
    ControlFade,
    FeatureStream,
    feature_fractions,
    feature_messages,
    neutral_features,
    quantize_beat,
)

__all__ = ["AutoScene", "ControlFade", "Performance", "feature_fractions", "feature_messages",
           "neutral_features", "quantize_beat"]

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    scene: Scene
    beat: float
    why: str
    path: Path | None
    params: dict[str, float] = field(default_factory=dict)  # set when the scene starts


class Performance:
    """The music over time (see the module docstring). ``config`` gives the scene and its
    changes, auto mode, the trigger channel, the feature stream, opening hours and MIDI clock
    out; ``scene``/``seed``/``tempo_bpm`` override the config's scene, seed and tempo (render).
    ``strict`` makes a failing scene or command raise (tests) instead of being logged.
    ``wall_clock`` is the local time for opening hours; ``scene_path`` the file ``scene`` came
    from (its ``[teach]`` examples and model are kept beside it); ``teach_threads`` trains a
    ``[teach]`` model on a thread of its own (live), not in place (a render)."""

    def __init__(self, config: Config, scheduler: Scheduler, *, strict: bool = False,
                 scene: Scene | None = None, seed: int | None = None,
                 tempo_bpm: float | None = None, form: Form | None = None,
                 gate: HoursGate | None = None, scene_path: Path | None = None,
                 teach_threads: bool = False,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now().astimezone()
                 ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.strict = strict
        self.seed = config.scene.seed if seed is None else seed
        self.fixed_bpm = tempo_bpm
        self.form = form
        self.gate = gate
        self._wall_clock = wall_clock
        if scene is None:
            self.scene_path: Path | None = resolve_scene(config.scene.name)
            scene = load_scene(self.scene_path)
        else:
            self.scene_path = scene_path
        self.scene = scene
        self.player = ScenePlayer(scene, seed=self.seed)
        if form is not None:  # a piece of known length: the harmony plans its ending
            form.shape(self.player)
        self._scene_cache: dict[Path, tuple[tuple[int, int], Scene]] = {}
        self.commands = CommandQueue()
        self._log = RateLimitedLog(logger, level=logging.ERROR)
        self.extra_commands: dict[str, Callable[[object], None]] = {}
        self.muted: set[str] = set()
        self.frozen: Features | None = None
        self.transpose = 0
        self.master = 1.0  # a MIDI knob's master level: scales note velocities
        self._pending: _Pending | None = None
        self._fade: ControlFade | None = None
        self._last_controls: dict[tuple[str, int, int], int] = {}
        self.auto: AutoScene | None = AutoScene(config.auto) if config.auto.enabled else None
        self._scene_since = 0.0
        self.scene_changes: list[tuple[float, float, str, str]] = []  # at_s, beat, name, why
        self._stream = FeatureStream(config.osc.stream_changes_only)
        self.driver: SceneDriver | None = None
        self.features: Features | None = None  # the latest features the music used
        self.source_name = "the source"
        self._idle: tuple[str, Path | None] | None = None  # while lost: (scene, path)
        self._idle_hold: Features | None = None
        self._next_stream = -math.inf
        self._next_gate = -math.inf
        self.state_fn: Callable[[], dict[str, Any]] = self.snapshot  # a status reply's content
        self.stop_requested = False  # a Stop command came: the loop driving this ends
        self._fractions_of: tuple[Features, dict[str, float]] | None = None
        # extra sources' features (``[[source.extra]]``), read by scenes as "cam1:motion"
        self.sources = SourceFeatures(x.name for x in config.source.extra)
        # people, faces, flow and zones the scene reads: what the analysis adds to each frame
        self.vision = VisionDemand(config.analysis.zones)
        self.vision.update(self.scene)
        # mapping by example (the scene's [teach]): its learner, on this thread
        self._now = 0.0
        self.teach = TeachPart(lambda cmd: self.apply(cmd, self._now), self.snapshot,
                               threaded=teach_threads)
        self.teach.scene_changed(self.scene, self.scene_path)
        self._publish()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, start_s: float, sync: ExternalTempo | None = None) -> SceneDriver:
        """Begin the music at ``start_s`` (engine clock): the driver, the first Tempo."""
        self.driver = SceneDriver(self.player, self.scheduler, start_s,
                                  tempo_bpm=self.fixed_bpm,
                                  tempo_scale=self.form.tempo_scale if self.form else None,
                                  transform=self._transform,
                                  clock_out=self.config.sync.clock_out, sync=sync)
        self._scene_since = start_s
        return self.driver

    def stop(self, end_s: float) -> None:
        """The music ends at ``end_s``: MIDI clock STOP, before the scheduler drops the rest."""
        if self.driver is not None:
            self.driver.stop(end_s)

    @property
    def streamed(self) -> dict[str, object]:
        """The feature values last streamed (every scalar 0..1, and the mood label): OSCQuery."""
        return self._stream.latest

    @property
    def idle(self) -> bool:
        return self._idle is not None

    @property
    def pending_scene(self) -> str | None:
        return self._pending.scene.name if self._pending is not None else None

    @property
    def pending_beat(self) -> float | None:
        """The beat a pending scene change comes in at (the page shows its bar)."""
        return self._pending.beat if self._pending is not None else None

    def tempo_bpm(self) -> float:
        driver = self.driver
        return driver.tempo.bpm if driver is not None else self.player.tempo_bpm(None)

    # -- control (any thread) -------------------------------------------------------------

    def command(self, cmd: Command) -> None:
        """The one door for control input, applied at the next step (coalesced and
        rate-limited: see ``sonify.commands``). A command that is not valid (its type or a
        range: ``sonify.commands.check``) raises ``CommandError`` here, to its sender.

        A scene request also makes the parameters of that scene known at once
        (``params_snapshot``), so that a control door lets ``/sonify/param/<name>`` for it
        through right after ``/sonify/scene``: it is kept for the scene and set when it starts.
        """
        self.commands.put(check(cmd))
        if isinstance(cmd, SetScene):
            self._announce(cmd.name)

    # -- the block --------------------------------------------------------------------------

    def step(self, now: float, features: Features | None, onsets: Iterable[str], *,
             lookahead_s: float, block_s: float, lost: bool | None = None) -> list[Event]:
        """One block at ``now``: commands, idle, freeze, auto mode, a due scene change, the
        scene up to ``now + lookahead_s`` (notes) and ``now + block_s`` (controls), the
        feature stream and opening hours. ``lost``: whether a live source is lost now (None:
        a source that cannot be). Returns the events scheduled by the scene this block."""
        assert self.driver is not None, "start() the performance first"
        self._now = now
        onset_list = list(onsets)
        arrived = tuple(onset_list)  # what this block's frames brought, before any is used
        self._apply_commands(now)
        if lost is not None:
            features, onset_list = self._idle_step(features, onset_list, lost, now)
        if self.frozen is not None:  # hold the picture: no new features, no onsets
            features, onset_list = self.frozen, []
        if self.auto is not None and features is not None and self._pending is None:
            self._auto_scene(features.mood, now)
        # the extra sources' features the scene (and the one it changes to) reads: "cam1:motion"
        pending = self._pending.scene if self._pending is not None else None
        features = self.sources.merge(features, self.sources.wanted(self.scene, pending),
                                      hold=self.frozen is not None)
        wanted = self.vision.update(self.scene, pending)
        if wanted and features is not None:  # idle, held or older features lack some
            features = with_neutral(features, wanted)
        if self.teach.learner is not None:  # records and/or plays the learned mapping
            features = self.teach.inputs(features)
            self.teach.step(features, now)
        self.features = features
        onset_list = self._due_switch(features, onset_list, now + lookahead_s)
        events = self._render(features, onset_list, now + lookahead_s, now + block_s)
        if self.form is not None and self.form.new_section(arrived, now):
            self._new_section(now + block_s)
        stream_hz = self.config.osc.stream_features_hz
        if stream_hz > 0 and features is not None and now >= self._next_stream:
            # stamped one block ahead, like the controls: stamped "now" it would count the
            # time this block takes as lateness
            self.scheduler.schedule(self._stream.messages(features, now + block_s))
            self._next_stream = max(self._next_stream + 1.0 / stream_hz, now)
        if self.gate is not None and now >= self._next_gate:
            self._hours(now)
            self._next_gate = now + 0.1
        return events

    def _render(self, features: Features | None, onsets: list[str], notes_to: float,
                controls_to: float) -> list[Event]:
        assert self.driver is not None
        try:
            return self.driver.advance(features, onsets, notes_to, controls_to)
        except Exception:
            if self.strict:
                raise
            self._log.log("render", "scene %r failed to render; skipping this block",
                          self.scene.name, exc_info=True)
            self.driver.notes_to, self.driver.controls_to = notes_to, controls_to
            return []

    def _transform(self, events: list[Event]) -> list[Event]:
        """Each block's events before they are scheduled: the form (a still picture's arc),
        opening hours, muted voices' new notes dropped, the master level, the MIDI transpose
        (not to drums on channel 10), controls crossfaded after a scene change, and the last
        value of every CC and pitch bend remembered for the next fade."""
        if self.form is not None:
            events = self.form.transform(events)
        if self.gate is not None:
            events = self.gate.filter(events)
        out: list[Event] = []
        fade = self._fade
        for ev in events:
            if self.muted and isinstance(ev, (Note, OscMessage)) and ev.voice in self.muted:
                continue
            if self.master < 1.0 and isinstance(ev, Note):
                if self.master <= 0.0:
                    continue
                ev = replace(ev, velocity=max(1, round(ev.velocity * self.master)))
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

    # -- idle, hours, sections --------------------------------------------------------------

    def _idle_step(self, features: Features | None, onsets: list[str], lost: bool,
                   now: float) -> tuple[Features | None, list[str]]:
        """A live source that is lost (or not there yet): ``[source] idle`` says what plays,
        "hold" (the last picture's features) or a scene; when it is back, the music it chose
        returns (the scene change is quantised like any other, so no note hangs)."""
        if lost and self._idle is None:
            self._idle_hold = features if features is not None else neutral_features()
            self._idle = (self.scene.name, self.scene_path)
            idle = self.config.source.idle
            logger.warning("%s lost: %s", self.source_name,
                           "holding the last mood" if idle == "hold" else f"playing {idle}")
            if idle != "hold" and idle != self.scene.name:
                try:
                    path = resolve_scene(idle)
                    self.request_scene(self.load_scene(path), now, "idle (camera lost)",
                                       path=path)
                except Exception as exc:
                    logger.error("idle scene %r cannot play: %s; holding the last mood",
                                 idle, exc)
        elif not lost and self._idle is not None:
            previous, back = self._idle
            self._idle = self._idle_hold = None
            logger.warning("%s is back: playing %s", self.source_name, previous)
            if previous != self.scene.name and back is not None:
                self.request_scene(self.load_scene(back), now, "camera back", path=back)
        if self._idle is not None:
            return self._idle_hold, []
        return features, onsets

    def _hours(self, now: float) -> None:
        """Opening hours: fade controls while the gain moves; silence (a panic) on closing."""
        assert self.gate is not None
        step = self.gate.update(self._wall_clock(), now)
        if step.panic:
            logger.info("closed (opening hours): silent until %s",
                        self.gate.hours.next_change(self._wall_clock()))
            self.scheduler.clear()
            self.scheduler.panic()
        if step.events:
            self.scheduler.schedule(step.events)

    def _new_section(self, at_s: float) -> None:
        """A new section (a video's cut): the scene's harmony starts afresh, struck at the cut
        (``Form.cut``: the old section's notes end there, the cut becomes a downbeat)."""
        assert self.driver is not None and self.form is not None
        player = ScenePlayer(self.scene, seed=self.seed + len(self.form.sections))
        for name, value in self.player.params.items():  # what the performer set stays
            player.set_param(name, value)
        at_s = self.form.cut(self.driver, self.scheduler, player, at_s)
        self.player = player
        self.driver.switch(player, at_s)
        self.form.sections.append(at_s)

    # -- commands -----------------------------------------------------------------------------

    def load_scene(self, path_or_name: str | Path) -> Scene:
        """A scene checked from its file, cached while the file is unchanged (a flood of
        scene requests must not parse the same file again and again on the music thread)."""
        path = resolve_scene(path_or_name)
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            return load_scene(path)  # says why, in the scene's own words
        cached = self._scene_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        scene = load_scene(path)
        self._scene_cache[path] = (stamp, scene)
        return scene

    def _apply_commands(self, now: float) -> None:
        """A bounded batch of commands per block (see ``sonify.commands``)."""
        for cmd in self.commands.take():
            try:
                self.apply(cmd, now)
            except Exception as exc:  # one line per kind of failure every few seconds
                self._log.log(f"{cmd.kind}:{type(exc).__name__}", "command %.80r failed: %s",
                              cmd, exc)
                if self.strict:
                    raise

    def apply(self, cmd: Command, now: float) -> None:
        """Apply one command now (the music thread; ``command()`` is the door from others).
        The commands were checked where they came in (``sonify.commands.check``)."""
        assert self.driver is not None
        match cmd:
            case SetScene(name):
                path = resolve_scene(name)  # a bad name raises: the old scene keeps playing
                self.request_scene(self.load_scene(path), now, "requested", path=path)
            case Reload(scene, path):  # a Scene the file watcher has already checked
                if self.scene_path is not None and path.resolve() == self.scene_path.resolve():
                    self.request_scene(scene, now, "reloaded", quantize="bar", path=path)
            case Panic():
                self.scheduler.clear()
                self.scheduler.panic()
            case SetTempo(bpm):
                self.driver.fixed_bpm = bpm
            case Mute(voice, muted):
                (self.muted.add if muted else self.muted.discard)(voice)
            case Freeze(on):
                self.frozen = self.features if on else None
            case SetParam():
                self._set_param(cmd)
            case SetMaster(level):  # the ranges were checked at the door (commands.check)
                self.master = level
            case Transpose(semitones):
                self.transpose = semitones
            case Trigger(pitch, velocity):
                c = self.config.control
                self.scheduler.schedule([Note(now, c.trigger_channel - 1, pitch, velocity,
                                              c.trigger_length_s, "trigger")])
            case Status(reply):
                reply(self.state_fn())
            case Stop():
                self.stop_requested = True
            case Teach(action):
                self.teach.command(action)
            case TeachOutputs(values):
                self.teach.set_outputs(values)
            case Learn(param):
                learn = self.extra_commands.get("learn")
                if learn is None:
                    raise ValueError("MIDI learn needs MIDI control input: set [control.midi] "
                                     "enabled = true in the config")
                learn(param)
            case Extra(name, arg):
                extra = self.extra_commands.get(name)
                if extra is None:
                    raise ValueError(f"unknown command {name!r}")
                extra(arg)

    def _set_param(self, cmd: SetParam) -> None:
        """Set a parameter of the playing scene; one that the scene about to play has (a change
        waiting for its beat, bar or phrase) is kept for it too and set when it starts (so
        ``/sonify/scene X`` then ``/sonify/param/p`` right after sets X's ``p``). KeyError,
        naming the parameters there are, when neither has it."""
        pending = self._pending
        coming = pending.scene.params.get(cmd.name) if pending is not None else None
        spec = self.scene.params.get(cmd.name)
        if coming is not None and pending is not None:
            value = min(coming.max, max(coming.min, cmd.scaled(coming.min, coming.max)))
            pending.params[cmd.name] = value
            logger.debug("param %s = %g kept for scene %s", cmd.name, value, pending.scene.name)
            if spec is None:
                return
        if spec is None:
            self.player.set_param(cmd.name, cmd.value)  # raises, naming the parameters
            return
        kept = self.player.set_param(cmd.name, cmd.scaled(spec.min, spec.max))
        logger.debug("param %s = %g", cmd.name, kept)

    # -- scene changes --------------------------------------------------------------------------

    def request_scene(self, scene: Scene, now: float, why: str, *,
                      quantize: str | None = None, path: Path | None = None) -> None:
        """Change to ``scene`` on the next beat, bar or phrase (``[scene] quantize``); the
        change itself happens in ``step`` when the note window reaches that moment."""
        assert self.driver is not None
        q = quantize or self.config.scene.quantize
        if q == "now":
            self._pending = None
            self._switch_scene(scene, now, immediate=True, why=why, path=path)
            return
        bpb = self.scene.harmony.beats_per_bar
        beat = quantize_beat(self.driver.tempo.beat_at(self.driver.notes_to), q, bpb,
                             self.config.scene.phrase_bars)
        self._pending = _Pending(scene, beat, why, path)
        logger.info("scene %s %s: changes at beat %g (next %s)", scene.name, why, beat, q)

    def _auto_scene(self, mood: str, now: float) -> None:
        assert self.auto is not None
        target = self.auto.choose(mood, now, self.scene.name, self._scene_since)
        if target is None:
            return
        try:
            path = resolve_scene(target)
            self.request_scene(self.load_scene(path), now, f"chosen by the mood ({mood})",
                               path=path)
        except Exception as exc:  # a bad map entry must not stop the show: log once per mood
            logger.error("auto mode: cannot play scene %r for mood %s: %s", target, mood, exc)
            self.auto.cfg.scenes.pop(mood, None)

    def _due_switch(self, features: Features | None, onsets: list[str],
                    horizon: float) -> list[str]:
        """Play the old scene up to a pending change that falls before ``horizon``, then switch
        there. Returns the onsets not yet used."""
        pending, driver = self._pending, self.driver
        if pending is None or driver is None:
            return onsets
        at_s = max(driver.tempo.time_at(pending.beat), driver.notes_to)
        if at_s > horizon:
            return onsets
        self._render(features, onsets, at_s, min(at_s, driver.controls_to))
        self._pending = None
        self._switch_scene(pending.scene, at_s, immediate=False, why=pending.why,
                           path=pending.path, params=pending.params)
        return []

    def _switch_scene(self, scene: Scene, at_s: float, *, immediate: bool, why: str,
                      path: Path | None = None, params: dict[str, float] | None = None
                      ) -> None:
        assert self.driver is not None
        old = self.player
        if self.config.scene.panic_on_change:
            if immediate:  # drop what is queued and end every sounding note now
                self.scheduler.clear()
                self.scheduler.panic()
            else:  # every old note ends at the change, with its own note-off
                self.scheduler.cut(at_s)
        self.scene = scene
        self.player = ScenePlayer(scene, seed=self.seed)
        if self.form is not None:
            self.form.shape(self.player)
        for name, value in old.params.items():  # a reload keeps what the performer set
            if name in scene.params:
                self.player.set_param(name, value)
        for name, value in (params or {}).items():  # sent for this scene while it was coming
            self.player.set_param(name, value)
        self.scene_path = path
        self.teach.scene_changed(scene, path)
        if self.config.scene.crossfade_s > 0:
            self._fade = ControlFade(at_s, self.config.scene.crossfade_s,
                                     dict(self._last_controls))
        self.driver.switch(self.player, at_s)
        self._scene_since = at_s
        self.scene_changes.append((at_s, self.driver.tempo.beat_at(at_s), scene.name, why))
        self._publish()
        logger.info("scene %s: %s", why if why != "requested" else "changed to", scene.name)

    # -- what other threads read ----------------------------------------------------------------

    def _publish(self) -> None:
        """Immutable copies the control threads read (they never touch the live objects)."""
        self.voices_snapshot: frozenset[str] = frozenset(v.name for v in self.scene.voices)
        self.params_snapshot: dict[str, tuple[float, float]] = {
            name: (p.min, p.max) for name, p in self.scene.params.items()}

    def _announce(self, name: str) -> None:
        """A scene was asked for (any thread): its parameters join ``params_snapshot`` (the
        playing scene's ranges win where both have one) until the next change publishes."""
        try:  # a scene that cannot load says so when the music thread applies the request
            scene = self.load_scene(resolve_scene(name))
        except Exception:
            return
        current = {n: (p.min, p.max) for n, p in self.scene.params.items()}
        self.params_snapshot = {**{n: (p.min, p.max) for n, p in scene.params.items()},
                                **current}

    def snapshot(self) -> dict[str, Any]:
        """The state as plain values (any thread reads it; it holds no live object)."""
        latest = self.features
        return {"scene": self.scene.name, "tempo_bpm": round(self.tempo_bpm(), 2),
                "mood": latest.mood if latest is not None else "-",
                "frozen": self.frozen is not None, "muted": sorted(self.muted),
                "voices": [v.name for v in self.scene.voices],
                "params": dict(self.player.params), "transpose": self.transpose,
                "master": self.master, "teach": self.teach.status(),
                "tempo_set_bpm": self.driver.fixed_bpm if self.driver is not None else None,
                "next_scene": self.pending_scene, "auto": self.auto is not None,
                "features": self._fractions(latest)}

    def _fractions(self, features: Features | None) -> dict[str, float]:
        """``feature_fractions`` of ``features``, made again only for new features (a status,
        the page and OSCQuery ask many times a frame)."""
        if features is None:
            return {}
        cached = self._fractions_of
        if cached is None or cached[0] is not features:
            cached = self._fractions_of = (features, feature_fractions(features))
        return dict(cached[1])
