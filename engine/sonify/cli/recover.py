"""``sonify recover``: finish the recordings a killed run left unfinished."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from sonify.cli.args import CONFIG_HELP
from sonify.errors import CliError

if TYPE_CHECKING:
    from sonify.cli.parser import Subparsers


def add_parser(sub: Subparsers) -> None:
    rec = sub.add_parser(
        "recover", help="finish recordings a killed run left unfinished",
        description="A recording is written to disk as it plays, in a hidden folder beside it "
        "(.NAME.mid.rec). After a crash, a kill or a power cut, this makes each such folder "
        "the MIDI file it was becoming (everything up to the last second or two), beside any "
        "file of the same name, never over it. `sonify run` does it by itself at start for "
        "its record path. Prints each recording made; exit status 1 when one could not be.")
    rec.add_argument("path", nargs="*", help="a recording's path, its folder or a .rec folder "
                     "(default: the folders of the config's [record] files)")
    rec.add_argument("--config", help=CONFIG_HELP)


def run(args: argparse.Namespace) -> int:
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
