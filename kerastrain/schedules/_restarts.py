"""Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017)."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerastrain._validation import argument_error, check_in_range, check_positive
from kerastrain.schedules._base import Schedule, check_rate, check_steps, cosine_anneal

_register = keras.saving.register_keras_serializable(package="kerastrain")


def _power(base, exponent):
    """``base ** exponent`` with the Python float ``base`` kept at full precision."""
    return ops.power(ops.convert_to_tensor(base, dtype=exponent.dtype), exponent)


@_register
class SGDR(Schedule):
    """Cosine annealing with warm restarts, with optional linear warmup per cycle.

    Formula (Loshchilov & Hutter 2017, Keras's ``CosineDecayRestarts`` form):
    cycle ``i`` lasts ``T_i = first_decay_steps * t_mul ** i`` steps; with
    ``p`` the steps since its start and ``f = p / T_i``::

        lr(t) = a0 * (alpha + (1 - alpha) * m_mul ** i * (1 + cos(pi * f)) / 2)

    With ``warmup_steps = w > 0`` each cycle first rises linearly from the
    floor ``a0 * alpha`` to its peak over ``w`` steps, then anneals over the
    remaining ``T_i - w`` steps (``f = (p - w) / (T_i - w)``).

    With ``warmup_steps=0`` the values equal Keras's
    ``keras.optimizers.schedules.CosineDecayRestarts`` (same arguments) and,
    for ``m_mul=1`` and integer ``t_mul``, PyTorch's
    ``CosineAnnealingWarmRestarts(T_0=first_decay_steps, T_mult=t_mul,
    eta_min=alpha * initial_learning_rate)``. Cycle boundaries are found
    exactly (the closed-form logarithm is corrected by one comparison), so a
    restart never lands one step early or late through rounding.

    Args:
        initial_learning_rate: the peak of the first cycle, > 0.
        first_decay_steps: length of the first cycle, an integer >= 1.
        t_mul: factor on each next cycle's length, >= 1. Default 2.0.
        m_mul: factor on each next cycle's peak, > 0. Default 1.0.
        alpha: the floor, as a fraction of ``initial_learning_rate``, in [0, 1].
            Default 0.0.
        warmup_steps: linear warmup steps at the start of every cycle, an
            integer in [0, first_decay_steps). Default 0.
        name: optional name scope.

    Example:
        >>> schedule = SGDR(0.1, first_decay_steps=1000, t_mul=2.0, m_mul=0.9)
        >>> model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), loss="mse")

    Reference:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, warmup_steps=0, name="SGDR"):
        super().__init__(name)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = check_steps("first_decay_steps", first_decay_steps)
        self.t_mul = check_positive("t_mul", t_mul)
        if self.t_mul < 1.0:
            raise argument_error(
                "t_mul", "be >= 1", t_mul,
                "Cycles that shrink geometrically end after a finite number of steps.",
            )
        self.m_mul = check_positive("m_mul", m_mul)
        self.alpha = check_in_range("alpha", alpha, 0.0, 1.0)
        self.warmup_steps = check_steps("warmup_steps", warmup_steps, minimum=0)
        if self.warmup_steps >= self.first_decay_steps:
            raise argument_error(
                "warmup_steps", f"be < first_decay_steps={self.first_decay_steps}",
                warmup_steps,
            )

    def _cycle_start(self, index):
        """First step of cycle ``index`` (a float tensor)."""
        first = float(self.first_decay_steps)
        if self.t_mul == 1.0:
            return first * index
        return first * (_power(self.t_mul, index) - 1.0) / (self.t_mul - 1.0)

    def _cycle_index(self, step):
        """The cycle containing ``step``: closed form, then corrected exactly."""
        first = float(self.first_decay_steps)
        if self.t_mul == 1.0:
            return ops.floor(step / first)
        index = ops.floor(
            ops.log(1.0 + step * (self.t_mul - 1.0) / first) / math.log(self.t_mul)
        )
        index = ops.where(step < self._cycle_start(index), index - 1.0, index)
        return ops.where(step >= self._cycle_start(index + 1.0), index + 1.0, index)

    def _compute(self, step, dtype):
        step = ops.maximum(step, 0.0)
        index = self._cycle_index(step)
        position = step - self._cycle_start(index)
        length = float(self.first_decay_steps) * _power(self.t_mul, index)
        warmup = float(self.warmup_steps)
        floor = self.alpha
        peak = self.alpha + (1.0 - self.alpha) * _power(self.m_mul, index)
        annealed = cosine_anneal(peak, floor, (position - warmup) / (length - warmup))
        if self.warmup_steps:
            rising = floor + (peak - floor) * position / warmup
            annealed = ops.where(position < warmup, rising, annealed)
        return self.initial_learning_rate * annealed

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "warmup_steps": self.warmup_steps,
            **self._base_config(),
        }
