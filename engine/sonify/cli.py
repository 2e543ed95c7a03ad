"""The ``sonify`` command line.

Exit status: 0 done, 1 an unexpected failure, 2 bad input (a missing file, a folder without
images, a camera that does not open, a bad option), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence

from sonify import __version__
from sonify.capture import DEMO_LOOKS, SourceError, open_source
from sonify.capture.files import ImageSource
from sonify.errors import CliError
from sonify.install import doctor
from sonify.tools import pianoroll, recommend

logger = logging.getLogger("sonify")

EXIT_BAD_INPUT = 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {text}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sonify",
        description="Turn what a camera, a picture or a video sees into music.",
    )
    parser.add_argument("--version", action="version", version=f"sonify {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    looks = ", ".join(f"demo:{k}" for k in DEMO_LOOKS)
    feat = sub.add_parser(
        "features", help="analyse a picture, a video, a folder of images, a camera or the demo",
        description="Print the features the engine sees in INPUT: an image file, a folder or "
        f"glob of images, a video file, camera:N, a /dev/video* device, or demo ({looks}).",
    )
    feat.add_argument("input", nargs="?", help="what to analyse (see above)")
    feat.add_argument("--list", action="store_true", help="document every feature and exit")
    feat.add_argument("--json", action="store_true",
                      help="one JSON object per frame, one per line")
    feat.add_argument("--raw", action="store_true",
                      help="per-frame values instead of smoothed ones")
    feat.add_argument("--frames", type=_positive_int, default=None,
                      help="frames to analyse (default: all of a video or sequence; 1 for an "
                      "image; 90 for the demo or a camera)")
    feat.add_argument("--fps", type=_positive_float, default=None,
                      help="frame rate of a sequence or the demo (default: the video's, else 30)")
    feat.add_argument("--width", type=int, default=None,
                      help="analysis width in pixels (default 480; 0 = full resolution)")
    feat.add_argument("--seed", type=int, default=0, help="the demo's random seed")

    run = sub.add_parser(
        "run", help="play live: source -> features -> scene -> MIDI/OSC",
        description="Play a scene live from a camera, a file or the demo, to MIDI and OSC. With "
        "no options: the first camera (or the demo when there is none), the gallery scene, a "
        "virtual MIDI port where the platform has one, else a MIDI file recording.",
    )
    run.add_argument("--source", help="camera:N, /dev/video*, a file, folder, glob or "
                     "demo[:look] (default: from the config, 'auto')")
    run.add_argument("--scene", help="a scene name (see scenes/) or a .toml path")
    run.add_argument("--config", help="a runtime config file (default: configs/default.toml)")
    run.add_argument("--midi", metavar="PORT",
                     help="connect to an existing MIDI port whose name contains PORT")
    run.add_argument("--virtual", metavar="NAME", help="create a virtual MIDI port NAME")
    run.add_argument("--no-midi", action="store_true", help="no MIDI port at all")
    run.add_argument("--midi-api", choices=("auto", "alsa", "jack", "coremidi", "winmm"),
                     help="the MIDI system to use (default: auto)")
    run.add_argument("--osc", metavar="HOST:PORT", action="append", default=[],
                     help="send OSC to HOST:PORT (repeatable)")
    run.add_argument("--record", metavar="FILE.mid", help="record everything sent to a MIDI file")
    run.add_argument("--control-port", type=_port, metavar="N",
                     help="OSC control port on 127.0.0.1 (default 9000 from the config; 0 = off)")
    run.add_argument("--http-port", type=_port, metavar="N",
                     help="health and control page on 127.0.0.1 (default 8765; 0 = off)")
    run.add_argument("--duration", type=_positive_float, metavar="SECONDS",
                     help="stop cleanly after this many seconds")
    run.add_argument("--preview", action="store_true",
                     help="show the frame with the live features in a window")

    rend = sub.add_parser(
        "render", help="render a picture, a folder of images or a video to files",
        description="Render INPUT (an image, a folder or glob of images, a video, or demo) "
        "with a scene into .mid, .wav, .png and .json files, on a virtual clock (faster than "
        "real time). A still image is travelled over (pan and zoom through its regions), so the "
        "piece has an opening, a development and an ending.",
    )
    rend.add_argument("input", help="an image, a folder or glob of images, a video, or demo")
    rend.add_argument("-o", "--output", action="append", default=[], metavar="OUT",
                      help="a file to write: .mid, .wav, .png or .json (repeatable)")
    rend.add_argument("--scene", default="gallery", help="a scene name or .toml path "
                      "(default: gallery)")
    rend.add_argument("--duration", type=_positive_float, metavar="SECONDS",
                      help="length (default: 60 s for an image, the video's own length)")
    rend.add_argument("--tempo", type=_positive_float, metavar="BPM",
                      help="a fixed tempo instead of the scene's")
    rend.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    pianoroll.add_parser(sub)
    recommend.add_parser(sub)
    doctor.add_parser(sub)
    rec = sub.add_parser(
        "recover", help="finish recordings a killed run left unfinished",
        description="A recording is written to disk as it plays, in a hidden folder beside it "
        "(.NAME.mid.rec). After a crash, a kill or a power cut, this makes each such folder "
        "the MIDI file it was becoming (everything up to the last second or two), beside any "
        "file of the same name, never over it. `sonify run` does it by itself at start for "
        "its record path. Prints each recording made; exit status 1 when one could not be.")
    rec.add_argument("path", nargs="*", help="a recording's path, its folder or a .rec folder "
                     "(default: the folders of the config's [record] files)")
    rec.add_argument("--config", help="a runtime config file (default: configs/default.toml)")

    pan = sub.add_parser(
        "panic", help="silence the configured MIDI port and OSC targets",
        description="Send sustain off, all notes off and all sound off on every channel, then "
                    "a note-off for every note of every channel, to the MIDI port and the OSC "
                    "targets the config names. The engine does this itself when it stops; this "
                    "is for when it could not (systemd runs it after the engine, however it "
                    "ended). Exit status 1 when a destination is absent.")
    pan.add_argument("--config", help="a runtime config file (default: configs/default.toml)")
    pan.add_argument("--midi", metavar="PORT",
                     help="the MIDI port whose name contains PORT (default: the config's)")
    pan.add_argument("--midi-api", choices=("auto", "alsa", "jack", "coremidi", "winmm"))
    pan.add_argument("--no-notes", action="store_true",
                     help="only CC 64/123/120 on each channel, not the 2048 note-offs")

    ports = sub.add_parser("ports", help="list MIDI ports",
                           description="List the MIDI input and output ports of each system.")
    ports.add_argument("--midi-api", choices=("auto", "alsa", "jack", "coremidi", "winmm"),
                       default="auto")
    ports.add_argument("--json", action="store_true")

    bench = sub.add_parser(
        "bench", help="measure the analysis against its baselines",
        description="Time the engine's kernels, the plain OpenCV/NumPy reference, the default "
        "analysis and a read pass, interleaved, at several resolutions.",
    )
    bench.add_argument("--json", action="store_true", help="one JSON object per resolution")
    bench.add_argument("--rounds", type=_positive_int, default=7, help="timed rounds (default 7)")
    bench.add_argument("--resolutions", default="480p,720p,1080p,4k",
                       help="comma-separated, from 480p, 720p, 1080p, 4k")
    bench.add_argument("--scheduler", action="store_true",
                       help="instead: dispatch lateness on a 1 ms grid beside full-rate 1080p "
                       "analysis, against a naive sleep-and-send baseline")
    bench.add_argument("--render", action="store_true",
                       help="instead: offline render speed (a still picture to 60 s, a 720p "
                       "video) against real time")
    bench.add_argument("--flood", action="store_true",
                       help="instead: dispatch lateness of the live engine while another "
                       "process floods its OSC control port with valid commands")
    bench.add_argument("--rate", type=_positive_float, default=2000.0,
                       help="with --flood: messages a second (default 2000)")
    bench.add_argument("--seconds", type=_positive_float, default=4.0,
                       help="with --scheduler or --flood: seconds per phase (default 4)")
    return parser


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="sonify: %(levelname)s: %(message)s",
                        stream=sys.stderr)


def cmd_features(args: argparse.Namespace) -> int:
    from sonify.features.analyzer import Analyzer, AnalyzerConfig
    from sonify.features.registry import SCALAR_NAMES

    if args.list:
        print(_feature_list())
        return 0
    if not args.input:
        raise CliError("features needs an INPUT (an image, video, folder, camera:N or demo), "
                       "or --list")
    if args.width is not None and args.width < 0:
        raise CliError(f"--width must be 0 (full resolution) or a positive width, got {args.width}")
    source = open_source(args.input, fps=args.fps, seed=args.seed)
    frames = args.frames
    if frames is None:
        if isinstance(source, ImageSource):
            frames = 1
        elif source.live or args.input.lower().startswith("demo"):
            frames = 90
    config = AnalyzerConfig()
    if args.width is not None:
        config.width = args.width
    analyzer = Analyzer(config)
    seen = []
    with source:
        for n, frame in enumerate(source):
            if frames is not None and n >= frames:
                break
            feats = analyzer.analyze(frame)
            if args.json:
                print(json.dumps(feats.to_dict(raw=args.raw)), flush=True)
            seen.append(feats)
    if not seen:
        raise CliError(f"no frames could be read from {args.input!r}")
    if not args.json:
        print(_feature_table(seen, args.input, raw=args.raw, names=SCALAR_NAMES))
    return 0


def _feature_list() -> str:
    from sonify.features.registry import ARRAYS, MOOD_LABELS, SCALARS

    lines = ["Scalar features (smoothed; ranges inclusive):", ""]
    for s in SCALARS:
        rng = f"{s.lo:g}..{s.hi:g}" if s.hi is not None else f"{s.lo:g}.."
        smooth = f"tau {s.tau_s:g} s" if s.tau_s else "unsmoothed"
        lines.append(f"  {s.name:<14} {rng:<7} {smooth:<12} {s.description}")
    lines += ["", "Array features:", ""]
    for s in ARRAYS:
        shape = "x".join(str(d) for d in s.shape)
        lines.append(f"  {s.name:<14} {shape:<7} {s.description}")
    lines += ["", f"Mood labels: {', '.join(MOOD_LABELS)} (nearest prototype on the "
              "valence/arousal plane)."]
    return "\n".join(lines)


def _feature_table(seen: list, input_name: str, raw: bool, names: Sequence[str]) -> str:
    from sonify.features.registry import fraction

    last = seen[-1]
    values = last.raw if raw else last.values
    size = f"{last.size[0]}x{last.size[1]}"
    lines = [f"{input_name}: {len(seen)} frame(s) analysed at {size}, "
             f"last frame {last.index}, mood {last.mood}", ""]
    multi = len(seen) > 1
    header = f"  {'feature':<14} {'value':>8}  {'':<20}"
    if multi:
        header += f" {'min':>8} {'mean':>8} {'max':>8}"
    lines.append(header)
    for name in names:
        v = values[name]
        bar = "#" * round(fraction(name, v) * 20)
        line = f"  {name:<14} {v:>8.3f}  {bar:<20}"
        if multi:
            series = [(f.raw if raw else f.values)[name] for f in seen]
            line += f" {min(series):>8.3f} {sum(series) / len(series):>8.3f} {max(series):>8.3f}"
        lines.append(line)
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    from sonify.tools.bench import RESOLUTIONS, format_table, rows_json, run_analysis_bench

    def progress(msg: str) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{msg:<40}", end="", file=sys.stderr, flush=True)

    if args.render:
        from sonify.tools.bench import format_render, run_render_bench

        rb = run_render_bench(progress=progress)
        if not args.json and sys.stderr.isatty():
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
        print(json.dumps(rb.__dict__) if args.json else format_render(rb))
        return 0
    if args.flood:
        from sonify.tools.floodbench import flood_json, format_flood, run_flood_bench

        fb = run_flood_bench(seconds=args.seconds, rate_per_s=args.rate)
        print(json.dumps(flood_json(fb)) if args.json else format_flood(fb))
        return 0
    if args.scheduler:
        from sonify.config import load_config
        from sonify.tools.loadbench import format_scheduler, run_scheduler_bench

        config = load_config()
        result = run_scheduler_bench(seconds=args.seconds,
                                     realtime_priority=config.music.realtime_priority)
        if args.json:
            print(json.dumps(result.__dict__))
        else:
            print(format_scheduler(result))
        return 0

    resolutions = [r.strip().lower() for r in args.resolutions.split(",") if r.strip()]
    bad = [r for r in resolutions if r not in RESOLUTIONS]
    if bad or not resolutions:
        raise CliError(f"unknown resolution(s) {', '.join(bad) or '(none)'}; "
                       f"choose from {', '.join(RESOLUTIONS)}")

    rows = run_analysis_bench(resolutions, rounds=args.rounds, progress=progress)
    if not args.json and sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    print(rows_json(rows) if args.json else format_table(rows))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from sonify.config import ConfigError, exposure_warnings, load_config, parse_host_port
    from sonify.live.runtime import RunError, Runtime, build_outputs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.source:
        config.source.input = args.source
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
    if args.control_port is not None:
        config.control.port = args.control_port
    if args.http_port is not None:
        config.http.port = args.http_port
    for target in args.osc:
        try:
            parse_host_port(target)
        except ValueError as exc:
            raise CliError(f"--osc: {exc}") from None
    config.osc.targets = [*config.osc.targets, *args.osc]
    for warning in exposure_warnings(config):  # `sonify doctor` says the same
        logger.warning("%s", warning)
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
        line = status.line()  # type: ignore[attr-defined]
        if tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif time.monotonic() - last_line[0] >= log_every_s:
            last_line[0] = time.monotonic()
            print(line, file=sys.stderr, flush=True)

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

    code = 0
    for out in outputs:
        if isinstance(out, MidiFileRecorder):
            for path in out.files:
                print(f"sonify: recorded {path}", file=sys.stderr)
            if out.failed:
                print(f"sonify: error: the recording failed: {out.failure}", file=sys.stderr)
                code = 1
    return code


def cmd_recover(args: argparse.Namespace) -> int:
    from sonify.config import ConfigError, load_config
    from sonify.outputs.spool import find_spools, recover_spool

    where = list(args.path)
    if not where:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        where = sorted({os.path.dirname(p) or "." for p in (config.record.midi_file,
                                                          config.record.fallback_midi_file)
                        if p})
    code = 0
    found = False
    for path in where:
        for spool in find_spools(path):
            r = recover_spool(spool)
            found = True
            print(f"sonify recover: {r.describe()}", file=sys.stderr)
            if r.error:
                code = 1
            elif r.path is not None:
                print(r.path)
    if not found:
        print(f"sonify recover: no unfinished recording in {', '.join(where)}", file=sys.stderr)
    return code


def cmd_render(args: argparse.Namespace) -> int:
    from sonify.render import RenderError, RenderWriteError, progress_bar, render, summary
    from sonify.scene.schema import SceneError

    progress = progress_bar() if sys.stderr.isatty() else None
    try:
        result = render(args.input, args.output, scene=args.scene, duration_s=args.duration,
                        tempo_bpm=args.tempo, seed=args.seed, progress=progress)
    except RenderWriteError as exc:  # a full or read-only disk: one line, nothing written
        if progress is not None:
            print(file=sys.stderr)
        print(f"sonify: error: {exc}", file=sys.stderr)
        return 1
    except (RenderError, SceneError) as exc:
        raise CliError(str(exc)) from None
    print(summary(result))
    return 0


def cmd_panic(args: argparse.Namespace) -> int:
    from sonify.config import ConfigError, load_config
    from sonify.install.panic import panic_outputs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.midi:
        config.midi.port = args.midi
    if args.midi_api:
        config.midi.api = args.midi_api
    return panic_outputs(config, notes=not args.no_notes,
                         report=lambda m: print(f"sonify panic: {m}", file=sys.stderr))


def cmd_ports(args: argparse.Namespace) -> int:
    from sonify.outputs.midi import MidiPortError, list_ports

    try:
        info = list_ports(args.midi_api)
    except MidiPortError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"MIDI system: {info['api']}")
    for kind in ("outputs", "inputs"):
        names = info[kind]
        print(f"{kind}:" + ("" if names else " (none)"))
        for name in names:
            print(f"  {name}")
    return 0


COMMANDS = {"features": cmd_features, "bench": cmd_bench, "run": cmd_run, "ports": cmd_ports,
            "render": cmd_render, "pianoroll": pianoroll.run, "recommend": recommend.run,
            "doctor": doctor.main, "panic": cmd_panic,
            "recover": cmd_recover}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not args.command:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return COMMANDS[args.command](args)
    except (SourceError, CliError) as exc:
        print(f"sonify: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `sonify features demo --json | head`: the reader left; that is not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
