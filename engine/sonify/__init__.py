"""sonify: turns what a camera sees into music, live.

The package is laid out along the data flow (see the README's "Layout")::

    capture (Frames) -> features (Features) -> performance + scene (Events) -> timing -> outputs

The Python API (``sonify.api``; the names below load on first use, so ``import sonify`` stays
light):

- ``sonify.render(input, ["piece.mid", "piece.wav"], scene="gallery", duration_s=30)``
- ``sonify.Engine(scene, source=..., outputs=..., on_features=..., on_events=...)`` with
  ``play(seconds)`` (virtual clock), ``run(seconds)`` (real time), ``feed(**features)``,
  ``command(cmd)`` and ``stop()``
- ``sonify.features_from({...})``: a Features from Python values
- the event types (``NoteOn``, ``NoteOff``, ``ControlChange``, ``OscMessage``, ...) and the
  commands (``sonify.commands``: ``SetParam``, ``SetTempo``, ``Mute``, ...)
"""

from __future__ import annotations

import importlib
from typing import Any

from sonify.util.numbacache import use_writable_cache

__version__ = "0.1.0"

use_writable_cache()  # before numba loads: a read-only install still keeps compiled kernels

_LAZY = {
    "render": "sonify.render",
    "RenderResult": "sonify.render",
    "Engine": "sonify.api",
    "FeatureFeed": "sonify.api",
    "CallbackOutput": "sonify.api",
    "features_from": "sonify.api",
    "Features": "sonify.features.analyzer",
    "Note": "sonify.events",
    "NoteOn": "sonify.events",
    "NoteOff": "sonify.events",
    "ControlChange": "sonify.events",
    "PitchBend": "sonify.events",
    "ProgramChange": "sonify.events",
    "OscMessage": "sonify.events",
    "Tempo": "sonify.events",
    "Event": "sonify.events",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sonify' has no attribute {name!r}")
    imported = importlib.import_module(module)
    # sonify.render is a callable package (see sonify/render/__init__.py): the package is it
    value = imported if module == f"sonify.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
