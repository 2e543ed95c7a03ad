"""``sonify features``: print the features the engine sees in a picture, a video, a folder of
images, a camera or the demo; ``--list`` documents every feature."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sonify.cli.args import positive_float, positive_int
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers
    from sonify.features.registry import FeatureSpec


def add_parser(sub: Subparsers) -> None:
    feat = sub.add_parser(
        "features", help="analyse a picture, a video, a folder of images, a camera or the demo",
        complete=_describe,
    )
    feat.add_argument("input", nargs="?", help="what to analyse (see above)")
    feat.add_argument("--list", action="store_true", help="document every feature and exit")
    feat.add_argument("--json", action="store_true",
                      help="one JSON object per frame, one per line")
    feat.add_argument("--raw", action="store_true",
                      help="per-frame values instead of smoothed ones")
    feat.add_argument("--frames", type=positive_int, default=None,
                      help="frames to analyse (default: all of a video or sequence; 1 for an "
                      "image; 90 for the demo or a camera)")
    feat.add_argument("--fps", type=positive_float, default=None,
                      help="frame rate of a sequence or the demo (default: the video's, else 30)")
    feat.add_argument("--width", type=int, default=None,
                      help="analysis width in pixels (default 480; 0 = full resolution)")
    feat.add_argument("--threads", type=int, default=1,
                      help="row bands analysed in parallel (for --width 0 on large frames)")
    feat.add_argument("--seed", type=int, default=0, help="the demo's random seed")


def _describe(parser: argparse.ArgumentParser) -> None:
    # the demo's looks come from sonify.capture, which loads OpenCV: only for this subcommand
    from sonify.capture import DEMO_LOOKS

    looks = ", ".join(f"demo:{k}" for k in DEMO_LOOKS)
    parser.description = ("Print the features the engine sees in INPUT: an image file, a "
                          "folder or glob of images, a video file, camera:N, a /dev/video* "
                          f"device, or demo ({looks}).")


def run(args: argparse.Namespace) -> int:
    import json

    from sonify.capture import open_source
    from sonify.capture.files import ImageSource
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
    if args.threads < 1:
        raise CliError(f"--threads must be 1 or more, got {args.threads}")
    source = open_source(args.input, fps=args.fps, seed=args.seed)
    frames = args.frames
    if frames is None:
        if isinstance(source, ImageSource):
            frames = 1
        elif source.live or args.input.lower().startswith("demo"):
            frames = 90
    config = AnalyzerConfig(threads=args.threads)
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
    from sonify.features.registry import ARRAYS, MOOD_LABELS, SCALARS, VISION_SCALARS

    lines = ["Scalar features (smoothed; ranges inclusive):", ""]

    def scalar(s: FeatureSpec) -> str:
        rng = f"{s.lo:g}..{s.hi:g}" if s.hi is not None else f"{s.lo:g}.."
        smooth = f"tau {s.tau_s:g} s" if s.tau_s else "unsmoothed"
        return f"  {s.name:<14} {rng:<7} {smooth:<12} {s.description}"

    lines += [scalar(s) for s in SCALARS]
    lines += ["", "People, faces and flow (analysed only when a scene reads them):", ""]
    lines += [scalar(s) for s in VISION_SCALARS]
    lines += ["", "Any scalar inside a zone the scene declares: zone:<zone>:<feature> "
              "(zone:door:presence).", "", "Array features:", ""]
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
