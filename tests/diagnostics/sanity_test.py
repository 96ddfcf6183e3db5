import math

import keras
import numpy as np

from kerastrain import diagnostics
from kerastrain.testing import TestCase


def _classifier(hidden_kwargs=None, output_kwargs=None, learning_rate=0.02, **extra):
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="tanh", name="hidden", **(hidden_kwargs or {})),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(4, activation="softmax", name="output", **(output_kwargs or {})),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), **{
        "loss": "sparse_categorical_crossentropy", **extra})
    return model


class SanityCheckTest(TestCase):
    def setUp(self):
        super().setUp()
        self.x = self.rng.normal(size=(64, 8)).astype("float32")
        self.y = self.rng.integers(0, 4, size=64)

    def test_healthy_model_passes_and_is_untouched(self):
        # Heavy L2 and dropout would stop memorization; the check removes both
        # on its copy, so 20 random labels are learned.
        model = _classifier({"kernel_regularizer": keras.regularizers.L2(10.0)})
        weights = [v.numpy().copy() for v in model.variables]
        report = diagnostics.sanity_check(model, self.x, self.y, num_samples=20)
        self.assertTrue(report.passed, str(report))
        self.assertLessEqual(report.overfit_losses[-1], report.overfit_target)
        self.assertAlmostEqual(report.overfit_target, 0.01 * report.overfit_losses[0], places=4)
        # The reference for the initial loss: cross-entropy of the predictions
        # written in numpy, against ln(C) = ln 4 (cs231n).
        probabilities = model.predict(self.x, verbose=0).astype(np.float64)
        expected = -np.mean(np.log(probabilities[np.arange(64), self.y]))
        self.assertAlmostEqual(report.initial_loss, expected, places=5)
        self.assertAlmostEqual(report.expected_initial_loss, math.log(4), places=12)
        self.assertTrue(report.initial_loss_ok)
        for variable, saved in zip(model.variables, weights):
            np.testing.assert_array_equal(variable.numpy(), saved)
        self.assertIsNotNone(model.layers[0].kernel_regularizer)
        self.assertEqual(int(model.optimizer.iterations.numpy()), 0)
        self.assertIn("passed", str(report))
        self.assertEqual(len(report.plot().axes), 2)

    def test_flags_bad_initial_loss(self):
        # A large bias on one class makes the softmax confident at init:
        # the loss is far from ln(4).
        model = _classifier(output_kwargs={
            "bias_initializer": keras.initializers.Constant([20.0, 0.0, 0.0, 0.0])})
        report = diagnostics.sanity_check(model, self.x, self.y, max_steps=2)
        self.assertFalse(report.initial_loss_ok)
        self.assertFalse(report.passed)
        self.assertIn("UNEXPECTED", str(report))

    def test_flags_failure_to_overfit(self):
        model = _classifier(learning_rate=1e-9)
        report = diagnostics.sanity_check(model, self.x, self.y, max_steps=5)
        self.assertFalse(report.overfit_passed)
        self.assertEqual(len(report.overfit_losses), 5)
        self.assertIn("could not overfit", str(report))

    def test_flags_dead_and_saturated_layers(self):
        dead = keras.Sequential([
            keras.Input((8,)),
            keras.layers.Dense(6, activation="tanh", name="saturated",
                               kernel_initializer=keras.initializers.RandomNormal(stddev=100.0)),
            keras.layers.Dense(6, activation="relu", name="dead",
                               bias_initializer=keras.initializers.Constant(-100.0)),
            keras.layers.Dense(4, activation="softmax"),
        ])
        dead.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        report = diagnostics.sanity_check(dead, self.x, self.y, max_steps=2)
        by_name = {layer.layer: layer for layer in report.layers}
        self.assertEqual(by_name["dead"].dead_fraction, 1.0)
        self.assertTrue(by_name["dead"].flagged)
        # Reference: fraction of tanh outputs with |y| > 0.99, from the layer's output in numpy.
        probe = keras.Model(dead.inputs, dead.get_layer("saturated").output)
        outputs = probe.predict(self.x, verbose=0)
        self.assertAlmostEqual(by_name["saturated"].saturated_fraction,
                               np.mean(np.abs(outputs) > 0.99), places=6)
        self.assertTrue(by_name["saturated"].flagged)
        self.assertIn("FLAGGED", str(report))

    def test_regression_has_no_class_check(self):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
        report = diagnostics.sanity_check(model, self.x, self.x[:, :1] * 2.0)
        self.assertIsNone(report.expected_initial_loss)
        self.assertIsNone(report.initial_loss_ok)
        self.assertTrue(report.overfit_passed, str(report))
        self.assertIn("not softmax classification", str(report))

    def test_bad_input(self):
        model = _classifier()
        with self.assertRaisesRegex(ValueError, "Argument `num_samples` must be an integer >= 1."
                                    " Received: num_samples=0"):
            diagnostics.sanity_check(model, self.x, self.y, num_samples=0)
        with self.assertRaisesRegex(ValueError, r"Argument `dead_threshold` must be in \[0, 1\]."
                                    " Received: dead_threshold=2"):
            diagnostics.sanity_check(model, self.x, self.y, dead_threshold=2)
        with self.assertRaisesRegex(ValueError, "Argument `y` must be an array of labels"):
            diagnostics.sanity_check(model, self.x, None)
        uncompiled = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        with self.assertRaisesRegex(ValueError, "Argument `model` must be compiled with a loss"):
            diagnostics.sanity_check(uncompiled, self.x, self.x[:, :1])
