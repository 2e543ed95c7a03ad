"""Training: scikit-learn fits the examples, and the fitted parameters are copied out as arrays.

``train(spec, examples)`` returns a ``Model`` (``model.py``) that predicts with NumPy alone:

1. inputs scaled to zero mean and unit variance (``StandardScaler``; a constant input keeps
   scale 1), continuous targets likewise (so the MLP and ridge see well-conditioned numbers;
   k-NN's weighted mean is unchanged by it);
2. every continuous output through one multi-output regressor: ``knn``
   (``KNeighborsRegressor``, distance-weighted, brute force), ``mlp`` (``MLPRegressor``, one
   ``tanh`` hidden layer of ``hidden`` units, L-BFGS: the fast solver for a few dozen
   examples), ``ridge`` (``PolynomialFeatures(degree)`` then ``Ridge``);
3. each discrete output through its own classifier: ``knn``, ``mlp`` or ``logistic``, on the
   choice indices the examples hold (rounded and clipped to the choices).

Every fit is seeded: the same examples give the same model, hence the same music.
scikit-learn is imported here, on the first training (about a second): ``preload()`` does that
import ahead, e.g. on a background thread when a scene with ``[teach]`` starts.

Training refuses what cannot work (``TrainError``): no examples, examples recorded for other
names, a discrete output whose examples all hold the same choice.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from sonify.learn import predictors as p
from sonify.learn.errors import TrainError
from sonify.learn.examples import ExampleSet
from sonify.learn.model import Model
from sonify.learn.spec import TeachSpec

SEED = 0
RIDGE_ALPHA = 0.1  # on scaled inputs and targets: enough to tame degree-2 terms, little bias
MLP_ALPHA = 1e-4
MLP_MAX_ITER = 200  # L-BFGS steps: ~0.3 ms each at 50 x 30 -> 16, one thread
LOGISTIC_C = 1.0


def preload() -> None:
    """Import the parts of scikit-learn training uses (about a second, once per process)."""
    import sklearn.linear_model  # noqa: F401
    import sklearn.neighbors  # noqa: F401
    import sklearn.neural_network  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import threadpoolctl  # noqa: F401


@dataclass
class Fitted:
    """The fitted scikit-learn objects and the data they saw (``to_model`` copies them out)."""

    spec: TeachSpec
    x_mean: np.ndarray
    x_scale: np.ndarray
    reg_cols: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray
    z: np.ndarray  # the scaled inputs
    yz: np.ndarray  # the scaled continuous targets
    regressor: Any  # an sklearn estimator (with ``poly``: on its features) or None
    poly: Any  # the PolynomialFeatures of ridge, else None
    classifiers: list[tuple[int, Any]]  # (output column, sklearn classifier)
    labels: dict[int, np.ndarray]  # output column -> the choice index of every example
    examples: int


def _check(spec: TeachSpec, examples: ExampleSet) -> None:
    if examples.inputs != spec.input_names or examples.outputs != spec.output_names:
        raise TrainError("the examples were recorded for other inputs or outputs than the "
                         "scene's [teach]: clear them and record again")
    if len(examples) == 0:
        raise TrainError("no examples yet: record some first")


def _labels(spec: TeachSpec, col: int, y: np.ndarray) -> np.ndarray:
    out = spec.outputs[col]
    assert out.choices is not None
    labels = np.clip(np.rint(y), 0, len(out.choices) - 1)
    seen = np.unique(labels)
    if seen.size < 2:
        raise TrainError(f"every example sets {out.name!r} to {out.choices[int(seen[0])]!r}: "
                         f"record examples of another choice too")
    return labels


def fit(spec: TeachSpec, examples: ExampleSet) -> Fitted:
    """scikit-learn fits the examples (see the module doc)."""
    _check(spec, examples)
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    from threadpoolctl import threadpool_limits

    x, y = examples.arrays()
    n = x.shape[0]
    discrete = [i for i, o in enumerate(spec.outputs) if o.discrete]
    labels = {col: _labels(spec, col, y[:, col]) for col in discrete}
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    reg_cols = np.array([i for i, o in enumerate(spec.outputs) if not o.discrete], np.intp)
    y_mean = y[:, reg_cols].mean(axis=0)
    y_scale = y[:, reg_cols].std(axis=0)
    y_scale[y_scale < 1e-12] = 1.0
    yz = (y[:, reg_cols] - y_mean) / y_scale
    k = min(spec.k, n)
    regressor: Any = None
    poly: Any = None
    # one BLAS thread: on a few dozen examples more threads only contend (10x slower measured
    # on 2 busy cores), and the analysis and dispatch keep their cores
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # L-BFGS's ConvergenceWarning on a few examples
        if reg_cols.size:
            if spec.regression == "knn":
                regressor = KNeighborsRegressor(n_neighbors=k, weights="distance",
                                                algorithm="brute").fit(z, yz)
            elif spec.regression == "mlp":
                regressor = MLPRegressor(hidden_layer_sizes=(spec.hidden,), activation="tanh",
                                         solver="lbfgs", alpha=MLP_ALPHA,
                                         max_iter=MLP_MAX_ITER, random_state=SEED).fit(z, yz)
            else:
                poly = PolynomialFeatures(spec.degree, include_bias=False).fit(z)
                regressor = Ridge(alpha=RIDGE_ALPHA).fit(poly.transform(z), yz)
        classifiers: list[tuple[int, Any]] = []
        for col in discrete:
            if spec.classification == "knn":
                clf: Any = KNeighborsClassifier(n_neighbors=k, weights="distance",
                                                algorithm="brute")
            elif spec.classification == "mlp":
                clf = MLPClassifier(hidden_layer_sizes=(spec.hidden,), activation="tanh",
                                    solver="lbfgs", alpha=MLP_ALPHA, max_iter=MLP_MAX_ITER,
                                    random_state=SEED)
            else:
                clf = LogisticRegression(C=LOGISTIC_C, max_iter=1000)
            classifiers.append((col, clf.fit(z, labels[col])))
    return Fitted(spec, scaler.mean_.astype(np.float64), scaler.scale_.astype(np.float64),
                  reg_cols, y_mean, y_scale, z, yz, regressor, poly, classifiers, labels, n)


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _regressor(f: Fitted) -> p.Predictor | None:
    if f.regressor is None:
        return None
    if f.spec.regression == "knn":
        return p.KnnRegressor(_f64(f.z), _f64(f.yz), int(f.regressor.n_neighbors))
    if f.spec.regression == "mlp":
        return p.Mlp(tuple(_f64(w) for w in f.regressor.coefs_),
                     tuple(_f64(b) for b in f.regressor.intercepts_))
    return p.PolyRidge(np.ascontiguousarray(f.poly.powers_, dtype=np.int64),
                       _f64(np.atleast_2d(f.regressor.coef_)),
                       _f64(np.atleast_1d(f.regressor.intercept_)))


def _classifier(f: Fitted, col: int, clf: Any) -> p.Predictor:
    classes = _f64(clf.classes_)
    if f.spec.classification == "knn":
        labels = np.searchsorted(classes, f.labels[col])
        return p.KnnClassifier(_f64(f.z), labels.astype(np.int64), classes,
                               int(clf.n_neighbors))
    if f.spec.classification == "mlp":
        return p.Mlp(tuple(_f64(w) for w in clf.coefs_),
                     tuple(_f64(b) for b in clf.intercepts_), classes)
    return p.Logistic(_f64(clf.coef_), _f64(clf.intercept_), classes)


def to_model(f: Fitted, train_ms: float = 0.0) -> Model:
    """The fitted parameters copied out of scikit-learn into a ``Model``'s arrays."""
    return Model(
        f.spec.input_names, f.spec.output_names, f.spec.model_hash(), f.spec.regression,
        f.spec.classification, f.x_mean, f.x_scale, f.reg_cols, f.y_mean, f.y_scale,
        _regressor(f), tuple((col, _classifier(f, col, clf)) for col, clf in f.classifiers),
        f.examples, time.time(), round(train_ms, 2),
    )


def train(spec: TeachSpec, examples: ExampleSet) -> Model:
    """Fit the examples and return the model (``TrainError`` when that cannot work)."""
    start = time.perf_counter()
    fitted = fit(spec, examples)
    model = to_model(fitted)
    ms = (time.perf_counter() - start) * 1e3
    return dataclasses.replace(model, train_ms=round(ms, 2))
