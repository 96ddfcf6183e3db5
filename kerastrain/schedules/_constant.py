"""`Constant`: a fixed rate as a schedule, and `as_schedule` (a number becomes one)."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import type_error
from kerastrain.schedules._base import LearningRateSchedule, Schedule, check_rate

_register = keras.saving.register_keras_serializable(package="kerastrain")


@_register
class Constant(Schedule):
    """A constant learning rate, as a schedule (for `Sequence` and `Warmup`).

    Formula: ``lr(t) = learning_rate``.

    Args:
        learning_rate: the rate, >= 0.
        name: optional name scope.

    Example:
        >>> schedule = Sequence([Constant(0.1), StepDecay(0.1, 100)], boundaries=[50])
    """

    def __init__(self, learning_rate, name=None):
        super().__init__(name)
        self.learning_rate = check_rate("learning_rate", learning_rate, allow_zero=True)

    def _compute(self, step, dtype):
        return ops.full_like(step, self.learning_rate)

    def get_config(self):
        return {"learning_rate": self.learning_rate, **self._base_config()}


def as_schedule(name, value):
    """A schedule, or a number turned into a `Constant` schedule."""
    if isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(
            name, "a keras.optimizers.schedules.LearningRateSchedule or a number", value
        )
    return Constant(check_rate(name, value, allow_zero=True))
