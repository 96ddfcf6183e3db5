"""`monitored(optimizer)`: any Keras optimizer, plus gradient statistics recorded in `apply()`."""

from __future__ import annotations

import keras

from kerastrain import _compat
from kerastrain.optimizers._statistics import DEFAULT_STATISTICS_EVERY, StatisticsMixin
from kerastrain.optimizers._wrapping import OptimizerWrapper

__all__ = ["Monitored", "monitored"]


@keras.saving.register_keras_serializable(package="kerastrain")
class Monitored(StatisticsMixin, OptimizerWrapper):
    """Any Keras optimizer, plus gradient statistics recorded in `apply()`.

    The wrapped optimizer does the update unchanged; this wrapper reads the
    weights before and after and records ``global_norm``, ``gradient_norms``
    and ``update_ratios`` (see `gradient_statistics()`). Prefer the function
    `monitored(optimizer)`.

    Args:
        optimizer: a `keras.optimizers.Optimizer` instance (Adam, SGD, Lion ...).
        statistics_every: record at the first step and every N-th after it
            (default 20; 1: every step).
        name: optional name; default "monitored_<inner name>".

    Example:

    ```python
    model.compile(optimizer=kerastrain.optimizers.monitored(keras.optimizers.Lion()),
                  loss="mse")
    model.fit(x, y)
    model.optimizer.gradient_statistics()["global_norm"]
    ```
    """

    optimizer_hint = "Pass an optimizer object, e.g. keras.optimizers.Adam()."

    def __init__(self, optimizer, statistics_every=DEFAULT_STATISTICS_EVERY, name=None,
                 **kwargs):
        default_name = f"monitored_{getattr(optimizer, 'name', '')}"
        super().__init__(optimizer, name=name or default_name, kwargs=kwargs)
        self._init_statistics(True, statistics_every)

    def check_inner_optimizer(self, optimizer):
        if isinstance(optimizer, StatisticsMixin):
            raise TypeError(
                "Argument `optimizer` must be an optimizer that does not record gradient "
                f"statistics already. Received: optimizer={optimizer.name!r} of type "
                f"{type(optimizer).__name__}. kerastrain optimizers record them themselves; "
                "use the optimizer directly."
            )
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            raise TypeError(
                "Argument `optimizer` must not be a LossScaleOptimizer: its apply() gets "
                "gradients multiplied by the loss scale. Received: "
                f"optimizer={optimizer.name!r} of type LossScaleOptimizer. Wrap the inner "
                "optimizer instead: LossScaleOptimizer(monitored(keras.optimizers.Adam())), "
                "or compile with monitored(keras.optimizers.Adam()) under mixed_float16."
            )

    def build_wrapper(self, var_list):
        self._build_statistics(var_list)

    def apply(self, grads, trainable_variables=None):
        self._apply_recording(grads, trainable_variables, self.inner_optimizer.apply)
        _compat.optimizer_iterations(self).assign_add(1)

    def get_config(self):
        config = super().get_config()
        config["statistics_every"] = self.statistics_every
        return config


def monitored(optimizer, statistics_every=DEFAULT_STATISTICS_EVERY):
    """Wrap any `keras.optimizers.Optimizer` so that it records gradient statistics.

    Args:
        optimizer: a `keras.optimizers.Optimizer` instance.
        statistics_every: record at the first step and every N-th after it
            (default 20; 1: every step). kerastrain's callbacks align the
            recording with the steps they log during `fit`.

    Returns:
        A `Monitored` optimizer doing the same updates; read
        `model.optimizer.gradient_statistics()` after (or during) training.

    Example:

    ```python
    opt = kerastrain.optimizers.monitored(keras.optimizers.Adam(1e-3))
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=1)
    stats = model.optimizer.gradient_statistics()
    ```
    """
    return Monitored(optimizer, statistics_every)
