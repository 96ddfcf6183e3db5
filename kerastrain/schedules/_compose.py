"""Composition: a warmup in front of any schedule, and schedules joined in sequence."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import argument_error, check_one_of, type_error
from kerastrain.schedules._base import (
    Schedule,
    check_boundaries,
    check_rate,
    check_steps,
    deserialize,
    evaluate,
    serialize,
)
from kerastrain.schedules._constant import as_schedule

_register = keras.saving.register_keras_serializable(package="kerastrain")

_WARMUP_MODES = ("linear", "exponential")


@_register
class Warmup(Schedule):
    """A warmup in front of any schedule; the schedule starts when the warmup ends.

    Formula, with ``w = warmup_steps``, ``a_w = initial_learning_rate`` and
    ``a_s = schedule(0)`` (the rate the warmup climbs to)::

        t <  w, "linear":       lr(t) = a_w + (a_s - a_w) * t / w
        t <  w, "exponential":  lr(t) = a_w * (a_s / a_w) ** (t / w)
        t >= w:                 lr(t) = schedule(t - w)

    The exponential (geometric) warmup multiplies the rate by the same factor
    every step, so it needs ``initial_learning_rate > 0``. Keras's
    ``CosineDecay(warmup_target=..., warmup_steps=...)`` offers a linear warmup
    for cosine decay only; this one goes in front of any
    ``LearningRateSchedule`` (Keras's, kerastrain's or your own) or a constant.

    Args:
        schedule: a ``keras.optimizers.schedules.LearningRateSchedule`` or a
            number (a constant rate after the warmup).
        warmup_steps: length of the warmup, an integer >= 1.
        initial_learning_rate: the rate at step 0, >= 0 ("linear") or > 0
            ("exponential"). Default 0.0.
        mode: ``"linear"`` (default) or ``"exponential"``.
        name: optional name scope.

    Example:
        >>> schedule = Warmup(SGDR(0.1, 1000), warmup_steps=500)
        >>> schedule = Warmup(0.1, warmup_steps=100, initial_learning_rate=1e-4,
        ...                   mode="exponential")

    Reference:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour", arXiv:1706.02677, 2017 (gradual warmup).
    """

    def __init__(self, schedule, warmup_steps, initial_learning_rate=0.0, mode="linear",
                 name="Warmup"):
        super().__init__(name)
        self.schedule = as_schedule("schedule", schedule)
        self.warmup_steps = check_steps("warmup_steps", warmup_steps)
        self.mode = check_one_of("mode", mode, _WARMUP_MODES)
        self.initial_learning_rate = check_rate(
            "initial_learning_rate", initial_learning_rate, allow_zero=True
        )
        if self.mode == "exponential" and self.initial_learning_rate == 0.0:
            raise argument_error(
                "initial_learning_rate", 'be > 0 when mode="exponential"', initial_learning_rate,
                "A geometric warmup cannot start from 0: pass a small rate such as 1e-6, "
                'or use mode="linear".',
            )

    def _compute(self, step, dtype):
        step = ops.maximum(step, 0.0)
        warmup = float(self.warmup_steps)
        target = evaluate(self.schedule, ops.zeros_like(step), dtype)
        after = evaluate(self.schedule, ops.maximum(step - warmup, 0.0), dtype)
        fraction = step / warmup
        start = self.initial_learning_rate
        if self.mode == "linear":
            rising = start + (target - start) * fraction
        else:
            rising = start * ops.power(target / start, fraction)
        return ops.where(step < warmup, rising, after)

    def get_config(self):
        return {
            "schedule": serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "mode": self.mode,
            **self._base_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = deserialize(config["schedule"])
        return cls(**config)


@_register
class Sequence(Schedule):
    """Schedules joined end to end; each one starts its own count at its boundary.

    Formula, with ``b_0 = 0`` and ``boundaries = [b_1, ..., b_n]``::

        lr(t) = schedules[i](t - b_i)   for b_i <= t < b_(i+1)

    (the switch happens *at* the boundary, as in optax's ``join_schedules``
    and PyTorch's ``SequentialLR``).

    Args:
        schedules: a list of ``LearningRateSchedule`` objects or numbers
            (constant rates), at least two.
        boundaries: strictly increasing integer steps >= 1, one fewer than
            ``schedules``.
        name: optional name scope.

    Example:
        >>> schedule = Sequence(
        ...     [LinearDecay(0.01, 0.1, 500), SGDR(0.1, 1000), 1e-4],
        ...     boundaries=[500, 7500],
        ... )
    """

    def __init__(self, schedules, boundaries, name="Sequence"):
        super().__init__(name)
        if isinstance(schedules, (str, bytes)) or not isinstance(schedules, (list, tuple)):
            raise type_error("schedules", "a list of schedules or numbers", schedules)
        self.schedules = [as_schedule(f"schedules[{index}]", schedule)
                          for index, schedule in enumerate(schedules)]
        if len(self.schedules) < 2:
            raise argument_error("schedules", "contain at least two schedules", schedules,
                                 "A single schedule needs no Sequence.")
        self.boundaries = check_boundaries("boundaries", boundaries, minimum=1)
        if len(self.boundaries) != len(self.schedules) - 1:
            raise argument_error(
                "boundaries",
                f"have one entry fewer than `schedules` ({len(self.schedules) - 1})",
                list(boundaries),
            )

    def _compute(self, step, dtype):
        step = ops.maximum(step, 0.0)
        result = evaluate(self.schedules[0], step, dtype)
        for boundary, schedule in zip(self.boundaries, self.schedules[1:]):
            boundary = float(boundary)
            value = evaluate(schedule, ops.maximum(step - boundary, 0.0), dtype)
            result = ops.where(step >= boundary, value, result)
        return result

    def get_config(self):
        return {
            "schedules": [serialize(schedule) for schedule in self.schedules],
            "boundaries": list(self.boundaries),
            **self._base_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedules"] = [deserialize(schedule) for schedule in config["schedules"]]
        return cls(**config)
