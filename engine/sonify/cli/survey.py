"""``sonify survey``: every note-playing scene on many pictures, judged against the music's
targets (``sonify.render.survey``, loaded on use)."""

from sonify.cli.parser import tool_command

add_parser, run = tool_command(
    "survey", "sonify.render.survey",
    help="render every note-playing scene on many pictures and judge the pieces",
    description="Render each note-playing scene on the test photographs and drawn pictures, "
    "judge every piece (as sonify judge does) and print the table of targets with pass/fail.",
)
