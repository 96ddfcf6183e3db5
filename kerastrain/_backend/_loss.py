"""The loss of a Keras model as a pure function of its trainable values.

Written in Keras only (no backend import): every backend module differentiates
the function built here.
"""

from __future__ import annotations

import re

import keras
import numpy as np

from kerastrain import _compat, _validation


def trainable_values(model):
    """The current values of `model.trainable_variables`, as backend tensors."""
    return [variable.value for variable in model.trainable_variables]


def check_model(model, loss):
    """Raise a clear error when the model cannot give a loss."""
    if not isinstance(model, keras.Model):
        raise _validation.type_error("model", "a keras.Model", model)
    if not model.built:
        raise _validation.argument_error(
            "model", "be built", model,
            "Call the model once on a batch (or `model.build(input_shape)`) first.",
        )
    if loss is None and not getattr(model, "compiled", False):
        raise _validation.argument_error(
            "loss", "be given when the model is not compiled", loss,
            "Compile the model with a loss, or pass `loss=` (a keras loss or its name).",
        )
    if not model.trainable_variables:
        raise _validation.argument_error(
            "model", "have trainable variables", model,
        )


def make_loss_fn(model, loss=None, training=False):
    """Return ``f(values, x, y, sample_weight=None, non_trainable=None) -> loss``.

    ``values`` replace ``model.trainable_variables`` (same order);
    ``non_trainable`` (default: the variables' current values) replaces
    ``model.non_trainable_variables``. The model's
    regularization losses are included. With ``loss=None`` the compiled loss is
    used (through `model.stateless_compute_loss`); otherwise ``loss`` is a
    `keras.losses` object, name or callable ``loss(y_true, y_pred)``.
    Non-trainable state (batch-norm statistics) is read, never written.
    """
    check_model(model, loss)
    if loss is None and _uses_default_compute_loss(model):
        loss = model.loss
    loss_objects = {}  # one per output dtype: the loss is computed in the model's dtype

    def loss_object_for(y_pred):
        dtype = keras.backend.standardize_dtype(keras.tree.flatten(y_pred)[0].dtype)
        if dtype not in loss_objects:
            loss_objects[dtype] = _loss_in_dtype(loss, dtype)
        return loss_objects[dtype]

    def loss_fn(values, x, y, sample_weight=None, non_trainable=None):
        x, y, sample_weight = _keep_float_dtypes((x, y, sample_weight))
        if non_trainable is None:
            non_trainable = [v.value for v in model.non_trainable_variables]
        kwargs = {"training": training} if _compat.call_has_training_arg(model) else {}
        y_pred, _, losses = model.stateless_call(
            values, non_trainable, x, return_losses=True, **kwargs
        )
        if loss is not None:
            total = loss_object_for(y_pred)(y, y_pred, sample_weight=sample_weight)
            for extra in losses:
                total = total + keras.ops.cast(extra, total.dtype)
            return total
        # The compiled loss, exactly as Keras's own JAX trainer computes it:
        # forward-pass losses are handed to `compute_loss` via the override.
        with _compat.losses_override(model, losses):
            metrics = [v.value for v in model.metrics_variables]
            total, _ = model.stateless_compute_loss(
                values, non_trainable, metrics, x=x, y=y, y_pred=y_pred,
                sample_weight=sample_weight, training=training,
            )
        return total

    return loss_fn


class _FunctionLoss(keras.losses.Loss):
    """A plain ``loss(y_true, y_pred)`` function as a reducing Loss in a dtype."""

    def __init__(self, function, dtype):
        # A valid scope name: TensorFlow rejects names such as "<lambda>".
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", getattr(function, "__name__", "loss"))
        super().__init__(name=name.strip("_") or "loss", dtype=dtype)
        self.function = function

    def call(self, y_true, y_pred):
        return self.function(y_true, y_pred)


def _loss_in_dtype(loss, dtype):
    loss_object = keras.losses.get(loss)
    if not isinstance(loss_object, keras.losses.Loss):
        if not callable(loss_object):
            raise _validation.type_error("loss", "a Keras loss, its name or a callable", loss)
        return _FunctionLoss(loss_object, dtype)
    if loss_object.dtype != dtype:
        config = loss_object.get_config()
        if "dtype" in config:
            config["dtype"] = dtype
            loss_object = type(loss_object).from_config(config)
    return loss_object


def _uses_default_compute_loss(model):
    """True when the compiled loss is one loss and `compute_loss` is Keras's own."""
    default = type(model).compute_loss is keras.Model.compute_loss
    single = model.loss is not None and not isinstance(model.loss, (list, tuple, dict))
    weighted = getattr(model, "loss_weights", None) is not None
    return default and single and not weighted


def _keep_float_dtypes(data):
    """Convert numpy float arrays to tensors *of their own dtype*.

    Some Keras backends convert a float64 numpy array to ``floatx`` when no
    dtype is given, which would silently make float64 analyses float32.
    """

    def convert(array):
        if isinstance(array, np.ndarray) and array.dtype.kind == "f":
            return keras.ops.convert_to_tensor(array, dtype=array.dtype.name)
        return array

    return keras.tree.map_structure(convert, data)
