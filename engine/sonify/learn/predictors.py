"""The learned parameters as plain arrays, and the NumPy that predicts with them.

scikit-learn fits (``train.py``); these classes hold only what its fitted estimators computed
and repeat their ``predict`` with NumPy, so a saved model is arrays (no pickle, no sklearn at
play time, nothing but numbers to trust from a file). Each one works on inputs already scaled
by the model (``(x - mean) / scale``) and has:

- ``predict(xs)``: ``xs`` is n x inputs; regressors return n x outputs (scaled targets),
  classifiers n class labels (the choice indices, as floats);
- ``arrays()``: its parameters by name, for the ``.npz``; ``from_arrays(get)`` builds it back
  from a getter that checks each array's presence (the model reports a missing one);
- ``check(n_inputs, n_outputs)``: ``ValueError`` when the shapes do not fit, so a tampered
  file is refused at load time rather than failing in the middle of a show.

The maths, as scikit-learn 1.x does it:

- k-NN (``weights="distance"``, brute force): the k nearest training rows by Euclidean
  distance (ties by row order, as a stable sort); weights 1/d, and where some d == 0 those rows
  alone with weight 1. Regression: the weighted mean; classification: the label of the largest
  weight sum (the first class on a tie).
- MLP: ``tanh`` hidden layers, an identity output (regression) or logistic/softmax (class:
  argmax; binary: the logit > 0).
- ridge: polynomial features (``powers``: one row of exponents per feature, no bias; each a
  product of gathered input columns) times ``coef`` plus ``intercept``.
- logistic: ``x @ coef.T + intercept``; argmax, or > 0 with one row (binary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Getter = Callable[[str], np.ndarray]


def _shape(name: str, a: np.ndarray, *dims: int | None) -> None:
    if a.ndim != len(dims) or any(d is not None and s != d for s, d in zip(a.shape, dims,
                                                                           strict=True)):
        want = " x ".join("n" if d is None else str(d) for d in dims)
        got = " x ".join(str(s) for s in a.shape) or "a scalar"
        raise ValueError(f"array {name!r} is {got}, expected {want}")


def knn_weights(train_x: np.ndarray, xs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices n x k, weights n x k) of the k nearest rows, distance-weighted."""
    # distances by differences (not the |a|^2 - 2ab + |b|^2 shortcut): exact zeros for a
    # repeated example; few, small NumPy calls: this runs once a frame on the music thread
    diff = xs[:, None, :] - train_x[None, :, :]
    d = np.sqrt(np.einsum("nmd,nmd->nm", diff, diff))
    k = min(k, train_x.shape[0])
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    dist = d[np.arange(d.shape[0])[:, None], idx]
    if not dist.all():  # an exact match: those rows alone, with weight 1
        exact = dist == 0
        rows = exact.any(axis=1)
        dist[rows] = np.where(exact[rows], 1.0, np.inf)
    return idx, 1.0 / dist


@dataclass(frozen=True)
class KnnRegressor:
    x: np.ndarray  # n x inputs (scaled)
    y: np.ndarray  # n x outputs
    k: int

    def predict(self, xs: np.ndarray) -> np.ndarray:
        return self.predict_from(*knn_weights(self.x, xs, self.k))

    def predict_from(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The prediction from neighbours already found (shared by a model's k-NN parts)."""
        return np.einsum("nk,nko->no", w, self.y[idx]) / w.sum(axis=1)[:, None]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "y": self.y, "k": np.array(self.k)}

    @classmethod
    def from_arrays(cls, get: Getter) -> KnnRegressor:
        return cls(get("x"), get("y"), int(get("k")))

    def check(self, n_inputs: int, n_outputs: int) -> None:
        _shape("x", self.x, None, n_inputs)
        _shape("y", self.y, self.x.shape[0], n_outputs)
        if self.x.shape[0] < 1 or self.k < 1:
            raise ValueError("a k-NN model needs one example and k >= 1")


@dataclass(frozen=True)
class KnnClassifier:
    x: np.ndarray  # n x inputs (scaled)
    labels: np.ndarray  # n: the class position in ``classes`` of each row
    classes: np.ndarray  # the choice indices seen in training, ascending
    k: int

    def predict(self, xs: np.ndarray) -> np.ndarray:
        return self.predict_from(*knn_weights(self.x, xs, self.k))

    def predict_from(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The prediction from neighbours already found (shared by a model's k-NN parts)."""
        onehot = self.labels[idx][:, :, None] == np.arange(self.classes.size)
        votes = np.einsum("nk,nkc->nc", w, onehot)
        return self.classes[np.argmax(votes, axis=1)]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "labels": self.labels, "classes": self.classes,
                "k": np.array(self.k)}

    @classmethod
    def from_arrays(cls, get: Getter) -> KnnClassifier:
        return cls(get("x"), get("labels"), get("classes"), int(get("k")))

    def check(self, n_inputs: int, n_outputs: int) -> None:
        _shape("x", self.x, None, n_inputs)
        _shape("labels", self.labels, self.x.shape[0])
        _shape("classes", self.classes, None)
        if self.x.shape[0] < 1 or self.k < 1 or self.classes.size < 1:
            raise ValueError("a k-NN model needs one example, one class and k >= 1")
        if np.any(self.labels < 0) or np.any(self.labels >= self.classes.size):
            raise ValueError("k-NN labels outside its classes")


@dataclass(frozen=True)
class Mlp:
    weights: tuple[np.ndarray, ...]  # inputs x hidden, hidden x out
    biases: tuple[np.ndarray, ...]
    classes: np.ndarray | None = None  # None: regression (identity output)

    def _forward(self, xs: np.ndarray) -> np.ndarray:
        a = xs
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            a = a @ w + b
            if i < last:
                a = np.tanh(a)
        return a

    def predict(self, xs: np.ndarray) -> np.ndarray:
        out = self._forward(xs)
        if self.classes is None:
            return out
        if out.shape[1] == 1:  # binary: logistic > 0.5 <=> logit > 0
            return self.classes[(out[:, 0] > 0).astype(np.intp)]
        return self.classes[np.argmax(out, axis=1)]

    def arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"layers": np.array(len(self.weights))}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"w{i}"] = w
            arrays[f"b{i}"] = b
        if self.classes is not None:
            arrays["classes"] = self.classes
        return arrays

    @classmethod
    def from_arrays(cls, get: Getter, classify: bool) -> Mlp:
        n = int(get("layers"))
        if not 1 <= n <= 8:
            raise ValueError(f"an MLP of {n} layers")
        return cls(tuple(get(f"w{i}") for i in range(n)), tuple(get(f"b{i}") for i in range(n)),
                   get("classes") if classify else None)

    def check(self, n_inputs: int, n_outputs: int) -> None:
        width = n_inputs
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            _shape(f"w{i}", w, width, None)
            _shape(f"b{i}", b, w.shape[1])
            width = w.shape[1]
        if self.classes is None:
            if width != n_outputs:
                raise ValueError(f"the MLP has {width} outputs, expected {n_outputs}")
        else:
            _shape("classes", self.classes, None)
            want = 1 if self.classes.size == 2 else self.classes.size
            if self.classes.size < 2 or width != want:
                raise ValueError(f"the MLP has {width} outputs for {self.classes.size} classes")


def poly_gather(powers: np.ndarray) -> np.ndarray:
    """``powers`` (one row of exponents per feature) as the input columns to multiply for
    each feature: features x max degree, where column ``n_inputs`` stands for the constant 1."""
    n_inputs = powers.shape[1]
    degree = int(powers.sum(axis=1).max(initial=1))
    gather = np.full((powers.shape[0], max(degree, 1)), n_inputs, dtype=np.intp)
    for f, row in enumerate(powers):
        cols = np.repeat(np.arange(n_inputs), row)
        gather[f, :cols.size] = cols
    return gather


def poly_features(xs: np.ndarray, gather: np.ndarray) -> np.ndarray:
    """The polynomial features of ``xs`` (n x inputs): the product of the gathered columns."""
    ext = np.concatenate([xs, np.ones((xs.shape[0], 1))], axis=1)
    out = ext[:, gather[:, 0]]
    for r in range(1, gather.shape[1]):
        out *= ext[:, gather[:, r]]
    return out


@dataclass(frozen=True)
class PolyRidge:
    powers: np.ndarray  # features x inputs (int exponents)
    coef: np.ndarray  # outputs x features
    intercept: np.ndarray  # outputs

    @cached_property
    def _gather(self) -> np.ndarray:
        return poly_gather(self.powers)

    def predict(self, xs: np.ndarray) -> np.ndarray:
        return poly_features(xs, self._gather) @ self.coef.T + self.intercept

    def arrays(self) -> dict[str, np.ndarray]:
        return {"powers": self.powers, "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_arrays(cls, get: Getter) -> PolyRidge:
        return cls(get("powers"), get("coef"), get("intercept"))

    def check(self, n_inputs: int, n_outputs: int) -> None:
        _shape("powers", self.powers, None, n_inputs)
        _shape("coef", self.coef, n_outputs, self.powers.shape[0])
        _shape("intercept", self.intercept, n_outputs)
        if np.any(self.powers < 0) or np.any(self.powers.sum(axis=1) > 3):
            raise ValueError("polynomial exponents outside degree 0..3")


@dataclass(frozen=True)
class Logistic:
    coef: np.ndarray  # 1 x inputs (binary) or classes x inputs
    intercept: np.ndarray
    classes: np.ndarray

    def predict(self, xs: np.ndarray) -> np.ndarray:
        scores = xs @ self.coef.T + self.intercept
        if scores.shape[1] == 1:
            return self.classes[(scores[:, 0] > 0).astype(np.intp)]
        return self.classes[np.argmax(scores, axis=1)]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "intercept": self.intercept, "classes": self.classes}

    @classmethod
    def from_arrays(cls, get: Getter) -> Logistic:
        return cls(get("coef"), get("intercept"), get("classes"))

    def check(self, n_inputs: int, n_outputs: int) -> None:
        _shape("classes", self.classes, None)
        rows = 1 if self.classes.size == 2 else self.classes.size
        if self.classes.size < 2:
            raise ValueError("a logistic model needs two classes")
        _shape("coef", self.coef, rows, n_inputs)
        _shape("intercept", self.intercept, rows)


Predictor = KnnRegressor | KnnClassifier | Mlp | PolyRidge | Logistic
