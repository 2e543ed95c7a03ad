"""The performance core: one object that decides the music over time, on any clock.

``Performance`` (core.py) is stepped once per block by the live runtime (the real clock),
``sonify render`` and soak tests (a manual clock, ``loop.play``); ``SceneDriver`` (driver.py)
renders a scene player through time; ``Form`` (form.py) shapes a whole piece.
"""

from sonify.performance.core import Performance
from sonify.performance.driver import SceneDriver
from sonify.performance.form import Form
from sonify.performance.loop import Script, play

__all__ = ["Form", "Performance", "SceneDriver", "Script", "play"]
