"""``sonify judge``: a MIDI file's musical figures (``sonify.tools.judge``, loaded on use)."""

from sonify.cli.parser import tool_command

add_parser, run = tool_command(
    "judge", "sonify.tools.judge",
    help="print a MIDI file's musical figures (motif, clashes, leaps, ending, tempo)",
    description="Judge one or more MIDI files as music: motif restatement, clashes against "
    "the chords, leaps, register, notes outside the key, the ending, tempo; with two files, "
    "how far apart the pieces are.",
)
