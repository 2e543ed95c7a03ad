"""``sonify bench``: measure the analysis, the scheduler, the render and the control path
against their baselines (``sonify.tools.bench``, ``loadbench``, ``floodbench``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from sonify.cli.args import positive_float, positive_int
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers


def add_parser(sub: Subparsers) -> None:
    bench = sub.add_parser(
        "bench", help="measure the analysis against its baselines",
        description="Time the engine's kernels, the plain OpenCV/NumPy reference, the default "
        "analysis and a read pass, interleaved, at several resolutions.",
    )
    bench.add_argument("--json", action="store_true", help="one JSON object per resolution")
    bench.add_argument("--rounds", type=positive_int, default=7, help="timed rounds (default 7)")
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
    bench.add_argument("--rate", type=positive_float, default=2000.0,
                       help="with --flood: messages a second (default 2000)")
    bench.add_argument("--seconds", type=positive_float, default=4.0,
                       help="with --scheduler or --flood: seconds per phase (default 4)")


def run(args: argparse.Namespace) -> int:
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
