"""The command line starts light: `sonify --version` and `sonify --help` load none of the heavy
libraries (each subcommand loads its own when it runs), and the deferred subcommands still
parse and document their options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sonify.cli
from sonify.cli import build_parser
from sonify.cli.parser import SubcommandParser, tool_command

HEAVY = ("numpy", "cv2", "numba", "rtmidi", "mido", "pydantic", "sklearn", "scipy", "pyloudnorm",
         "zeroconf", "websockets")
LIGHT_TOO = ("logging", "json")
"""Not heavy, but a fifth of the start-up: loaded only by a subcommand that runs."""

_PROBE = """
import json, sys
from sonify.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def heavy_modules_loaded(*argv: str) -> list[str]:
    """The heavy modules a fresh Python has imported after `sonify ARGV` (run in-process
    there, so the modules it loaded can be listed)."""
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *argv],
                          capture_output=True, text=True, timeout=60, check=True)
    loaded: list[str] = json.loads(proc.stderr.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["ports", "--help"],
                                  ["bench", "--rounds", "0"]])
def test_start_up_loads_no_heavy_library(argv: list[str]) -> None:
    assert heavy_modules_loaded(*argv) == []


def test_start_up_figures_are_measured_as_whole_processes() -> None:
    from sonify.tools.startbench import help_vs_python

    figures = help_vs_python(rounds=1)
    assert figures["rounds"] == 1
    assert 0 < figures["python_ms"] and 0 < figures["help_ms"] and 0 < figures["version_ms"]
    assert figures["help_ratio"] == pytest.approx(figures["help_ms"] / figures["python_ms"],
                                                  rel=0.01)


def test_the_probe_sees_a_heavy_library_when_one_is_loaded() -> None:
    """The check above is not vacuous: the pianoroll tool does load OpenCV and mido."""
    assert {"cv2", "mido", "numpy"} <= set(heavy_modules_loaded("pianoroll", "--help"))


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_importtime_of_version_and_help_names_no_heavy_library(flag: str) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sonify.cli", flag],
                          capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip().startswith("sonify " if flag == "--version" else "usage: sonify")
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "sonify.cli" in imported
    assert not imported & {*HEAVY, *LIGHT_TOO}


def test_logging_is_set_up_when_a_subcommand_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--help` skips logging; a subcommand still gets the `sonify: LEVEL: message` lines."""
    import logging

    from sonify.util.notice import NOTICE

    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setitem(sonify.cli.COMMANDS, "ports", lambda args: 0)
    assert sonify.cli.main(["ports"]) == 0
    (handler,) = logging.root.handlers
    assert logging.root.level == NOTICE
    notice = logging.LogRecord("sonify", NOTICE, __file__, 1, "scene reloaded", None, None)
    warning = logging.LogRecord("sonify", logging.WARNING, __file__, 1, "late", None, None)
    assert handler.format(notice) == "sonify: scene reloaded"
    assert handler.format(warning) == "sonify: WARNING: late"


def test_help_lists_every_subcommand_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        sonify.cli.main(["--help"])
    out = capsys.readouterr().out
    places = [out.index(f"\n    {name} ") for name in sonify.cli.SUBCOMMANDS]
    assert places == sorted(places)
    assert list(sonify.cli.COMMANDS) == list(sonify.cli.SUBCOMMANDS)


def test_a_deferred_subcommand_parses_its_tools_options() -> None:
    args = build_parser().parse_args(["pianoroll", "in.png", "-o", "out.mid", "--low", "C3"])
    assert (args.command, args.image, args.output, args.low) == ("pianoroll", "in.png",
                                                                "out.mid", "C3")
    args = build_parser().parse_args(["doctor", "--json"])
    assert (args.command, args.json, args.config) == ("doctor", True, None)


def test_a_deferred_subcommands_help_shows_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        sonify.cli.main(["recommend", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--catalog FILE.csv" in out and "Rank a catalogue of tracks" in out


def test_tool_command_loads_the_tool_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tool is three lines away from being a subcommand; its module is imported on use."""
    imported: list[str] = []

    class Tool:
        @staticmethod
        def add_arguments(parser: object) -> None:
            parser.add_argument("--level", type=int, default=1)  # type: ignore[attr-defined]

        @staticmethod
        def run(args: object) -> int:
            return 40 + args.level  # type: ignore[attr-defined, no-any-return]

    def fake_import(name: str) -> type[Tool]:
        imported.append(name)
        return Tool

    monkeypatch.setattr("sonify.cli.parser.importlib.import_module", fake_import)
    add_parser, run = tool_command("judge", "sonify.tools.judge", help="score a piece")
    parser = SubcommandParser(prog="sonify")
    add_parser(parser.add_subparsers(dest="command", parser_class=SubcommandParser))
    assert "score a piece" in parser.format_help()
    assert imported == []
    args = parser.parse_args(["judge", "--level", "2"])
    assert imported == ["sonify.tools.judge"]
    assert run(args) == 42
