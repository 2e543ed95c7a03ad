"""Errors every layer may raise for the command line to report.

``CliError``: a user error (a bad option, a missing file) that ``sonify`` reports in one line
and exits 2 for. It lives here, at the bottom of the layers, so a tool can raise it without
importing the command line (which imports the tools).
"""

from __future__ import annotations


class CliError(Exception):
    """A user error the CLI reports in one line and exits 2 for."""
