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

HEAVY = ("numpy", "cv2", "numba", "rtmidi", "mido", "pydantic")

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


def test_the_probe_sees_a_heavy_library_when_one_is_loaded() -> None:
    """The check above is not vacuous: the pianoroll tool does load OpenCV and mido."""
    assert {"cv2", "mido", "numpy"} <= set(heavy_modules_loaded("pianoroll", "--help"))


def test_importtime_of_version_names_no_heavy_library() -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sonify.cli", "--version"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip().startswith("sonify ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "sonify.cli" in imported
    assert not imported & set(HEAVY)


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
