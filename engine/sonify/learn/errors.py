"""The learning layer's errors: each message names the file (where there is one) and says what
is wrong with it, so the log and the page can show it as it is."""

from __future__ import annotations


class LearnError(Exception):
    """Base of the errors of mapping by example."""


class ExamplesError(LearnError):
    """An examples file that cannot be read or does not fit the scene: ``"<path>: <what>"``."""


class ModelError(LearnError):
    """A model file that cannot be read, is not a sonify model, or does not fit the scene:
    ``"<path>: <what>"``."""


class TrainError(LearnError):
    """Training cannot work on these examples (none, or one class only): the old model stays."""
