import warnings

import keras
import numpy as np
import pytest

from kerastrain import diagnostics
from kerastrain.testing import TestCase


class WrongSine(keras.layers.Layer):
    """sin(x), with a planted wrong derivative: sin'(x) claimed to be sin(x)."""

    def call(self, inputs):
        @keras.ops.custom_gradient
        def wrong_sin(x):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return upstream * keras.ops.sin(x)  # should be cos(x)

            return keras.ops.sin(x), grad

        return wrong_sin(inputs)


def _data(rng, classes=3):
    x = rng.normal(size=(12, 4)).astype("float32")
    return x, rng.integers(0, classes, size=12)


@pytest.fixture(autouse=True)
def _inject(request, make_quadratic):
    request.instance.make_quadratic = make_quadratic


class GradientCheckTest(TestCase):
    def test_standard_layers_pass(self):
        x, y = _data(self.rng)
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(6, activation="tanh", kernel_regularizer="l2"),
            keras.layers.BatchNormalization(),
            keras.layers.LayerNormalization(),
            keras.layers.Reshape((6, 1)),
            keras.layers.Conv1D(2, 3, activation="sigmoid"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        before = [v.numpy().copy() for v in model.weights]
        result = diagnostics.gradient_check(model, x, y, seed=0)
        self.assertTrue(result.passed, str(result))
        self.assertEqual(len(result.layers), 5)
        for layer in result.layers:
            self.assertIn(layer.status, ("good", "acceptable"))
            self.assertLess(layer.max_relative_error, 1e-6)
        for after, saved in zip(model.weights, before):
            np.testing.assert_array_equal(after.numpy(), saved)
        self.assertIn("passed", str(result))
        self.assertEqual(len(result.plot().axes), 1)

    def test_catches_planted_wrong_gradient(self):
        x, y = _data(self.rng)
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(5, name="before"),
            WrongSine(),
            keras.layers.Dense(3, activation="softmax", name="after"),
        ])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        result = diagnostics.gradient_check(model, x, y, seed=0)
        self.assertFalse(result.passed)
        statuses = {layer.layer.split("/")[-1]: layer.status for layer in result.layers}
        # Layers upstream of the broken op receive a wrong gradient; the one after does not.
        self.assertEqual(statuses["before"], "wrong")
        self.assertIn(statuses["after"], ("good", "acceptable"))
        self.assertIn("FAILED", str(result))

    def test_relative_error_matches_numpy_reference(self):
        # f(a, b) = 2a^2 - b^2 at (0.3, -0.7): gradient (4a, -2b) = (1.2, 1.4)
        # written here from the formula; central differences are exact for a
        # quadratic up to rounding.
        model, x, y = self.make_quadratic([2.0, -1.0], [0.3, -0.7])
        result = diagnostics.gradient_check(model, x, y, seed=0)
        analytic = {row[1]: row[2] for row in result.coordinates}
        self.assertAllClose([analytic[0], analytic[1]], [1.2, 1.4], rtol=1e-6)
        self.assertTrue(all(row[4] < 1e-7 for row in result.coordinates))

    def test_kink_is_detected_and_ignored(self):
        # A ReLU unit whose input is exactly 0 on a sample: its kernel entries
        # sit on a kink; the check warns and leaves them out.
        x = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
        y = np.array([[1.0], [2.0]], "float32")
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="relu")])
        model.compile(optimizer="sgd", loss="mse")
        model.set_weights([np.array([[0.0], [1.0]], "float32"), np.zeros(1, "float32")])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = diagnostics.gradient_check(model, x, y, seed=0)
        self.assertGreater(result.num_kinks, 0)
        self.assertTrue(any("kink" in str(w.message) for w in caught))
        self.assertTrue(result.passed, str(result))

    def test_not_compiled(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        x, y = _data(self.rng)
        with self.assertRaisesRegex(ValueError, "Argument `model` must be compiled with a loss. "
                                    "Received: model=.*Call `model.compile"):
            diagnostics.gradient_check(model, x, y)

    def test_missing_labels(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(loss="mse")
        x, _ = _data(self.rng)
        with self.assertRaisesRegex(ValueError, "Argument `y` must be an array of labels. "
                                    "Received: y=None This diagnostic computes the loss"):
            diagnostics.gradient_check(model, x, None)

    def test_bad_arguments(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(loss="mse")
        x, y = _data(self.rng)
        with self.assertRaisesRegex(ValueError, r"Argument `epsilon` must be > 0. "
                                    "Received: epsilon=0"):
            diagnostics.gradient_check(model, x, y, epsilon=0)
        with self.assertRaisesRegex(ValueError, "Argument `dtype` must be one of 'float64', "
                                    "'float32'. Received: dtype='float16'"):
            diagnostics.gradient_check(model, x, y, dtype="float16")
        with self.assertRaisesRegex(TypeError, "Argument `model` must be a keras.Model"):
            diagnostics.gradient_check("model", x, y)
        with self.assertRaisesRegex(ValueError, r"Argument `y` must have as many rows as `x` "
                                    r"\(12\) and at least one. Received: y='3 rows'"):
            diagnostics.gradient_check(model, x, y[:3])
