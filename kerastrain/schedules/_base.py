"""Shared pieces of every kerastrain schedule: the base class and argument helpers.

Every schedule here is element-wise in ``step``: it accepts the optimizer's
scalar ``iterations`` variable, a Python int, or an array of steps (which is
how `plot` and the tests evaluate thousands of steps in one call). A step
below 0 is evaluated as step 0, by every schedule (`Schedule.__call__`). Math is in
`keras.ops` with `ops.where` instead of Python branches, so one trace of a
jitted train step serves every step.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerastrain._validation import (
    argument_error,
    check_finite_number,
    check_integer,
    check_positive,
    check_type,
    type_error,
)

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


class Schedule(LearningRateSchedule):
    """Base class: dtype handling, the ``name`` argument and `from_config`.

    Subclasses implement ``_compute(step, dtype)`` where ``step`` is already
    a float tensor of ``dtype`` (Keras's float type, `keras.config.floatx()`).
    """

    def __init__(self, name=None):
        super().__init__()
        if name is not None:
            check_type("name", name, str, "a string or None")
        self.name = name

    def __call__(self, step):
        # One rule for every schedule: a step below 0 is evaluated as step 0 (the
        # optimizer never counts below 0; the formulas are not extrapolated backwards,
        # where some would exceed the initial rate, e.g. gamma ** floor(-3 / 10) = 10).
        dtype = keras.config.floatx()
        with keras.name_scope(self.name or type(self).__name__):
            step = ops.maximum(ops.cast(ops.convert_to_tensor(step), dtype), 0.0)
            return self._compute(step, dtype)

    def _compute(self, step, dtype):
        raise NotImplementedError(f"{type(self).__name__} must implement `_compute`.")

    def _base_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def check_rate(name, value, allow_zero=False):
    """A learning rate: a finite number > 0 (>= 0 with ``allow_zero``)."""
    return check_positive(name, value, allow_zero=allow_zero)


def check_steps(name, value, minimum=1):
    """A number of steps: an integer >= ``minimum``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_integer(name, value, minimum=minimum)


def check_gamma(name, value):
    """A multiplicative decay factor in (0, 1]."""
    number = check_finite_number(name, value)
    if not 0.0 < number <= 1.0:
        raise argument_error(name, "be in (0, 1]", value)
    return number


def check_boundaries(name, boundaries, minimum=0):
    """A strictly increasing list of integer steps, each >= ``minimum``."""
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, (list, tuple)):
        raise type_error(name, "a list of integers", boundaries)
    result = [check_steps(f"{name}[{index}]", value, minimum=minimum)
              for index, value in enumerate(boundaries)]
    if any(later <= earlier for earlier, later in zip(result, result[1:])):
        raise argument_error(name, "be strictly increasing", list(boundaries))
    return result


def evaluate(schedule, step, dtype):
    """Call a (possibly non-kerastrain) schedule and cast its value to ``dtype``."""
    return ops.cast(schedule(step), dtype)


def serialize(schedule):
    return keras.saving.serialize_keras_object(schedule)


def deserialize(config):
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config


def cosine_anneal(start, end, fraction):
    """``end + (start - end) / 2 * (1 + cos(pi * fraction))`` (PyTorch's form)."""
    return end + (start - end) / 2.0 * (ops.cos(math.pi * fraction) + 1.0)


def linear_anneal(start, end, fraction):
    """``start + (end - start) * fraction`` (PyTorch's form)."""
    return (end - start) * fraction + start
