"""`Lookahead`: k fast steps forward, one step back (wraps any optimizer)."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain import _compat
from kerastrain._validation import argument_error, check_in_range, check_integer
from kerastrain.optimizers._statistics import DEFAULT_STATISTICS_EVERY, StatisticsMixin
from kerastrain.optimizers._wrapping import OptimizerWrapper

__all__ = ["Lookahead"]


@keras.saving.register_keras_serializable(package="kerastrain")
class Lookahead(StatisticsMixin, OptimizerWrapper):
    """Lookahead wrapper (TensorFlow Addons' arguments).

    The inner optimizer updates the fast weights θ; every `sync_period` steps
    the slow weights φ ← φ + α(θ − φ) and θ ← φ. φ starts at the weights the
    first step sees.

    Args:
        optimizer: any `keras.optimizers.Optimizer` instance, or the name of a
            Keras optimizer (``"adam"``, ``"sgd"``: `keras.optimizers.get`), as TFA took.
        sync_period: k, an integer >= 1, default 6.
        slow_step_size: α in (0, 1], default 0.5.
        record_statistics: bool, default True.
        statistics_every: record the statistics at the first step and every
            N-th after it (default 20; see `Chain`).
        name: default "lookahead".

    Example: ``model.compile(optimizer=Lookahead(keras.optimizers.Adam()), loss="mse")``

    Reference: Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps
    forward, 1 step back".
    """

    shares_iterations = False  # counts its own steps (the sync period)
    optimizer_expected = "a keras.optimizers.Optimizer instance or name"
    optimizer_hint = 'Pass an optimizer object or name, e.g. keras.optimizers.Adam() or "adam".'

    def __init__(self, optimizer, sync_period=6, slow_step_size=0.5, record_statistics=True,
                 statistics_every=DEFAULT_STATISTICS_EVERY, name="lookahead", **kwargs):
        if isinstance(optimizer, str):  # TFA's Lookahead("adam")
            optimizer = _optimizer_from_name(optimizer)
        sync_period = check_integer("sync_period", sync_period, minimum=1)
        slow_step_size = check_in_range("slow_step_size", slow_step_size, 0.0, 1.0,
                                        low_inclusive=False)
        super().__init__(optimizer, name=name, kwargs=kwargs)
        self.sync_period = sync_period
        self.slow_step_size = slow_step_size
        self._init_statistics(record_statistics, statistics_every)

    def build_wrapper(self, var_list):
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")
        self._build_statistics(var_list)

    def apply(self, grads, trainable_variables=None):
        self._apply_recording(grads, trainable_variables, self._lookahead_apply)
        _compat.optimizer_iterations(self).assign_add(1)

    def _lookahead_apply(self, grads, trainable_variables):
        variables = (_compat.optimizer_trainable_variables(self) if trainable_variables is None
                     else list(trainable_variables))
        first = _compat.optimizer_iterations(self) == 0
        for variable in variables:
            slow = self._slow_weights[_compat.variable_index(self, variable)]
            self.assign(slow, ops.where(first, ops.convert_to_tensor(variable),
                                        ops.convert_to_tensor(slow)))
        self.inner_optimizer.apply(grads, trainable_variables)
        sync = (_compat.optimizer_iterations(self) + 1) % self.sync_period == 0
        for variable in variables:
            slow = self._slow_weights[_compat.variable_index(self, variable)]
            fast, slow_value = ops.convert_to_tensor(variable), ops.convert_to_tensor(slow)
            new_slow = slow_value + (fast - slow_value) * self.slow_step_size
            self.assign(slow, ops.where(sync, new_slow, slow_value))
            self.assign(variable, ops.where(sync, new_slow, fast))

    def get_config(self):
        config = super().get_config()
        config.update({
            "sync_period": self.sync_period,
            "slow_step_size": self.slow_step_size,
            "record_statistics": self.record_statistics,
            "statistics_every": self.statistics_every,
        })
        return config


def _optimizer_from_name(name):
    try:
        return keras.optimizers.get(name)
    except ValueError:
        raise argument_error(
            "optimizer", "be a keras.optimizers.Optimizer instance or the name of one", name,
            'Known names are those of keras.optimizers.get, e.g. "adam", "sgd", "rmsprop".'
        ) from None
