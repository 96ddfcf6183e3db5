"""Weight normalization (Salimans & Kingma 2016) with TensorFlow Addons' interface."""

from __future__ import annotations

import warnings

import keras
from keras import ops

from kerastrain._layer_utils import call_without_activation
from kerastrain._validation import check_type


@keras.saving.register_keras_serializable(package="kerastrain")
class WeightNormalization(keras.layers.Wrapper):
    """Reparameterizes a layer's kernel as ``w = g · v / ‖v‖``.

    ``v`` is the wrapped layer's kernel, ``g`` one trainable scale per output
    unit, the norm taken over all kernel axes but the last. With
    ``data_init=False``, ``g`` starts at ``‖v‖`` (the layer's function is
    unchanged at first). With ``data_init=True`` (the paper's data-dependent
    initialization), the first call of any kind (a training batch, a first
    `predict`, a direct call), exactly once, sets per unit
    ``g = 1/σ(t)`` and ``b = −μ(t)/σ(t)`` with ``t = v·x/‖v‖``, so that
    batch's pre-activations have mean 0 and variance 1.

    Recurrent layers (`SimpleRNN`, `LSTM`, `GRU`, any `keras.layers.RNN`):
    the cell's ``recurrent_kernel`` is normalized, as in TFA (``is_rnn``);
    they take no data-dependent initialization (a warning says so). Inside
    `TimeDistributed` the wrapper works as any layer. `remove()` returns the
    plain layer with the effective weights.

    Works inside compiled `fit` on every backend: the initialization is kept
    in two non-trainable offset variables (``g_offset``, ``bias_offset``) so
    the effective scale is ``g + g_offset`` and the bias ``b + bias_offset``;
    the trainable ``g`` and ``b`` receive exactly the paper's gradients.
    Migrating from TensorFlow Addons is a changed import; TFA's ``g`` holds the
    effective scale, here it is ``g + g_offset``.

    Args:
        layer: a built or unbuilt layer with a ``kernel`` (Dense, Conv1D/2D/3D...),
            its output units on the kernel's last axis, or a recurrent layer.
        data_init: use the data-dependent initialization (default True).

    Example:
        >>> model = keras.Sequential([keras.Input((8,)),
        ...     WeightNormalization(keras.layers.Dense(16, activation="relu")),
        ...     keras.layers.Dense(1)])

    Reference:
        Salimans & Kingma, "Weight Normalization: A Simple Reparameterization
        to Accelerate Training of Deep Neural Networks", NeurIPS 2016.
    """

    def __init__(self, layer, data_init=True, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise _NotALayerError(
                f"Argument `layer` must be a keras.layers.Layer instance. Received: "
                f"layer={layer!r} of type {type(layer).__name__}")
        super().__init__(layer, **kwargs)
        self.data_init = check_type("data_init", data_init, bool, "a bool")
        self.is_rnn = isinstance(layer, keras.layers.RNN)
        if self.data_init and self.is_rnn:
            warnings.warn(
                "WeightNormalization: data_init=True is not applied to a recurrent layer "
                "(the paper advises against it): g starts at ‖v‖, as with data_init=False. "
                "Pass data_init=False to silence this warning.", stacklevel=2)
        self._data_init = self.data_init and not self.is_rnn

    def _kernel_variable(self):
        """The normalized variable: the kernel, or a recurrent cell's ``recurrent_kernel``."""
        owner = self.layer.cell if self.is_rnn else self.layer
        return getattr(owner, "recurrent_kernel" if self.is_rnn else "kernel", None)

    def build(self, input_shape=None):
        super().build(input_shape)
        kernel = self._kernel_variable()
        if not isinstance(kernel, keras.Variable):
            raise ValueError(
                "Argument `layer` must be a layer that contains a `kernel` for weights "
                "(Dense, Conv..., or SimpleRNN / LSTM / GRU, whose cell's `recurrent_kernel` "
                f"is normalized). Received: layer={type(self.layer).__name__}"
                f"(name={self.layer.name!r})")
        depth = kernel.shape[-1]
        self._norm_axes = tuple(range(len(kernel.shape) - 1))
        self.g = self.add_weight(name="g", shape=(depth,), trainable=True, dtype=kernel.dtype,
                                 initializer=lambda shape, dtype: self._kernel_norm())
        self.g_offset = self.add_weight(name="g_offset", shape=(depth,), trainable=False,
                                        initializer="zeros", dtype=kernel.dtype)
        self.bias_offset = self.add_weight(name="bias_offset", shape=(depth,),
                                           trainable=False, initializer="zeros",
                                           dtype=kernel.dtype)
        self.initialized = self.add_weight(
            name="initialized", shape=(), trainable=False, dtype=kernel.dtype,
            initializer="zeros" if self._data_init else "ones")

    def _kernel_norm(self):
        return ops.sqrt(ops.sum(ops.square(self._kernel_variable()), axis=self._norm_axes))

    def _direction(self):
        return self._kernel_variable() / self._kernel_norm()

    def _bias(self):
        """The bias the data-dependent initialization offsets (None for recurrent layers)."""
        bias = None if self.is_rnn else getattr(self.layer, "bias", None)
        return bias if isinstance(bias, keras.Variable) else None

    def _call_with(self, inputs, kernel, bias_value, activation=True):
        """Run the wrapped layer with its kernel (and bias) replaced by tensors."""
        replaced = {id(self._kernel_variable()): kernel}
        if self._bias() is not None:
            replaced[id(self._bias())] = bias_value
        mapping = [(variable, replaced.get(id(variable), variable.value))
                   for variable in self.layer.variables]
        with keras.StatelessScope(state_mapping=mapping):
            if activation:
                return self.layer(inputs)
            return call_without_activation(self.layer, inputs)

    def _data_offsets(self, inputs, direction, bias):
        """Offsets making the batch's pre-activations zero-mean, unit-variance."""
        zero_bias = None if bias is None else ops.zeros_like(bias)
        t = self._call_with(inputs, direction, zero_bias, activation=False)
        mean, variance = ops.moments(t, axes=tuple(range(len(t.shape) - 1)))
        inverse_std = 1.0 / ops.sqrt(variance + 1e-10)
        g_offset = inverse_std - self.g
        bias_offset = -mean * inverse_std - (0.0 if bias is None else bias)
        return ops.cast(g_offset, self.g.dtype), ops.cast(bias_offset, self.g.dtype)

    def call(self, inputs, training=None):
        direction = self._direction()
        bias = None if self._bias() is None else self._bias().value
        g_offset, bias_offset = self.g_offset.value, self.bias_offset.value
        if self._data_init:  # on the first call of any kind (fit, predict, __call__)
            g_offset, bias_offset = ops.cond(
                self.initialized > 0.5,
                lambda: (self.g_offset.value, self.bias_offset.value),
                lambda: self._data_offsets(inputs, direction, bias),
            )
            g_offset, bias_offset = ops.stop_gradient(g_offset), ops.stop_gradient(bias_offset)
            self.g_offset.assign(g_offset)
            self.bias_offset.assign(bias_offset)
            self.initialized.assign(ops.ones(()))
        kernel = direction * (self.g + g_offset)
        bias_value = None if bias is None else bias + bias_offset
        return self._call_with(inputs, kernel, bias_value)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def remove(self):
        """The wrapped layer with the effective weights, as TFA's ``remove()``.

        Its kernel (a recurrent layer's ``recurrent_kernel``) becomes
        ``(g + g_offset) · v / ‖v‖`` and its bias ``b + bias_offset``; the
        returned layer computes what this wrapper computed, without it.
        """
        if not self.built:
            return self.layer
        kernel = self._kernel_variable()
        kernel.assign(ops.cast(self._direction() * (self.g + self.g_offset), kernel.dtype))
        bias = self._bias()
        if bias is not None:
            bias.assign(bias + ops.cast(self.bias_offset, bias.dtype))
        return self.layer

    def get_config(self):
        # `is_rnn` as TFA exposes it; derived from the layer, so ignored by from_config.
        return {**super().get_config(), "data_init": self.data_init, "is_rnn": self.is_rnn}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config.pop("is_rnn", None)
        layer = keras.layers.deserialize(config.pop("layer"), custom_objects=custom_objects)
        return cls(layer, **config)


class _NotALayerError(ValueError, TypeError):
    """Not a layer: ValueError as TFA's and Keras's wrappers raise, and a TypeError."""
