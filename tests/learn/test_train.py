"""Training: a model learns two looks, and its NumPy predict is scikit-learn's predict."""

from __future__ import annotations

import numpy as np
import pytest

from sonify.learn.errors import TrainError
from sonify.learn.examples import ExampleSet
from sonify.learn.learner import Learner
from sonify.learn.spec import TeachOutput, TeachSpec
from sonify.learn.train import fit, to_model, train
from tests.learn.helpers import (
    NIGHT,
    NIGHT_OUT,
    PAIRS,
    SUNSET,
    SUNSET_OUT,
    noisy,
    random_examples,
    record_two_looks,
    spec,
)


@pytest.mark.parametrize(("regression", "classification"), PAIRS)
def test_model_trained_on_two_looks_plays_what_was_set_for_each(regression: str,
                                                                 classification: str) -> None:
    # ridge at degree 1: degree 2 makes 189 features of 18 inputs, most of them camera noise,
    # for 20 examples, and misses by ~10% of the range (measured; see the report)
    degree = 1 if regression == "ridge" else 2
    learner = Learner(spec(regression, classification, degree=degree), None, None)
    t = record_two_looks(learner)
    assert len(learner.examples) == 20  # 1 s of each look at 10 examples a second
    message = learner.command("train")
    assert message.startswith(f"trained {regression}/{classification} on 20 examples in ")
    assert learner.command("run").startswith("running")
    rng = np.random.default_rng(99)  # looks seen anew: other noise than the recording's
    for look, want in ((SUNSET, SUNSET_OUT), (NIGHT, NIGHT_OUT), (SUNSET, SUNSET_OUT)):
        for _ in range(60):  # 2 s at 30 fps: ten smoothing time constants
            out = learner.step(noisy(look, rng), t)
            t += 1 / 30
        assert out is not None
        assert out["scene"] == want["scene"]
        assert out["param:intensity"] == pytest.approx(want["param:intensity"], abs=0.05)
        assert out["tempo"] == pytest.approx(want["tempo"], abs=8.0)  # 5% of 40..200


def _sklearn_predict(f, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    z = (x - f.x_mean) / f.x_scale
    out = np.empty((x.shape[0], len(f.spec.outputs)))
    if f.regressor is not None:
        zz = f.poly.transform(z) if f.poly is not None else z
        out[:, f.reg_cols] = f.regressor.predict(zz) * f.y_scale + f.y_mean
    for col, clf in f.classifiers:
        out[:, col] = clf.predict(z)
    return out


@pytest.mark.parametrize("regression", ["knn", "mlp", "ridge"])
@pytest.mark.parametrize("classification", ["knn", "mlp", "logistic"])
def test_numpy_predict_equals_sklearn_predict_on_random_data(regression: str,
                                                             classification: str) -> None:
    outputs = [TeachOutput(name=f"p{i}", lo=-1.0, hi=3.0) for i in range(5)]
    outputs += [TeachOutput(name="two", choices=["a", "b"]),
                TeachOutput(name="four", choices=["a", "b", "c", "d"])]
    s = TeachSpec(inputs=[f"in{i}" for i in range(12)], outputs=outputs,
                  regression=regression, classification=classification)  # type: ignore[arg-type]
    f = fit(s, random_examples(s, 40, seed=3))
    model = to_model(f)
    x = np.random.default_rng(4).normal(0.5, 0.5, (300, 12))
    want = _sklearn_predict(f, x)
    got = model.predict(x)
    np.testing.assert_allclose(got[:, f.reg_cols], want[:, f.reg_cols], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(got[:, 5:], want[:, 5:])
    assert len(set(got[:, 6])) > 1  # the classifiers really choose
    one = model.predict(x[7])  # one frame: as a row of the batch (BLAS may round apart)
    np.testing.assert_allclose(one, got[7], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(one[5:], got[7, 5:])


def test_training_is_deterministic() -> None:
    s = spec("mlp", "mlp")
    ex = random_examples(s, 30)
    x = np.random.default_rng(1).random((50, len(s.inputs)))
    np.testing.assert_array_equal(train(s, ex).predict(x), train(s, ex).predict(x))


def test_training_without_examples_or_with_one_choice_says_why_and_keeps_the_old_model() -> None:
    learner = Learner(spec(), None, None)
    assert learner.command("train") == ("cannot train: no examples yet: record some first "
                                        "(no model yet)")
    record_two_looks(learner)
    assert learner.command("train").startswith("trained")
    old = learner.model
    learner.command("clear")
    learner.set_outputs(SUNSET_OUT)
    learner.step(SUNSET, 10.0)
    learner.command("snapshot")
    learner.command("snapshot")
    message = learner.command("train")
    assert message == ("cannot train: every example sets 'scene' to 'dawn': record examples of "
                       "another choice too (the old model stays)")
    assert learner.model is old
    assert learner.status()["error"] == message


def test_examples_for_other_names_are_refused() -> None:
    ex = ExampleSet(["brightness"], ["tempo"])
    ex.add([0.5], [100.0])
    with pytest.raises(TrainError, match="other inputs or outputs"):
        train(spec(), ex)
