"""`Scaled`: any schedule times a factor, with a floor; what `ReduceLROnPlateau` drives."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._backend._live import live_value
from kerastrain._validation import check_positive
from kerastrain.schedules._base import Schedule, check_rate, deserialize, evaluate, serialize
from kerastrain.schedules._constant import as_schedule

_register = keras.saving.register_keras_serializable(package="kerastrain")


@_register
class Scaled(Schedule):
    """Any schedule times a factor, never scaled below a floor.

    Formula::

        lr(t) = max(factor * schedule(t), min(min_learning_rate, schedule(t)))

    so the factor never takes the rate below ``min_learning_rate``, and the
    wrapped schedule's own values below the floor (a warmup from 0, say) are
    kept. `kerastrain.callbacks.ReduceLROnPlateau` drives ``factor``.

    ``factor`` and ``min_learning_rate`` live in one non-trainable float32
    ``keras.Variable`` (``state_variable``: ``[factor, min_learning_rate]``),
    read by the compiled train step each time it runs: setting either is an
    ``assign``, and the train step is not re-traced. Both are also in the
    config, so a reduced rate survives saving and reloading the model. The
    variable belongs to the schedule, not to the optimizer, so the optimizer's
    saved variables are the ones Keras expects.

    Args:
        schedule: a ``keras.optimizers.schedules.LearningRateSchedule`` or a number.
        factor: the multiplier, > 0. Default 1.0.
        min_learning_rate: the floor of the scaled rate, >= 0. Default 0.0.
        name: optional name scope.

    Example:
        >>> schedule = Scaled(SGDR(0.1, 1000), factor=0.5)
    """

    def __init__(self, schedule, factor=1.0, min_learning_rate=0.0, name="Scaled"):
        super().__init__(name)
        self.schedule = as_schedule("schedule", schedule)
        self._factor = check_positive("factor", factor)
        self._min_learning_rate = check_rate("min_learning_rate", min_learning_rate,
                                             allow_zero=True)
        self.state_variable = keras.Variable(
            [self._factor, self._min_learning_rate], dtype="float32", trainable=False,
            name="scaled_factor_and_floor",
        )

    @property
    def factor(self):
        """The multiplier (a float); setting it assigns the variable."""
        return self._factor

    @factor.setter
    def factor(self, value):
        self._factor = check_positive("factor", value)
        self._assign()

    @property
    def min_learning_rate(self):
        """The floor (a float); setting it assigns the variable."""
        return self._min_learning_rate

    @min_learning_rate.setter
    def min_learning_rate(self, value):
        self._min_learning_rate = check_rate("min_learning_rate", value, allow_zero=True)
        self._assign()

    def _assign(self):
        self.state_variable.assign([self._factor, self._min_learning_rate])

    def _compute(self, step, dtype):
        base = evaluate(self.schedule, step, dtype)
        state = ops.cast(live_value(self.state_variable), dtype)
        floor = ops.minimum(base, state[1])
        return ops.maximum(state[0] * base, floor)

    def get_config(self):
        return {
            "schedule": serialize(self.schedule),
            "factor": self.factor,
            "min_learning_rate": self.min_learning_rate,
            **self._base_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = deserialize(config["schedule"])
        return cls(**config)
