"""The adapt() machinery shared by the preprocessing layers."""

from __future__ import annotations

import keras
import numpy as np


class _Described:
    """Shows a short description instead of a whole array in error messages."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def as_float64(data):
    """``data`` (array, tensor, list, or tf.data.Dataset of arrays) as one float64 array."""
    if hasattr(data, "as_numpy_iterator"):
        batches = [np.asarray(batch, dtype=np.float64) for batch in data.as_numpy_iterator()]
        if not batches:
            raise ValueError("Argument `data` must be non-empty. Received: data=<a dataset "
                             "with no batches>")
        array = np.concatenate(batches, axis=0)
    else:
        try:
            array = np.asarray(keras.ops.convert_to_numpy(data), dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                "Argument `data` must be a numeric array, tensor or tf.data.Dataset of "
                f"arrays. Received: data of type {type(data).__name__}") from error
    if array.ndim < 2:
        raise ValueError(
            "Argument `data` must have a batch axis and at least one feature axis "
            f"(rank >= 2). Received: data={_Described(f'<array of shape {array.shape}>')} "
            "Reshape a single feature to (n, 1).")
    if array.size == 0:
        raise ValueError("Argument `data` must be non-empty. Received: "
                         f"data={_Described(f'<array of shape {array.shape}>')}")
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(
            "Argument `data` must contain only finite values. Received: "
            f"data={_Described(f'<array of shape {array.shape} with {bad} NaN/inf values>')}")
    return array


class AdaptableLayer(keras.layers.Layer):
    """Base class: statistics computed in float64 by `adapt()`, kept in variables.

    Subclasses create their (non-trainable) statistic variables in
    ``build_statistics(input_shape)``,
    implement ``_statistics(array) -> {variable attribute: float64 array}``,
    ``_transform(inputs)`` and ``compute_output_shape``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._adapted = False

    @property
    def is_adapted(self):
        """Whether `adapt()` ran (or adapted statistics were loaded from a file)."""
        return self._adapted

    def adapt(self, data):
        """Compute the layer's statistics from ``data`` in float64 and store them.

        Args:
            data: a numeric array or tensor of shape ``(samples, ...)``, or a
                `tf.data.Dataset` yielding such batches.
        """
        array = as_float64(data)
        shape = (None,) + array.shape[1:]
        if not self.built:
            self.build(shape)
        expected = self._adapt_shape[1:]
        if len(expected) != len(shape) - 1 or any(
                e is not None and e != a for e, a in zip(expected, shape[1:])):
            raise ValueError(
                "Argument `data` must have the shape the layer was built for, "
                f"{(None, *expected)}. Received: "
                f"data={_Described(f'<array of shape {array.shape}>')}")
        for name, value in self._statistics(array).items():
            variable = getattr(self, name)
            variable.assign(np.asarray(value).astype(variable.dtype))
        self._adapted = True

    def build(self, input_shape):
        self._adapt_shape = tuple(input_shape)
        self.build_statistics(self._adapt_shape)

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self._adapted = True

    def set_weights(self, weights):
        """Set the statistics directly (as loaded from elsewhere); marks the layer adapted."""
        super().set_weights(weights)
        self._adapted = True

    def add_statistic(self, name, shape, initializer="zeros"):
        return self.add_weight(name=name, shape=shape, initializer=initializer,
                               trainable=False)

    def call(self, inputs):
        if not self._adapted:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) must be adapted before it "
                "transforms data: call layer.adapt(training_data) first.")
        return self._transform(keras.ops.cast(inputs, self.compute_dtype))


def feature_axis(name, axis):
    """Validate an ``axis`` argument: an int or None."""
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"Argument `{name}` must be an int or None. Received: {name}={axis!r} "
                        f"of type {type(axis).__name__}")
    return axis


def statistic_shape(layer, input_shape, axis):
    """Shape of a per-feature statistic along ``axis`` (``()`` when axis is None)."""
    if axis is None:
        return ()
    rank = len(input_shape)
    if not -rank < axis < rank or axis % rank == 0:
        raise ValueError(f"Argument `axis` must name a non-batch axis of inputs of rank {rank}. "
                         f"Received: axis={axis}")
    size = input_shape[axis]
    if size is None:
        raise ValueError(f"Layer {layer.name!r} needs a known size on axis {axis}. "
                         f"Received: input_shape={tuple(input_shape)}")
    return (int(size),)


def reduce_axes(ndim, axis):
    """Axes of a ``ndim`` array to reduce over, keeping ``axis``."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(i for i in range(ndim) if i != axis % ndim)


def broadcastable(variable, ndim, axis):
    """``variable`` reshaped to broadcast against an input of rank ``ndim``."""
    if axis is None:
        return variable
    shape = [1] * ndim
    shape[axis % ndim] = variable.shape[0]
    return keras.ops.reshape(variable, shape)
