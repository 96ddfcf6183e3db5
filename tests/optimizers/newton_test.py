"""HessianFree (damped Newton by CG, saddle-free Newton) against float64 references.

References, all written here: the exact damped Newton step −(H + λI)⁻¹g of
linear least squares in numpy (H = 2/N·XᵀX, g = 2/N·Xᵀ(Xθ − y)); for a sigmoid
MLP, the Hessian from float64 PyTorch autograd (`torch.autograd.functional`),
with the step solved by `numpy.linalg`; on the saddle f(x, y) = x² − y², the
closed forms derived in `HessianFree`'s docstring (H = diag(2, −2)).
"""

import keras
import numpy as np
import pytest
from keras import ops
from optimizer_helpers import fit_full_batch, flat_weights, linear_model

from kerastrain import _backend
from kerastrain.optimizers._newton import HessianFree
from kerastrain.optimizers._sam import prepare
from kerastrain.testing import TestCase, reload_model

N, D = 32, 3


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)).astype("float32"), rng.normal(size=(N, 1)).astype("float32")


def _numpy_newton(x, y, theta, steps, learning_rate, damping):
    features = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    hessian = 2.0 * features.T @ features / len(x)
    for _ in range(steps):
        g = 2.0 * features.T @ (features @ theta - y[:, 0].astype(np.float64)) / len(x)
        theta = theta - learning_rate * np.linalg.solve(hessian + damping * np.eye(len(theta)), g)
    return theta


@keras.saving.register_keras_serializable(package="kerastrain_tests")
class Saddle(keras.layers.Layer):
    """Outputs f(x, y) = x² − y² of its one weight vector (x, y), for every sample."""

    def build(self, input_shape):
        self.point = self.add_weight(
            shape=(2,), initializer=keras.initializers.Constant([1.0, 1e-3]), name="point"
        )

    def call(self, inputs):
        return ops.zeros_like(inputs[:, :1]) + (self.point[0] ** 2 - self.point[1] ** 2)


@keras.saving.register_keras_serializable(package="kerastrain_tests")
def mean_output(y_true, y_pred):
    return ops.mean(y_pred)


def _on_saddle(optimizer, steps):
    model = keras.Sequential([keras.Input((1,)), Saddle()])
    model.compile(optimizer=optimizer, loss=mean_output)
    prepare(model)  # harmless for optimizers that do not need the loss (SGD)
    zeros = np.zeros((1, 1), "float32")
    model.fit(zeros, zeros, epochs=steps, verbose=0)
    x, y = keras.ops.convert_to_numpy(model.weights[0]).astype(np.float64)
    return x, y, x**2 - y**2


@pytest.fixture
def float64_mode():
    """floatx float64 (and JAX's 64-bit mode); both restored afterwards."""
    floatx = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        with _backend.float64_scope():
            yield
    finally:
        keras.config.set_floatx(floatx)


class HessianFreeTest(TestCase):
    def test_matches_exact_newton(self):
        x, y = _data()
        model = linear_model(D, HessianFree(learning_rate=0.5, damping=0.1, cg_iterations=4))
        theta0 = flat_weights(model)
        fit_full_batch(model, x, y, steps=3)
        self.assertAllClose(flat_weights(model), _numpy_newton(x, y, theta0, 3, 0.5, 0.1),
                            rtol=1e-5, atol=1e-6)

    def test_undamped_newton_solves_least_squares_in_one_step(self):
        x, y = _data(1)
        model = linear_model(D, HessianFree(damping=0.0, cg_iterations=10), jit_compile=False)
        fit_full_batch(model, x, y, steps=1)  # 10 > 4 weights: CG iterates past convergence
        features = np.hstack([x, np.ones((N, 1))]).astype(np.float64)
        expected = np.linalg.lstsq(features, y[:, 0].astype(np.float64), rcond=None)[0]
        self.assertAllClose(flat_weights(model), expected, rtol=1e-5, atol=1e-6)

    def test_saddle_free_equals_newton_on_a_convex_quadratic(self):
        x, y = _data(2)  # H is positive definite, so |H| = H
        model = linear_model(D, HessianFree(damping=0.05, cg_iterations=4, saddle_free=True))
        theta0 = flat_weights(model)
        fit_full_batch(model, x, y, steps=2)
        self.assertAllClose(flat_weights(model), _numpy_newton(x, y, theta0, 2, 1.0, 0.05),
                            rtol=1e-5, atol=1e-6)

    @pytest.mark.usefixtures("float64_mode")
    def test_mlp_step_matches_torch_hessian(self):
        import torch
        x, y = _data(3)
        x, y = x.astype("float64"), y.astype("float64")
        model = keras.Sequential([
            keras.Input((D,), dtype="float64"),
            # sigmoid, not tanh: XLA's float64 tanh on CPU is only float32-accurate.
            keras.layers.Dense(2, activation="sigmoid", dtype="float64"),
            keras.layers.Dense(1, dtype="float64"),
        ])
        self.assertEqual({w.dtype for w in model.weights}, {"float64"})
        count = sum(int(np.prod(w.shape)) for w in model.weights)  # 11
        # CG is exact after `count` iterations (up to rounding) on a positive definite system.
        model.compile(optimizer=HessianFree(damping=3.0, cg_iterations=count), loss="mse")
        prepare(model)
        before = [keras.ops.convert_to_numpy(w).astype(np.float64) for w in model.weights]
        fit_full_batch(model, x, y, steps=1)
        shapes = [w.shape for w in before]
        xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)

        def loss(flat):
            parts, start = [], 0
            for shape in shapes:
                size = int(np.prod(shape))
                parts.append(flat[start:start + size].reshape(shape))
                start += size
            hidden = torch.sigmoid(xt @ parts[0] + parts[1])
            return torch.mean((hidden @ parts[2] + parts[3] - yt) ** 2)

        theta = torch.tensor(np.concatenate([w.ravel() for w in before]))
        g = torch.autograd.functional.jacobian(loss, theta).numpy()
        hessian = torch.autograd.functional.hessian(loss, theta).numpy()
        damped = hessian + 3.0 * np.eye(count)
        # Positive definite: CG is exact in `count` iterations (up to rounding).
        self.assertGreater(np.linalg.eigvalsh(damped).min(), 0.5)
        expected = theta.numpy() - np.linalg.solve(damped, g)
        actual = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in model.weights])
        self.assertAllClose(actual, expected, rtol=1e-7, atol=1e-9)

    def test_saddle_sgd_stalls_newton_is_attracted_saddle_free_escapes(self):
        # Closed forms from the class docstring, from (x0, y0) = (1, 1e-3), 10 steps.
        x, y, loss = _on_saddle(keras.optimizers.SGD(0.1), 10)
        self.assertAllClose([x, y], [0.8**10, 1e-3 * 1.2**10], rtol=1e-5)
        self.assertGreater(loss, 0.0)  # still above the saddle value f(0, 0) = 0
        x, y, loss = _on_saddle(HessianFree(damping=0.0, cg_iterations=2), 1)
        self.assertAllClose([x, y], [0.0, 0.0], atol=1e-8)  # lands on the saddle
        x, y, loss = _on_saddle(HessianFree(damping=0.1, cg_iterations=2, saddle_free=True), 10)
        self.assertAllClose([x, y], [(0.1 / 2.1)**10, 1e-3 * (4.1 / 2.1)**10],
                            rtol=1e-5, atol=1e-12)
        self.assertLess(loss, -0.6)  # escaped: f ≈ −0.6476

    def test_saddle_free_with_more_iterations_than_dimensions(self):
        # Lanczos finds the whole 2-D space after 2 products; the rest must add nothing.
        x, y, _ = _on_saddle(HessianFree(damping=0.1, cg_iterations=6, saddle_free=True), 3)
        self.assertAllClose([x, y], [(0.1 / 2.1)**3, 1e-3 * (4.1 / 2.1)**3], rtol=1e-5, atol=1e-9)

    def test_zero_gradient_gives_zero_step(self):
        for saddle_free in (False, True):
            model = keras.Sequential([keras.Input((1,)), Saddle()])
            model.layers[0].point.assign([0.0, 0.0])
            model.compile(optimizer=HessianFree(damping=0.1, cg_iterations=3,
                                                saddle_free=saddle_free), loss=mean_output)
            prepare(model)
            zeros = np.zeros((1, 1), "float32")
            model.fit(zeros, zeros, epochs=1, verbose=0)
            self.assertAllClose(model.weights[0], [0.0, 0.0], rtol=0, atol=0)

    def test_serialization(self):
        optimizer = HessianFree(learning_rate=0.5, damping=0.2, cg_iterations=3,
                                saddle_free=True, clipnorm=1.0, name="newton")
        self.run_serialization_test(optimizer)

    def test_saved_model_round_trip_continues_identically(self):
        x, y = _data(4)
        model = linear_model(D, HessianFree(learning_rate=0.3, damping=0.5, cg_iterations=2))
        fit_full_batch(model, x, y, steps=1)
        revived = prepare(reload_model(model, self.get_temp_dir()))
        self.assertIsInstance(revived.optimizer, HessianFree)
        self.assertEqual(revived.optimizer.get_config(), model.optimizer.get_config())
        fit_full_batch(model, x, y, steps=2)
        fit_full_batch(revived, x, y, steps=2)
        self.assertAllClose(revived.weights, model.weights, rtol=1e-6, atol=1e-7)

    def test_unprepared_apply_raises(self):
        model = linear_model(D, keras.optimizers.SGD())
        before = model.get_weights()
        with self.assertRaisesRegex(
            ValueError,
            r"^`HessianFree` needs the loss of the batch being trained, but it was applied "
            r"outside a train step that provides it \(no weights were changed\)\. Call "
            r"`kerastrain\.optimizers\.prepare\(model\)` once after",
        ):
            HessianFree().apply([ops.ones((D, 1)), ops.ones((1,))], model.trainable_variables)
        self.assertAllClose(model.get_weights(), before, rtol=0, atol=0)


class HessianFreeArgumentTest(TestCase):
    def test_learning_rate_must_not_be_negative(self):
        with self.assertRaisesRegex(
            ValueError, r"^Argument `learning_rate` must be >= 0\. Received: learning_rate=-1$"
        ):
            HessianFree(learning_rate=-1)

    def test_learning_rate_accepts_a_schedule(self):
        schedule = keras.optimizers.schedules.ExponentialDecay(1.0, 10, 0.5)
        self.assertIs(HessianFree(learning_rate=schedule)._learning_rate, schedule)

    def test_damping_must_not_be_negative(self):
        with self.assertRaisesRegex(
            ValueError, r"^Argument `damping` must be >= 0\. Received: damping=-0\.1$"
        ):
            HessianFree(damping=-0.1)

    def test_saddle_free_needs_positive_damping(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `damping` must be > 0 when saddle_free=True\. Received: damping=0 "
            r"\|H\| can have zero eigenvalues; use a small damping such as 1e-3\.$",
        ):
            HessianFree(damping=0, saddle_free=True)

    def test_cg_iterations_must_be_at_least_one(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `cg_iterations` must be an integer >= 1\. Received: cg_iterations=0$",
        ):
            HessianFree(cg_iterations=0)

    def test_cg_iterations_must_be_an_integer(self):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `cg_iterations` must be an integer\. Received: cg_iterations=2\.0 "
            r"of type float$",
        ):
            HessianFree(cg_iterations=2.0)

    def test_saddle_free_must_be_a_bool(self):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `saddle_free` must be a bool\. Received: saddle_free='yes' of type str$",
        ):
            HessianFree(saddle_free="yes")
