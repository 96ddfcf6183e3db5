"""Layer-sequential unit-variance initialization (Mishkin & Matas 2016)."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from kerastrain._layer_utils import call_without_activation
from kerastrain._validation import check_in_range, check_integer, check_type
from kerastrain.initializers._random import Orthogonal


def _kernel_layers(model):
    return [layer for layer in model.layers
            if isinstance(getattr(layer, "kernel", None), keras.Variable)]


def _check_model(model, x_batch):
    check_type("model", model, keras.Model, "a keras.Model")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"Argument `model` must be a built Sequential or functional model with known "
            f"inputs. Received: model={model.name!r} Build it first, e.g. with "
            "keras.Input(shape=...) or model.build(input_shape).")
    layers = _kernel_layers(model)
    if not layers:
        raise ValueError(f"Argument `model` must contain a layer with a `kernel` "
                         f"(Dense, Conv...). Received: model={model.name!r}")
    if np.shape(x_batch)[0] < 2:
        raise ValueError(f"Argument `x_batch` must hold at least 2 samples to estimate a "
                         f"variance. Received: x_batch of shape {np.shape(x_batch)}")
    return layers


def lsuv(model, x_batch, tol=0.1, max_iter=10, seed=None):
    """LSUV: orthonormal kernels, then rescale each layer to unit output variance.

    For each layer with a ``kernel`` (Dense, Conv, ...), in order: set the
    kernel to an orthonormal matrix (SVD, `Orthogonal`), then repeat
    ``W ← W / √Var(B)`` — ``B`` the layer's pre-activation output on ``x_batch``,
    variance over all its elements — until ``|Var(B) − 1| < tol`` or
    ``max_iter`` rescalings. Biases are left unchanged. Nested models are not
    descended into.

    Args:
        model: a built Sequential or functional `keras.Model` (changed in place).
        x_batch: one batch of training inputs (at least 2 samples).
        tol: tolerance on the variance, in (0, 1) (default 0.1).
        max_iter: maximum rescalings per layer, >= 1 (default 10).
        seed: int seed of the orthonormal draws, or None (default None).

    Returns:
        ``{layer name: output variance after initialization}``. A layer still
        outside ``1 ± tol`` after ``max_iter`` rescalings emits a `RuntimeWarning`.

    Example:
        >>> variances = lsuv(model, x_train[:256])
        >>> model.compile(optimizer="sgd", loss="mse"); model.fit(x_train, y_train)

    Reference:
        Mishkin & Matas, "All you need is a good init", ICLR 2016.
    """
    tol = check_in_range("tol", tol, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    max_iter = check_integer("max_iter", max_iter, minimum=1)
    layers = _check_model(model, x_batch)
    x_batch = keras.ops.convert_to_tensor(np.asarray(x_batch, dtype=keras.config.floatx()))
    orthogonal = Orthogonal(seed=seed)
    variances = {}
    for layer in layers:
        kernel = layer.kernel
        kernel.assign(orthogonal(kernel.shape, dtype=kernel.dtype))
        feeder = keras.Model(model.inputs, layer.input)
        inputs = feeder(x_batch, training=False)
        for iteration in range(max_iter + 1):
            output = keras.ops.convert_to_numpy(call_without_activation(layer, inputs))
            variance = float(np.var(output.astype(np.float64)))
            if abs(variance - 1.0) < tol or iteration == max_iter:
                break
            if variance <= 0.0:
                raise ValueError(f"Layer {layer.name!r} outputs a constant on `x_batch` "
                                 "(variance 0); LSUV cannot rescale it. Check x_batch.")
            kernel.assign(kernel.value / np.sqrt(variance).astype("float32"))
        if abs(variance - 1.0) >= tol:
            warnings.warn(
                f"LSUV: layer {layer.name!r} has output variance {variance:.4g} after "
                f"{max_iter} rescalings, outside 1 ± {tol:g} (its bias or a saturating input "
                "may dominate). Raise `max_iter` or check the layer's bias.",
                RuntimeWarning, stacklevel=2)
        variances[layer.name] = variance
    return variances
