"""The ``sonify`` command line.

Exit status: 0 done, 1 an unexpected failure, 2 bad input (a missing file, a folder without
images, a camera that does not open, a bad option), 130 interrupted.

One module per subcommand, each with ``add_parser(sub)`` (its options and help) and
``run(args) -> int`` (the work); ``SUBCOMMANDS`` lists them in the order ``--help`` shows. Start-up
is light: building the whole parser imports only the standard library, and each ``run`` imports
what it needs (numpy, OpenCV, numba, the MIDI libraries), so ``sonify --help`` and
``sonify --version`` answer at once. A subcommand whose options live in a heavy tool module uses
``sonify.cli.parser.tool_command``, which loads the tool only when the subcommand is used.

Adding a subcommand: a module here (for a tool with ``add_arguments(parser)`` and
``run(args)``, three lines: see ``sonify.cli.parser``) and its name in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from sonify import __version__
from sonify.cli.parser import SubcommandParser
from sonify.errors import CliError, SourceError

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "SUBCOMMANDS", "CliError", "build_parser", "main"]

EXIT_BAD_INPUT = 2

SUBCOMMANDS = ("features", "run", "render", "pianoroll", "recommend", "doctor", "recover",
               "panic", "ports", "bench", "judge", "survey", "teach")
"""The modules of ``sonify.cli`` that are subcommands (each named as its subcommand)."""

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    name: importlib.import_module(f"sonify.cli.{name}").run for name in SUBCOMMANDS}
"""Each subcommand's ``run``, by name."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sonify",
        description="Turn what a camera, a picture or a video sees into music.",
    )
    parser.add_argument("--version", action="version", version=f"sonify {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=SubcommandParser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"sonify.cli.{name}").add_parser(sub)
    return parser


def _setup_logging(verbose: int) -> None:
    # here, not at the top: `sonify --help` and `--version` never get this far (logging and
    # what it imports are a fifth of their start-up)
    import logging

    from sonify.util.notice import NOTICE

    class Formatter(logging.Formatter):
        """``sonify: LEVEL: message``, and ``sonify: message`` for good news (NOTICE)."""

        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            return text.replace("NOTICE: ", "", 1) if record.levelno == NOTICE else text

    # default: warnings, errors and good news (a learned knob, a reloaded scene)
    level = NOTICE if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter("sonify: %(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


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
