"""Weight normalization (Salimans & Kingma 2016) with TensorFlow Addons' interface."""

from __future__ import annotations

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
    initialization), the first training batch sets, per unit,
    ``g = 1/σ(t)`` and ``b = −μ(t)/σ(t)`` with ``t = v·x/‖v‖``, so that
    batch's pre-activations have mean 0 and variance 1.

    Works inside compiled `fit` on every backend: the initialization is kept
    in two non-trainable offset variables (``g_offset``, ``bias_offset``) so
    the effective scale is ``g + g_offset`` and the bias ``b + bias_offset``;
    the trainable ``g`` and ``b`` receive exactly the paper's gradients.
    Migrating from TensorFlow Addons is a changed import; TFA's ``g`` holds the
    effective scale, here it is ``g + g_offset``.

    Args:
        layer: a built or unbuilt layer with a ``kernel`` (Dense, Conv1D/2D/3D...),
            its output units on the kernel's last axis.
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
        check_type("layer", layer, keras.layers.Layer, "a keras.layers.Layer")
        super().__init__(layer, **kwargs)
        self.data_init = check_type("data_init", data_init, bool, "a bool")

    def build(self, input_shape=None):
        super().build(input_shape)
        kernel = getattr(self.layer, "kernel", None)
        if not isinstance(kernel, keras.Variable):
            raise ValueError(
                "Argument `layer` must be a layer with a `kernel` variable (Dense, Conv...). "
                f"Received: layer={type(self.layer).__name__}(name={self.layer.name!r})")
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
            initializer="zeros" if self.data_init else "ones")

    def _kernel_norm(self):
        return ops.sqrt(ops.sum(ops.square(self.layer.kernel), axis=self._norm_axes))

    def _direction(self):
        return self.layer.kernel / self._kernel_norm()

    def _bias(self):
        bias = getattr(self.layer, "bias", None)
        return bias if isinstance(bias, keras.Variable) else None

    def _call_with(self, inputs, kernel, bias_value, activation=True):
        """Run the wrapped layer with its kernel (and bias) replaced by tensors."""
        replaced = {id(self.layer.kernel): kernel}
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
        if self.data_init and training:
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

    def get_config(self):
        return {**super().get_config(), "data_init": self.data_init}
