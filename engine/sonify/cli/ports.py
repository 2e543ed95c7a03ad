"""``sonify ports``: list the MIDI input and output ports."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sonify.cli.args import MIDI_APIS
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers


def add_parser(sub: Subparsers) -> None:
    ports = sub.add_parser("ports", help="list MIDI ports",
                           description="List the MIDI input and output ports of each system.")
    ports.add_argument("--midi-api", choices=MIDI_APIS, default="auto")
    ports.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import json

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
