"""`vectorize`: bad values are one clear error; where it cannot apply, one line says why."""

import os
import subprocess
import sys

import keras
import keras_tuner
import pytest
from _tuning_helpers import blobs

from kerastrain.tuning import _vectorized
from kerastrain.tuning._spaces import MLPHyperModel
from kerastrain.tuning._tuner import create_tuner, search


@pytest.mark.parametrize("value, message", [
    (0, "Argument `vectorize` must be \"auto\", false or an integer >= 1"),
    (-3, "Received: vectorize=-3"),
    (1.5, "Received: vectorize=1.5"),
    ("many", "Received: vectorize='many'"),
])
def test_bad_vectorize_values_are_rejected_by_name(value, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        _vectorized.check_vectorize(value)


def test_vectorize_values_accepted():
    assert _vectorized.check_vectorize("auto") == "auto"
    assert _vectorized.check_vectorize(True) == "auto"
    assert _vectorized.check_vectorize(False) is False
    assert _vectorized.check_vectorize(16) == 16


def test_cli_bad_vectorize_is_one_line_before_anything_is_written(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "kerastrain")  # the console script
    result = subprocess.run([script, "tune", "--vectorize", "0", "--directory",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "search.vectorize" in result.stderr and "Received: search.vectorize=0" in result.stderr
    assert not (tmp_path / "out").exists()


def _tiny_tuner(tmp_path, hypermodel=None, cv=0):
    hypermodel = hypermodel or MLPHyperModel(
        input_shape=(6,), num_classes=3, layers=(1, 1), units=(4,), activations=("relu",),
        optimizers=("adam",), schedules=("constant",), l2=(0.0, 0.0), dropout=(0.0, 0.0),
        batch_norm=(False,), batch_sizes=(32,))
    return create_tuner("random", hypermodel, max_trials=1, max_epochs=1, cv=cv,
                        directory=str(tmp_path), tensorboard=False, vectorize="auto")


NO_BACKEND = "vectorized trials need the JAX or TensorFlow backend"
MLP_VECTORIZES = keras.config.backend() in ("jax", "tensorflow")


def test_cross_validation_vectorizes_on_jax_and_tensorflow_elsewhere_says_why_in_one_line(
        tmp_path):
    lines = []
    x, y = blobs(60)
    tuner = _tiny_tuner(tmp_path, cv=2)
    search(tuner, x, y, report=lines.append)
    if MLP_VECTORIZES:  # the folds are the members
        assert lines == [] and tuner.vectorize_members >= 1
    else:
        assert len(lines) == 1 and lines[0].startswith(NO_BACKEND)
        assert tuner.vectorize_members == 0
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"]


def _user_build(hp):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_user_build_function_vectorizes_on_jax_and_elsewhere_says_why(tmp_path):
    lines = []
    x, y = blobs(60)
    tuner = _tiny_tuner(tmp_path, hypermodel=_user_build)
    search(tuner, x[:40], y[:40], validation_data=(x[40:], y[40:]), report=lines.append)
    if keras.config.backend() == "jax":  # Keras's own train step, mapped over the members
        assert lines == [] and tuner.vectorize_members >= 1 and tuner.vectorized_groups
    elif MLP_VECTORIZES:
        assert lines == ["a build(hp) model's trials vectorize on the JAX backend only (pip "
                         "install -e \".[jax]\" and KERAS_BACKEND=jax); running trials one at "
                         "a time"]
    else:
        assert len(lines) == 1 and lines[0].startswith(NO_BACKEND)
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"]


class _OwnFit(keras_tuner.HyperModel):
    def build(self, hp):
        return _user_build(hp)

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, **kwargs)


@pytest.mark.parametrize("hypermodel, fit_kwargs, expected", [
    (_OwnFit(), {}, "a hypermodel with its own fit() trains its way"),
    (_user_build, {"class_weight": {0: 1.0, 1: 1.0, 2: 2.0}},
     "model.fit arguments ['class_weight'] are not vectorized"),
])
def test_a_user_model_that_cannot_vectorize_runs_one_trial_at_a_time_with_its_reason(
        tmp_path, hypermodel, fit_kwargs, expected):
    if keras.config.backend() == "tensorflow":
        expected = "a build(hp) model's trials vectorize on the JAX backend only"
    elif keras.config.backend() != "jax":
        expected = NO_BACKEND
    lines = []
    x, y = blobs(60)
    tuner = _tiny_tuner(tmp_path, hypermodel=hypermodel)
    search(tuner, x[:40], y[:40], validation_data=(x[40:], y[40:]), report=lines.append,
           **fit_kwargs)
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert tuner.vectorize_members == 0
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"]


def test_default_budget_is_64_trials_where_they_vectorize_else_8():
    from kerastrain.tuning import _config, _driver

    config = _config.default_config()
    assert config["search"]["max_trials"] == 0
    expected = 64 if MLP_VECTORIZES else 8
    assert _driver.resolve_budget(_config.default_config())["search"]["max_trials"] == expected
    sequential = _config.load_config(None, {"search": {"vectorize": False}})
    assert _driver.resolve_budget(sequential)["search"]["max_trials"] == 8
    chosen = _config.load_config(None, {"search": {"max_trials": 5}})
    assert _driver.resolve_budget(chosen)["search"]["max_trials"] == 5
