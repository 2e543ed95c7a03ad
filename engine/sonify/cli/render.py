"""``sonify render``: a picture, a folder of images or a video to .mid, .wav, .png and .json
files, on a virtual clock (``sonify.render`` does the work)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from sonify.cli.args import positive_float
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers


def add_parser(sub: Subparsers) -> None:
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
    rend.add_argument("--duration", type=positive_float, metavar="SECONDS",
                      help="length (default: 60 s for an image, the video's own length, the "
                      "images times --hold for a folder)")
    rend.add_argument("--hold", type=positive_float, metavar="SECONDS",
                      help="a folder or glob of images: hold each this long, dissolving into "
                      "the next (default: --duration shared out, else 5 s)")
    rend.add_argument("--tempo", type=positive_float, metavar="BPM",
                      help="a fixed tempo instead of the scene's")
    rend.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    rend.add_argument("--soundfont", metavar="SF2",
                      help="render the .wav with FluidSynth and this soundfont (auto: the "
                      "system's General MIDI soundfont) instead of the built-in synth")


def run(args: argparse.Namespace) -> int:
    from sonify.features.analyzer import kernels_need_compiling
    from sonify.outputs import dsp
    from sonify.render import RenderError, RenderWriteError, progress_bar, render, summary
    from sonify.scene.schema import SceneError
    from sonify.util.numbacache import needs_compiling

    # the first frame (or the WAV's master) would otherwise stall seconds, unexplained
    wav = not args.soundfont and any(o.lower().endswith(".wav") for o in args.output)
    if kernels_need_compiling():
        print("sonify: compiling analysis kernels (first start only)...", file=sys.stderr,
              flush=True)
    elif wav and needs_compiling(dsp):
        print("sonify: compiling the WAV master's kernels (first start only)...",
              file=sys.stderr, flush=True)
    progress = progress_bar() if sys.stderr.isatty() else None
    try:
        result = render(args.input, args.output, scene=args.scene, duration_s=args.duration,
                        tempo_bpm=args.tempo, seed=args.seed, progress=progress,
                        soundfont=args.soundfont, hold_s=args.hold)
    except RenderWriteError as exc:  # a full or read-only disk: one line, nothing written
        if progress is not None:
            print(file=sys.stderr)
        print(f"sonify: error: {exc}", file=sys.stderr)
        return 1
    except (RenderError, SceneError) as exc:
        raise CliError(str(exc)) from None
    print(summary(result))
    return 0
