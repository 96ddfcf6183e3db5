"""Hyperparameters that may be a number, a `LearningRateSchedule` or a callable."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import (
    argument_error,
    check_in_range,
    check_number,
    check_positive,
    type_error,
)

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def is_scheduled(value):
    """True for a `LearningRateSchedule` or another callable of the step."""
    return isinstance(value, _Schedule) or callable(value)


def check_beta(name, value):
    """A float in [0, 1), or a schedule / callable of the step (checked when called)."""
    if is_scheduled(value):
        return value
    return check_in_range(name, value, 0.0, 1.0, high_inclusive=False)


def check_momentum(name, value):
    """SGD's momentum: a number in [0, 1] as `keras.optimizers.SGD` accepts (1: no decay,
    which Keras allows), or a schedule / callable of the step (checked when called)."""
    if is_scheduled(value):
        return value
    number = check_number(name, value)
    if not 0.0 <= number <= 1.0:
        raise argument_error(name, "be a float between [0, 1]", value)
    return number


def check_unit(name, value):
    """A number in [0, 1) (not schedulable)."""
    if is_scheduled(value):
        raise type_error(name, "a float in [0, 1)", value, "Only `momentum` and `beta_1` accept a schedule.")
    return check_in_range(name, value, 0.0, 1.0, high_inclusive=False)


def check_learning_rate(value):
    """A float >= 0, a `LearningRateSchedule`, or a callable."""
    if is_scheduled(value):
        return value
    return check_positive("learning_rate", value, allow_zero=True)


def check_epsilon(value, name="epsilon"):
    return check_positive(name, value)


def check_optional_positive(name, value):
    return None if value is None else check_positive(name, value)


def resolve(value, iterations, dtype):
    """The value at the current step, as a scalar of ``dtype`` (or a Python float)."""
    if is_scheduled(value):
        return ops.cast(value(iterations), dtype)
    return value


def cast(value, dtype):
    """Cast a tensor to ``dtype``; Python numbers stay exact Python numbers."""
    if isinstance(value, (int, float)):
        return value
    return ops.cast(value, dtype)


def serialize(value):
    if isinstance(value, _Schedule) or is_scheduled(value):
        return keras.saving.serialize_keras_object(value)
    return value


def deserialize(value):
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value)
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise type_error(name, "a bool (True or False)", value)
    return value
