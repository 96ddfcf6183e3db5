"""TensorFlow Addons code, with only the import changed, runs on kerastrain (TF and JAX).

Each test starts with the code a TFA user wrote (``tfa.optimizers.X`` /
``tfa.layers.X``, ``tf.keras`` written ``keras`` as Keras 3 requires), with
``tfa`` bound to kerastrain's classes instead of ``import tensorflow_addons
as tfa``; it trains, saves a ``.keras`` file and reloads it without
``custom_objects``. Then the TFA behaviours the README's migration table
promises, each against TFA's documented formula or behaviour
(tensorflow_addons 0.23: optimizers/cyclical_learning_rate.py,
optimizers/lookahead.py, layers/maxout.py).
"""

import math
import re
import types

import keras
import numpy as np
import pytest

from kerastrain import layers, optimizers, schedules
from kerastrain.testing import reload_model

# The one changed line: `import tensorflow_addons as tfa` becomes this namespace.
tfa = types.SimpleNamespace(
    optimizers=types.SimpleNamespace(
        CyclicalLearningRate=schedules.CyclicalLearningRate,
        TriangularCyclicalLearningRate=schedules.TriangularCyclicalLearningRate,
        Triangular2CyclicalLearningRate=schedules.Triangular2CyclicalLearningRate,
        ExponentialCyclicalLearningRate=schedules.ExponentialCyclicalLearningRate,
        Lookahead=optimizers.Lookahead,
    ),
    layers=types.SimpleNamespace(WeightNormalization=layers.WeightNormalization,
                                 Maxout=layers.Maxout),
)


@keras.saving.register_keras_serializable(package="tfa_migration")
def halve_each_cycle(x):
    return 1 / (2.0 ** (x - 1))


def _data(features=4, outputs=1, samples=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(samples, features)).astype("float32"),
            rng.normal(size=(samples, outputs)).astype("float32"))


def _train_save_reload(model, x, y, tmp_path, loss="mse"):
    """Train two epochs (the loss must move), save, reload; predictions must agree."""
    if not model.compiled:
        model.compile(optimizer="adam", loss=loss)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    expected = model.predict(x, verbose=0)
    revived = reload_model(model, str(tmp_path))
    np.testing.assert_allclose(revived.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    return revived


def _mlp(optimizer, features=4):
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


# --- One TFA-style script per class -----------------------------------------------------

@pytest.mark.parametrize("make_schedule", [
    lambda: tfa.optimizers.CyclicalLearningRate(
        initial_learning_rate=1e-4, maximal_learning_rate=1e-2, step_size=2,
        scale_fn=halve_each_cycle, scale_mode="cycle"),
    lambda: tfa.optimizers.TriangularCyclicalLearningRate(
        initial_learning_rate=1e-4, maximal_learning_rate=1e-2, step_size=2),
    lambda: tfa.optimizers.Triangular2CyclicalLearningRate(
        initial_learning_rate=1e-4, maximal_learning_rate=1e-2, step_size=2),
    lambda: tfa.optimizers.ExponentialCyclicalLearningRate(
        initial_learning_rate=1e-4, maximal_learning_rate=1e-2, step_size=2, gamma=0.96),
], ids=["Cyclical", "Triangular", "Triangular2", "Exponential"])
def test_cyclical_learning_rate_script(make_schedule, tmp_path):
    lr_schedule = make_schedule()
    model = _mlp(keras.optimizers.SGD(learning_rate=lr_schedule))
    x, y = _data()
    revived = _train_save_reload(model, x, y, tmp_path)
    revived_schedule = revived.optimizer._learning_rate
    assert type(revived_schedule) is type(lr_schedule)
    steps = np.arange(12)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(revived_schedule(steps)),
                               keras.ops.convert_to_numpy(lr_schedule(steps)), rtol=1e-7)


def test_lookahead_script(tmp_path):
    opt = tfa.optimizers.Lookahead("adam", sync_period=6, slow_step_size=0.5)
    model = _mlp(opt)
    x, y = _data()
    revived = _train_save_reload(model, x, y, tmp_path)
    assert isinstance(revived.optimizer, optimizers.Lookahead)
    assert isinstance(revived.optimizer.inner_optimizer, keras.optimizers.Adam)


def test_weight_normalization_script(tmp_path):
    model = keras.Sequential([
        keras.Input((4,)),
        tfa.layers.WeightNormalization(keras.layers.Dense(8, activation="relu"), data_init=True),
        tfa.layers.WeightNormalization(keras.layers.Dense(1), data_init=False),
    ])
    x, y = _data()
    _train_save_reload(model, x, y, tmp_path)


@pytest.mark.slow  # an LSTM fit, save and reload: ~7 s on JAX
def test_weight_normalization_rnn_script(tmp_path):
    model = keras.Sequential([
        keras.Input((5, 3)),
        tfa.layers.WeightNormalization(keras.layers.LSTM(4), data_init=False),
        keras.layers.Dense(1),
    ])
    x = np.random.default_rng(1).normal(size=(8, 5, 3)).astype("float32")
    _train_save_reload(model, x, np.ones((8, 1), "float32"), tmp_path)


def test_maxout_script(tmp_path):
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(12),
        tfa.layers.Maxout(4),
        keras.layers.Dense(1),
    ])
    x, y = _data()
    _train_save_reload(model, x, y, tmp_path)


# --- TFA behaviours -------------------------------------------------------------------

def tfa_cyclical(initial, maximal, step_size, scale, scale_mode, steps):
    """TFA's CyclicalLearningRate.__call__ formula, in float64."""
    steps = np.asarray(steps, np.float64)
    cycle = np.floor(1 + steps / (2 * step_size))
    x = np.abs(steps / step_size - 2 * cycle + 1)
    mode_step = cycle if scale_mode == "cycle" else steps
    return initial + (maximal - initial) * np.maximum(0.0, 1 - x) * scale(mode_step)


def test_scale_fn_any_callable_round_trips_in_memory():
    # TFA's get_config() held the callable itself: from_config(get_config()) kept it.
    scale_fn = lambda x: 1 / (1 + 0.1 * x)  # noqa: E731 (TFA's docs pass lambdas)
    schedule = tfa.optimizers.CyclicalLearningRate(0.01, 0.1, 5, scale_fn=scale_fn)
    config = schedule.get_config()
    assert config["scale_fn"](3.0) == scale_fn(3.0)
    revived = tfa.optimizers.CyclicalLearningRate.from_config(config)
    assert revived.scale_fn is scale_fn
    steps = np.arange(40)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(revived(steps)),
                               tfa_cyclical(0.01, 0.1, 5, scale_fn, "cycle", steps), rtol=1e-6)


def test_unregistered_scale_fn_save_error_names_the_fix(tmp_path):
    schedule = tfa.optimizers.CyclicalLearningRate(0.01, 0.1, 5, scale_fn=lambda x: 0.9 ** x)
    model = _mlp(keras.optimizers.SGD(schedule))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `scale_fn` must be registered with "
            "keras.saving.register_keras_serializable to be saved.")):
        model.save(str(tmp_path / "model.keras"))


def test_exponential_cyclical_gamma_power_without_float32_loss():
    # TFA's formula with scale_fn = gamma ** step, in float64; ours computes in float32
    # (Keras's floatx). step_size 512 keeps the triangle exact in float32, so what is
    # measured is gamma ** step: ops.power(float32(gamma), step) is 3e-5 off at step 1000.
    gamma, steps = 0.9995, np.arange(0, 3000, 7)
    schedule = tfa.optimizers.ExponentialCyclicalLearningRate(1e-3, 1e-2, 512, gamma=gamma)
    ours = keras.ops.convert_to_numpy(schedule(steps)).astype(np.float64)
    expected = tfa_cyclical(1e-3, 1e-2, 512, lambda s: gamma ** s, "iterations", steps)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_maxout_unknown_feature_dimension():
    # TFA's Maxout resolves an unknown (None) feature dimension when called.
    inputs = keras.Input((None,))
    outputs = tfa.layers.Maxout(3)(inputs)
    assert tuple(outputs.shape) == (None, 3)
    model = keras.Model(inputs, outputs)
    x = np.arange(24, dtype="float32").reshape(2, 12)
    expected = x.reshape(2, 4, 3).max(axis=1)  # TFA: view as (C / num_units, num_units)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `num_units` must divide the number of features on axis -1 (10). "
            "Received: num_units=3")):
        tfa.layers.Maxout(3)(np.ones((2, 10), "float32"))


@pytest.mark.parametrize("name, expected", [("adam", keras.optimizers.Adam),
                                            ("sgd", keras.optimizers.SGD),
                                            ("rmsprop", keras.optimizers.RMSprop)])
def test_lookahead_accepts_an_optimizer_name(name, expected):
    # TFA: `optimizer = tf.keras.optimizers.get(optimizer)` when given a string.
    lookahead = tfa.optimizers.Lookahead(name)
    assert isinstance(lookahead.inner_optimizer, expected)  # torch: a backend subclass


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.Variable is TensorFlow's")
def test_lookahead_updates_plain_tf_variables():
    import tensorflow as tf

    variable = tf.Variable([1.0, 2.0])
    lookahead = tfa.optimizers.Lookahead(keras.optimizers.SGD(0.1), sync_period=2,
                                         slow_step_size=0.5)
    for _ in range(2):
        lookahead.apply_gradients([(tf.constant([1.0, 1.0]), variable)])
    # Zhang et al. 2019, k = 2, α = 0.5: fast 1 → 0.9 → 0.8; slow 1 + 0.5·(0.8 − 1) = 0.9.
    np.testing.assert_allclose(variable.numpy(), [0.9, 1.9], rtol=1e-6)
    assert math.isclose(float(lookahead.iterations.numpy()), 2)
