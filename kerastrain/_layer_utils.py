"""Small helpers on Keras layers shared by several kerastrain packages."""

from __future__ import annotations

import keras


def call_without_activation(layer, inputs):
    """The layer's output with its activation (if any) replaced by the identity."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return layer(inputs)
    layer.activation = keras.activations.linear
    try:
        return layer(inputs)
    finally:
        layer.activation = activation
