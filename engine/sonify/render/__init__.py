"""``sonify render``: a picture, a folder of images or a video becomes a piece, as files.

``render()`` (core.py) plays the performance core over a file source on a manual clock and
writes ``.mid``, ``.wav``, ``.png`` and ``.json``; see its module docstring.
"""

from __future__ import annotations

import sys
import types
from typing import Any

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


class _CallableModule(types.ModuleType):
    """``sonify.render`` is both this package and the function: ``import sonify`` then
    ``sonify.render("photo.jpg", ["piece.mid"])`` works whichever of the two Python bound to
    the name first (importing the package binds the module, which would shadow the function)."""

    def __call__(self, *args: Any, **kwargs: Any) -> RenderResult:
        return render(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
