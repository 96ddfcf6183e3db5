"""A new model from a (transformed) config of the user's model, its weights copied in.

The diagnostics never write the user's weights: they analyse a copy rebuilt
from ``model.get_config()`` (in float64, or without regularization).
"""

from __future__ import annotations

import copy

import keras
import numpy as np

from kerastrain import _compat, _validation


def _custom_objects(model):
    """The model's own layer classes, so unregistered custom layers rebuild too."""
    objects = {}
    for layer in _compat.flatten_layers(model, include_self=True):
        objects[type(layer).__name__] = type(layer)
    return objects


def rebuild(model, transform=None):
    """A new model from ``transform(model.get_config())``, weights copied in."""
    try:
        config = model.get_config()
    except NotImplementedError as error:
        raise _validation.argument_error(
            "model", "be rebuildable from its config (Sequential, Functional, or "
            "a subclass implementing get_config)", type(model).__name__,
            "Implement `get_config`, or pass `dtype='float32'` to analyse the model itself.",
        ) from error
    config = copy.deepcopy(config)
    if transform is not None:
        config = transform(config)
    with keras.saving.custom_object_scope(_custom_objects(model)):
        clone = type(model).from_config(config)
    if not clone.built:
        clone.build(model.input_shape if hasattr(model, "input_shape") else None)
    if len(clone.weights) != len(model.weights):
        raise _validation.argument_error(
            "model", "rebuild with the same weights from its config", type(model).__name__,
            "Pass `dtype='float32'` to analyse the model itself.",
        )
    for target, source in zip(clone.weights, model.weights):
        target.assign(np.asarray(keras.ops.convert_to_numpy(source.value)).astype(
            target.dtype if "float" in str(target.dtype) else source.dtype
        ))
    return clone
