"""The float64 copy a diagnostic analyses: the model, its loss and its data in float64.

With ``dtype="float64"`` (the default) the copy is the model rebuilt from its
config with a float64 dtype policy, the weights copied in, and the compiled
loss rebuilt in float64. The computation itself runs inside
`kerastrain._backend.float64_scope()` (see `Objective`), which restores every
setting it changes on exit.
"""

from __future__ import annotations

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.diagnostics._rebuild import rebuild


def _is_float_policy(value):
    if isinstance(value, str):
        return value.startswith(("float", "bfloat", "mixed"))
    return isinstance(value, dict) and "DTypePolicy" in str(value.get("class_name", ""))


def float64_config(config):
    """A model config with every floating dtype policy replaced by float64."""
    if isinstance(config, dict):
        result = {}
        for key, value in config.items():
            if key == "dtype" and _is_float_policy(value):
                result[key] = "float64"
            else:
                result[key] = float64_config(value)
        return result
    if isinstance(config, list):
        return [float64_config(item) for item in config]
    return config


def float64_loss(loss):
    """The compiled loss as a keras Loss computing in float64."""
    if isinstance(loss, keras.losses.Loss):
        config = dict(loss.get_config())
        config["dtype"] = "float64"
        try:
            return type(loss).from_config(config)
        except Exception as error:  # a custom Loss whose config cannot take dtype
            raise _validation.argument_error(
                "model.loss", "rebuild from its config with dtype='float64'", loss,
                "Pass `dtype='float32'`.",
            ) from error
    function = keras.losses.get(loss)
    if function is None or not callable(function):
        raise _validation.argument_error("model.loss", "be a Keras loss", loss)
    return _FunctionLoss(function, dtype="float64")


class _FunctionLoss(keras.losses.Loss):
    """A loss function (``fn(y_true, y_pred)``) as a Loss with a chosen dtype."""

    def __init__(self, fn, dtype):
        super().__init__(name=getattr(fn, "__name__", "loss"), dtype=dtype)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def analysis_model(model, dtype):
    """``(model_to_differentiate, loss_or_None)`` for the requested dtype."""
    if dtype == "float32":
        return model, None
    clone = rebuild(model, float64_config)
    return clone, float64_loss(model.loss)


def as_float(x, dtype):
    """Floating arrays converted to ``dtype``; integer labels kept as they are."""
    x = np.asarray(x)
    return x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x
