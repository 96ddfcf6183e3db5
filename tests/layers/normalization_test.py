"""WeightNormalization and LocalResponseNormalization against float64 numpy references."""

import re

import keras
import numpy as np
import pytest

from kerastrain import layers
from kerastrain.testing import TestCase


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
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `layer` must be a layer with a `kernel` variable (Dense, Conv...). "
                "Received: layer=ReLU(name='relu')")):
            layers.WeightNormalization(keras.layers.ReLU(name="relu")).build((None, 3))
        with self.assertRaisesRegex(TypeError, re.escape(
                "Argument `layer` must be a keras.layers.Layer. Received: layer='dense'")):
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
