"""The backend layer against independent float64 references.

The reference is a two-layer tanh MLP with mean-squared error written in
numpy here: its gradient by hand-written backpropagation and its exact
Hessian by central differences of that analytic gradient (truncation error
O(h^2) ~ 1e-10 with h = 1e-5), all in float64.
"""

import keras
import numpy as np
import pytest

from kerastrain import _backend
from kerastrain.testing import TestCase

N_IN, N_HIDDEN, N_OUT, N_SAMPLES = 3, 4, 2, 7

# How exact a float64 model is (measured, Keras 3.15.1). Outside
# `_backend.float64_scope()` the JAX backend computes `ops.tanh` of a float64
# tensor in float32 (`result_type(float64, float)` gives floatx) and the torch
# backend casts `ops.matmul` with a float64 variable to float32 (exact to ~1e-7
# only); inside it (the fixture below) every backend keeps float64 throughout.
FLOAT64_RTOL = 1e-8
FINITE_DIFFERENCE_STEP = 1e-6


@pytest.fixture(autouse=True)
def float64_mode():
    """Float64 models need JAX's 64-bit mode: on only inside the test."""
    with _backend.float64_scope():
        yield


def build_model(l2=0.0, dtype="float64"):
    regularizer = keras.regularizers.L2(l2) if l2 else None
    model = keras.Sequential(
        [
            keras.Input((N_IN,), dtype=dtype),
            keras.layers.Dense(N_HIDDEN, activation="tanh", dtype=dtype,
                               kernel_regularizer=regularizer),
            keras.layers.Dense(N_OUT, dtype=dtype),
        ]
    )
    model.compile(loss="mse")
    return model


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N_SAMPLES, N_IN)), rng.normal(size=(N_SAMPLES, N_OUT))


def unpack(theta):
    sizes = [N_IN * N_HIDDEN, N_HIDDEN, N_HIDDEN * N_OUT, N_OUT]
    w1, b1, w2, b2 = np.split(theta, np.cumsum(sizes)[:-1])
    return w1.reshape(N_IN, N_HIDDEN), b1, w2.reshape(N_HIDDEN, N_OUT), b2


def numpy_loss_and_grad(theta, x, y, l2=0.0):
    """MSE of tanh MLP and its gradient by hand backpropagation (float64)."""
    w1, b1, w2, b2 = unpack(theta)
    hidden = np.tanh(x @ w1 + b1)
    residual = hidden @ w2 + b2 - y
    loss = np.mean(residual**2) + l2 * np.sum(w1**2)
    d_out = 2.0 * residual / residual.size
    d_w2, d_b2 = hidden.T @ d_out, d_out.sum(0)
    d_pre = (d_out @ w2.T) * (1.0 - hidden**2)
    d_w1, d_b1 = x.T @ d_pre + 2.0 * l2 * w1, d_pre.sum(0)
    return loss, np.concatenate([d_w1.ravel(), d_b1, d_w2.ravel(), d_b2])


def numpy_hessian(theta, x, y, l2=0.0, h=1e-5):
    columns = []
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        plus = numpy_loss_and_grad(theta + step, x, y, l2)[1]
        minus = numpy_loss_and_grad(theta - step, x, y, l2)[1]
        columns.append((plus - minus) / (2 * h))
    hessian = np.stack(columns, axis=1)
    return 0.5 * (hessian + hessian.T)


def flatten(tensors):
    return np.concatenate([keras.ops.convert_to_numpy(t).ravel() for t in tensors])


def split_like(vector, model):
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    pieces = np.split(vector, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
    return [p.reshape(s) for p, s in zip(pieces, shapes)]


class ValueAndGradTest(TestCase):
    def test_matches_reference(self):
        model = build_model(l2=0.01)
        x, y = data()
        loss, grads = _backend.value_and_grad(model, x, y)
        theta = flatten(model.trainable_variables)
        expected_loss, expected_grad = numpy_loss_and_grad(theta, x, y, l2=0.01)
        self.assertAllClose(loss, expected_loss, rtol=FLOAT64_RTOL, atol=0)
        self.assertAllClose(flatten(grads), expected_grad, rtol=FLOAT64_RTOL,
                            atol=FLOAT64_RTOL * np.abs(expected_grad).max())

    def test_matches_central_differences_of_the_model(self):
        model = build_model()
        x, y = data(1)
        _, grads = _backend.value_and_grad(model, x, y)
        analytic = flatten(grads)
        theta = flatten(model.trainable_variables)
        h = FINITE_DIFFERENCE_STEP
        numeric = np.empty_like(theta)
        for i in range(theta.size):
            losses = []
            for sign in (1.0, -1.0):
                shifted = theta.copy()
                shifted[i] += sign * h
                for variable, value in zip(model.trainable_variables, split_like(shifted, model)):
                    variable.assign(value)
                prediction = keras.ops.convert_to_numpy(
                    model(keras.ops.convert_to_tensor(x, dtype="float64"))
                )
                losses.append(np.mean((prediction - y) ** 2))
            numeric[i] = (losses[0] - losses[1]) / (2 * h)
        # Central differences: truncation O(h^2), rounding O(eps / h).
        tolerance = 1e-6 if h < 1e-5 else 1e-3
        np.testing.assert_allclose(analytic, numeric, rtol=tolerance,
                                   atol=tolerance * np.abs(analytic).max())

    def test_explicit_loss_equals_compiled_loss(self):
        model = build_model()
        x, y = data(2)
        compiled_loss, compiled_grads = _backend.value_and_grad(model, x, y)
        explicit_loss, explicit_grads = _backend.value_and_grad(
            model, x, y, loss=keras.losses.MeanSquaredError()
        )
        self.assertAllClose(explicit_loss, compiled_loss, rtol=1e-12)
        self.assertAllClose(flatten(explicit_grads), flatten(compiled_grads), rtol=1e-12)

    def test_compiled_function_equals_eager(self):
        model = build_model(l2=0.1)
        x, y = data(3)
        function = _backend.make_value_and_grad(model, jit=True)
        loss, grads = function(_backend.trainable_values(model), x, y)
        eager_loss, eager_grads = _backend.value_and_grad(model, x, y)
        self.assertAllClose(loss, eager_loss, rtol=1e-12)
        self.assertAllClose(flatten(grads), flatten(eager_grads), rtol=FLOAT64_RTOL,
                            atol=FLOAT64_RTOL * np.abs(flatten(eager_grads)).max())

    def test_float32_model(self):
        model = build_model(dtype="float32")
        x, y = data(4)
        loss, grads = _backend.value_and_grad(model, x.astype("float32"), y.astype("float32"))
        theta = flatten(model.trainable_variables).astype("float64")
        expected_loss, expected_grad = numpy_loss_and_grad(theta, x, y)
        self.assertAllClose(loss, expected_loss, rtol=1e-5)
        self.assertAllClose(flatten(grads), expected_grad, rtol=1e-4, atol=1e-6)


class HessianVectorProductTest(TestCase):
    def test_matches_exact_hessian(self):
        model = build_model(l2=0.05)
        x, y = data(5)
        theta = flatten(model.trainable_variables)
        hessian = numpy_hessian(theta, x, y, l2=0.05)
        function = _backend.make_hvp(model)
        values = _backend.trainable_values(model)
        columns = []
        for i in range(theta.size):
            basis = np.zeros_like(theta)
            basis[i] = 1.0
            columns.append(flatten(function(values, split_like(basis, model), x, y)))
        computed = np.stack(columns, axis=1)
        scale = np.abs(hessian).max()
        np.testing.assert_allclose(computed, hessian, rtol=1e-4, atol=1e-6 * scale)

    def test_random_vector(self):
        model = build_model()
        x, y = data(6)
        theta = flatten(model.trainable_variables)
        vector = self.rng.normal(size=theta.size)
        result = _backend.hvp(model, x, y, None, split_like(vector, model))
        expected = numpy_hessian(theta, x, y) @ vector
        np.testing.assert_allclose(flatten(result), expected, rtol=1e-4,
                                   atol=1e-6 * np.abs(expected).max())

    def test_float32_hvp_within_1e4_relative(self):
        model = build_model(dtype="float32")
        x, y = data(7)
        theta = flatten(model.trainable_variables).astype("float64")
        vector = self.rng.normal(size=theta.size)
        result = _backend.hvp(model, x.astype("float32"), y.astype("float32"), None,
                              [v.astype("float32") for v in split_like(vector, model)])
        expected = numpy_hessian(theta, x, y) @ vector
        relative = np.linalg.norm(flatten(result) - expected) / np.linalg.norm(expected)
        self.assertLess(relative, 1e-4)


class ErrorTest(TestCase):
    def test_not_a_model(self):
        with self.assertRaisesRegex(TypeError, r"Argument `model` must be a keras.Model"):
            _backend.value_and_grad("model", None, None)

    def test_unbuilt_model(self):
        model = keras.Sequential([keras.layers.Dense(1)])
        with self.assertRaisesRegex(ValueError, r"Argument `model` must be built"):
            _backend.value_and_grad(model, None, None, loss="mse")

    def test_uncompiled_model_without_loss(self):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        with self.assertRaisesRegex(
            ValueError, r"Argument `loss` must be given when the model is not compiled"
        ):
            _backend.value_and_grad(model, np.ones((1, 2)), np.ones((1, 1)))

    def test_model_without_trainable_variables(self):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.trainable = False
        with self.assertRaisesRegex(ValueError, r"Argument `model` must have trainable"):
            _backend.value_and_grad(model, np.ones((1, 2)), np.ones((1, 1)), loss="mse")

    def test_vectors_of_wrong_length(self):
        model = build_model()
        x, y = data()
        with self.assertRaisesRegex(
            ValueError, r"Argument `vectors` must be a list with one tensor per trainable "
            r"variable \(4\). Received: vectors of length 1"
        ):
            _backend.hvp(model, x, y, None, [np.ones((3, 4))])

    def test_name(self):
        self.assertEqual(_backend.name(), keras.config.backend())


class LambdaLossTest(TestCase):
    def test_lambda_loss_works_in_a_compiled_function(self):
        model = build_model()
        model.compile(loss=lambda y_true, y_pred: keras.ops.mean((y_true - y_pred) ** 2))
        x, y = data(8)
        function = _backend.make_value_and_grad(model, jit=True)
        loss, _ = function(_backend.trainable_values(model), x, y)
        theta = flatten(model.trainable_variables)
        self.assertAllClose(loss, numpy_loss_and_grad(theta, x, y)[0], rtol=FLOAT64_RTOL)
