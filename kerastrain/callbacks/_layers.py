"""Finding the layers to watch: leaf layers at any depth, and their activation."""

from __future__ import annotations

import keras

from kerastrain import _compat

_ACTIVATION_KINDS = {
    keras.activations.relu: "relu",
    keras.activations.relu6: "relu",
    keras.activations.sigmoid: "sigmoid",
    keras.activations.hard_sigmoid: "sigmoid",
    keras.activations.tanh: "tanh",
}


def leaf_layers(model):
    """Every non-container layer of ``model``, nested models included, in order."""
    layers = _compat.flatten_layers(model, include_self=False, recursive=True)
    return [
        layer for layer in layers
        if not isinstance(layer, (keras.Model, keras.layers.InputLayer))
    ]


def layer_name(layer):
    """The layer's path (``"outer/inner/dense"``), unique within a model."""
    return getattr(layer, "path", None) or layer.name


def activation_kind(layer):
    """``"relu"``, ``"sigmoid"``, ``"tanh"`` or None: what the layer's output went through.

    Recognised: layers with an ``activation`` argument (Dense, Conv*, ...)
    and `Activation` layers set to relu / relu6 / sigmoid / hard_sigmoid /
    tanh, and `ReLU` layers with ``negative_slope=0``.
    """
    if isinstance(layer, keras.layers.ReLU):
        return "relu" if float(layer.negative_slope) == 0.0 else None
    function = getattr(layer, "activation", None)
    if function is None or not callable(function):
        return None
    return _ACTIVATION_KINDS.get(function)


def channel_axis(layer):
    """The axis of a layer's units: 1 for ``data_format="channels_first"``, else -1."""
    return 1 if getattr(layer, "data_format", None) == "channels_first" else -1


def unit_reduction_axes(output, axis):
    """All axes of ``output`` except the unit axis (samples and positions)."""
    axis = axis % output.ndim
    return tuple(i for i in range(output.ndim) if i != axis)
