"""Monte-Carlo dropout: dropout kept on at inference, and predictive statistics."""

from __future__ import annotations

import keras
import numpy as np

from kerastrain._validation import check_in_range, check_integer, check_type


@keras.saving.register_keras_serializable(package="kerastrain")
class MCDropout(keras.layers.Dropout):
    """Inverted dropout that stays active at inference (Monte-Carlo dropout).

    Each unit is zeroed with probability ``rate`` and the kept ones are scaled
    by ``1/(1 − rate)`` in training *and* in `predict`; average many passes
    with `mc_predict` to get a predictive mean and an uncertainty.

    Args:
        rate: drop probability in [0, 1).
        noise_shape, seed: as for `keras.layers.Dropout`.

    Example:
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, "relu"),
        ...                           MCDropout(0.2), keras.layers.Dense(1)])
        >>> mean, std = mc_predict(model, x_test, samples=30)

    Reference:
        Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        rate = check_in_range("rate", rate, 0.0, 1.0, high_inclusive=False)
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def _contains_mc_dropout(layer):
    if isinstance(layer, MCDropout):
        return True
    children = list(getattr(layer, "layers", []))
    if isinstance(layer, keras.layers.Wrapper):
        children.append(layer.layer)
    return any(_contains_mc_dropout(child) for child in children)


def mc_predict(model, x, samples=30, batch_size=None):
    """Predictive mean and standard deviation over ``samples`` stochastic passes.

    ``mean = (1/T) Σ_t f_t(x)``, ``std = √((1/T) Σ_t (f_t(x) − mean)²)`` with
    each ``f_t`` a `predict` pass (other layers, e.g. batch norm, in inference
    mode; `MCDropout` layers sampling new masks). Computed in float64.

    Args:
        model: a `keras.Model` containing at least one `MCDropout` layer.
        x: inputs accepted by ``model.predict``.
        samples: number of passes T, >= 2 (default 30).
        batch_size: passed to ``model.predict`` (default None).

    Returns:
        ``(mean, std)``: float64 numpy arrays shaped like one prediction (nested
        like the model's outputs for multi-output models).

    Example:
        >>> mean, std = mc_predict(model, x_test, samples=50)
    """
    check_type("model", model, keras.Model, "a keras.Model")
    samples = check_integer("samples", samples, minimum=2)
    if not _contains_mc_dropout(model):
        raise ValueError(
            f"Argument `model` must contain an MCDropout layer, or every pass is the same. "
            f"Received: model={model.name!r} Replace keras.layers.Dropout with "
            "kerastrain.layers.MCDropout.")
    totals, squares, structure = None, None, None
    for _ in range(samples):
        structure = model.predict(x, batch_size=batch_size, verbose=0)
        flat = [np.asarray(output, dtype=np.float64) for output in keras.tree.flatten(structure)]
        if totals is None:
            totals, squares = [np.zeros_like(a) for a in flat], [np.zeros_like(a) for a in flat]
        for total, square, output in zip(totals, squares, flat):
            total += output
            square += output**2
    means = [total / samples for total in totals]
    stds = [np.sqrt(np.maximum(square / samples - mean**2, 0.0))
            for square, mean in zip(squares, means)]
    return (keras.tree.pack_sequence_as(structure, means),
            keras.tree.pack_sequence_as(structure, stds))
