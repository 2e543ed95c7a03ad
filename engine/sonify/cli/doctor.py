"""``sonify doctor``: can this machine run the show as configured (``sonify.install.doctor``,
loaded when the subcommand runs)."""

from sonify.cli.parser import tool_command

add_parser, run = tool_command(
    "doctor", "sonify.install.doctor",
    help="check this machine and a config, and say how to fix what is wrong",
    description="Check the config, scenes, cameras, MIDI, OSC targets, numba, real-time "
    "priority, disk space and control ports; exit 1 when something would stop a run.",
)
