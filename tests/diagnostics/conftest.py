"""Shared tiny models and their float64 numpy re-implementations."""

import keras
import numpy as np
import pytest


class TinyMLP:
    """Dense(5, tanh) -> Dense(3, softmax) on 3 inputs (38 parameters), and its numpy loss."""

    def __init__(self, num_samples=16, seed=0):
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(num_samples, 3)).astype("float32")
        self.y = rng.integers(0, 3, size=num_samples)
        self.model = keras.Sequential([
            keras.Input((3,)),
            keras.layers.Dense(5, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ])
        self.model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        self.shapes = [(3, 5), (5,), (5, 3), (3,)]
        self.theta = np.concatenate(
            [np.asarray(v.numpy(), np.float64).ravel() for v in self.model.trainable_variables]
        )

    def losses(self, thetas):
        """Mean cross-entropy for each row of ``thetas`` (float64, vectorized)."""
        thetas = np.atleast_2d(thetas)
        pieces, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            pieces.append(thetas[:, start:start + size].reshape((-1, *shape)))
            start += size
        w1, b1, w2, b2 = pieces
        x = self.x.astype(np.float64)
        hidden = np.tanh(np.einsum("si,pih->psh", x, w1) + b1[:, None, :])
        logits = np.einsum("psh,pho->pso", hidden, w2) + b2[:, None, :]
        logits -= logits.max(axis=-1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        return -log_p[:, np.arange(len(self.y)), self.y].mean(axis=-1)

    def hessian(self, h=1e-4):
        """The exact Hessian by central second differences of the numpy loss."""
        n = self.theta.size
        eye = np.eye(n) * h
        i, j = np.triu_indices(n)
        points = np.concatenate([
            self.theta + eye[i] + eye[j], self.theta + eye[i] - eye[j],
            self.theta - eye[i] + eye[j], self.theta - eye[i] - eye[j],
        ])
        f = self.losses(points).reshape(4, -1)
        values = (f[0] - f[1] - f[2] + f[3]) / (4 * h * h)
        hessian = np.zeros((n, n))
        hessian[i, j] = values
        hessian[j, i] = values
        return hessian


@pytest.fixture
def tiny_mlp():
    return TinyMLP()


@keras.saving.register_keras_serializable(package="kerastrain_tests")
class Quadratic(keras.layers.Layer):
    """Outputs ``sum(coefficients * w**2)`` for every sample: f(w) = sum_i c_i w_i^2."""

    def __init__(self, coefficients, initial=None, **kwargs):
        super().__init__(**kwargs)
        self.coefficients = [float(c) for c in coefficients]
        self.initial = None if initial is None else [float(v) for v in initial]

    def build(self, input_shape):
        initial = self.initial or [0.0] * len(self.coefficients)
        self.w = self.add_weight(
            shape=(len(self.coefficients),),
            initializer=keras.initializers.Constant(np.asarray(initial)),
        )

    def call(self, inputs):
        c = keras.ops.convert_to_tensor(np.asarray(self.coefficients), dtype=self.compute_dtype)
        value = keras.ops.sum(c * self.w * self.w)
        return keras.ops.zeros_like(inputs[:, :1]) + value

    def get_config(self):
        return {**super().get_config(), "coefficients": self.coefficients,
                "initial": self.initial}


def identity_loss(y_true, y_pred):
    """The loss is the model's output: the model computes f(w) itself."""
    return keras.ops.mean(y_pred, axis=-1) + 0.0 * keras.ops.mean(y_true, axis=-1)


def quadratic_model(coefficients, initial=None):
    """A model whose loss is f(w) = sum_i c_i w_i^2, starting at ``initial``."""
    model = keras.Sequential([keras.Input((1,)), Quadratic(coefficients, initial)])
    model.compile(optimizer="sgd", loss=identity_loss)
    x = np.zeros((4, 1), "float32")
    return model, x, np.zeros((4, 1), "float32")


@pytest.fixture
def make_quadratic():
    return quadratic_model
