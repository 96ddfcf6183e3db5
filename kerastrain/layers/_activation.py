"""Maxout and local response normalization."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import check_integer, check_positive


@keras.saving.register_keras_serializable(package="kerastrain")
class Maxout(keras.layers.Layer):
    """Maxout: the maximum over groups of features (TensorFlow Addons' semantics).

    The ``C`` features on ``axis`` are viewed as ``(C / num_units, num_units)``;
    output unit ``j`` is ``max_i x[i·num_units + j]``. Put it after a Dense or
    Conv layer with ``k · num_units`` units to get ``max(w₁ᵀx + b₁, …, w_kᵀx + b_k)``,
    which neither saturates nor dies.

    Args:
        num_units: number of output features; must divide the feature count
            (which may be unknown, None, until the layer is called, as in TFA).
        axis: the feature axis (default -1).

    Example:
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2 * 16),
        ...                           Maxout(16), keras.layers.Dense(1)])

    Reference:
        Goodfellow et al., "Maxout Networks", ICML 2013.
    """

    def __init__(self, num_units, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.num_units = check_integer("num_units", num_units, minimum=1)
        self.axis = check_integer("axis", axis)

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"Argument `axis` must name a non-batch axis of inputs of rank "
                             f"{rank}. Received: axis={self.axis}")
        self._check_divides(input_shape[self.axis])

    def _check_divides(self, channels):
        """None (unknown until called, as TFA allowed) passes; a known count must divide."""
        if channels is not None and channels % self.num_units:
            raise ValueError(
                f"Argument `num_units` must divide the number of features on axis "
                f"{self.axis} ({channels}). Received: num_units={self.num_units}")

    def call(self, inputs):
        axis = self.axis % len(inputs.shape)
        channels = inputs.shape[axis]
        self._check_divides(channels)
        shape = list(ops.shape(inputs))
        # Unknown when traced (TFA's case): the group count is inferred from the data.
        groups = -1 if channels is None else channels // self.num_units
        shape[axis:axis + 1] = [groups, self.num_units]
        return ops.max(ops.reshape(inputs, shape), axis=axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self.axis] = self.num_units
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "num_units": self.num_units, "axis": self.axis}


@keras.saving.register_keras_serializable(package="kerastrain")
class LocalResponseNormalization(keras.layers.Layer):
    """AlexNet's local response normalization across neighbouring channels.

    ``b_c = a_c / (bias + alpha · Σ_{c' = c − r}^{c + r} a_{c'}²)^beta`` over the
    last (channel) axis, windows clipped at the edges — numerically
    `tf.nn.local_response_normalization` with the same arguments (and the same
    defaults). AlexNet used ``depth_radius=2, bias=2, alpha=1e-4, beta=0.75``
    (its α is per element here, not divided by the window size).

    Args:
        depth_radius: half-width r of the window, >= 0 (default 5).
        bias: offset k, > 0 (default 1.0).
        alpha: scale α, >= 0 (default 1.0).
        beta: exponent β, >= 0 (default 0.5).

    Example:
        >>> x = keras.layers.Conv2D(96, 11, strides=4, activation="relu")(images)
        >>> x = LocalResponseNormalization(2, bias=2.0, alpha=1e-4, beta=0.75)(x)

    Reference:
        Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
        Convolutional Neural Networks", NeurIPS 2012, section 3.3.
    """

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = check_integer("depth_radius", depth_radius, minimum=0)
        self.bias = check_positive("bias", bias)
        self.alpha = check_positive("alpha", alpha, allow_zero=True)
        self.beta = check_positive("beta", beta, allow_zero=True)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Layer {self.name!r} needs inputs with a known last (channel) "
                             f"axis. Received: input_shape={tuple(input_shape)}")

    def call(self, inputs):
        radius, channels = self.depth_radius, inputs.shape[-1]
        squares = ops.square(inputs)
        padding = [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]]
        padded = ops.pad(squares, padding)
        total = padded[..., 0:channels]
        for offset in range(1, 2 * radius + 1):
            total = total + padded[..., offset:offset + channels]
        return inputs / ops.power(self.bias + self.alpha * total, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}
