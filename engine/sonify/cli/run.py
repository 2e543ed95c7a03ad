"""``sonify run``: play a scene live from a camera, a file or the demo, to MIDI and OSC.

The command line only applies its options to the config, reports and sets the signal handlers;
``sonify.live.runtime`` plays.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sonify.cli.args import CONFIG_HELP, MIDI_APIS, port, positive_float
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run", help="play live: source -> features -> scene -> MIDI/OSC",
        description="Play a scene live from a camera, a file or the demo, to MIDI and OSC. With "
        "no options: the first camera (or the demo when there is none), the gallery scene, a "
        "virtual MIDI port where the platform has one, else a MIDI file recording.",
    )
    p.add_argument("--source", help="camera:N, /dev/video*, a stream URL (rtsp://, http://), a "
                   "file, folder, glob or demo[:look] (default: from the config, 'auto')")
    p.add_argument("--hold", type=positive_float, metavar="SECONDS",
                   help="a folder or glob of images as a slideshow: each image held this long, "
                   "dissolving into the next")
    p.add_argument("--scene", help="a scene name (see scenes/) or a .toml path")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--midi", metavar="PORT",
                   help="connect to an existing MIDI port whose name contains PORT")
    p.add_argument("--virtual", metavar="NAME", help="create a virtual MIDI port NAME")
    p.add_argument("--no-midi", action="store_true", help="no MIDI port at all")
    p.add_argument("--midi-api", choices=MIDI_APIS,
                   help="the MIDI system to use (default: auto)")
    p.add_argument("--osc", metavar="HOST:PORT", action="append", default=[],
                   help="send OSC to HOST:PORT (repeatable)")
    p.add_argument("--record", metavar="FILE.mid", help="record everything sent to a MIDI file")
    p.add_argument("--synth", action="store_true",
                   help="play through FluidSynth with a General MIDI soundfont (to JACK, "
                   "PulseAudio/PipeWire or ALSA; with no sound card, to a WAV at the end; "
                   "without FluidSynth, the built-in synth's WAV)")
    p.add_argument("--soundfont", metavar="SF2",
                   help="the soundfont for --synth (implies it; default: auto, the system's "
                   "General MIDI soundfont)")
    p.add_argument("--control-port", type=port, metavar="N",
                   help="OSC control port on 127.0.0.1 (default 9000 from the config; 0 = off)")
    p.add_argument("--oscquery-port", type=port, metavar="N",
                   help="OSCQuery (the controls described over HTTP, LISTEN over WebSocket, "
                   "announced over mDNS) on the control host (default 9001 from the config; "
                   "0 = off)")
    p.add_argument("--http-port", type=port, metavar="N",
                   help="health and control page on 127.0.0.1 (default 8765; 0 = off)")
    p.add_argument("--wekinator", action="store_true",
                   help="take Wekinator's place: /wek/inputs and its control messages on "
                   "127.0.0.1:6448, /wek/outputs to 127.0.0.1:12000 (the config's [wekinator])")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS",
                   help="stop cleanly after this many seconds")
    p.add_argument("--preview", action="store_true",
                   help="show the frame with the live features in a window (closing it leaves "
                   "the music playing)")


def run(args: argparse.Namespace) -> int:
    import logging
    import shutil
    import signal

    from sonify.config import ConfigError, exposure_warnings, load_config, parse_host_port
    from sonify.live.runtime import RunError, Runtime, build_outputs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.source:
        config.source.input = args.source
    if args.hold is not None:
        config.source.hold_s = args.hold
    if args.scene:
        config.scene.name = args.scene
    if args.midi:
        config.midi.port = args.midi
    if args.virtual:
        config.midi.virtual = args.virtual
        config.midi.port = ""
    if args.no_midi:
        config.midi.enabled = False
    if args.midi_api:
        config.midi.api = args.midi_api
    if args.synth or args.soundfont:
        config.synth.enabled = True
    if args.soundfont:
        config.synth.soundfont = args.soundfont
    if args.control_port is not None:
        config.control.port = args.control_port
    if args.oscquery_port is not None:
        config.control.oscquery_port = args.oscquery_port
    if args.http_port is not None:
        config.http.port = args.http_port
    if args.wekinator:
        config.wekinator.enabled = True
    for target in args.osc:
        try:
            parse_host_port(target)
        except ValueError as exc:
            raise CliError(f"--osc: {exc}") from None
    config.osc.targets = [*config.osc.targets, *args.osc]
    for warning in exposure_warnings(config):  # `sonify doctor` says the same
        logging.getLogger("sonify").warning("%s", warning)
    if args.preview:
        from sonify.live.preview import PreviewUnavailable, check_display

        try:
            check_display()
        except PreviewUnavailable as exc:
            raise CliError(str(exc)) from None
    try:
        outputs, notes = build_outputs(config, midi_file=args.record)
    except RunError as exc:
        raise CliError(str(exc)) from None
    from sonify.scene.schema import SceneError

    tty = sys.stderr.isatty()
    last_line = [0.0]
    # to a log (not a terminal): a line every 5 s; under systemd, STATUS= says it: every minute
    log_every_s = 60.0 if os.environ.get("NOTIFY_SOCKET") else 5.0

    def show_status(status: object) -> None:
        import time

        if config.status.interval_s <= 0:
            return
        if tty:  # fits the terminal: a wrapped line would scroll instead of updating in place
            columns = shutil.get_terminal_size().columns
            line = status.line(columns)  # type: ignore[attr-defined]
            print(f"\r{line:<{columns - 1}}", end="", file=sys.stderr, flush=True)
            return
        line = status.line(None)  # type: ignore[attr-defined]
        if time.monotonic() - last_line[0] >= log_every_s:
            last_line[0] = time.monotonic()
            print(line, file=sys.stderr, flush=True)

    from sonify.features.analyzer import kernels_need_compiling

    if kernels_need_compiling():  # the first frame would otherwise stall seconds, unexplained
        print("sonify: compiling analysis kernels (first start only)...", file=sys.stderr,
              flush=True)
    try:
        runtime = Runtime(config, outputs, status_cb=show_status, preview=args.preview)
    except SceneError as exc:
        for out in outputs:
            out.close()
        raise CliError(str(exc)) from None
    except BaseException:
        for out in outputs:
            out.close()
        raise
    if runtime.source_note:
        print(f"sonify: {runtime.source_note}", file=sys.stderr)
    for note in notes:
        print(f"sonify: {note}", file=sys.stderr)
    print(f"sonify: scene {runtime.scene.name}, source {runtime.source.name}; Ctrl-C stops",
          file=sys.stderr)

    def on_signal(signum: int, frame: object) -> None:
        runtime.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = runtime.run(args.duration)
    except RunError as exc:
        raise CliError(str(exc)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if tty:
        print(file=sys.stderr)
    n_out = len(runtime.outputs)
    print(f"sonify: stopped: {runtime.scheduler.notes_sent} notes played, "
          f"{runtime.scheduler.events_sent} messages sent to {n_out} output"
          f"{'s' if n_out != 1 else ''}; all notes ended", file=sys.stderr)
    del status
    return _recording_status(outputs)


def _recording_status(outputs: Sequence[object]) -> int:
    """Say what each recording wrote; 1 when any part of one was lost or not written."""
    from sonify.outputs.midifile import MidiFileRecorder

    # the synth module (and scipy with it) is loaded only if a run made a WAV renderer
    synth = sys.modules.get("sonify.outputs.synth")
    wav_renderer = getattr(synth, "WavRenderer", None)
    code = 0
    for out in outputs:
        if (wav_renderer is not None and isinstance(out, wav_renderer)
                and out.path.exists()):  # --synth with no sound card
            print(f"sonify: the synth's audio is in {out.path.resolve()}", file=sys.stderr)
        if isinstance(out, MidiFileRecorder):
            for path in out.files:
                print(f"sonify: recorded {path}", file=sys.stderr)
            if out.failed:
                print(f"sonify: error: the recording failed: {out.failure}", file=sys.stderr)
                code = 1
    return code
