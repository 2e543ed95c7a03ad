"""A trained mapping: input scaling, the learned parameters as plain arrays, and ``predict``.

``Model.predict(x)`` takes the inputs in the spec's order (one vector, or n x inputs), scales
them (``(x - x_mean) / x_scale``; a missing input, NaN, reads as its training mean), and runs
the continuous outputs through one regressor (its targets scaled by ``y_mean``/``y_scale``)
and each discrete output through its own classifier (the value: the choice's index). NumPy
only: scikit-learn is needed to train, never to play.

The file (``.npz``, written with ``np.savez`` whole or not at all) holds a ``header`` (JSON as
bytes: format, version, the spec's ``model_hash``, input and output names, algorithms, when and
how fast it was trained) and the arrays, named ``x_mean``, ``reg.<name>``, ``cls<column>.<name>``.
``load`` reads with ``allow_pickle=False`` and checks the header, every array's dtype, shape
and finiteness and, given the scene's spec, that the model was trained for it; anything wrong
is a ``ModelError("<path>: <what is wrong>")``: never a traceback, never an unpickle.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from sonify.learn import predictors as p
from sonify.learn.errors import ModelError
from sonify.learn.spec import TeachSpec
from sonify.util.atomicio import atomic_write

FORMAT = "sonify-teach-model"
VERSION = 1
REGRESSORS = {"knn": p.KnnRegressor, "mlp": p.Mlp, "ridge": p.PolyRidge}
_HEADER_KEYS = ("spec_hash", "inputs", "outputs", "regression", "classification", "classified")
CLASSIFIERS = {"knn": p.KnnClassifier, "mlp": p.Mlp, "logistic": p.Logistic}


@dataclass(frozen=True)
class Model:
    """A trained mapping (see the module doc)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    spec_hash: str
    regression: str
    classification: str
    x_mean: np.ndarray
    x_scale: np.ndarray
    reg_cols: np.ndarray  # the continuous outputs' columns, ascending
    y_mean: np.ndarray  # per continuous output
    y_scale: np.ndarray
    regressor: p.Predictor | None
    classifiers: tuple[tuple[int, p.Predictor], ...]  # (output column, classifier)
    examples: int = 0
    trained_at: float = 0.0  # Unix time
    train_ms: float = 0.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The outputs for ``x`` (inputs in order; 1-D -> 1-D, n x inputs -> n x outputs)."""
        xs = np.asarray(x, dtype=np.float64)
        single = xs.ndim == 1
        xs = np.atleast_2d(xs)
        if xs.shape[1] != len(self.inputs):
            raise ValueError(f"the model reads {len(self.inputs)} inputs, got {xs.shape[1]}")
        z = (xs - self.x_mean) / self.x_scale
        z[np.isnan(z)] = 0.0
        out = np.empty((xs.shape[0], len(self.outputs)))
        found: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        if self.regressor is not None:
            out[:, self.reg_cols] = _run(self.regressor, z, found) * self.y_scale + self.y_mean
        for col, clf in self.classifiers:
            out[:, col] = _run(clf, z, found)
        return out[0] if single else out

    # -- the file ----------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "spec_hash": self.spec_hash,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "regression": self.regression, "classification": self.classification,
            "classified": [col for col, _ in self.classifiers],
            "examples": self.examples, "trained_at": self.trained_at, "train_ms": self.train_ms,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        head = json.dumps(self.header(), separators=(",", ":")).encode()
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(head, dtype=np.uint8), "x_mean": self.x_mean,
            "x_scale": self.x_scale, "reg_cols": self.reg_cols, "y_mean": self.y_mean,
            "y_scale": self.y_scale,
        }
        if self.regressor is not None:
            arrays.update({f"reg.{k}": v for k, v in self.regressor.arrays().items()})
        for col, clf in self.classifiers:
            arrays.update({f"cls{col}.{k}": v for k, v in clf.arrays().items()})
        return arrays

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` (``.npz``) whole or not at all."""
        arrays = self.arrays()

        def write(f: BinaryIO) -> None:
            np.savez(f, **arrays)  # type: ignore[arg-type]

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path, spec: TeachSpec | None = None) -> Model:
        """Read a model; with ``spec`` (the scene's ``[teach]``) it must have been trained for
        it. ``ModelError("<path>: <what is wrong>")`` on any problem (see the module doc)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if not isinstance(data, np.lib.npyio.NpzFile):
                    raise ValueError("not a sonify model (a bare array, not an .npz archive)")
                arrays = {k: data[k] for k in data.files}
        except ModelError:
            raise
        except FileNotFoundError:
            raise ModelError(f"{path}: no such file") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ModelError(f"{path}: cannot read the model ({_reason(exc)}); train "
                             f"again to replace it") from None
        try:
            return _from_arrays(arrays, spec)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: {_reason(exc)}") from None


def _run(predictor: p.Predictor, z: np.ndarray,
         found: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``predictor.predict(z)``; k-NN parts over the same examples (one array: ``train`` and
    ``load`` share it) find the neighbours once."""
    if isinstance(predictor, p.KnnRegressor | p.KnnClassifier):
        key = (id(predictor.x), predictor.k)
        hit = found.get(key)
        if hit is None:
            hit = found[key] = p.knn_weights(predictor.x, z, predictor.k)
        return predictor.predict_from(*hit)
    return predictor.predict(z)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().strip("'\"")
    if "pickle" in text.lower():
        return "it holds pickled objects, which sonify never loads"
    return text or type(exc).__name__


def _header(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    raw = arrays.get("header")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError("not a sonify model (no header)")
    try:
        head = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not a sonify model (the header is not JSON)") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ValueError("not a sonify model (a foreign header)")
    if head.get("version") != VERSION:
        raise ValueError(f"model format version {head.get('version')!r}; this sonify reads "
                         f"version {VERSION}: train again")
    missing = [k for k in _HEADER_KEYS if k not in head]
    if missing:
        raise ValueError(f"the model's header lacks {', '.join(missing)}")
    if not isinstance(head["classified"], list) or not all(
            isinstance(c, int) for c in head["classified"]):
        raise ValueError("the header's classified columns are not a list of numbers")
    return head


def _check_spec(head: Mapping[str, Any], spec: TeachSpec) -> None:
    for key, want in (("inputs", list(spec.inputs)),
                      ("outputs", [o.name for o in spec.outputs])):
        if head[key] != want:
            raise ValueError(f"trained with {key} {head[key]}, the scene's [teach] has {want}: "
                             f"train again")
    if head["spec_hash"] != spec.model_hash():
        raise ValueError(f"trained for another [teach] (algorithms {head['regression']}/"
                         f"{head['classification']}, or other sizes or choices; the scene has "
                         f"{spec.regression}/{spec.classification}): train again")


def _from_arrays(arrays: Mapping[str, np.ndarray], spec: TeachSpec | None) -> Model:
    head = _header(arrays)
    for key in ("inputs", "outputs"):
        if not isinstance(head.get(key), list) or not all(isinstance(n, str) for n in head[key]):
            raise ValueError(f"the header's {key} is not a list of names")
    if spec is not None:
        _check_spec(head, spec)
    for name, a in arrays.items():
        if a.dtype.kind not in "fiu":
            raise ValueError(f"array {name!r} holds {a.dtype}, not numbers")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(f"array {name!r} holds NaN or infinite values")

    shared: list[np.ndarray] = []  # the k-NN parts' examples: one array when they are equal

    def getter(prefix: str) -> p.Getter:
        def get(name: str) -> np.ndarray:
            if prefix + name not in arrays:
                raise ValueError(f"array {prefix + name!r} is missing")
            a = arrays[prefix + name]
            if name == "x":
                a = next((s for s in shared if np.array_equal(s, a)), a)
                shared.append(a)
            return a
        return get

    n_in, n_out = len(head["inputs"]), len(head["outputs"])
    top = getter("")
    x_mean, x_scale = top("x_mean").astype(np.float64), top("x_scale").astype(np.float64)
    p._shape("x_mean", x_mean, n_in)
    p._shape("x_scale", x_scale, n_in)
    if np.any(x_scale <= 0):
        raise ValueError("an input scale is not positive")
    reg_cols = top("reg_cols").astype(np.intp)
    classified = [int(c) for c in head["classified"]]
    if sorted(reg_cols.tolist() + classified) != list(range(n_out)):
        raise ValueError("the outputs' columns do not add up to the outputs")
    y_mean, y_scale = top("y_mean"), top("y_scale")
    p._shape("y_mean", y_mean, reg_cols.size)
    p._shape("y_scale", y_scale, reg_cols.size)
    regressor: p.Predictor | None = None
    if reg_cols.size:
        regressor = _predictor(REGRESSORS, head["regression"], getter("reg."), classify=False)
        _check_part(regressor, "reg.", n_in, reg_cols.size)
    classifiers = []
    for col in classified:
        clf = _predictor(CLASSIFIERS, head["classification"], getter(f"cls{col}."),
                         classify=True)
        _check_part(clf, f"cls{col}.", n_in, 1)
        classifiers.append((col, clf))
    return Model(tuple(head["inputs"]), tuple(head["outputs"]), str(head["spec_hash"]),
                 str(head["regression"]), str(head["classification"]), x_mean, x_scale,
                 reg_cols, y_mean.astype(np.float64), y_scale.astype(np.float64), regressor,
                 tuple(classifiers), int(head.get("examples", 0)),
                 float(head.get("trained_at", 0.0)), float(head.get("train_ms", 0.0)))


def _check_part(part: p.Predictor, prefix: str, n_inputs: int, n_outputs: int) -> None:
    try:
        part.check(n_inputs, n_outputs)
    except ValueError as exc:  # name the array as the file does
        raise ValueError(str(exc).replace("array '", f"array '{prefix}")) from None


def _predictor(kinds: Mapping[str, type], name: object, get: p.Getter,
               classify: bool) -> p.Predictor:
    kind = kinds.get(str(name))
    if kind is None:
        raise ValueError(f"unknown algorithm {name!r} (known: {', '.join(kinds)})")
    if kind is p.Mlp:
        return p.Mlp.from_arrays(get, classify)
    return kind.from_arrays(get)  # type: ignore[no-any-return, attr-defined]
