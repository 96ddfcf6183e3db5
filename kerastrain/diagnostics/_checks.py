"""The diagnostics' input checks: a compiled, built model, labelled data, a dtype."""

from __future__ import annotations

import keras
import numpy as np

from kerastrain import _validation

DTYPES = ("float64", "float32")


def check_compiled_model(model, name="model"):
    """A built keras.Model compiled with a single loss."""
    if not isinstance(model, keras.Model):
        raise _validation.type_error(name, "a keras.Model", model)
    if not getattr(model, "compiled", False) or getattr(model, "loss", None) is None:
        raise _validation.argument_error(
            name, "be compiled with a loss", model,
            "Call `model.compile(optimizer=..., loss=...)` before running a diagnostic.",
        )
    if isinstance(model.loss, (dict, list, tuple)):
        raise _validation.argument_error(
            f"{name}.loss", "be a single loss (one output)", model.loss,
            "The diagnostics analyse single-output models.",
        )
    if not model.built:
        raise _validation.argument_error(
            name, "be built", model,
            "Call the model once on a batch (or `model.build(input_shape)`) first.",
        )
    if not model.trainable_variables:
        raise _validation.argument_error(name, "have trainable variables", model)
    return model


def check_data(x, y, name_x="x", name_y="y"):
    """Numpy arrays with labels and matching first dimensions."""
    if x is None:
        raise _validation.argument_error(name_x, "be an array of inputs", x)
    if y is None:
        raise _validation.argument_error(
            name_y, "be an array of labels", y,
            "This diagnostic computes the loss, which needs the targets: pass `y`.",
        )
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise _validation.argument_error(
            name_y, f"have as many rows as `{name_x}` ({len(x)}) and at least one", f"{len(y)} rows",
        )
    return x, y


def check_dtype(dtype):
    """``"float64"`` (analyse a float64 copy) or ``"float32"`` (the model itself)."""
    return _validation.check_one_of("dtype", dtype, DTYPES)
