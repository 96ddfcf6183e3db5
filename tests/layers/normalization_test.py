"""WeightNormalization and LocalResponseNormalization against float64 numpy references."""

import re

import keras
import numpy as np
import pytest

from kerastrain import layers
from kerastrain.testing import TestCase, reload_model


def numpy_lrn(x, depth_radius, bias, alpha, beta):
    """Float64, from the tf.nn.local_response_normalization docstring's formula."""
    x = x.astype(np.float64)
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        low, high = max(0, c - depth_radius), min(channels, c + depth_radius + 1)
        sqr_sum = np.sum(x[..., low:high] ** 2, axis=-1)
        out[..., c] = x[..., c] / (bias + alpha * sqr_sum) ** beta
    return out


class LocalResponseNormalizationTest(TestCase):
    def test_matches_reference_and_tensorflow(self):
        import tensorflow as tf

        x = self.rng.normal(size=(2, 3, 3, 8)).astype("float32")
        for arguments in [dict(), dict(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75),
                          dict(depth_radius=0, bias=0.5, alpha=0.3, beta=1.0)]:
            layer = layers.LocalResponseNormalization(**arguments)
            actual = keras.ops.convert_to_numpy(layer(x))
            defaults = dict(depth_radius=5, bias=1.0, alpha=1.0, beta=0.5)
            self.assertAllClose(actual, numpy_lrn(x, **{**defaults, **arguments}), rtol=1e-5)
            expected_tf = tf.nn.local_response_normalization(x, **arguments).numpy()
            self.assertAllClose(actual, expected_tf, rtol=1e-5, atol=1e-6)

    def test_errors(self):
        cases = [
            (dict(depth_radius=-1), ValueError,
             "Argument `depth_radius` must be an integer >= 0. Received: depth_radius=-1"),
            (dict(depth_radius=2.0), TypeError, "Argument `depth_radius` must be an integer."),
            (dict(bias=0.0), ValueError, "Argument `bias` must be > 0. Received: bias=0.0"),
            (dict(alpha=-1.0), ValueError, "Argument `alpha` must be >= 0. Received: alpha=-1.0"),
            (dict(beta=float("inf")), ValueError,
             "Argument `beta` must be a finite number. Received: beta=inf"),
        ]
        for kwargs, error, message in cases:
            with self.assertRaisesRegex(error, re.escape(message)):
                layers.LocalResponseNormalization(**kwargs)
        with self.assertRaisesRegex(ValueError, re.escape(
                "needs inputs with a known last (channel) axis. Received: "
                "input_shape=(None, None)")):
            layers.LocalResponseNormalization().build((None, None))


def numpy_weight_norm_init(x, v):
    """Salimans & Kingma 2016, eq. 5-6: t = v·x/‖v‖; g = 1/σ(t); b = −μ(t)/σ(t)."""
    x, v = x.astype(np.float64), v.astype(np.float64)
    t = x @ (v / np.linalg.norm(v, axis=0))
    mean, std = t.mean(0), np.sqrt(t.var(0) + 1e-10)
    return 1 / std, -mean / std


class WeightNormalizationTest(TestCase):
    def _model(self, data_init=True, activation="tanh"):
        layer = layers.WeightNormalization(
            keras.layers.Dense(3, activation=activation, bias_initializer="zeros"),
            data_init=data_init)
        return layer, keras.Sequential([keras.Input((4,)), layer])

    def test_data_init_in_fit_matches_reference(self):
        x = (2 + 3 * self.rng.normal(size=(32, 4))).astype("float32")
        layer, model = self._model()
        v = keras.ops.convert_to_numpy(layer.layer.kernel).copy()
        # Learning rate 0: the trainable values stay put, only the initialization acts.
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
        model.fit(x, np.zeros((32, 3)), batch_size=32, epochs=1, verbose=0)
        g, b = numpy_weight_norm_init(x, v)
        g_eff = keras.ops.convert_to_numpy(layer.g + layer.g_offset)
        b_eff = keras.ops.convert_to_numpy(layer.layer.bias + layer.bias_offset)
        self.assertAllClose(g_eff, g, rtol=1e-4)
        self.assertAllClose(b_eff, b, rtol=1e-4, atol=1e-5)
        pre_activation = np.arctanh(np.clip(model.predict(x, verbose=0).astype(np.float64),
                                            -1 + 1e-7, 1 - 1e-7))
        self.assertAllClose(pre_activation.mean(0), np.zeros(3), atol=1e-3)
        self.assertAllClose(pre_activation.std(0), np.ones(3), atol=1e-3)
        self.assertEqual(float(layer.initialized), 1.0)

    def test_initializes_once_then_trains_with_paper_gradients(self):
        x = self.rng.normal(size=(8, 4)).astype("float32")
        y = self.rng.normal(size=(8, 3)).astype("float32")
        layer, model = self._model(activation=None)
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        offsets = keras.ops.convert_to_numpy(layer.g_offset).copy()
        # Reference SGD step in float64 (eq. 4 of the paper): w = g v/‖v‖, y = x w + b.
        v = keras.ops.convert_to_numpy(layer.layer.kernel).astype(np.float64)
        g = keras.ops.convert_to_numpy(layer.g + layer.g_offset).astype(np.float64)
        b = keras.ops.convert_to_numpy(layer.layer.bias + layer.bias_offset).astype(np.float64)
        norm = np.linalg.norm(v, axis=0)
        w = g * v / norm
        grad_y = 2 * (x @ w + b - y) / y.size  # mean squared error
        grad_w = x.T @ grad_y
        grad_g = np.sum(grad_w * v / norm, axis=0)
        grad_v = g / norm * (grad_w - v / norm * grad_g)
        learning_rate = 0.1
        model.optimizer.learning_rate.assign(learning_rate)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        self.assertAllClose(layer.g_offset, offsets, rtol=0, atol=0)  # no second init
        self.assertAllClose(layer.g + layer.g_offset, g - learning_rate * grad_g, rtol=1e-5)
        self.assertAllClose(layer.layer.kernel, v - learning_rate * grad_v, rtol=1e-5,
                            atol=1e-6)

    def test_data_init_without_bias_gives_unit_variance(self):
        x = (1 + 2 * self.rng.normal(size=(16, 4))).astype("float32")
        layer = layers.WeightNormalization(keras.layers.Dense(3, use_bias=False))
        model = keras.Sequential([keras.Input((4,)), layer])
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
        model.fit(x, np.zeros((16, 3)), batch_size=16, epochs=1, verbose=0)
        v = keras.ops.convert_to_numpy(layer.layer.kernel)
        g, _ = numpy_weight_norm_init(x, v)
        self.assertAllClose(layer.g + layer.g_offset, g, rtol=1e-4)
        self.assertAllClose(model.predict(x, verbose=0).std(0), np.ones(3), rtol=1e-3)

    def test_without_data_init_starts_as_the_plain_layer(self):
        x = self.rng.normal(size=(5, 4)).astype("float32")
        layer, model = self._model(data_init=False)
        v = keras.ops.convert_to_numpy(layer.layer.kernel).astype(np.float64)
        self.assertAllClose(layer.g, np.linalg.norm(v, axis=0), rtol=1e-6)
        self.assertAllClose(model(x, training=True), np.tanh(x @ v), rtol=1e-5, atol=1e-6)
        self.assertEqual(float(layer.initialized), 1.0)

    def test_conv_kernel_norm_over_all_but_last_axis(self):
        layer = layers.WeightNormalization(keras.layers.Conv2D(2, 3), data_init=False)
        layer.build((None, 5, 5, 3))
        v = keras.ops.convert_to_numpy(layer.layer.kernel).astype(np.float64)
        self.assertAllClose(layer.g, np.sqrt((v**2).sum(axis=(0, 1, 2))), rtol=1e-6)

    def test_errors(self):
        # TFA: "`WeightNormalization` must wrap a layer that contains a `kernel` for weights".
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `layer` must be a layer that contains a `kernel` for weights (Dense, "
                "Conv..., or SimpleRNN / LSTM / GRU, whose cell's `recurrent_kernel` is "
                "normalized). Received: layer=ReLU(name='relu')")):
            layers.WeightNormalization(keras.layers.ReLU(name="relu")).build((None, 3))
        # TFA (and Keras's Wrapper) raise ValueError for a non-layer; so do we (also a
        # TypeError, kerastrain's rule for a wrong type).
        for error in (ValueError, TypeError):
            with self.assertRaisesRegex(error, re.escape(
                    "Argument `layer` must be a keras.layers.Layer instance. Received: "
                    "layer='dense' of type str")):
                layers.WeightNormalization("dense")
        with self.assertRaisesRegex(TypeError, re.escape(
                "Argument `data_init` must be a bool. Received: data_init=1 of type int")):
            layers.WeightNormalization(keras.layers.Dense(2), data_init=1)


@pytest.mark.parametrize("data_init", [True, False])
def test_weight_normalization_config_round_trip(data_init):
    layer = layers.WeightNormalization(keras.layers.Dense(2, activation="relu"),
                                       data_init=data_init)
    revived = layers.WeightNormalization.from_config(layer.get_config())
    assert revived.data_init is data_init
    assert revived.layer.get_config() == layer.layer.get_config()
    assert layer.get_config()["is_rnn"] is False


# TensorFlow Addons' WeightNormalization behaviours (tfa.layers.WeightNormalization, 0.23).
RECURRENT = [keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU]


def _sequences(seed=0):
    return np.random.default_rng(seed).normal(size=(6, 5, 3)).astype("float32")


@pytest.mark.parametrize("recurrent", RECURRENT, ids=lambda c: c.__name__)
def test_recurrent_layers_normalize_the_cells_recurrent_kernel(recurrent):
    # TFA: for an RNN, w = g · v / ‖v‖ with v the cell's recurrent_kernel (is_rnn=True).
    with pytest.warns(UserWarning, match="data_init=True is not applied to a recurrent"):
        layer = layers.WeightNormalization(recurrent(4))
    assert layer.is_rnn and layer.get_config()["is_rnn"] is True
    x = _sequences()
    model = keras.Sequential([keras.Input((5, 3)), layer])
    v = np.asarray(keras.ops.convert_to_numpy(layer.layer.cell.recurrent_kernel), np.float64)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.g), np.linalg.norm(v, axis=0),
                               rtol=1e-6)
    # Change g: the layer must compute with recurrent_kernel = g · v / ‖v‖ exactly.
    g = np.linspace(0.5, 2.0, v.shape[-1])
    layer.g.assign(g)
    expected_kernel = g * v / np.linalg.norm(v, axis=0)
    plain = recurrent.from_config(layer.layer.get_config())
    plain_model = keras.Sequential([keras.Input((5, 3)), plain])
    kernel, _, *rest = layer.layer.get_weights()  # [kernel, recurrent_kernel, bias]
    plain.set_weights([kernel, expected_kernel.astype("float32"), *rest])
    np.testing.assert_allclose(model.predict(x, verbose=0), plain_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("recurrent", RECURRENT, ids=lambda c: c.__name__)
def test_recurrent_trains_saves_and_removes(recurrent, tmp_path):
    x = _sequences()
    layer = layers.WeightNormalization(recurrent(4), data_init=False)
    model = keras.Sequential([keras.Input((5, 3)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    g_before = keras.ops.convert_to_numpy(layer.g).copy()
    model.fit(x, np.ones((6, 4)), epochs=2, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(layer.g), g_before)
    expected = model.predict(x, verbose=0)
    revived = reload_model(model, str(tmp_path))
    np.testing.assert_allclose(revived.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    plain = layer.remove()
    assert plain is layer.layer
    removed = keras.Sequential([keras.Input((5, 3)), plain])
    np.testing.assert_allclose(removed.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_remove_returns_the_plain_layer_with_the_effective_weights():
    # TFA's remove(): the wrapped layer, its kernel the effective g · v / ‖v‖ (here with
    # the data-dependent offsets folded in: kernel and bias both).
    x = (2 + 3 * np.random.default_rng(3).normal(size=(16, 4))).astype("float32")
    layer = layers.WeightNormalization(keras.layers.Dense(3, activation="tanh"))
    model = keras.Sequential([keras.Input((4,)), layer])
    expected = model.predict(x, verbose=0)
    plain = layer.remove()
    assert isinstance(plain, keras.layers.Dense)
    v = np.asarray(keras.ops.convert_to_numpy(plain.kernel), np.float64)
    b = np.asarray(keras.ops.convert_to_numpy(plain.bias), np.float64)
    np.testing.assert_allclose(np.tanh(x @ v + b), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.Sequential([keras.Input((4,)), plain]).predict(
        x, verbose=0), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("first_call", ["predict", "call", "fit"])
def test_data_init_on_the_first_call_of_any_kind_exactly_once(first_call):
    # TFA initializes on the first call (a tf.cond on `_initialized`), whatever it is.
    x = (2 + 3 * np.random.default_rng(4).normal(size=(16, 4))).astype("float32")
    layer = layers.WeightNormalization(keras.layers.Dense(3))
    model = keras.Sequential([keras.Input((4,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    if first_call == "predict":
        model.predict(x, batch_size=16, verbose=0)
    elif first_call == "call":
        model(x)
    else:
        model.fit(x, np.zeros((16, 3)), batch_size=16, verbose=0)
    assert float(keras.ops.convert_to_numpy(layer.initialized)) == 1.0
    v = keras.ops.convert_to_numpy(layer.layer.kernel)
    g, b = numpy_weight_norm_init(x, v)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.g + layer.g_offset), g,
                               rtol=1e-4)
    # Exactly once: other data afterwards leaves the initialization as it was.
    offsets = keras.ops.convert_to_numpy(layer.g_offset).copy()
    out = model.predict(5 * x, batch_size=16, verbose=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.g_offset), offsets)
    np.testing.assert_allclose(out.std(0), 5 * np.ones(3), rtol=1e-3)


def test_inside_time_distributed():
    # TFA's test_with_time_dist: TimeDistributed(WeightNormalization(Conv2D)).
    x = np.random.default_rng(5).normal(size=(2, 3, 6, 6, 2)).astype("float32")
    inputs = keras.Input((3, 6, 6, 2))
    wrapped = layers.WeightNormalization(keras.layers.Conv2D(3, 3), data_init=False)
    outputs = keras.layers.TimeDistributed(wrapped)(inputs)
    model = keras.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, 3, 4, 4, 3)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    model.fit(x, np.zeros((2, 3, 4, 4, 3)), verbose=0)
    plain = keras.layers.Conv2D(3, 3)
    plain.build((None, 6, 6, 2))
    v = keras.ops.convert_to_numpy(wrapped.layer.kernel)
    g = keras.ops.convert_to_numpy(wrapped.g)
    plain.set_weights([g * v / np.sqrt((v ** 2).sum(axis=(0, 1, 2))),
                       keras.ops.convert_to_numpy(wrapped.layer.bias)])
    expected = np.stack([keras.ops.convert_to_numpy(plain(x[:, t])) for t in range(3)], 1)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
