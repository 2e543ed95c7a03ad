"""``sonify bench``: measure the analysis, the scheduler, the render and the control path
against their baselines (``sonify.tools.bench``, ``loadbench``, ``floodbench``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from sonify.cli.args import positive_float, positive_int
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers


def add_parser(sub: Subparsers) -> None:
    bench = sub.add_parser(
        "bench", help="measure the analysis against its baselines",
        description="Time the engine's kernels against a tuned OpenCV peer, the readable "
        "reference, the default live analysis and a read pass, interleaved, at several "
        "resolutions; then measure the start-up, a whole render process and a Python thread "
        "beside the analysis, and check every figure against its target (issue 15).",
    )
    bench.add_argument("--json", action="store_true",
                       help='one JSON object: {"rows": [...], "targets": {...}, "machine": {...}}')
    bench.add_argument("--rounds", type=positive_int, default=7, help="timed rounds (default 7)")
    bench.add_argument("--resolutions", default="480p,720p,1080p,4k",
                       help="comma-separated, from 480p, 720p, 1080p, 4k")
    bench.add_argument("--quick", action="store_true",
                       help="the analysis figures only: skip the start-up, render-process and "
                       "Python-thread measurements (their targets read n/a)")
    bench.add_argument("--scheduler", action="store_true",
                       help="instead: dispatch lateness on a 1 ms grid beside full-rate 1080p "
                       "analysis, against a naive sleep-and-send baseline")
    bench.add_argument("--render", action="store_true",
                       help="instead: offline render speed (a still picture to 60 s, a 720p "
                       "video) against real time")
    bench.add_argument("--flood", action="store_true",
                       help="instead: dispatch lateness of the live engine while another "
                       "process floods its OSC control port with valid commands")
    bench.add_argument("--teach", action="store_true",
                       help="instead: mapping by example: training and prediction time against "
                       "the picture analysis, and dispatch lateness beside a model")
    bench.add_argument("--people", action="store_true",
                       help="instead: what each people, face, flow and zone part costs against "
                       "the picture analysis of the same frame")
    bench.add_argument("--rate", type=positive_float, default=2000.0,
                       help="with --flood: messages a second (default 2000)")
    bench.add_argument("--seconds", type=positive_float, default=4.0,
                       help="with --scheduler, --flood or --teach: seconds per phase "
                       "(default 4)")


def _clear_progress(args: argparse.Namespace) -> None:
    if not args.json and sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import json

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
    if args.teach:
        from sonify.tools.learnbench import format_learn, run_learn_bench

        lb = run_learn_bench(jitter_s=args.seconds, progress=progress)
        _clear_progress(args)
        print(json.dumps(lb) if args.json else format_learn(lb))
        return 0
    if args.people:
        from sonify.tools.visionbench import format_vision_bench, run_vision_bench

        vb = run_vision_bench()
        print(json.dumps(vb) if args.json else format_vision_bench(vb))
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

    from sonify.tools import targets

    rows = run_analysis_bench(resolutions, rounds=args.rounds, progress=progress)
    startup, render, gil = targets.measure_processes(args.quick, progress=progress)
    found = targets.collect(rows, startup, render, gil)
    if not args.json and sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    if args.json:
        print(json.dumps({"rows": rows_json(rows), "targets": targets.targets_json(found),
                          "machine": targets.machine()}))
    else:
        print(format_table(rows))
        print()
        print(targets.format_targets(found))
    return 0
