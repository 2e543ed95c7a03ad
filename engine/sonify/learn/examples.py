"""The recorded examples: feature vectors paired with the output values they should play.

An ``ExampleSet`` has fixed input and output names (the scene's ``[teach]``) and rows of
``(x, y, t)``: ``x`` the inputs in that order, ``y`` the outputs in theirs (a discrete output as
its choice's index), ``t`` when it was recorded (engine seconds, for the record only).

The file beside the scene is JSON, small and readable, written whole or not at all::

    {"format": "sonify-teach-examples", "version": 1,
     "inputs": ["brightness", ...], "outputs": ["param:intensity", ...],
     "examples": [{"t": 12.5, "x": [0.41, ...], "y": [0.8, ...]}, ...]}

Floats are written with ``repr`` precision, so a save and a load give back the same numbers.
``load`` checks everything (the format, the names against the scene's when given, every row's
length, every number finite) and raises ``ExamplesError("<path>: <what is wrong>")``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sonify.learn.errors import ExamplesError
from sonify.util.atomicio import atomic_write

FORMAT = "sonify-teach-examples"
VERSION = 1


def _floats(values: Sequence[float] | np.ndarray, n: int, what: str) -> tuple[float, ...]:
    row = tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))
    if len(row) != n:
        raise ValueError(f"{what}: {len(row)} values, expected {n}")
    if not all(math.isfinite(v) for v in row):
        raise ValueError(f"{what}: not every value is a finite number: {row!r:.120}")
    return row


class ExampleSet:
    """Examples for one ``[teach]`` table (see the module doc)."""

    def __init__(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        self.inputs: tuple[str, ...] = tuple(inputs)
        self.outputs: tuple[str, ...] = tuple(outputs)
        self.rows: list[tuple[tuple[float, ...], tuple[float, ...], float]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
            t: float = 0.0) -> None:
        """One example; ``ValueError`` when a row has the wrong length or a non-finite value."""
        self.rows.append((_floats(x, len(self.inputs), "example inputs"),
                          _floats(y, len(self.outputs), "example outputs"), float(t)))

    def clear(self) -> None:
        self.rows.clear()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The inputs (n x inputs) and outputs (n x outputs) as float64 arrays."""
        x = np.array([r[0] for r in self.rows], dtype=np.float64).reshape(-1, len(self.inputs))
        y = np.array([r[1] for r in self.rows], dtype=np.float64).reshape(-1, len(self.outputs))
        return x, y

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "version": VERSION,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "examples": [{"t": t, "x": list(x), "y": list(y)} for x, y, t in self.rows],
        }, indent=None, separators=(",", ":"))

    def save(self, path: str | Path) -> Path:
        """Write the examples to ``path`` whole or not at all."""
        return atomic_write(path, (self.to_json() + "\n").encode())

    @classmethod
    def load(cls, path: str | Path, inputs: Sequence[str] | None = None,
             outputs: Sequence[str] | None = None) -> ExampleSet:
        """Read ``path``; with ``inputs``/``outputs`` (the scene's), the file must have the
        same names in the same order. ``ExamplesError`` names the file and what is wrong."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ExamplesError(f"{path}: cannot read the examples: {exc}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExamplesError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); "
                                f"fix or delete the file to record anew") from None
        try:
            return cls._from_doc(doc, inputs, outputs)
        except ValueError as exc:
            raise ExamplesError(f"{path}: {exc}") from None

    @classmethod
    def _from_doc(cls, doc: Any, inputs: Sequence[str] | None,
                  outputs: Sequence[str] | None) -> ExampleSet:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a sonify examples file (no \"format\": \"{FORMAT}\")")
        if doc.get("version") != VERSION:
            raise ValueError(f"examples format version {doc.get('version')!r}; this sonify "
                             f"reads version {VERSION}")
        names = {}
        for key, want in (("inputs", inputs), ("outputs", outputs)):
            got = doc.get(key)
            if not isinstance(got, list) or not all(isinstance(n, str) for n in got):
                raise ValueError(f"{key!r} must be a list of names")
            if want is not None and tuple(got) != tuple(want):
                raise ValueError(f"recorded with {key} {got}, the scene's [teach] has "
                                 f"{list(want)}: record again (or restore the old [teach])")
            names[key] = got
        rows = doc.get("examples")
        if not isinstance(rows, list):
            raise ValueError("'examples' must be a list")
        out = cls(names["inputs"], names["outputs"])
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or set(row) != {"t", "x", "y"}:
                raise ValueError(f"example {i + 1} must have exactly t, x and y")
            try:
                out.add(row["x"], row["y"], row["t"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"example {i + 1}: {exc}") from None
        return out
