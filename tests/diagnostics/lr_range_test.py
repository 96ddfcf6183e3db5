import warnings

import keras
import numpy as np

from kerastrain import diagnostics
from kerastrain.testing import TestCase


def _linear_regression(rng):
    x = (rng.normal(size=(128, 4)) * np.array([1.0, 2.0, 3.0, 0.5])).astype("float32")
    y = (x @ rng.normal(size=(4, 1)) + 0.1).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    return model, x, y


class LRRangeTest(TestCase):
    def test_suggestions_in_stable_range(self):
        # Full-batch gradient descent on the mean squared error of a linear
        # model is stable iff lr < 2 / L, L the largest eigenvalue of the
        # Hessian 2 X^T X / n (X with a column of ones for the bias).
        model, x, y = _linear_regression(self.rng)
        design = np.c_[x, np.ones(len(x))].astype(np.float64)
        stable = 2 / np.linalg.eigvalsh(2 * design.T @ design / len(x)).max()
        result = diagnostics.lr_range_test(
            model, x, y, start_lr=1e-4, end_lr=10.0, num_steps=100, batch_size=128, seed=0
        )
        self.assertLess(result.valley, stable)
        self.assertLess(result.minimum_over_10, stable)
        self.assertEqual(result.suggestion, result.valley)
        self.assertLess(result.steepest, result.divergence)
        self.assertGreater(result.divergence, stable)
        self.assertTrue(result.stop_reason.startswith("stopped: diverged"))
        self.assertEqual(set(result.suggestions), {"steepest", "valley", "minimum/10",
                                                    "divergence"})
        text = str(result)
        for name in ("steepest", "valley", "minimum/10", "divergence"):
            self.assertIn(name, text)
        labels = [line.get_label() for line in result.plot().axes[0].get_lines()]
        for name in ("steepest", "valley", "minimum/10", "divergence"):
            self.assertTrue(any(label.startswith(name) for label in labels), labels)

    def test_per_batch_loss_and_schedule_match_reference(self):
        # Reference: plain gradient descent on the MSE written in numpy float64,
        # lr_i = start * (end / start) ** (i / (n - 1)), loss before each update.
        model, x, y = _linear_regression(self.rng)
        kernel, bias = (np.asarray(v.numpy(), np.float64) for v in model.trainable_variables)
        result = diagnostics.lr_range_test(
            model, x, y, start_lr=1e-3, end_lr=1e-1, num_steps=8, batch_size=128, seed=0
        )
        rates = 1e-3 * 100.0 ** (np.arange(8) / 7)
        expected = []
        for rate in rates:
            error = x @ kernel + bias - y
            expected.append(np.mean(error**2))
            kernel = kernel - rate * 2 * x.T @ error / len(x)
            bias = bias - rate * 2 * error.mean(axis=0)
        self.assertAllClose(result.learning_rates, rates, rtol=1e-12)
        self.assertAllClose(result.losses, expected, rtol=1e-4)
        beta, average, smoothed = 0.98, 0.0, []
        for i, loss in enumerate(result.losses):
            average = beta * average + (1 - beta) * loss
            smoothed.append(average / (1 - beta ** (i + 1)))
        self.assertAllClose(result.smoothed_losses, smoothed, rtol=1e-12)
        self.assertIsNone(result.divergence)

    def test_weights_and_optimizer_restored_bit_identically(self):
        model, x, y = _linear_regression(self.rng)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
        model.fit(x, y, epochs=1, verbose=0)  # the optimizer has state now
        weights = [v.numpy().copy() for v in model.variables]
        slots = [v.numpy().copy() for v in model.optimizer.variables]
        diagnostics.lr_range_test(model, x, y, num_steps=20, seed=0)
        for variable, saved in zip(model.variables, weights):
            np.testing.assert_array_equal(variable.numpy(), saved)
        for variable, saved in zip(model.optimizer.variables, slots):
            np.testing.assert_array_equal(variable.numpy(), saved)

    def test_non_finite_loss_stops_and_restores(self):
        model, x, y = _linear_regression(self.rng)
        weights = [v.numpy().copy() for v in model.variables]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = diagnostics.lr_range_test(
                model, x * 1e15, y, start_lr=1e10, end_lr=1e20, num_steps=50,
                divergence_threshold=1e300, seed=0,
            )
        self.assertTrue(result.stop_reason.startswith("stopped: non-finite loss"), result)
        self.assertFalse(np.isfinite(result.losses[-1]))
        self.assertTrue(any("non-finite" in str(w.message) or "loss is" in str(w.message)
                            for w in caught))
        for variable, saved in zip(model.variables, weights):
            np.testing.assert_array_equal(variable.numpy(), saved)

    def test_bad_input(self):
        model, x, y = _linear_regression(self.rng)
        with self.assertRaisesRegex(ValueError, r"Argument `end_lr` must be larger than "
                                    r"`start_lr` \(0.1\). Received: end_lr=0.01"):
            diagnostics.lr_range_test(model, x, y, start_lr=0.1, end_lr=0.01)
        with self.assertRaisesRegex(ValueError, "Argument `start_lr` must be > 0. "
                                    "Received: start_lr=0"):
            diagnostics.lr_range_test(model, x, y, start_lr=0)
        with self.assertRaisesRegex(ValueError, "Argument `num_steps` must be an integer >= 2. "
                                    "Received: num_steps=1"):
            diagnostics.lr_range_test(model, x, y, num_steps=1)
        with self.assertRaisesRegex(ValueError, r"Argument `smoothing` must be in \[0, 1\). "
                                    "Received: smoothing=1"):
            diagnostics.lr_range_test(model, x, y, smoothing=1)
        with self.assertRaisesRegex(ValueError, "Argument `divergence_threshold` must be > 1. "
                                    "Received: divergence_threshold=1"):
            diagnostics.lr_range_test(model, x, y, divergence_threshold=1)
        with self.assertRaisesRegex(ValueError, "Argument `y` must be an array of labels"):
            diagnostics.lr_range_test(model, x, None)
        uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        with self.assertRaisesRegex(ValueError, "Argument `model` must be compiled with a loss"):
            diagnostics.lr_range_test(uncompiled, x, y)
