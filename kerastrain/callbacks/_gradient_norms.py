"""`GradientNormLogger`: global and per-layer gradient norms, with alarms."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.callbacks import _common, _statistics


def layer_norms(paths, norms):
    """Per-layer ℓ2 norms from per-variable norms: ‖g_layer‖ = √(Σ_i ‖g_i‖²).

    Args:
        paths: variable paths (``"dense/kernel"``), grouped by `layer_of`.
        norms: the per-variable norms, same order.

    Returns ``{layer: norm}`` in first-seen order.
    """
    squares = {}
    for path, norm in zip(paths, np.asarray(norms, dtype=np.float64)):
        layer = _common.layer_of(path)
        squares[layer] = squares.get(layer, 0.0) + float(norm) ** 2
    return {layer: math.sqrt(total) for layer, total in squares.items()}


def gradient_alarms(norms, below_counts, vanishing_threshold, exploding_threshold, patience):
    """Decide which layers' gradients vanish or explode (pure function).

    A layer *explodes* when its norm is non-finite or above
    ``exploding_threshold``; it *vanishes* when its norm has stayed below
    ``vanishing_threshold`` for ``patience`` consecutive observations.

    Args:
        norms: ``{layer: norm}`` observed now.
        below_counts: ``{layer: consecutive observations below the threshold}``
            before this one (missing: 0).

    Returns:
        ``(new_below_counts, alarms)`` with alarms a list of
        ``(kind, layer, norm)``, kind ``"exploding"`` or ``"vanishing"``.
    """
    counts, alarms = {}, []
    for layer, norm in norms.items():
        if not math.isfinite(norm) or norm > exploding_threshold:
            counts[layer] = 0
            alarms.append(("exploding", layer, norm))
            continue
        counts[layer] = below_counts.get(layer, 0) + 1 if norm < vanishing_threshold else 0
        if counts[layer] >= patience:
            alarms.append(("vanishing", layer, norm))
    return counts, alarms


_REMEDIES = {
    "exploding": "Lower the learning rate, clip gradients (clipnorm / global_clipnorm), "
    "or check the input scaling and the initialization.",
    "vanishing": "Use ReLU-family activations with He initialization, batch or layer "
    "normalization, residual connections, or a larger learning rate.",
}


@keras.saving.register_keras_serializable(package="kerastrain")
class GradientNormLogger(_statistics.StatisticsCallback):
    """Logs the global and per-layer gradient norms and warns when they vanish or explode.

    The norms are those the optimizer records inside `apply()` from the
    gradients of the actual training step (no second backward pass):
    ‖g‖₂ over all variables (``gradient_norm/global``) and
    ‖g_layer‖₂ = √(Σ_{v ∈ layer} ‖g_v‖²) per layer (``gradient_norm/<layer>``),
    written to TensorBoard's ``train`` run and into ``logs``. kerastrain
    optimizers record them; compile with ``kerastrain.optimizers.monitored(opt)``
    for any other Keras optimizer (`fit` otherwise stops before the first step
    with an error saying so; the compiled optimizer is never replaced).

    With ``update_freq="epoch"`` the values are those of the last step of each
    epoch; with an integer, of every ``update_freq``-th step. During `fit` the
    optimizer records at exactly those steps (and no others), so watching
    costs nothing on the steps in between. TensorBoard steps are epochs, or
    the optimizer step the values belong to (with ``steps_per_execution > 1``
    they are logged at the end of the execution containing that step).

    Warns once per layer and kind: *exploding* when a layer's norm is
    non-finite or above ``exploding_threshold``; *vanishing* when it stays
    below ``vanishing_threshold`` for ``patience`` consecutive observations.

    Args:
        log_dir: TensorBoard directory, or None to only fill ``logs``.
        update_freq: ``"epoch"`` (default) or a number of steps.
        vanishing_threshold: default 1e-7.
        exploding_threshold: default 1e3.
        patience: observations below ``vanishing_threshold`` before warning (default 3).
        wrap_optimizer: deprecated, default False; ``True`` warns and wraps nothing.

    Example:

    ```python
    model.compile(optimizer=kerastrain.optimizers.monitored(keras.optimizers.Adam()),
                  loss="mse")
    model.fit(x, y, callbacks=[kerastrain.callbacks.GradientNormLogger("logs")])
    ```
    """

    def __init__(self, log_dir=None, update_freq="epoch", vanishing_threshold=1e-7,
                 exploding_threshold=1e3, patience=3, wrap_optimizer=False):
        super().__init__(log_dir, update_freq, wrap_optimizer)
        self.vanishing_threshold = _validation.check_positive(
            "vanishing_threshold", vanishing_threshold, allow_zero=True)
        self.exploding_threshold = _validation.check_positive(
            "exploding_threshold", exploding_threshold)
        if self.exploding_threshold <= self.vanishing_threshold:
            raise _validation.argument_error(
                "exploding_threshold", f"be > vanishing_threshold={self.vanishing_threshold:g}",
                exploding_threshold)
        self.patience = _validation.check_integer("patience", patience, minimum=1)
        self.records = []

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._below, self._warned = {}, set()
        self.records = []

    def observe(self, step, logs=None):
        """Read the optimizer's statistics, log them at ``step``, warn; returns the scalars."""
        statistics, step = self.read(step)
        norms = layer_norms(statistics["paths"], statistics["gradient_norms"])
        values = {"gradient_norm/global": statistics["global_norm"]}
        values.update({f"gradient_norm/{layer}": norm for layer, norm in norms.items()})
        self._emit_scalars(values, step, logs)
        self.records.append(values)
        self._below, alarms = gradient_alarms(
            norms, self._below, self.vanishing_threshold, self.exploding_threshold, self.patience)
        for kind, layer, norm in alarms:
            if (kind, layer) not in self._warned:
                self._warned.add((kind, layer))
                warnings.warn(
                    f"GradientNormLogger: {kind} gradients in layer `{layer}` "
                    f"(gradient norm {norm:.3g} at {self._unit()} {step}). {_REMEDIES[kind]}",
                    stacklevel=2,
                )
        return values

    def _unit(self):
        return "epoch" if self.update_freq == "epoch" else "step"

    def get_config(self):
        return {
            "log_dir": self.log_dir, "update_freq": self.update_freq,
            "vanishing_threshold": self.vanishing_threshold,
            "exploding_threshold": self.exploding_threshold,
            "patience": self.patience, "wrap_optimizer": self.wrap_optimizer,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
