"""``sonify pianoroll``: a MIDI file whose piano roll is the picture (``sonify.tools.pianoroll``,
loaded when the subcommand runs)."""

from sonify.cli.parser import tool_command

add_parser, run = tool_command(
    "pianoroll", "sonify.tools.pianoroll",
    help="write a MIDI file whose piano roll is the picture",
    description="Lay IMAGE on a grid of pitches (rows) by time steps (columns) and write "
    "every horizontal stroke as one note, so the piano roll in a DAW shows the picture.",
)
