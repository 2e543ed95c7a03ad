"""Examples and models on disk: exact round trips, and a clear error for every broken file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sonify.learn.errors import ExamplesError, ModelError
from sonify.learn.examples import ExampleSet
from sonify.learn.learner import Learner
from sonify.learn.model import Model
from sonify.learn.spec import TeachSpec
from sonify.learn.train import train
from tests.learn.helpers import NIGHT, PAIRS, random_examples, record_two_looks, spec


@pytest.mark.parametrize(("regression", "classification"), PAIRS)
def test_model_save_load_round_trip_is_exact(tmp_path: Path, regression: str,
                                             classification: str) -> None:
    s = spec(regression, classification)
    model = train(s, random_examples(s, 25))
    path = model.save(tmp_path / "teach.npz")
    again = Model.load(path, s)
    x = np.random.default_rng(2).random((40, len(s.inputs)))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    a, b = model.arrays(), again.arrays()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _model_file(tmp_path: Path) -> tuple[TeachSpec, Path]:
    s = spec()
    return s, train(s, random_examples(s, 12)).save(tmp_path / "teach.npz")


def _rewrite(path: Path, change: dict) -> None:  # type: ignore[type-arg]
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    head = json.loads(arrays["header"].tobytes())
    head.update(change)
    arrays["header"] = np.frombuffer(json.dumps(head).encode(), np.uint8)
    np.savez(path, **arrays)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(3000))


def _pickle_inside(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["x_mean"] = np.array([{"evil": "object"}], dtype=object)
    np.savez(path, **arrays)


def _foreign_npz(path: Path) -> None:
    np.savez(path, weights=np.ones(3))


def _bad_shape(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["reg.y"] = arrays["reg.y"][:, :1]
    np.savez(path, **arrays)


@pytest.mark.parametrize(("damage", "reason"), [
    (_truncate, "cannot read the model"),
    (_random_bytes, "cannot read the model"),
    (_pickle_inside, "it holds pickled objects, which sonify never loads"),
    (_foreign_npz, "not a sonify model (no header)"),
    (lambda p: _rewrite(p, {"version": 99}), "model format version 99; this sonify reads "
                                             "version 1: train again"),
    (lambda p: _rewrite(p, {"inputs": ["brightness"]}), "trained with inputs ['brightness']"),
    (lambda p: _rewrite(p, {"spec_hash": "0" * 16}), "trained for another [teach]"),
    (_bad_shape, "array 'reg.y' is 12 x 1, expected 12 x 2"),
])
def test_a_broken_model_file_gives_model_error_with_path_and_reason(tmp_path: Path, damage,
                                                                    reason: str) -> None:
    s, path = _model_file(tmp_path)
    damage(path)
    with pytest.raises(ModelError) as err:
        Model.load(path, s)
    assert str(err.value).startswith(f"{path}: ")
    assert reason in str(err.value)


def test_a_model_for_other_inputs_is_refused(tmp_path: Path) -> None:
    s, path = _model_file(tmp_path)
    other = spec().model_copy(update={"inputs": ["brightness", "warmth"]})
    with pytest.raises(ModelError, match=r"teach.npz: trained with inputs \[.*'contrast'"):
        Model.load(path, other)


def test_a_corrupt_model_is_reported_and_the_scene_plays_without_it(tmp_path: Path) -> None:
    s, path = _model_file(tmp_path)
    _random_bytes(path)
    before = path.read_bytes()
    learner = Learner(s, None, path)
    assert learner.model is None
    assert learner.status()["error"].startswith(f"{path}: cannot read the model")
    assert learner.status()["error"].endswith("playing without the model")
    assert learner.step(NIGHT, 0.0) is None
    assert learner.command("run") == "no model yet: record examples and train first"
    assert path.read_bytes() == before  # left alone until a training replaces it


def test_learner_saves_and_reloads_examples_and_model(tmp_path: Path) -> None:
    ex_path, model_path = tmp_path / "x.examples.json", tmp_path / "x.model.npz"
    learner = Learner(spec(), ex_path, model_path)
    record_two_looks(learner)
    assert learner.command("train").endswith(", saved to x.model.npz")
    again = Learner(spec(), ex_path, model_path)
    assert again.examples.rows == learner.examples.rows
    assert again.model is not None and again.error is None
    again.command("run")
    assert again.command("run").startswith("running")
    out = again.step(NIGHT, 0.0)
    assert out is not None and out["scene"] == 1.0


def test_examples_round_trip_exactly(tmp_path: Path) -> None:
    s = spec()
    ex = random_examples(s, 9)
    ex.add([1 / 3] * len(s.inputs), [0.1, 1e-300, 1.0], 1e9 + 0.1)
    path = ex.save(tmp_path / "ex.json")
    again = ExampleSet.load(path, s.input_names, s.output_names)
    assert again.rows == ex.rows and again.inputs == ex.inputs and again.outputs == ex.outputs


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "not valid JSON (line 1"),
    ('{"format": "other"}', "not a sonify examples file"),
    ('{"format": "sonify-teach-examples", "version": 2}', "examples format version 2"),
    ('{"format": "sonify-teach-examples", "version": 1, "inputs": ["motion"], "outputs": '
     '["tempo"], "examples": []}', "recorded with inputs ['motion'], the scene's [teach] has"),
])
def test_a_broken_examples_file_gives_examples_error(tmp_path: Path, text: str,
                                                     reason: str) -> None:
    path = tmp_path / "ex.json"
    path.write_text(text)
    s = spec()
    with pytest.raises(ExamplesError) as err:
        ExampleSet.load(path, s.input_names, s.output_names)
    assert str(err.value).startswith(f"{path}: ") and reason in str(err.value)


def test_a_non_finite_example_is_refused(tmp_path: Path) -> None:
    s = spec()
    ex = random_examples(s, 2)
    doc = json.loads(ex.to_json())
    doc["examples"][1]["y"][0] = "NaN"
    path = tmp_path / "ex.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ExamplesError, match="example 2: example outputs"):
        ExampleSet.load(path)


def test_an_unreadable_examples_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "ex.json"
    path.write_text("{broken")
    learner = Learner(spec(), path, None)
    learner.step(NIGHT, 0.0)
    assert learner.command("snapshot") == ("example 1 recorded (not saved: the examples file "
                                           "could not be read)")
    assert path.read_text() == "{broken"


def test_npz_is_a_zip_of_plain_arrays(tmp_path: Path) -> None:
    _, path = _model_file(tmp_path)
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            head = z.read(name)[:10]
            assert head.startswith(b"\x93NUMPY")  # .npy arrays only
