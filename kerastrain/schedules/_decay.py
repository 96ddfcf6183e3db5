"""The chapter's decays: step, multi-step, piecewise, linear, exponential, 1/t."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import argument_error, check_positive, check_type, type_error
from kerastrain.schedules._base import (
    Schedule,
    check_boundaries,
    check_gamma,
    check_rate,
    check_steps,
)

_register = keras.saving.register_keras_serializable(package="kerastrain")


def _time(step, decay_steps, staircase):
    """``t = step / decay_steps``, floored when ``staircase``."""
    t = step / float(decay_steps)
    return ops.floor(t) if staircase else t


@_register
class StepDecay(Schedule):
    """The learning rate times ``gamma`` every ``step_size`` steps.

    Formula: ``lr(t) = initial_learning_rate * gamma ** floor(t / step_size)``.
    Same values as PyTorch's ``StepLR(step_size, gamma)`` and as Keras's
    ``ExponentialDecay(initial_learning_rate, step_size, gamma, staircase=True)``.

    Args:
        initial_learning_rate: the rate at step 0, > 0.
        step_size: steps between two decays, an integer >= 1.
        gamma: the factor applied at each decay, in (0, 1]. Default 0.1.
        name: optional name scope.

    Example:
        >>> optimizer = keras.optimizers.SGD(learning_rate=StepDecay(0.1, step_size=1000))
    """

    def __init__(self, initial_learning_rate, step_size, gamma=0.1, name=None):
        super().__init__(name)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.step_size = check_steps("step_size", step_size)
        self.gamma = check_gamma("gamma", gamma)

    def _compute(self, step, dtype):
        exponent = ops.floor(step / float(self.step_size))
        gamma = ops.convert_to_tensor(self.gamma, dtype=dtype)
        return self.initial_learning_rate * ops.power(gamma, exponent)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
            **self._base_config(),
        }


@_register
class MultiStepDecay(Schedule):
    """The learning rate times ``gamma`` at each of the given milestones.

    Formula: ``lr(t) = initial_learning_rate * gamma ** #{m in milestones : m <= t}``.
    Same values as PyTorch's ``MultiStepLR(milestones, gamma)``.

    Args:
        initial_learning_rate: the rate at step 0, > 0.
        milestones: strictly increasing steps (integers >= 1) where the rate drops.
        gamma: the factor applied at each milestone, in (0, 1]. Default 0.1.
        name: optional name scope.

    Example:
        >>> schedule = MultiStepDecay(0.1, milestones=[3000, 6000], gamma=0.1)
    """

    def __init__(self, initial_learning_rate, milestones, gamma=0.1, name=None):
        super().__init__(name)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.milestones = check_boundaries("milestones", milestones, minimum=1)
        if not self.milestones:
            raise argument_error("milestones", "contain at least one step", milestones)
        self.gamma = check_gamma("gamma", gamma)

    def _compute(self, step, dtype):
        count = ops.zeros_like(step)
        for milestone in self.milestones:
            count = count + ops.cast(step >= float(milestone), dtype)
        gamma = ops.convert_to_tensor(self.gamma, dtype=dtype)
        return self.initial_learning_rate * ops.power(gamma, count)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            **self._base_config(),
        }


@_register
class PiecewiseConstant(Schedule):
    """Hand-set staircase: ``values[i]`` from ``boundaries[i - 1]`` up to ``boundaries[i]``.

    Formula: ``lr(t) = values[#{b in boundaries : b <= t}]``.

    The rate switches *at* a boundary (``t >= b``), like PyTorch's
    ``MultiStepLR`` and like `Sequence`. Keras's
    ``keras.optimizers.schedules.PiecewiseConstantDecay`` switches one step
    later (``t > b``): ``PiecewiseConstant(b, v)`` equals
    ``PiecewiseConstantDecay([x - 1 for x in b], v)``.

    Args:
        boundaries: strictly increasing integer steps >= 1.
        values: learning rates (>= 0), one more than ``boundaries``.
        name: optional name scope.

    Example:
        >>> schedule = PiecewiseConstant(boundaries=[1000, 2000], values=[0.1, 0.01, 0.001])
    """

    def __init__(self, boundaries, values, name=None):
        super().__init__(name)
        self.boundaries = check_boundaries("boundaries", boundaries, minimum=1)
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
            raise type_error("values", "a list of numbers", values)
        self.values = [check_rate(f"values[{index}]", value, allow_zero=True)
                       for index, value in enumerate(values)]
        if len(self.values) != len(self.boundaries) + 1:
            raise argument_error(
                "values", f"have one more entry than `boundaries` ({len(self.boundaries) + 1})",
                list(values),
            )

    def _compute(self, step, dtype):
        result = ops.full_like(step, self.values[0])
        for boundary, value in zip(self.boundaries, self.values[1:]):
            value = ops.convert_to_tensor(value, dtype=dtype)
            result = ops.where(step >= float(boundary), value, result)
        return result

    def get_config(self):
        return {
            "boundaries": list(self.boundaries),
            "values": list(self.values),
            **self._base_config(),
        }


@_register
class LinearDecay(Schedule):
    """Linear interpolation from ``initial_learning_rate`` to ``final_learning_rate``.

    Formula: ``lr(t) = a0 + (a_final - a0) * min(t, decay_steps) / decay_steps``;
    constant at ``final_learning_rate`` afterwards. Same values as Keras's
    ``PolynomialDecay(initial_learning_rate, decay_steps, final_learning_rate, power=1)``
    and PyTorch's ``LinearLR`` (with its factors multiplied by the initial rate).

    Args:
        initial_learning_rate: the rate at step 0, > 0.
        final_learning_rate: the rate from ``decay_steps`` on, >= 0.
        decay_steps: steps of the linear part, an integer >= 1.
        name: optional name scope.

    Example:
        >>> schedule = LinearDecay(0.1, 0.001, decay_steps=10_000)
    """

    def __init__(self, initial_learning_rate, final_learning_rate, decay_steps, name=None):
        super().__init__(name)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.final_learning_rate = check_rate(
            "final_learning_rate", final_learning_rate, allow_zero=True
        )
        self.decay_steps = check_steps("decay_steps", decay_steps)

    def _compute(self, step, dtype):
        fraction = ops.clip(step / float(self.decay_steps), 0.0, 1.0)
        start, end = self.initial_learning_rate, self.final_learning_rate
        return start + (end - start) * fraction

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "final_learning_rate": self.final_learning_rate,
            "decay_steps": self.decay_steps,
            **self._base_config(),
        }


class _TimeDecay(Schedule):
    """Shared arguments of the exponential and 1/t decays (t = step / decay_steps)."""

    def __init__(self, initial_learning_rate, decay_rate, decay_steps=1, staircase=False,
                 name=None):
        super().__init__(name)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.decay_rate = check_positive("decay_rate", decay_rate, allow_zero=True)
        self.decay_steps = check_steps("decay_steps", decay_steps)
        self.staircase = check_type("staircase", staircase, bool, "a bool")

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_rate": self.decay_rate,
            "decay_steps": self.decay_steps,
            "staircase": self.staircase,
            **self._base_config(),
        }


@_register
class NaturalExponentialDecay(_TimeDecay):
    """Exponential decay ``a0 * exp(-k * t)``.

    Formula: ``lr(t) = initial_learning_rate * exp(-decay_rate * t)`` with
    ``t = step / decay_steps`` (floored when ``staircase``). The same curve as
    Keras's ``ExponentialDecay(initial_learning_rate, decay_steps,
    decay_rate=exp(-k))``, parameterized by the chapter's rate ``k``.

    Args:
        initial_learning_rate: the rate at step 0, > 0.
        decay_rate: ``k`` >= 0, per unit of ``t``.
        decay_steps: steps per unit of ``t`` (e.g. steps per epoch). Default 1.
        staircase: decay in whole units of ``t``. Default False.
        name: optional name scope.

    Example:
        >>> schedule = NaturalExponentialDecay(0.1, decay_rate=0.5, decay_steps=100)
    """

    def _compute(self, step, dtype):
        t = _time(step, self.decay_steps, self.staircase)
        return self.initial_learning_rate * ops.exp(-self.decay_rate * t)


@_register
class InverseTimeDecay(_TimeDecay):
    """The O(1/t) decay ``a0 / (1 + k * t)``.

    Formula: ``lr(t) = initial_learning_rate / (1 + decay_rate * t)`` with
    ``t = step / decay_steps`` (floored when ``staircase``). Keras's
    ``keras.optimizers.schedules.InverseTimeDecay`` computes the same values
    (its ``decay_steps`` is required; here it defaults to 1, so ``t`` is the step).

    Args:
        initial_learning_rate: the rate at step 0, > 0.
        decay_rate: ``k`` >= 0, per unit of ``t``.
        decay_steps: steps per unit of ``t`` (e.g. steps per epoch). Default 1.
        staircase: decay in whole units of ``t``. Default False.
        name: optional name scope.

    Example:
        >>> schedule = InverseTimeDecay(0.1, decay_rate=0.5, decay_steps=100)
    """

    def _compute(self, step, dtype):
        t = _time(step, self.decay_steps, self.staircase)
        return self.initial_learning_rate / (1.0 + self.decay_rate * t)


__all__ = [
    "InverseTimeDecay",
    "LinearDecay",
    "MultiStepDecay",
    "NaturalExponentialDecay",
    "PiecewiseConstant",
    "StepDecay",
]
