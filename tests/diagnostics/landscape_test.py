import keras
import numpy as np
import pytest

from kerastrain import diagnostics
from kerastrain.testing import TestCase


@pytest.fixture(autouse=True)
def _inject(request, tiny_mlp, make_quadratic):
    request.instance.mlp = tiny_mlp
    request.instance.make_quadratic = make_quadratic


def _bn_model(seed, x, y):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    return model


class LossLandscapeTest(TestCase):
    def test_1d_matches_reference(self):
        # Reference: the test's float64 numpy MLP evaluated at theta + alpha d.
        before = [v.numpy().copy() for v in self.mlp.model.weights]
        result = diagnostics.loss_landscape_1d(
            self.mlp.model, self.mlp.x, self.mlp.y, num_points=7, seed=0
        )
        expected = self.mlp.losses(self.mlp.theta + result.alphas[:, None] * result.direction)
        self.assertAllClose(result.losses, expected, rtol=1e-10)
        self.assertAllClose(result.losses[3], self.mlp.losses(self.mlp.theta)[0], rtol=1e-10)
        for after, saved in zip(self.mlp.model.weights, before):
            np.testing.assert_array_equal(after.numpy(), saved)
        self.assertIn("filter-normalized", str(result))
        self.assertEqual(len(result.plot().axes), 1)

    def test_filter_normalization(self):
        # Li et al. (2018), eq. (1): d_ij <- d_ij / ||d_ij|| * ||theta_ij|| per filter
        # (a Keras kernel's last axis); biases get a zero direction.
        result = diagnostics.loss_landscape_1d(
            self.mlp.model, self.mlp.x, self.mlp.y, num_points=2, seed=1
        )
        kernel_1 = result.direction[:15].reshape(3, 5)
        bias_1 = result.direction[15:20]
        theta_1 = self.mlp.theta[:15].reshape(3, 5)
        self.assertAllClose(np.linalg.norm(kernel_1, axis=0), np.linalg.norm(theta_1, axis=0),
                            rtol=1e-8)
        self.assertAllClose(bias_1, np.zeros(5))
        layer = diagnostics.loss_landscape_1d(
            self.mlp.model, self.mlp.x, self.mlp.y, num_points=2, normalization="layer",
            ignore_bias_and_norm=False, seed=1,
        )
        self.assertAllClose(np.linalg.norm(layer.direction[:15]), np.linalg.norm(theta_1),
                            rtol=1e-8)
        self.assertAllClose(layer.direction[15:20], self.mlp.theta[15:20])

    def test_2d_matches_reference_and_plots(self):
        result = diagnostics.loss_landscape_2d(
            self.mlp.model, self.mlp.x, self.mlp.y, num_points=3, seed=0
        )
        first, second = result.directions
        grid = [self.mlp.theta + a * first + b * second for b in result.betas
                for a in result.alphas]
        self.assertAllClose(result.losses.ravel(), self.mlp.losses(np.array(grid)), rtol=1e-10)
        self.assertAlmostEqual(result.center_loss, self.mlp.losses(self.mlp.theta)[0], places=10)
        self.assertIn("3x3 grid", str(result))
        self.assertEqual(len(result.plot("contour").axes), 1)
        self.assertEqual(result.plot("surface").axes[0].name, "3d")
        with self.assertRaisesRegex(ValueError, "Argument `kind` must be one of 'contour', "
                                    "'surface'. Received: kind='bar'"):
            result.plot("bar")

    def test_batch_norm_statistics(self):
        x = self.rng.normal(size=(16, 3)).astype("float32")
        y = self.rng.integers(0, 3, size=16)
        model = _bn_model(0, x, y)
        moving = diagnostics.loss_landscape_1d(model, x, y, num_points=3, seed=0)
        batch = diagnostics.loss_landscape_1d(model, x, y, num_points=3, batch_norm="batch",
                                              seed=0)
        self.assertAlmostEqual(moving.losses[1], model.evaluate(x, y, verbose=0), places=5)
        # Training mode normalizes with the batch's own statistics instead.
        self.assertGreater(abs(batch.losses[1] - moving.losses[1]), 1e-4)

    def test_bad_arguments(self):
        args = (self.mlp.model, self.mlp.x, self.mlp.y)
        with self.assertRaisesRegex(ValueError, "Argument `normalization` must be one of "
                                    "'filter', 'layer', 'none'. Received: normalization='unit'"):
            diagnostics.loss_landscape_1d(*args, normalization="unit")
        with self.assertRaisesRegex(ValueError, "Argument `batch_norm` must be one of 'moving', "
                                    "'batch'. Received: batch_norm='train'"):
            diagnostics.loss_landscape_2d(*args, batch_norm="train")
        with self.assertRaisesRegex(ValueError, "Argument `distance` must be > 0. "
                                    "Received: distance=-1"):
            diagnostics.loss_landscape_1d(*args, distance=-1)
        with self.assertRaisesRegex(TypeError, "Argument `ignore_bias_and_norm` must be a bool"):
            diagnostics.loss_landscape_1d(*args, ignore_bias_and_norm="yes")


class InterpolateTest(TestCase):
    def test_matches_reference(self):
        from_a = self.mlp
        other = type(self.mlp)(seed=1)
        result = diagnostics.interpolate(from_a.model, other.model, from_a.x, from_a.y,
                                         num_points=5, validation_data=(other.x, other.y))
        thetas = (1 - result.alphas[:, None]) * from_a.theta + result.alphas[:, None] * other.theta
        self.assertAllClose(result.losses, from_a.losses(thetas), rtol=1e-10)
        self.assertAllClose(result.validation_losses, other.losses(thetas), rtol=1e-10)
        self.assertEqual(len(result.plot().axes[0].get_lines()), 2)

    def test_batch_norm_statistics_interpolated(self):
        x = self.rng.normal(size=(16, 3)).astype("float32")
        y = self.rng.integers(0, 3, size=16)
        model_a, model_b = _bn_model(0, x, y), _bn_model(1, x, y)
        result = diagnostics.interpolate(model_a, model_b, x, y, num_points=3, start=0.0,
                                         end=1.0)
        self.assertAlmostEqual(result.losses[0], model_a.evaluate(x, y, verbose=0), places=5)
        self.assertAlmostEqual(result.losses[-1], model_b.evaluate(x, y, verbose=0), places=5)

    def test_bad_arguments(self):
        other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
        other.compile(loss="mse")
        with self.assertRaisesRegex(ValueError, "Argument `model_b` must have the same "
                                    "architecture"):
            diagnostics.interpolate(self.mlp.model, other, self.mlp.x, self.mlp.y)
        with self.assertRaisesRegex(ValueError, r"Argument `end` must be larger than `start` "
                                    r"\(1\). Received: end=0"):
            diagnostics.interpolate(self.mlp.model, other, self.mlp.x, self.mlp.y, start=1,
                                    end=0)
        uncompiled = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
        with self.assertRaisesRegex(ValueError, "Argument `model_b` must be compiled"):
            diagnostics.interpolate(self.mlp.model, uncompiled, self.mlp.x, self.mlp.y)


class SharpnessTest(TestCase):
    def test_matches_reference(self):
        # f(w) = sum_i c_i w_i^2 at w = (0.5, -1, 0) with c > 0: the maximum over
        # the box |z_i| <= eps (|w_i| + 1) is at the corner moving every |w_i|
        # outward, f = sum_i c_i (|w_i| + eps(|w_i| + 1))^2, and Keskar et al.'s
        # metric 2.1 is 100 (f_max - f) / (1 + f).
        coefficients, initial, epsilon = np.array([1.0, 2.0, 0.5]), np.array([0.5, -1.0, 0.0]), 1e-2
        model, x, y = self.make_quadratic(list(coefficients), list(initial))
        result = diagnostics.sharpness(model, x, y, epsilon=epsilon, seed=0)
        f = np.sum(coefficients * initial**2)
        reach = np.abs(initial) + epsilon * (np.abs(initial) + 1)
        f_max = np.sum(coefficients * reach**2)
        self.assertAlmostEqual(result.loss, f, places=10)
        self.assertAlmostEqual(result.max_loss, f_max, places=8)
        self.assertAlmostEqual(result.sharpness, 100 * (f_max - f) / (1 + f), places=6)
        self.assertIn("sharpness", str(result))
        self.assertEqual(len(result.plot().axes), 1)
        np.testing.assert_array_equal(model.trainable_variables[0].numpy(),
                                      initial.astype("float32"))

    def test_flat_is_less_sharp(self):
        flat, x, y = self.make_quadratic([0.1, 0.1])
        sharp, _, _ = self.make_quadratic([10.0, 10.0])
        self.assertLess(diagnostics.sharpness(flat, x, y, seed=0).sharpness,
                        diagnostics.sharpness(sharp, x, y, seed=0).sharpness)

    def test_bad_epsilon(self):
        model, x, y = self.make_quadratic([1.0])
        with self.assertRaisesRegex(ValueError, "Argument `epsilon` must be > 0. "
                                    "Received: epsilon=0"):
            diagnostics.sharpness(model, x, y, epsilon=0)
