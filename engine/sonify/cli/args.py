"""Argument types and choices that several subcommands share.

Plain standard library only: the whole parser is built for ``sonify --help``, which must not
load numpy, OpenCV, numba or the MIDI libraries.
"""

from __future__ import annotations

import argparse
import math

MIDI_APIS = ("auto", "alsa", "jack", "coremidi", "winmm")
"""The MIDI systems ``--midi-api`` accepts."""

CONFIG_HELP = "a runtime config file (default: configs/default.toml)"


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {text}")
    return int(text)
