"""``sonify recommend``: tracks whose mood fits a picture (``sonify.tools.recommend``, loaded
when the subcommand runs)."""

from sonify.cli.parser import tool_command

add_parser, run = tool_command(
    "recommend", "sonify.tools.recommend",
    help="suggest tracks whose mood fits a picture",
    description="Rank a catalogue of tracks by how well their valence, energy, tempo and "
    "tags fit the picture's mood (valence, arousal) and colours (warmth, brightness, "
    "chroma). Catalogue: a CSV with the columns title, artist, valence (0..1), energy "
    "(0..1), tempo (BPM) and tags (separated by ';'); lines starting with '#' are comments.",
)
