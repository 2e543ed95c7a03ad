"""sonify: turns what a camera sees into music, live.

The package is laid out along the data flow (see ``../shared/ARCHITECTURE.md``)::

    capture (Frames) -> features (Features) -> scene (Events) -> timing -> outputs
"""

__version__ = "0.1.0"
