"""Where the shipped scenes and configs are.

The repository keeps them at its top level (``scenes/``, ``configs/``, beside ``engine/``,
which holds the ``sonify`` package); a wheel puts them inside the package (``sonify/scenes``,
``sonify/configs``: see ``pyproject.toml``). ``shipped(name)`` finds them either way, so an
editable install, a checkout on ``PYTHONPATH`` and a plain ``pip install .`` all see the same
files.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent.parent  # engine/sonify -> the repository, in a checkout


def shipped(name: str) -> Path:
    """The folder ``name`` ("scenes", "configs") as installed, else as in the checkout."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else SOURCE_ROOT / name
