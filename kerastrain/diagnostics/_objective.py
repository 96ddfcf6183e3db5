"""`Objective`: the model's loss as a pure function of a flat parameter vector.

Every analysis (gradient check, Hessian, critical points, landscape,
sharpness) works on an `Objective`: a *copy* of the model's loss, so the
user's weights are never written. Everything an `Objective` computes in
float64 runs inside `kerastrain._backend.float64_scope()` (JAX's 64-bit mode,
Keras's float64 promotion), which restores both on exit: a diagnostic leaves
no global setting changed.
"""

from __future__ import annotations

import keras
import numpy as np

from kerastrain import _backend, _validation
from kerastrain.diagnostics._checks import check_compiled_model, check_data, check_dtype
from kerastrain.diagnostics._float64 import analysis_model, as_float


class Objective:
    """The loss as a function of a flat float vector of the trainable weights.

    The loss is the mean over ``x`` (in chunks of ``batch_size``), including
    regularization penalties; the model runs in inference mode unless
    ``training=True``. Counts gradient and Hessian-vector-product calls over
    the whole data (``num_gradients``, ``num_hvp``). With ``dtype="float64"``
    the copy is made, and every loss, gradient and Hessian-vector product is
    computed, inside `kerastrain._backend.float64_scope()`; nothing stays
    changed between calls.
    """

    def __init__(self, model, x, y, dtype="float64", batch_size=None, training=False):
        check_compiled_model(model)
        x, y = check_data(x, y)
        self.dtype = check_dtype(dtype)
        if batch_size is not None:
            _validation.check_integer("batch_size", batch_size, minimum=1)
        with self._scope():
            self._build(model, x, y, batch_size, training)

    def _scope(self):
        return _backend.float64_scope(enabled=self.dtype == "float64")

    def _build(self, model, x, y, batch_size, training):
        self.model, loss = analysis_model(model, self.dtype)
        self.shapes = [tuple(v.shape) for v in self.model.trainable_variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.paths = [v.path for v in model.trainable_variables]
        self.size = int(sum(self.sizes))
        self.theta = self.flatten(
            [keras.ops.convert_to_numpy(v.value) for v in self.model.trainable_variables]
        )
        self.non_trainable = [v.value for v in self.model.non_trainable_variables]
        step = len(x) if batch_size is None else batch_size
        self.batches = [
            (as_float(x[i:i + step], self.dtype), as_float(y[i:i + step], self.dtype))
            for i in range(0, len(x), step)
        ]
        self.weights = np.array([len(b[0]) for b in self.batches], dtype=np.float64) / len(x)
        self._value_and_grad = _backend.make_value_and_grad(self.model, loss, training=training)
        self._hvp = _backend.make_hvp(self.model, loss, training=training)
        self.num_gradients = 0
        self.num_hvp = 0

    def flatten(self, tensors):
        return np.concatenate(
            [np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float64).ravel() for t in tensors]
        )

    def unflatten(self, vector):
        vector = np.asarray(vector, dtype=self.dtype)
        pieces, start = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            pieces.append(vector[start:start + size].reshape(shape))
            start += size
        return pieces

    def split(self, vector):
        """A flat vector as ``{variable path: piece}``."""
        return dict(zip(self.paths, self.unflatten(vector)))

    def value_and_grad(self, theta=None, non_trainable=None):
        """``(loss, flat gradient)`` at ``theta`` (default: the model's weights)."""
        values = self.unflatten(self.theta if theta is None else theta)
        extra = self.non_trainable if non_trainable is None else non_trainable
        total, grad = 0.0, np.zeros(self.size)
        with self._scope():
            for weight, (xb, yb) in zip(self.weights, self.batches):
                loss, grads = self._value_and_grad(values, xb, yb, None, extra)
                total += weight * float(keras.ops.convert_to_numpy(loss))
                grad += weight * self.flatten(grads)
        self.num_gradients += 1
        return total, grad

    def loss(self, theta=None, non_trainable=None):
        return self.value_and_grad(theta, non_trainable)[0]

    def hvp(self, vector, theta=None):
        """The Hessian at ``theta`` (default: the model's weights) times ``vector``."""
        values = self.unflatten(self.theta if theta is None else theta)
        vectors = self.unflatten(vector)
        result = np.zeros(self.size)
        with self._scope():
            for weight, (xb, yb) in zip(self.weights, self.batches):
                result += weight * self.flatten(self._hvp(values, vectors, xb, yb))
        self.num_hvp += 1
        return result
