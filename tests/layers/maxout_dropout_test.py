"""Maxout, MCDropout / mc_predict, and the locked-dropout decision."""

import re

import keras
import numpy as np
import pytest

from kerastrain import layers
from kerastrain.testing import TestCase


def numpy_maxout(x, num_units, axis=-1):
    """TensorFlow Addons' semantics: view axis as (C / num_units, num_units), max over the first."""
    x = np.moveaxis(x.astype(np.float64), axis, -1)
    groups = x.shape[-1] // num_units
    out = x.reshape(*x.shape[:-1], groups, num_units).max(axis=-2)
    return np.moveaxis(out, -1, axis)


class MaxoutTest(TestCase):
    def test_matches_reference(self):
        x = self.rng.normal(size=(4, 12)).astype("float32")
        for num_units in [1, 3, 4, 12]:
            self.assertAllClose(layers.Maxout(num_units)(x), numpy_maxout(x, num_units))

    def test_unit_j_is_max_over_strided_features(self):
        # Goodfellow et al. 2013: h_j = max_i z_ij; with TFA's layout z_ij = x[i·units + j].
        x = np.array([[1.0, 8.0, 3.0, 5.0, 2.0, 7.0]])
        self.assertAllClose(layers.Maxout(3)(x), [[5.0, 8.0, 7.0]])

    def test_channel_axis_of_images(self):
        x = self.rng.normal(size=(2, 6, 3, 3)).astype("float32")
        layer = layers.Maxout(2, axis=1)
        self.assertAllClose(layer(x), numpy_maxout(x, 2, axis=1))
        self.assertEqual(layer.compute_output_shape((None, 6, 3, 3)), (None, 2, 3, 3))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `num_units` must divide the number of features on axis -1 (10). "
                "Received: num_units=4")):
            layers.Maxout(4)(np.ones((2, 10)))
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `axis` must name a non-batch axis of inputs of rank 2. "
                "Received: axis=0")):
            layers.Maxout(2, axis=0).build((None, 4))
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `num_units` must be an integer >= 1. Received: num_units=0")):
            layers.Maxout(0)
        with self.assertRaisesRegex(TypeError, re.escape(
                "Argument `axis` must be an integer. Received: axis=None")):
            layers.Maxout(2, axis=None)


class MCDropoutTest(TestCase):
    def _model(self, rate):
        return keras.Sequential([keras.Input((2000,)), layers.MCDropout(rate, seed=7)])

    def test_active_in_predict_with_inverted_scaling(self):
        x = np.ones((1, 2000), dtype="float32")
        output = self._model(0.3).predict(x, verbose=0)
        kept = output != 0
        self.assertAllClose(output[kept], np.full(kept.sum(), 1 / 0.7), rtol=1e-6)
        self.assertAlmostEqual(1 - kept.mean(), 0.3, delta=0.04)  # 4.4 binomial σ
        self.assertAllClose(keras.layers.Dropout(0.3)(x), x)  # plain dropout is off

    def test_mc_predict_matches_bernoulli_moments(self):
        # Each output is c·m/(1 − p), m ~ Bernoulli(1 − p): mean c, variance c²·p/(1 − p).
        c, p, samples = 2.0, 0.25, 20
        mean, std = layers.mc_predict(self._model(p), np.full((1, 2000), c, "float32"),
                                      samples=samples)
        self.assertEqual(mean.dtype, np.float64)
        self.assertEqual(mean.shape, (1, 2000))
        self.assertAlmostEqual(mean.mean(), c, delta=0.03)
        # E[population variance over T samples] = (T − 1)/T · σ².
        expected = (samples - 1) / samples * c**2 * p / (1 - p)
        self.assertAlmostEqual((std**2).mean(), expected, delta=0.05 * expected)

    def test_mc_predict_equals_numpy_over_the_same_passes(self):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                                  layers.MCDropout(0.5, seed=1), keras.layers.Dense(2)])
        x = self.rng.normal(size=(5, 3)).astype("float32")
        state = model.layers[1].seed_generator.state
        start = keras.ops.convert_to_numpy(state).copy()
        mean, std = layers.mc_predict(model, x, samples=6)
        state.assign(start)  # replay the same six dropout masks
        passes = np.stack([model.predict(x, verbose=0) for _ in range(6)]).astype(np.float64)
        self.assertGreater(passes.std(0).max(), 0.0)
        self.assertAllClose(mean, passes.mean(0), rtol=1e-6)
        self.assertAllClose(std, passes.std(0), rtol=1e-5, atol=1e-6)

    def test_multi_output_model(self):
        inputs = keras.Input((2000,))
        dropped = layers.MCDropout(0.5, seed=2)(inputs)
        model = keras.Model(inputs, {"same": dropped, "double": 2 * dropped})
        mean, std = layers.mc_predict(model, np.ones((1, 2000), "float32"), samples=4)
        self.assertEqual(set(mean), {"same", "double"})
        self.assertAllClose(mean["double"], 2 * mean["same"], rtol=1e-12)
        self.assertAllClose(std["double"], 2 * std["same"], rtol=1e-12)

    def test_errors(self):
        for rate in [1.0, -0.1]:
            with self.assertRaisesRegex(ValueError, re.escape(
                    f"Argument `rate` must be in [0, 1). Received: rate={rate}")):
                layers.MCDropout(rate)
        plain = keras.Sequential([keras.Input((2,)), keras.layers.Dropout(0.5)])
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `model` must contain an MCDropout layer, or every pass is the same.")):
            layers.mc_predict(plain, np.ones((1, 2)))
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `samples` must be an integer >= 2. Received: samples=1")):
            layers.mc_predict(self._model(0.1), np.ones((1, 2000)), samples=1)
        with self.assertRaisesRegex(TypeError, re.escape(
                "Argument `model` must be a keras.Model. Received: model='m'")):
            layers.mc_predict("m", np.ones((1, 2)))


@pytest.mark.parametrize("make", [
    lambda rate: keras.layers.SpatialDropout1D(rate),
    lambda rate: keras.layers.Dropout(rate, noise_shape=(None, 1, None)),
], ids=["SpatialDropout1D", "Dropout-noise_shape"])
def test_keras_has_locked_dropout(make):
    # The decision not to add LockedDropout: Keras's layers already share one mask over time.
    x = np.ones((3, 7, 50), dtype="float32")
    output = keras.ops.convert_to_numpy(make(0.5)(x, training=True))
    np.testing.assert_array_equal(output, np.repeat(output[:, :1], 7, axis=1))
    assert 0 < np.mean(output == 0) < 1


def test_keras_recurrent_dropout_reuses_one_mask_across_time_steps():
    # Documented claim: `recurrent_dropout` is variational (one mask per sequence).
    layer = keras.layers.LSTM(8, recurrent_dropout=0.5)
    layer.build((None, 5, 3))
    state = np.ones((2, 8), dtype="float32")
    first = layer.cell.get_recurrent_dropout_mask(state)
    second = layer.cell.get_recurrent_dropout_mask(state)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(first),
                                  keras.ops.convert_to_numpy(second))
    assert 0 < np.mean(keras.ops.convert_to_numpy(first) == 0) < 1
