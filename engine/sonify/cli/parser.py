"""The parser class of every subcommand: one whose heavy part may wait until it is used.

``sonify --help`` lists the subcommands with their one-line help, so every subcommand's parser
is built at start-up. Some of them take their options (or a description) from a module that
imports numpy, OpenCV or mido (a tool such as ``sonify.tools.pianoroll``). Such a subcommand
passes ``complete=``: a function that finishes its parser, called once, the first time the
parser parses or formats its help or usage, so only the subcommand that runs pays for it.

``tool_command`` builds the two functions of a subcommand module for a tool that offers
``add_arguments(parser)`` and ``run(args) -> int``, so wiring such a tool is three lines::

    \"\"\"``sonify judge``: score a rendered piece.\"\"\"
    from sonify.cli.parser import tool_command
    add_parser, run = tool_command("judge", "sonify.tools.judge", help="score a rendered piece")
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias


class SubcommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` with an optional ``complete(parser)``, called once before first
    use (see the module's description)."""

    def __init__(self, *args: Any,
                 complete: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._complete = complete

    def complete(self) -> None:
        """Finish the parser now (idempotent)."""
        complete, self._complete = self._complete, None
        if complete is not None:
            complete(self)

    # The sub-parsers action parses a subcommand's arguments with `parse_known_args`, and help
    # and errors go through `format_help` / `format_usage`: each finishes the parser first.
    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        self.complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.complete()
        return super().format_help()

    def format_usage(self) -> str:
        self.complete()
        return super().format_usage()


if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[SubcommandParser]
    """What ``parser.add_subparsers()`` returns: each subcommand module's ``add_parser`` takes
    it."""


def tool_command(name: str, module: str, *, help: str, description: str | None = None,
                 ) -> tuple[Callable[[Subparsers], None], Callable[[argparse.Namespace], int]]:
    """``(add_parser, run)`` for subcommand ``name`` whose options and work live in
    ``module`` (its ``add_arguments(parser)`` and ``run(args) -> int``), imported only when
    the subcommand is parsed or its help shown."""

    def add_parser(sub: Subparsers) -> None:
        def complete(parser: argparse.ArgumentParser) -> None:
            importlib.import_module(module).add_arguments(parser)

        sub.add_parser(name, help=help, description=description, complete=complete)

    def run(args: argparse.Namespace) -> int:
        code: int = importlib.import_module(module).run(args)
        return code

    return add_parser, run
