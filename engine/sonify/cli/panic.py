"""``sonify panic``: silence the configured MIDI port and OSC targets."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from sonify.cli.args import CONFIG_HELP, MIDI_APIS
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers


def add_parser(sub: Subparsers) -> None:
    pan = sub.add_parser(
        "panic", help="silence the configured MIDI port and OSC targets",
        description="Send sustain off, all notes off and all sound off on every channel, then "
                    "a note-off for every note of every channel, to the MIDI port and the OSC "
                    "targets the config names. The engine does this itself when it stops; this "
                    "is for when it could not (systemd runs it after the engine, however it "
                    "ended). Exit status 1 when a destination is absent.")
    pan.add_argument("--config", help=CONFIG_HELP)
    pan.add_argument("--midi", metavar="PORT",
                     help="the MIDI port whose name contains PORT (default: the config's)")
    pan.add_argument("--midi-api", choices=MIDI_APIS)
    pan.add_argument("--no-notes", action="store_true",
                     help="only CC 64/123/120 on each channel, not the 2048 note-offs")


def run(args: argparse.Namespace) -> int:
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
