"""Building the parts of a live run: outputs, the external tempo, and the services.

``Runtime`` (``sonify.live.runtime``) owns threads and lifecycle; this module makes what it
runs: the outputs the config asks for (``build_outputs``, with the MIDI-file fallback so the
music is never lost), the external tempo (``make_sync``: MIDI clock in or Link), and the
services that live beside the music on the wall clock (``start_services``: the OSC control
server, OSCQuery, the health page, MIDI control, the scene reloader, the Wekinator server).
Services read only what the music thread publishes (``Runtime.state()``,
``Runtime.published``) and talk back through ``Runtime.command``.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sonify.capture import find_cameras
from sonify.config import Config, parse_host_port
from sonify.errors import RunError
from sonify.outputs.base import Output

if TYPE_CHECKING:
    from sonify.live.runtime import Runtime
    from sonify.outputs.fluid import SynthChoice
    from sonify.timing.sync import ExternalTempo

__all__ = ["RunError", "Service", "build_outputs", "close_outputs", "make_sync",
           "resolve_source_spec", "start_services"]

logger = logging.getLogger(__name__)


class Service(Protocol):
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
            if config.synth.enabled:  # the synth plays it: the music is not lost
                notes.append(f"no virtual MIDI port on this system ({exc})")
            else:
                if not record:
                    record = config.record.fallback_midi_file
                notes.append(f"no virtual MIDI port on this system ({exc}); recording instead")
    for target in config.osc.targets:
        host, port = parse_host_port(target)
        o = config.osc
        outputs.append(OscOutput([(host, port)], prefix=o.prefix,
                                 bundle_latency_s=o.bundle_latency_s or None,
                                 notes=o.notes, note_offs=o.note_offs,
                                 note_velocity=o.note_velocity, midi_as_osc=o.midi_as_osc))
        notes.append(f"OSC to {host}:{port}")
    if config.synth.enabled:
        try:
            synth = _synth(config)
        except RunError:
            for out in outputs:
                out.close()
            raise
        outputs.append(synth.output)
        notes.append(synth.note)
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


def _synth(config: Config) -> SynthChoice:
    """``[synth]``: FluidSynth live, or a WAV (``sonify.outputs.fluid.open_synth``), at the
    starting scene's loudness; RunError for a soundfont or driver asked for and not there."""
    from sonify.limits import LOUDNESS_DEFAULT_LUFS
    from sonify.outputs.fluid import SynthError, open_synth
    from sonify.scene import SceneError, load_scene

    try:
        loudness = load_scene(config.scene.name).render.loudness_lufs
    except (SceneError, OSError):  # the runtime reports it; the WAV keeps the default level
        loudness = LOUDNESS_DEFAULT_LUFS
    s = config.synth
    try:
        return open_synth(soundfont=s.soundfont, driver=s.driver, gain=s.gain,
                          wav_file=s.wav_file, loudness_lufs=loudness)
    except SynthError as exc:
        raise RunError(f"synth: {exc}") from None


def make_sync(config: Config, tempo_bpm: float) -> ExternalTempo | None:
    """The external tempo ``[sync] source`` asks for (RunError when it cannot be had)."""
    sc = config.sync
    if sc.source == "midi_clock":
        from sonify.outputs.midi import MidiPortError
        from sonify.timing.midiclock_in import ClockEstimator, MidiClockFollower

        try:
            return MidiClockFollower(
                port=sc.clock_in_port or None,
                virtual=None if sc.clock_in_port else sc.clock_in_virtual,
                api=config.midi.api, wait=True,
                estimator=ClockEstimator(latency_s=sc.clock_in_latency_ms / 1e3))
        except MidiPortError as exc:
            raise RunError(f"MIDI clock in: {exc}") from None
    if sc.source == "link":
        from sonify.timing.link import LinkSync, LinkUnavailableError

        try:
            return LinkSync(tempo_bpm, quantum=sc.link_quantum)
        except LinkUnavailableError as exc:
            raise RunError(str(exc)) from None
    return None


def close_outputs(outputs: list[Output], end_s: float) -> None:
    for out in outputs:
        out.close_at(end_s)  # a recording or a WAV lasts as long as the run


def start_services(rt: Runtime) -> None:
    """The control server and the scene reloader; one that cannot start is logged and the
    show goes on without it (a taken port must not silence a gallery)."""
    from sonify.control.osc_server import ControlServer, ControlServerError
    from sonify.control.reload import SceneReloader
    from sonify.scene.schema import available_scenes

    c = rt.config.control
    wanted: list[Service] = []
    if c.port:
        server = ControlServer(rt.command, rt.state, host=c.host, port=c.port,
                               allow=c.allow or None, known_scenes=available_scenes,
                               voices=lambda: rt.voices_snapshot,
                               params=lambda: rt.params_snapshot,
                               max_future_s=c.max_future_s)
        rt.control_server = server
        wanted.append(server)
    if c.port and c.oscquery_port:
        wanted.append(_oscquery(rt, c.port if rt.control_server is None
                                     else rt.control_server.port))
    if rt.config.http.port:
        wanted.append(_health_server(rt))
    if c.midi.enabled:
        from sonify.control.midi_in import MidiControl

        rt.midi_control = MidiControl.from_config(
            c.midi, rt.command, params=lambda: rt.params_snapshot,
            scenes=available_scenes)
        rt.extra_commands["learn"] = lambda name: rt.midi_control.learn(str(name))  # type: ignore[union-attr]
        wanted.append(rt.midi_control)
    if rt.config.scene.watch:
        rt.reloader = SceneReloader(rt.command, lambda: rt.scene_path)
        wanted.append(rt.reloader)
    if rt.config.wekinator.enabled:
        from sonify.control.wekinator import WekinatorServer

        w = rt.config.wekinator
        rt.wekinator = WekinatorServer(rt.command, host=w.host, port=w.port,
                                       out_host=w.out_host, out_port=w.out_port)
        # /wek/inputs are the [teach] inputs "wek:<n>"; the model's outputs go to /wek/outputs
        rt.performance.teach.external = rt.wekinator.values
        rt.performance.teach.on_outputs = rt.wekinator.send_outputs
        wanted.append(rt.wekinator)
    for service in wanted:
        try:
            service.start()
        except (ControlServerError, OSError) as exc:
            logger.error("%s", not_started(rt.config, service, exc))
            continue
        rt.services.append(service)


def not_started(config: Config, service: Service, exc: Exception) -> str:
    """Why ``service`` did not start, in one line; for a server, with its address and the
    option that moves it (a second sonify on the same machine takes the same ports)."""
    from sonify.control.osc_server import ControlServer
    from sonify.control.oscquery import OscQueryServer
    from sonify.install.health import HealthServer

    c, h = config.control, config.http
    if isinstance(service, ControlServer):
        what, proto, host, port, option = ("OSC control", "UDP", c.host, c.port,
                                           "--control-port N ([control] port)")
    elif isinstance(service, OscQueryServer):
        what, proto, host, port, option = ("OSCQuery", "TCP", c.host, c.oscquery_port,
                                           "--oscquery-port N ([control] oscquery_port)")
    elif isinstance(service, HealthServer):
        what, proto, host, port, option = ("the health page", "TCP", h.host, h.port,
                                           "--http-port N ([http] port)")
    else:
        return f"{service.name} not started: {exc}"
    text = str(exc)
    taken = (getattr(exc, "errno", None) == errno.EADDRINUSE or "already in use" in text)
    why = (f"port {port} is taken ({proto} {host}:{port}): another sonify or another program "
           f"is using it" if taken else text)
    return f"{what} not started: {why}; pick another port with {option}, 0 turns it off"


def _health_server(rt: Runtime) -> Service:
    from sonify.install.health import HealthServer, Thumbnailer
    from sonify.scene.schema import available_scenes

    h = rt.config.http
    server = HealthServer(h.host, h.port, health=rt.health, state=rt.state,
                          command=rt.command,
                          thumbnail=Thumbnailer(lambda: rt.last_image),
                          metrics=rt.metrics, scenes=lambda: list(available_scenes()),
                          token=h.token or None)
    server.name = "health page"  # type: ignore[attr-defined]
    return server  # type: ignore[return-value]


def _oscquery(rt: Runtime, osc_port: int) -> Service:
    from sonify.control.oscquery import OscQueryServer, SonifyTree
    from sonify.control.oscquery_tree import osc_out_entries
    from sonify.scene.schema import available_scenes

    perf = rt.performance
    o = rt.config.osc
    sent = osc_out_entries(o.prefix or "/", notes=o.notes, note_offs=o.note_offs,
                           int_velocity=o.note_velocity == "int",
                           midi_as_osc=o.midi_as_osc) if o.targets else []

    def params() -> dict[str, tuple[float, float, float]]:  # from the published state
        values: dict[str, float] = rt.published.get("params", {})  # type: ignore[assignment]
        return {name: (lo, hi, values.get(name, lo))
                for name, (lo, hi) in perf.params_snapshot.items()}

    def voices() -> dict[str, bool]:
        muted = set(rt.published.get("muted", ()))  # type: ignore[call-overload]
        return {v: v in muted for v in perf.voices_snapshot}

    streaming = rt.config.osc.stream_features_hz > 0
    tree = SonifyTree(state=rt.state, scenes=lambda: list(available_scenes()),
                      params=params, voices=voices,
                      features=(lambda: {k: v for k, v in perf.streamed.items()
                                         if isinstance(v, float)}) if streaming else None,
                      feature_prefix=rt.config.osc.prefix or "/", osc_port=osc_port,
                      sends=lambda: sent)
    c = rt.config.control
    return OscQueryServer(tree, osc_port=osc_port, host=c.host, port=c.oscquery_port,
                          allow=c.allow or None, announce=True)  # mDNS where it listens
