"""LSUV (Mishkin & Matas 2016) on the chapter's deep tanh network."""

import re

import keras
import numpy as np
import pytest

from kerastrain import initializers
from kerastrain.testing import TestCase


def deep_tanh(depth=10, width=32):
    layers = [keras.Input((16,))]
    layers += [keras.layers.Dense(width, activation="tanh",
                                  kernel_initializer=initializers.RandomNormal(seed=i))
               for i in range(depth)]
    return keras.Sequential(layers)


def numpy_forward(model, x):
    """Float64 forward pass; returns each Dense layer's pre-activation output."""
    outputs, h = [], x.astype(np.float64)
    for layer in model.layers:
        kernel, bias = (keras.ops.convert_to_numpy(w).astype(np.float64) for w in layer.weights)
        z = h @ kernel + bias
        outputs.append(z)
        h = np.tanh(z)
    return outputs


class LsuvTest(TestCase):
    def test_plain_gaussian_collapses_and_lsuv_gives_unit_variance(self):
        x = self.rng.normal(size=(256, 16)).astype("float32")
        model = deep_tanh()
        before = numpy_forward(model, x)
        self.assertLess(np.tanh(before[-1]).std(), 1e-6)  # N(0, 0.01): activations -> ~0
        variances = initializers.lsuv(model, x, tol=0.1, max_iter=10, seed=4)
        after = numpy_forward(model, x)
        self.assertEqual(len(after), 10)
        for layer, z in zip(model.layers, after):
            self.assertLess(abs(z.var() - 1.0), 0.1, layer.name)
            self.assertAlmostEqual(variances[layer.name], z.var(), places=4)
        self.assertGreater(np.tanh(after[-1]).std(), 0.3)

    def test_kernels_are_scaled_orthonormal(self):
        x = self.rng.normal(size=(64, 16)).astype("float32")
        model = deep_tanh(depth=3, width=8)
        initializers.lsuv(model, x, seed=1)
        for layer in model.layers:
            w = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
            gram = w.T @ w
            self.assertAllClose(gram, gram[0, 0] * np.eye(w.shape[1]), atol=1e-4)

    def test_conv_model_and_training_after(self):
        x = self.rng.normal(size=(32, 8, 8, 3)).astype("float32")
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        outputs = keras.layers.Dense(2)(keras.layers.Flatten()(h))
        model = keras.Model(inputs, outputs)
        variances = initializers.lsuv(model, x, tol=0.05)
        self.assertEqual(len(variances), 2)
        for value in variances.values():
            self.assertLess(abs(value - 1.0), 0.05)
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit(x, np.zeros((32, 2)), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))


    def test_warns_when_a_layer_does_not_converge(self):
        # A large per-unit bias adds variance that rescaling the kernel cannot remove.
        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(
            8, bias_initializer=initializers.RandomNormal(stddev=3.0, seed=0), name="biased")])
        x = self.rng.normal(size=(32, 16)).astype("float32")
        with self.assertWarnsRegex(RuntimeWarning, re.escape(
                "LSUV: layer 'biased' has output variance")) as caught:
            variances = initializers.lsuv(model, x, max_iter=3)
        self.assertIn("after 3 rescalings, outside 1 ± 0.1", str(caught.warning))
        self.assertGreater(variances["biased"], 1.1)


def _unbuilt():
    return keras.Sequential([keras.layers.Dense(2)])


BAD = [
    (dict(tol=0.0), ValueError, "Argument `tol` must be in (0, 1). Received: tol=0.0"),
    (dict(max_iter=0), ValueError, "Argument `max_iter` must be an integer >= 1. Received: max_iter=0"),
    (dict(model="m"), TypeError, "Argument `model` must be a keras.Model. Received: model='m'"),
    (dict(model=_unbuilt), ValueError, "Argument `model` must be a built Sequential or functional"),
    (dict(model=lambda: keras.Sequential([keras.Input((16,)), keras.layers.ReLU()])), ValueError,
     "Argument `model` must contain a layer with a `kernel` (Dense, Conv...)."),
    (dict(x_batch=np.ones((1, 16))), ValueError,
     "Argument `x_batch` must hold at least 2 samples to estimate a variance."),
    (dict(x_batch=np.zeros((4, 16))), ValueError,
     "outputs a constant on `x_batch` (variance 0); LSUV cannot rescale it."),
]


@pytest.mark.parametrize("overrides,error,message", BAD)
def test_bad_arguments(overrides, error, message):
    arguments = {"model": lambda: deep_tanh(depth=2, width=4),
                 "x_batch": np.random.default_rng(0).normal(size=(8, 16))}
    arguments.update(overrides)
    model = arguments.pop("model")
    model = model() if callable(model) else model
    with pytest.raises(error, match=re.escape(message)):
        initializers.lsuv(model, **arguments)
