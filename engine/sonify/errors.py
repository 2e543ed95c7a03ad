"""Errors every layer may raise for the command line to report.

``CliError``: a user error (a bad option, a missing file) that ``sonify`` reports in one line
and exits 2 for. It lives here, at the bottom of the layers, so a tool can raise it without
importing the command line (which imports the tools). ``SourceError`` (re-exported by
``sonify.capture``) lives here too, so the command line can catch it without loading the capture
layer, which imports numpy and OpenCV.
"""

from __future__ import annotations


class CliError(Exception):
    """A user error the CLI reports in one line and exits 2 for."""


class RunError(Exception):
    """Something the user must fix before the engine can run (exit status 2): a MIDI port
    that is not there, a recording path that cannot be written, a sync source missing."""


class SourceError(Exception):
    """A source cannot deliver: the message says which device or file, and why.

    The CLI turns it into exit status 2.
    """
