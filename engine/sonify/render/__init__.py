"""``sonify render``: a picture, a folder of images or a video becomes a piece, as files.

``render()`` (core.py) plays the performance core over a file source on a manual clock and
writes ``.mid``, ``.wav``, ``.png`` and ``.json``; see its module docstring.
"""

from sonify.render.core import (
    RenderError,
    RenderResult,
    RenderWriteError,
    progress_bar,
    render,
    summary,
)

__all__ = ["RenderError", "RenderResult", "RenderWriteError", "progress_bar", "render",
           "summary"]
